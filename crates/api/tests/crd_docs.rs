//! `docs/crd-reference.md` is generated from the CRD's own descriptions and rules, and this test
//! fails when it drifts. Regenerate with `UPDATE_DOCS=1 cargo test -p wandb-api --test crd_docs`.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::Value;

/// Kubernetes types documented upstream; listed without their (long) inner fields.
fn is_opaque(name: &str) -> bool {
    wandb_api::UPSTREAM_TYPED_FIELDS.contains(&name)
}

fn is_selector(node: &Value) -> bool {
    node["properties"]
        .as_object()
        .is_some_and(|p| p.contains_key("name") && p.contains_key("key") && p.len() <= 3)
}

fn type_of(node: &Value) -> String {
    if is_selector(node) {
        return "Secret key".into();
    }
    if let Some(e) = node["enum"].as_array() {
        let vals: Vec<String> = e
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
            .collect();
        return format!("one of {}", vals.join(", "));
    }
    match node["type"].as_str() {
        Some("array") => format!("list of {}", type_of(&node["items"])),
        Some("object")
            if node
                .get("additionalProperties")
                .is_some_and(Value::is_object) =>
        {
            format!("map of {}", type_of(&node["additionalProperties"]))
        }
        Some(t) => t.to_string(),
        None if node.get("x-kubernetes-int-or-string").is_some() => "int or string".into(),
        None => "object".into(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn walk(out: &mut String, path: &str, node: &Value, required: &[String]) {
    let Some(props) = node["properties"].as_object() else {
        return;
    };
    for (name, child) in props {
        let here = format!("{path}.{name}");
        let mut desc = one_line(child["description"].as_str().unwrap_or(""));
        if required.contains(name) {
            desc = format!("**Required.** {desc}");
        }
        for rule in child["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(m) = rule["message"].as_str() {
                let _ = write!(desc, " Rule: {}.", one_line(m).trim_end_matches('.'));
            }
        }
        let _ = writeln!(out, "| `{here}` | {} | {desc} |", type_of(child));
        if is_opaque(name) || is_selector(child) {
            continue;
        }
        let req: Vec<String> = child["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let inner = match child["type"].as_str() {
            Some("array") => &child["items"],
            Some("object")
                if child
                    .get("additionalProperties")
                    .is_some_and(Value::is_object) =>
            {
                &child["additionalProperties"]
            }
            _ => child,
        };
        let inner_path = match child["type"].as_str() {
            Some("array") => format!("{here}[]"),
            Some("object")
                if child
                    .get("additionalProperties")
                    .is_some_and(Value::is_object) =>
            {
                format!("{here}.<name>")
            }
            _ => here.clone(),
        };
        walk(out, &inner_path, inner, &req);
    }
}

fn generate() -> String {
    let crd = serde_json::to_value(wandb_api::crd()).unwrap();
    let version = &crd["spec"]["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut out = String::from(
        "# WeightsAndBiases reference (`apps.wandb.com/v2`)\n\n\
         Generated from the CRD (`wandb-operator crd`) by `crates/api/tests/crd_docs.rs`; do not edit.\n\
         Rules are enforced by the API server (CEL), so a resource that breaks one is refused with its message.\n\n",
    );
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "- Rule on the resource: {}.",
            one_line(rule["message"].as_str().unwrap_or(""))
        );
    }
    for section in ["spec", "status"] {
        let node = &schema["properties"][section];
        let _ = writeln!(
            out,
            "\n## `{section}`\n\n{}\n",
            one_line(node["description"].as_str().unwrap_or(""))
        );
        for rule in node["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "- Rule: {}.\n",
                one_line(rule["message"].as_str().unwrap_or(""))
            );
        }
        out.push_str("| field | type | description |\n|---|---|---|\n");
        let req: Vec<String> = node["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        walk(&mut out, section, node, &req);
    }
    out
}

#[test]
fn crd_reference_docs_are_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/crd-reference.md");
    let generated = generate();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/crd-reference.md is out of date with the CRD; regenerate with: UPDATE_DOCS=1 cargo test -p wandb-api --test crd_docs"
    );
}
