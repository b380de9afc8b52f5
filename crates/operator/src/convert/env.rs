//! v1 `<component>.env` / `.extraEnv` / `.resources` and `global.env` / `.extraEnv` ->
//! `spec.wandb.legacyOverrides`. In the chart `env` wins over `extraEnv` for the same name,
//! and a component's env over the global one; the v2 overrides keep exactly that (the
//! component's key is applied after `global`). Components are keyed by their chart name, which
//! the engine matches against manifest application names and legacy names.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ResourceRequirements, SecretKeySelector};
use serde_json::Value;
use wandb_api::{LegacyOverride, WeightsAndBiasesSpec};

use super::FindingKind;
use super::redact::is_sensitive;
use super::values::{Values, is_templated};

/// Top-level keys that are not W&B components (handled elsewhere or infrastructure charts).
const NOT_COMPONENTS: [&str; 5] = ["global", "ingress", "mysql", "redis", "_releaseId"];

pub fn map(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let mut out: BTreeMap<String, LegacyOverride> = BTreeMap::new();
    if let Some(env) = env_of(v, "global") {
        out.insert(
            "global".into(),
            LegacyOverride {
                env: Some(env),
                resources: None,
            },
        );
    }
    let Some(root) = v.root_keys() else {
        return;
    };
    for section in root {
        if NOT_COMPONENTS.contains(&section.as_str()) {
            continue;
        }
        let env = env_of(v, &section);
        let resources = v
            .get(&format!("{section}.resources"))
            .and_then(
                |r| match serde_json::from_value::<ResourceRequirements>(r.clone()) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        v.warn(
                            &format!("{section}.resources"),
                            FindingKind::Unmapped,
                            &format!("is not a resources block ({e}); not mapped"),
                        );
                        None
                    }
                },
            )
            .filter(|r| r.requests.is_some() || r.limits.is_some());
        if env.is_some() || resources.is_some() {
            out.insert(section, LegacyOverride { env, resources });
        }
    }
    if !out.is_empty() {
        spec.wandb.legacy_overrides = Some(out);
    }
}

/// `<section>.extraEnv` then `<section>.env` over it, by name; sorted.
fn env_of(v: &Values, section: &str) -> Option<Vec<EnvVar>> {
    let mut vars: BTreeMap<String, EnvVar> = BTreeMap::new();
    for key in ["extraEnv", "env"] {
        let path = format!("{section}.{key}");
        let Some(node) = v.get(&path) else {
            continue;
        };
        let entries: Vec<(String, Value)> = match node {
            Value::Object(m) => m.iter().map(|(k, val)| (k.clone(), val.clone())).collect(),
            // The list form: [{name, value | valueFrom}].
            Value::Array(a) => a
                .iter()
                .filter_map(|e| {
                    let name = e.get("name")?.as_str()?.to_owned();
                    let val = e
                        .get("value")
                        .cloned()
                        .or_else(|| {
                            e.get("valueFrom")
                                .map(|f| serde_json::json!({"valueFrom": f}))
                        })
                        .unwrap_or(Value::Null);
                    Some((name, val))
                })
                .collect(),
            _ => continue,
        };
        for (name, val) in entries {
            if let Some(var) = env_var(v, &path, &name, &val) {
                vars.insert(name, var);
            }
        }
    }
    (!vars.is_empty()).then(|| vars.into_values().collect())
}

fn env_var(v: &Values, path: &str, name: &str, val: &Value) -> Option<EnvVar> {
    let var_path = format!("{path}.{name}");
    let literal = match val {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Object(o) if o.contains_key("valueFrom") => {
            return match serde_json::from_value::<EnvVarSource>(o["valueFrom"].clone()) {
                Ok(src) => Some(EnvVar {
                    name: name.to_owned(),
                    value: None,
                    value_from: Some(src),
                }),
                Err(e) => {
                    v.warn(
                        &var_path,
                        FindingKind::Unmapped,
                        &format!("has an invalid valueFrom ({e}); dropped"),
                    );
                    None
                }
            };
        }
        _ => {
            v.warn(
                &var_path,
                FindingKind::Unmapped,
                "is not a string or valueFrom; dropped",
            );
            return None;
        }
    };
    if is_templated(&literal) {
        v.warn(
            &var_path,
            FindingKind::TemplatedDropped,
            "is a Helm template ({{ ... }}), which only the v1 operator's chart could render; dropped",
        );
        return None;
    }
    if is_sensitive(name) && !literal.is_empty() {
        // A credential: through the conversion Secret, never in the v2 spec.
        let sel: SecretKeySelector = v.store(&var_path, literal);
        return Some(EnvVar {
            name: name.to_owned(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(sel),
                ..Default::default()
            }),
        });
    }
    Some(EnvVar {
        name: name.to_owned(),
        value: Some(literal),
        value_from: None,
    })
}
