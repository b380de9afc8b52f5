//! v1 (`operator-wandb` chart values) <-> v2 conversion, as pure functions.
//!
//! * v1 -> v2 maps what the official operator maps (§1.4 of its reference) and more: every
//!   literal that a v2 selector must point at goes into the operator-owned conversion Secret
//!   `<name>-v1-values` (never into the v2 spec or an annotation); templated values are dropped
//!   with a warning; chart-installed MySQL/Redis are reconnected as external services at the
//!   chart's Service and Secret; `global.imageRegistry` and `imagePullSecrets` are carried over.
//!   What cannot be mapped is listed as findings, each naming the v1 value path.
//! * The original values are kept on the v2 object (annotation `v1.apps.wandb.com/values`)
//!   with each credential literal replaced by a `valueFrom.secretKeyRef` into the same Secret,
//!   so v2 -> v1 gives back the original object exactly (the literals restored from the Secret)
//!   for resources not edited as v2.
//! * A resource created as v2 reads back as v1 with an empty spec and its v2 spec in annotation
//!   `v1.apps.wandb.com/v2-spec`, so that a v1 client's read-modify-write keeps it.
//! * The values mapped are, as the official operator reads them, those the v1 operator last
//!   applied (Secret `<name>-spec-active`, key `values`: the resource's values merged with the
//!   System Console's and the release channel's) when the webhook could read them
//!   ([`ActiveValues`]), else `spec.values`. The lossless copy is always `spec.values`.
//!
//! Conversion never fails: the API server must be able to list every stored object.

#[cfg(test)]
mod active_tests;
mod app;
mod env;
pub mod redact;
pub mod report;
mod services;
#[cfg(test)]
mod tests;
pub mod values;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wandb_api::{WandbAppSpec, WeightsAndBiases, WeightsAndBiasesSpec};

use values::Values;

/// Redacted copy of `spec.values` (JSON).
pub const ANNOTATION_VALUES: &str = "v1.apps.wandb.com/values";
/// Redacted copy of `spec.chart` (JSON).
pub const ANNOTATION_CHART: &str = "v1.apps.wandb.com/chart";
/// The literals moved into the conversion Secret (JSON list of [`redact::Redacted`]).
pub const ANNOTATION_REDACTED: &str = "v1.apps.wandb.com/redacted";
/// What the conversion could not map (JSON list of [`Finding`]); read by the controller.
pub const ANNOTATION_FINDINGS: &str = "v1.apps.wandb.com/findings";
/// On the v1 view of a resource created as v2: its v2 spec (JSON).
pub const ANNOTATION_V2_SPEC: &str = "v1.apps.wandb.com/v2-spec";

const OUR_ANNOTATIONS: [&str; 5] = [
    ANNOTATION_VALUES,
    ANNOTATION_CHART,
    ANNOTATION_REDACTED,
    ANNOTATION_FINDINGS,
    ANNOTATION_V2_SPEC,
];

/// The operator-owned Secret holding the literals of a converted v1 resource.
pub fn secret_name(cr: &str) -> String {
    format!("{cr}-v1-values")
}

/// Something the conversion could not carry over as is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The v1 path, e.g. `spec.values.global.kafka`.
    pub path: String,
    pub kind: FindingKind,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum FindingKind {
    /// No v2 field takes this value.
    Unmapped,
    /// A Helm template, dropped.
    TemplatedDropped,
    /// Mapped, but the meaning differs or a default was assumed; read the message.
    Approximated,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.path, self.message)
    }
}

/// The v1 operator's `<name>-spec-active` Secret (what it last applied), as the webhook found it.
#[derive(Debug, Clone, PartialEq)]
pub enum ActiveValues {
    /// No such Secret (the v1 operator never applied this resource): `spec.values` is mapped.
    Absent,
    /// Its `values`, a JSON object: mapped instead of `spec.values`.
    Found(Value),
    /// It exists (or may) but could not be used; the reason names no value. `spec.values` is
    /// mapped and the reason reported as a finding.
    Unreadable(String),
}

/// Name of the v1 operator's Secret holding the values it last applied.
pub fn spec_active_name(cr: &str) -> String {
    format!("{cr}-spec-active")
}

/// Paths named one by one in the summary finding of values only the spec-active Secret holds.
const ACTIVE_ONLY_LISTED: usize = 10;

/// The result of v1 -> v2.
#[derive(Debug, Clone)]
pub struct Converted {
    pub v2: WeightsAndBiases,
    /// Data of the conversion Secret ([`secret_name`]); empty when nothing needs it.
    pub secret_data: BTreeMap<String, String>,
    pub findings: Vec<Finding>,
}

/// v1 object (JSON, as the API server sends it) -> v2 from its `spec.values`. Never fails.
pub fn to_v2(v1: &Value) -> Converted {
    to_v2_with(v1, ActiveValues::Absent)
}

/// v1 object -> v2, mapping the v1 operator's applied values when given. Never fails.
pub fn to_v2_with(v1: &Value, active: ActiveValues) -> Converted {
    let meta: ObjectMeta = v1
        .get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let spec = v1.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut annotations = meta.annotations.clone().unwrap_or_default();

    // A v2 resource seen through v1 and written back: its v2 spec, untouched.
    let values_empty = spec
        .get("values")
        .is_none_or(|v| v.as_object().is_none_or(|o| o.is_empty()));
    if let Some(v2_spec) = annotations
        .remove(ANNOTATION_V2_SPEC)
        .filter(|_| values_empty)
        .and_then(|s| serde_json::from_str::<WeightsAndBiasesSpec>(&s).ok())
    {
        strip(&mut annotations);
        let mut v2 = v2_object(meta, annotations, v2_spec);
        v2.status = v2_status(v1);
        return Converted {
            v2,
            secret_data: BTreeMap::new(),
            findings: vec![],
        };
    }
    strip(&mut annotations);

    let empty = json!({});
    let own_values = spec
        .get("values")
        .filter(|v| v.is_object())
        .unwrap_or(&empty);
    let active_name = spec_active_name(&name);
    let (values_node, unreadable) = match &active {
        ActiveValues::Found(v) if v.is_object() => (v, None),
        ActiveValues::Found(_) => (own_values, Some("its values are not a JSON object".into())),
        ActiveValues::Absent => (own_values, None),
        ActiveValues::Unreadable(why) => (own_values, Some(why.clone())),
    };
    let mut vals = Values::new(values_node, secret_name(&name));
    if matches!(&active, ActiveValues::Found(v) if v.is_object()) {
        vals.active = Some((own_values, active_name.clone()));
        // The v1 operator's own defaults (its namespace and API version), merged in by it.
        vals.consume("global.operator");
    }
    if let Some(why) = unreadable {
        vals.findings.borrow_mut().push(Finding {
            path: format!("secret {active_name}"),
            kind: FindingKind::Approximated,
            message: format!(
                "(the values the v1 operator last applied) was not used: {why}; spec.values was converted instead"
            ),
        });
    }
    let mut v2_spec = WeightsAndBiasesSpec {
        wandb: WandbAppSpec::default(),
        ..Default::default()
    };
    app::map(&vals, &name, &mut v2_spec);
    services::map(&vals, &name, &mut v2_spec);
    env::map(&vals, &mut v2_spec);
    // Values read only to be ignored on purpose.
    for p in ["_releaseId", "reconcileFrequency"] {
        if vals.get(p).is_some() {
            vals.warn(
                p,
                FindingKind::Unmapped,
                "steered the v1 operator's deployer channel; wandb-operator pins spec.wandb.version instead",
            );
        }
    }
    // Values only the spec-active Secret holds (release-channel defaults, System Console edits)
    // are many: one finding lists them, where the resource's own are reported one by one.
    let mut active_only = Vec::new();
    for p in vals.unconsumed() {
        if vals.origin(&p).starts_with("spec.values.") {
            vals.warn(
                &p,
                FindingKind::Unmapped,
                "has no v2 equivalent; not applied",
            );
        } else {
            active_only.push(p);
        }
    }
    if !active_only.is_empty() {
        let listed: Vec<&str> = active_only
            .iter()
            .take(ACTIVE_ONLY_LISTED)
            .map(String::as_str)
            .collect();
        let more = active_only.len().saturating_sub(ACTIVE_ONLY_LISTED);
        vals.findings.borrow_mut().push(Finding {
            path: format!("secret {active_name}"),
            kind: FindingKind::Unmapped,
            message: format!(
                "holds {} values beyond spec.values (release-channel defaults or System Console edits) with no v2 equivalent, not applied: {}{}",
                active_only.len(),
                listed.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        });
    }

    // The lossless copy, without credentials.
    let mut data = vals.data.borrow().clone();
    let mut redacted = Vec::new();
    let secret = secret_name(&name);
    if let Some(values) = spec.get("values") {
        let mut copy = values.clone();
        redact::redact(&mut copy, "values", &secret, &mut data, &mut redacted);
        annotations.insert(ANNOTATION_VALUES.into(), copy.to_string());
    }
    if let Some(chart) = spec.get("chart") {
        let mut copy = chart.clone();
        redact::redact(&mut copy, "chart", &secret, &mut data, &mut redacted);
        annotations.insert(ANNOTATION_CHART.into(), copy.to_string());
    }
    if !redacted.is_empty() {
        annotations.insert(
            ANNOTATION_REDACTED.into(),
            serde_json::to_string(&redacted).expect("serializable"),
        );
    }
    let findings = vals.findings.borrow().clone();
    if !findings.is_empty() {
        annotations.insert(
            ANNOTATION_FINDINGS.into(),
            serde_json::to_string(&findings).expect("serializable"),
        );
    }
    let mut v2 = v2_object(meta, annotations, v2_spec);
    v2.status = v2_status(v1);
    Converted {
        v2,
        secret_data: data,
        findings,
    }
}

fn v2_object(
    mut meta: ObjectMeta,
    annotations: BTreeMap<String, String>,
    spec: WeightsAndBiasesSpec,
) -> WeightsAndBiases {
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    WeightsAndBiases {
        metadata: meta,
        spec,
        status: None,
    }
}

fn strip(annotations: &mut BTreeMap<String, String>) {
    for a in OUR_ANNOTATIONS {
        annotations.remove(a);
    }
}

/// v2 object (JSON) -> v1 JSON. `secret_data` is the conversion Secret's data when readable;
/// without it the credentials stay `valueFrom` references (same meaning to the chart). Returns
/// the paths it could not restore. Never fails.
pub fn to_v1(v2: &Value, secret_data: Option<&BTreeMap<String, String>>) -> (Value, Vec<String>) {
    let mut out = v2.clone();
    let obj = out
        .as_object_mut()
        .expect("a Kubernetes object is a JSON object");
    obj.insert("apiVersion".into(), json!("apps.wandb.com/v1"));
    let annotations: BTreeMap<String, String> = v2
        .pointer("/metadata/annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    let mut missing = Vec::new();
    let spec = match annotations.get(ANNOTATION_VALUES) {
        Some(values) => {
            let mut spec = json!({
                "values": serde_json::from_str::<Value>(values).unwrap_or_else(|_| json!({})),
            });
            if let Some(chart) = annotations
                .get(ANNOTATION_CHART)
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
            {
                spec["chart"] = chart;
            }
            let redacted: Vec<redact::Redacted> = annotations
                .get(ANNOTATION_REDACTED)
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            let empty = BTreeMap::new();
            missing = redact::restore(&mut spec, &redacted, secret_data.unwrap_or(&empty));
            spec
        }
        None => json!({}),
    };
    let mut v1_annotations = annotations.clone();
    strip(&mut v1_annotations);
    if !annotations.contains_key(ANNOTATION_VALUES)
        && let Some(s) = v2.get("spec")
    {
        v1_annotations.insert(ANNOTATION_V2_SPEC.into(), s.to_string());
    }
    obj.insert("spec".into(), spec);
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("metadata is an object");
    if v1_annotations.is_empty() {
        meta.remove("annotations");
    } else {
        meta.insert("annotations".into(), json!(v1_annotations));
    }
    let status = v2.get("status").map(v1_status);
    match status {
        Some(s) => {
            obj.insert("status".into(), s);
        }
        None => {
            obj.remove("status");
        }
    }
    (out, missing)
}

/// v1 status: the v2 status, plus `phase` Completed when Ready, else Loading.
fn v1_status(v2: &Value) -> Value {
    let ready = v2
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True"))
            })
        });
    let mut s = v2.clone();
    if let Some(m) = s.as_object_mut() {
        m.insert(
            "phase".into(),
            json!(if ready { "Completed" } else { "Loading" }),
        );
    }
    s
}

/// The v2 status inside a v1 one (what [`v1_status`] wrote); a status written by the v1
/// operator (only phase and version) has none.
fn v2_status(v1: &Value) -> Option<wandb_api::WeightsAndBiasesStatus> {
    let mut s = v1.get("status")?.clone();
    let m = s.as_object_mut()?;
    m.get("ready")?;
    m.remove("phase");
    serde_json::from_value(s).ok()
}

/// The conversion Secret for a converted resource, owned by it when `owned` (and the API server
/// sent its uid), so it goes with the resource. The webhook writes it unowned first: during a
/// create the resource is converted before it is stored, and the garbage collector deletes a
/// dependent whose owner it cannot find.
pub fn conversion_secret(
    v2: &WeightsAndBiases,
    data: &BTreeMap<String, String>,
    owned: bool,
) -> Secret {
    let name = v2.metadata.name.clone().unwrap_or_default();
    let owner = v2
        .metadata
        .uid
        .as_ref()
        .filter(|_| owned)
        .map(|uid| OwnerReference {
            api_version: "apps.wandb.com/v2".into(),
            kind: "WeightsAndBiases".into(),
            name: name.clone(),
            uid: uid.clone(),
            ..Default::default()
        });
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&name)),
            namespace: v2.metadata.namespace.clone(),
            // Not `managed-by: wandb-operator`: the controller prunes what it does not render
            // by that label, and this Secret is the webhook's, an input like a user's Secret.
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".into(),
                    "wandb-operator-conversion".into(),
                ),
                ("app.kubernetes.io/instance".into(), name.clone()),
                ("app.kubernetes.io/component".into(), "v1-values".into()),
            ])),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}
