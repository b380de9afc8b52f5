//! The JSON view that `custom-resource` env sources read (`spec.wandb.license`,
//! `status.wandb.hostname`, ...). Status fields are computed here from the spec and the
//! connections rather than read from the live status, so the result never lags a change.

use serde_json::{Value, json};
use wandb_api::WeightsAndBiases;

use crate::connection::{ConnValue, Connections, ServiceKind};
use crate::instance::{Instance, Mode};

/// Secret key of the operator-owned copy of a literal `spec.wandb.license`.
pub const LICENSE_KEY: &str = "license";
/// Secret key of the composed email sink.
pub const EMAIL_SINK_KEY: &str = "sink";

pub fn license_secret(inst: &Instance) -> String {
    crate::names::scoped(&inst.name, "license")
}

pub fn email_sink_secret(inst: &Instance) -> String {
    crate::names::scoped(&inst.name, "email-sink")
}

/// The effective email sink `(Secret, key)`: the operator's `<name>-email-sink` composed from
/// SMTP settings, else the user's sink selector (`status.emailSink`).
pub fn email_sink(cr: &WeightsAndBiases, inst: &Instance) -> Option<(String, String)> {
    let email = cr.spec.wandb.notifications.as_ref()?.email.as_ref()?;
    if email.smtp.is_some() {
        return Some((email_sink_secret(inst), EMAIL_SINK_KEY.to_string()));
    }
    email.sink.as_ref().map(|s| (s.name.clone(), s.key.clone()))
}

/// Builds the view. A literal license becomes a reference to an operator-owned Secret, so the
/// license never lands in a pod spec.
pub fn build(cr: &WeightsAndBiases, inst: &Instance, conns: &Connections) -> Value {
    let mut spec = serde_json::to_value(&cr.spec).unwrap_or(Value::Null);
    let wandb = &cr.spec.wandb;
    if let Some(sel) = &wandb.license_secret {
        spec["wandb"]["license"] = json!({"name": sel.name, "key": sel.key});
    } else if wandb.license.is_some() {
        spec["wandb"]["license"] = json!({"name": license_secret(inst), "key": LICENSE_KEY});
    }
    let managed_bucket = inst.mode(ServiceKind::ObjectStore, "default") == Some(Mode::Managed);
    spec["wandb"]["bucketProxy"] = json!(wandb.bucket_proxy.unwrap_or(false) || managed_bucket);

    let email_sink =
        email_sink(cr, inst).map_or(Value::Null, |(name, key)| json!({"name": name, "key": key}));

    let mut clickhouse = serde_json::Map::new();
    for ((kind, instance), conn) in &conns.map {
        if *kind != ServiceKind::Clickhouse {
            continue;
        }
        let field = |f: &str| conn.get(f).map_or(Value::Null, conn_json);
        clickhouse.insert(
            instance.clone(),
            json!({"replicated": field("replicated"), "clusterName": field("clustername")}),
        );
    }

    json!({
        "metadata": {"name": inst.name, "namespace": inst.namespace},
        "spec": spec,
        "status": {
            "wandb": {"hostname": inst.url},
            "emailSink": email_sink,
            "clickhouseStatus": clickhouse,
        }
    })
}

fn conn_json(v: &ConnValue) -> Value {
    match v {
        ConnValue::Literal(s) => Value::String(s.clone()),
        ConnValue::Secret { secret_key_ref } => match secret_key_ref.optional {
            Some(true) => {
                json!({"name": secret_key_ref.name, "key": secret_key_ref.key, "optional": true})
            }
            _ => json!({"name": secret_key_ref.name, "key": secret_key_ref.key}),
        },
    }
}

/// Reads a dotted path; `None` when any segment is missing or null.
pub fn lookup<'a>(view: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = view;
    for seg in path.split('.') {
        node = node.get(seg)?;
    }
    (!node.is_null()).then_some(node)
}
