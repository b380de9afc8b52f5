//! Secret literals out of v1 values: the copy of the v1 values kept on the v2 object (for a
//! lossless v1 view) has each sensitive literal replaced by a `valueFrom.secretKeyRef` into the
//! conversion Secret, which holds the literal. The replacement is itself valid chart syntax, so
//! even a v1 view built without the Secret means the same thing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::values::secret_key;

/// One literal moved into the conversion Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Redacted {
    /// Path segments from the root of `spec` (`values` or `chart` first); segments may contain
    /// dots (annotation keys), so they are kept apart.
    pub path: Vec<String>,
    /// Key in the conversion Secret.
    pub key: String,
    /// JSON type of the literal: `string`, `number` or `bool`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Key names whose literal values are credentials (case-insensitive). Env variable names are
/// checked the same way, which catches `OIDC_SECRET`, `SMTP_PASSWORD`, `GORILLA_SESSION_KEY`.
pub fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const PARTS: [&str; 12] = [
        "password",
        "passwd",
        "token",
        "apikey",
        "api_key",
        "privatekey",
        "private_key",
        "accesskey",
        "access_key",
        "secretkey",
        "secret_key",
        "credential",
    ];
    n == "license"
        || n.ends_with("secret")
        || n.ends_with("_key")
        || PARTS.iter().any(|p| n.contains(p))
}

/// Replaces every sensitive literal under `root` (whose path starts with `prefix`), recording
/// it in `data` (Secret key -> literal) and `out`.
pub fn redact(
    root: &mut Value,
    prefix: &str,
    secret: &str,
    data: &mut BTreeMap<String, String>,
    out: &mut Vec<Redacted>,
) {
    let mut path = vec![prefix.to_owned()];
    walk(root, &mut path, secret, data, out);
}

fn walk(
    node: &mut Value,
    path: &mut Vec<String>,
    secret: &str,
    data: &mut BTreeMap<String, String>,
    out: &mut Vec<Redacted>,
) {
    if let Some(list) = node.as_array_mut() {
        for (i, item) in list.iter_mut().enumerate() {
            path.push(i.to_string());
            // The env list form: [{name: OIDC_SECRET, value: ...}].
            let sensitive_entry = item
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_sensitive);
            if sensitive_entry && let Some(value) = item.get_mut("value") {
                path.push("value".into());
                replace(value, path, secret, data, out);
                path.pop();
            } else {
                walk(item, path, secret, data, out);
            }
            path.pop();
        }
        return;
    }
    let Some(map) = node.as_object_mut() else {
        return;
    };
    for (k, child) in map.iter_mut() {
        path.push(k.clone());
        if is_sensitive(k) && literal(child).is_some() {
            replace(child, path, secret, data, out);
        } else {
            walk(child, path, secret, data, out);
        }
        path.pop();
    }
}

fn literal(v: &Value) -> Option<(String, &'static str)> {
    match v {
        Value::String(s) if !s.is_empty() => Some((s.clone(), "string")),
        Value::Number(n) => Some((n.to_string(), "number")),
        _ => None,
    }
}

fn replace(
    node: &mut Value,
    path: &[String],
    secret: &str,
    data: &mut BTreeMap<String, String>,
    out: &mut Vec<Redacted>,
) {
    let Some((text, kind)) = literal(node) else {
        return;
    };
    let key = secret_key(&path.join("."));
    data.insert(key.clone(), text);
    *node = json!({"valueFrom": {"secretKeyRef": {"name": secret, "key": key}}});
    out.push(Redacted {
        path: path.to_vec(),
        key,
        kind: kind.into(),
    });
}

/// The child of a map (by key) or a list (by index).
fn child<'v>(node: &'v mut Value, seg: &str) -> Option<&'v mut Value> {
    match node {
        Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?),
        other => other.get_mut(seg),
    }
}

/// Puts the literals back (those `data` has); returns the paths it could not restore.
pub fn restore(
    spec: &mut Value,
    redacted: &[Redacted],
    data: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut missing = Vec::new();
    for r in redacted {
        let Some(text) = data.get(&r.key) else {
            missing.push(r.path.join("."));
            continue;
        };
        let value = match r.kind.as_str() {
            "number" => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
            _ => Value::String(text.clone()),
        };
        // The slot holds the valueFrom reference that replaced the literal.
        let slot = r
            .path
            .iter()
            .try_fold(&mut *spec, |node, seg| child(node, seg));
        match slot {
            Some(slot) => *slot = value,
            None => missing.push(r.path.join(".")),
        }
    }
    missing
}
