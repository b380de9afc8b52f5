//! Reading untyped v1 chart values: every read records its path as consumed (what is left is
//! reported as unmapped), and every literal that must become a selector is moved into the
//! conversion Secret's data under its value path.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::SecretKeySelector;
use serde_json::Value;

use super::{Finding, FindingKind};

/// One chart value as the chart reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Absent,
    /// A string, number or bool, as text.
    Literal(String),
    /// `{valueFrom: {secretKeyRef: {name, key}}}`.
    SecretRef(SecretKeySelector),
}

/// The values tree being mapped.
pub struct Values<'a> {
    root: &'a Value,
    consumed: RefCell<BTreeSet<String>>,
    /// Literals the v2 spec references through the conversion Secret, by Secret key.
    pub data: RefCell<BTreeMap<String, String>>,
    pub findings: RefCell<Vec<Finding>>,
    /// Name of the conversion Secret (`<name>-v1-values`).
    pub secret: String,
    /// When the tree is the v1 operator's merged values (its `<name>-spec-active` Secret): the
    /// resource's own `spec.values` and the Secret's name, so that findings name where a
    /// value came from.
    pub active: Option<(&'a Value, String)>,
}

impl<'a> Values<'a> {
    pub fn new(root: &'a Value, secret: String) -> Self {
        Values {
            root,
            consumed: RefCell::default(),
            data: RefCell::default(),
            findings: RefCell::default(),
            secret,
            active: None,
        }
    }

    /// Where a finding about `path` points: `spec.values.<path>`, or for a value only the
    /// v1 operator's merged values hold, `secret <name>-spec-active values.<path>`.
    pub fn origin(&self, path: &str) -> String {
        match &self.active {
            Some((own, secret)) if lookup(own, path).is_none() => {
                format!("secret {secret} values.{path}")
            }
            _ => format!("spec.values.{path}"),
        }
    }

    /// The raw node at a dotted path, marked consumed.
    pub fn get(&self, path: &str) -> Option<&'a Value> {
        let v = lookup(self.root, path)?;
        self.consumed.borrow_mut().insert(path.to_owned());
        Some(v)
    }

    /// The top-level keys of the values.
    pub fn root_keys(&self) -> Option<Vec<String>> {
        Some(self.root.as_object()?.keys().cloned().collect())
    }

    /// Marks a path consumed without reading it (values that configure nothing in v2 on
    /// purpose, e.g. `mysql.install: false`).
    pub fn consume(&self, path: &str) {
        if lookup(self.root, path).is_some() {
            self.consumed.borrow_mut().insert(path.to_owned());
        }
    }

    pub fn str(&self, path: &str) -> Option<String> {
        match self.field(path) {
            Field::Literal(s) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, path: &str) -> Option<bool> {
        match self.get(path)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn object(&self, path: &str) -> Option<&'a serde_json::Map<String, Value>> {
        self.get(path)?.as_object()
    }

    /// A value as the chart reads it: literal, or a Secret reference. Templated literals
    /// (`{{ ... }}`, rendered by Helm in the v1 operator) are dropped with a warning, and a
    /// ConfigMap reference (no Secret selector can express it) is reported.
    pub fn field(&self, path: &str) -> Field {
        let Some(v) = self.get(path) else {
            return Field::Absent;
        };
        match v {
            Value::Null => Field::Absent,
            Value::String(s) if s.is_empty() => Field::Absent,
            Value::String(s) if is_templated(s) => {
                self.warn(
                    path,
                    FindingKind::TemplatedDropped,
                    "is a Helm template ({{ ... }}), which only the v1 operator's chart could render; dropped",
                );
                Field::Absent
            }
            Value::String(s) => Field::Literal(s.clone()),
            Value::Number(n) => Field::Literal(n.to_string()),
            Value::Bool(b) => Field::Literal(b.to_string()),
            Value::Object(o) => match secret_ref(o) {
                Some(sel) => Field::SecretRef(sel),
                None => {
                    self.warn(
                        path,
                        FindingKind::Unmapped,
                        "is neither a literal nor valueFrom.secretKeyRef (a configMapKeyRef cannot be expressed as a Secret selector); not mapped",
                    );
                    Field::Absent
                }
            },
            Value::Array(_) => {
                self.warn(path, FindingKind::Unmapped, "is a list; not mapped");
                Field::Absent
            }
        }
    }

    /// A value as a Secret key selector: a reference as is, a literal through the conversion
    /// Secret (key = the value path).
    pub fn selector(&self, path: &str) -> Option<SecretKeySelector> {
        match self.field(path) {
            Field::Absent => None,
            Field::SecretRef(s) => Some(s),
            Field::Literal(l) => Some(self.store(path, l)),
        }
    }

    /// Puts a literal into the conversion Secret; returns its selector.
    pub fn store(&self, key_path: &str, value: String) -> SecretKeySelector {
        // The same key the redacted copy of the values uses for this path.
        let key = secret_key(&format!("values.{key_path}"));
        self.data.borrow_mut().insert(key.clone(), value);
        SecretKeySelector {
            name: self.secret.clone(),
            key,
            optional: None,
        }
    }

    pub fn warn(&self, path: &str, kind: FindingKind, message: &str) {
        self.findings.borrow_mut().push(Finding {
            path: self.origin(path),
            kind,
            message: message.to_owned(),
        });
    }

    /// Every path of the tree no mapping read: reported at the highest unread node.
    pub fn unconsumed(&self) -> Vec<String> {
        let consumed = self.consumed.borrow();
        let mut out = Vec::new();
        walk_unconsumed(self.root, "", &consumed, &mut out);
        out
    }
}

fn walk_unconsumed(node: &Value, path: &str, consumed: &BTreeSet<String>, out: &mut Vec<String>) {
    let Some(map) = node.as_object() else {
        return;
    };
    for (k, child) in map {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if consumed.contains(&p) {
            continue;
        }
        let prefix = format!("{p}.");
        if consumed.iter().any(|c| c.starts_with(&prefix)) {
            walk_unconsumed(child, &p, consumed, out);
        } else if !is_empty(child) {
            out.push(p);
        }
    }
}

/// Empty maps, lists, strings and nulls configure nothing: not worth a report.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Dotted-path lookup; a segment may itself contain no dots (chart keys never do).
pub fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(root, |node, seg| node.get(seg))
}

pub fn is_templated(s: &str) -> bool {
    s.contains("{{") && s.contains("}}")
}

/// `{valueFrom: {secretKeyRef: {name, key}}}` -> selector.
pub fn secret_ref(o: &serde_json::Map<String, Value>) -> Option<SecretKeySelector> {
    let r = o.get("valueFrom")?.get("secretKeyRef")?;
    Some(SecretKeySelector {
        name: r.get("name")?.as_str()?.to_owned(),
        key: r.get("key")?.as_str()?.to_owned(),
        optional: r.get("optional").and_then(Value::as_bool),
    })
}

/// A Secret data key for a value path: Secret keys allow `[-._a-zA-Z0-9]`.
pub fn secret_key(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
