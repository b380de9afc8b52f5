//! The controller's preflight of external services, run from where the CLI runs: the same
//! inputs (the user's Secret keys), the same target and the same checks (resolve, connect, TLS
//! with the Secret's CA). Results name the endpoint, never a credential.

use serde::Serialize;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::external;
use wandb_engine::{Built, Mode};

use crate::user_secrets::SecretReader;

/// One external service's preflight.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: String,
    pub instance: String,
    /// `host:port`, when the inputs name one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `None`: passed (or not checked, see `skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Why nothing was checked (e.g. a cloud object store without an endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Finding {
    /// One line: `mysql/default db:3306: ok`.
    pub fn line(&self) -> String {
        let result = match (&self.problem, &self.skipped) {
            (Some(p), _) => format!("FAILED: {p}"),
            (None, Some(s)) => format!("not checked: {s}"),
            (None, None) => "ok".into(),
        };
        format!(
            "{}/{} {}: {result}",
            self.kind,
            self.instance,
            self.endpoint.as_deref().unwrap_or("-")
        )
    }
}

/// Preflights every external service of `built`.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    cr: &WeightsAndBiases,
    built: &Built,
) -> Result<Vec<Finding>, String> {
    let mut reader = SecretReader::new(client, namespace);
    let mut out = Vec::new();
    for plan in built.infra.iter().filter(|p| p.mode == Mode::External) {
        let mut inputs = external::inputs_template(cr, plan.kind, &plan.instance);
        let mut certs = crate::preflight::Certs::default();
        let path = format!("spec.{}.{}", plan.kind.key(), plan.instance);
        let selectors = external::selectors(cr, plan.kind, &plan.instance);
        let missing = reader
            .read_selectors(&path, &selectors, |field, v| {
                inputs.set(field, v);
                certs.capture(field, v);
            })
            .await
            .map_err(|e| format!("reading the Secrets of {path}: {e}"))?;
        let mut finding = Finding {
            kind: plan.kind.key().to_string(),
            instance: plan.instance.clone(),
            endpoint: None,
            problem: None,
            skipped: None,
        };
        if !missing.is_empty() {
            finding.problem = Some(missing.join("; "));
        } else if let Some(target) = crate::preflight::target(plan.kind, &inputs) {
            finding.endpoint = Some(target.addr.clone());
            finding.problem = crate::preflight::check(&target, &certs).await.err();
        } else {
            finding.skipped =
                Some("the connection names no host (the provider's default endpoint)".into());
        }
        out.push(finding);
    }
    Ok(out)
}
