//! Offline admission of `WeightsAndBiases` objects, shared by the test targets.
//!
//! [`admit`] approximates what the API server does with the CRD in `deploy/crds`, without a
//! cluster:
//!
//! 1. the OpenAPI structural checks (types, `required`, `enum`, `nullable`, `maxLength`,
//!    `maxItems`, `maxProperties`, `minimum`/`maximum`, unknown fields as with kubectl's default
//!    `--validate=strict`), with messages in the API server's style;
//! 2. decoding into the typed [`WeightsAndBiases`] (what the operator will do with it);
//! 3. every `x-kubernetes-validations` CEL rule, through kube's offline evaluator, with `oldSelf`
//!    bound on updates.
//!
//! All three run and every message is collected, so a rejection explains itself fully.

#![allow(dead_code)] // each test target uses a different part

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use kube::core::cel::{CompiledSchema, Validator, compile_schema};
use serde_json::Value;
use wandb_api::WeightsAndBiases;

/// The CRD's `openAPIV3Schema`, as JSON.
pub static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = wandb_api::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the CRD has an openAPIV3Schema");
    serde_json::to_value(schema).expect("the schema serializes")
});

static COMPILED: LazyLock<CompiledSchema> = LazyLock::new(|| compile_schema(&SCHEMA));

/// Runs every check on `object` (an update when `old` is given). `Ok` carries the decoded
/// object; `Err` every message, one per problem.
pub fn admit(object: &Value, old: Option<&Value>) -> Result<WeightsAndBiases, Vec<String>> {
    let mut errors = Vec::new();

    check_envelope(object, &mut errors);
    structural(&SCHEMA, object, "", true, &mut errors);

    let typed = match serde_json::from_value::<WeightsAndBiases>(object.clone()) {
        Ok(typed) => Some(typed),
        Err(e) => {
            errors.push(format!("decoding into WeightsAndBiases: {e}"));
            None
        }
    };

    if let Err(cel) = Validator::new().validate_compiled(&COMPILED, object, old) {
        errors.extend(
            cel.into_vec()
                .iter()
                .map(|e| server_style(&e.field_path, &e.message, object)),
        );
    }

    match typed {
        Some(typed) if errors.is_empty() => Ok(typed),
        _ => Err(errors),
    }
}

fn check_envelope(object: &Value, errors: &mut Vec<String>) {
    if object.get("apiVersion").and_then(Value::as_str) != Some("apps.wandb.com/v2") {
        errors.push("apiVersion: must be apps.wandb.com/v2".into());
    }
    if object.get("kind").and_then(Value::as_str) != Some("WeightsAndBiases") {
        errors.push("kind: must be WeightsAndBiases".into());
    }
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => {}
        _ => errors.push("metadata.name: Required value: name or generateName is required".into()),
    }
}

/// Formats a CEL failure the way the API server does (Kubernetes 1.36):
/// `spec.mysql[default].managedMysql.replicas: Invalid value: 2: <message>`; map keys in
/// brackets, the value shown for scalars only, `<nil>` for the root.
fn server_style(kube_cel_path: &str, message: &str, object: &Value) -> String {
    let mut schema = &*SCHEMA;
    let mut value = Some(object);
    let mut path = String::new();
    for segment in kube_cel_path.split('.').filter(|s| !s.is_empty()) {
        // kube-cel writes list indices as `name[3]`.
        let (name, indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if let Some(field) = schema.get("properties").and_then(|p| p.get(name)) {
            schema = field;
            path = join(&path, name);
        } else if let Some(entry) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            schema = entry;
            path = format!("{path}[{name}]");
        } else {
            path = join(&path, name);
        }
        value = value.and_then(|v| v.get(name));
        for index in indices
            .split(['[', ']'])
            .filter_map(|i| i.parse::<usize>().ok())
        {
            schema = schema.get("items").unwrap_or(schema);
            value = value.and_then(|v| v.get(index));
            path = format!("{path}[{index}]");
        }
    }
    if path.is_empty() {
        path = "<nil>".into();
    }
    match value {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
            format!("{path}: Invalid value: {v}: {message}")
        }
        _ => format!("{path}: Invalid value: {message}"),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The OpenAPI v3 subset that structural CRD schemas use. At the root, `apiVersion`, `kind`
/// and `metadata` are left to [`check_envelope`] (the API server validates ObjectMeta itself).
fn structural(schema: &Value, value: &Value, path: &str, root: bool, errors: &mut Vec<String>) {
    let shown = if path.is_empty() { "<root>" } else { path };

    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            let expected = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("a value");
            errors.push(format!(
                "{shown}: Invalid value: \"null\": {shown} in body must be of type {expected}: \"null\""
            ));
        }
        return;
    }

    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        if !matches!(type_name(value), "integer" | "string") {
            errors.push(format!(
                "{shown}: Invalid value: \"{}\": {shown} in body must be of type integer or string",
                type_name(value)
            ));
        }
        return;
    }

    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = actual == expected || (expected == "number" && actual == "integer");
        if !ok {
            errors.push(format!(
                "{shown}: Invalid value: \"{actual}\": {shown} in body must be of type {expected}: \"{actual}\""
            ));
            return;
        }
    }

    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|v| match v {
                Value::String(s) => format!("{s:?}"),
                other => format!("\"{other}\""),
            })
            .collect();
        errors.push(format!(
            "{shown}: Unsupported value: {value}: supported values: {}",
            supported.join(", ")
        ));
    }

    match value {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errors.push(format!(
                    "{shown}: Too long: may not be more than {max} bytes"
                ));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errors.push(format!(
                    "{shown}: Invalid value: {value}: {shown} in body should be at least {min} chars long"
                ));
            }
        }
        Value::Number(n) => {
            if schema.get("format").and_then(Value::as_str) == Some("int32")
                && n.as_i64().is_none_or(|i| i32::try_from(i).is_err())
            {
                errors.push(format!("{shown}: Invalid value: {n}: out of int32 range"));
            }
            let f = n.as_f64().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && f < min
            {
                errors.push(format!(
                    "{shown}: Invalid value: {n}: {shown} in body should be greater than or equal to {min}"
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && f > max
            {
                errors.push(format!(
                    "{shown}: Invalid value: {n}: {shown} in body should be less than or equal to {max}"
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errors.push(format!(
                    "{shown}: Too many: {}: must have at most {max} items",
                    items.len()
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    structural(item_schema, item, &format!("{path}[{i}]"), false, errors);
                }
            }
        }
        Value::Object(fields) => {
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && fields.len() as u64 > max
            {
                errors.push(format!(
                    "{shown}: Too many: {}: must have at most {max} items",
                    fields.len()
                ));
            }
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(required) {
                    errors.push(format!("{}: Required value", join(path, required)));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            for (key, field) in fields {
                if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(field_schema) = properties.and_then(|p| p.get(key)) {
                    structural(field_schema, field, &join(path, key), false, errors);
                } else if let Some(value_schema) = additional {
                    // The API server writes map entries as `spec.mysql[default]`.
                    structural(
                        value_schema,
                        field,
                        &format!("{path}[{key}]"),
                        false,
                        errors,
                    );
                } else if !preserve {
                    errors.push(format!("unknown field \"{}\"", join(path, key)));
                }
            }
        }
        _ => {}
    }
}

/// One YAML case file: header comments, then the object (or an old and a new object).
pub struct Case {
    pub name: String,
    /// `# expect: <fragment>` lines: every fragment must occur in the rejection, offline and
    /// from a real API server.
    pub expect: Vec<String>,
    /// `# expect-decode: <fragment>` lines: checked offline only (serde's decoding messages,
    /// which the API server does not produce).
    pub expect_decode: Vec<String>,
    /// For update cases (two YAML documents): the stored object.
    pub old: Option<Value>,
    pub object: Value,
}

pub fn cases_dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(kind)
}

/// Every `*.yaml` file of `tests/cases/<kind>`, sorted by name.
pub fn load_cases(kind: &str) -> Vec<Case> {
    let dir = cases_dir(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_case(p)).collect()
}

pub fn load_case(path: &Path) -> Case {
    let name = path
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let header = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .map(|f| f.trim().to_string())
            .collect()
    };
    let expect = header("# expect:");
    let expect_decode = header("# expect-decode:");
    let mut docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
    docs.retain(|d| !d.is_null());
    let (old, object) = match docs.len() {
        1 => (None, docs.pop().expect("one document")),
        2 => {
            let object = docs.pop().expect("two documents");
            (docs.pop(), object)
        }
        n => panic!("{name}: expected one document (or two: old, then new), found {n}"),
    };
    Case {
        name,
        expect,
        expect_decode,
        old,
        object,
    }
}

/// Paths where `a` and `b` differ (`-` only in `a`, `+` only in `b`, `~` different values).
pub fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => json_diff(v, w, &join(path, k), out),
                    None => out.push(format!("- {}", join(path, k))),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("+ {}", join(path, k)));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                json_diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("~ {path}: {a} != {b}")),
        _ => {}
    }
}
