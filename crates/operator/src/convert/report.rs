//! What the controller says about a resource converted from v1: the `V1ValuesMapped` condition
//! (from the findings the webhook stored on the object) and a Warning event when they change.

use wandb_api::{ConditionType, Reason, WeightsAndBiases, WeightsAndBiasesStatus};

use super::{ANNOTATION_FINDINGS, ANNOTATION_VALUES, Finding};

/// Condition messages stay readable (and under the API's 32 KiB) however many values remain.
const MAX_MESSAGE: usize = 4000;

/// Defined with the other status facts in the engine.
pub use wandb_engine::decide::ConversionReport as Report;

/// The report of a resource created as v1; `None` for one created as v2.
pub fn of(cr: &WeightsAndBiases) -> Option<Report> {
    let annotations = cr.metadata.annotations.as_ref()?;
    annotations.get(ANNOTATION_VALUES)?;
    let findings: Vec<Finding> = annotations
        .get(ANNOTATION_FINDINGS)
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    if findings.is_empty() {
        return Some(Report {
            complete: true,
            reason: Reason::CONVERSION_COMPLETE,
            message: "every apps.wandb.com/v1 value was carried over to v2".into(),
        });
    }
    let mut message = format!(
        "converted from apps.wandb.com/v1; {} value(s) not carried over as is (see docs/migrate-from-official.md): ",
        findings.len()
    );
    let parts: Vec<String> = findings.iter().map(ToString::to_string).collect();
    message.push_str(&parts.join("; "));
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(" ...");
    }
    Some(Report {
        complete: false,
        reason: Reason::CONVERSION_INCOMPLETE,
        message,
    })
}

/// The event note when the report is incomplete and differs from the status' condition (once
/// per change, not once per reconcile).
pub fn news(report: Option<&Report>, prev: &WeightsAndBiasesStatus) -> Option<String> {
    let r = report.filter(|r| !r.complete)?;
    let known = prev
        .conditions
        .iter()
        .any(|c| c.type_ == ConditionType::V1ValuesMapped.as_str() && c.message == r.message);
    (!known).then(|| r.message.clone())
}
