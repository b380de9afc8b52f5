//! The API server estimates the worst-case cost of every CEL rule from the schema and refuses the
//! CRD when it exceeds the budget ("estimated rule cost exceeds budget by factor of more than
//! 100x"). Without bounds, a string is assumed to be as long as a whole request (3 MiB) and a
//! map or list to hold as many entries as fit in one. Kubernetes 1.36 refuses this CRD with the
//! bounds stripped, so this test keeps them in place without needing a cluster:
//!
//! * a string with a rule, or read by its object's or list's rule, has `maxLength` (or an
//!   `enum`);
//! * a list or map with a rule, or with a rule anywhere below it, has `maxItems` /
//!   `maxProperties`.
//!
//! `tests/apiserver.rs` checks the real thing.

mod common;

use serde_json::Value;

fn rules(schema: &Value) -> Vec<&str> {
    schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("rule").and_then(Value::as_str))
        .collect()
}

fn is_bounded_string(schema: &Value) -> bool {
    schema.get("maxLength").is_some() || schema.get("enum").is_some()
}

/// Fields an object rule reads as `self.<field>`; a presence test `has(self.<field>)` costs
/// the same whatever the field holds, so it does not count.
fn fields_read(rule: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    for (i, _) in rule.match_indices("self.") {
        if rule[..i].ends_with("has(") {
            continue;
        }
        let rest = &rule[i + "self.".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        fields.push(&rest[..end]);
    }
    fields
}

/// Returns whether `schema` or anything below it carries a rule; records unbounded nodes.
fn check(schema: &Value, path: &str, problems: &mut Vec<String>) -> bool {
    let own = rules(schema);
    let mut below = false;

    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            // metadata is validated by the API server itself; the root rule reads only its name,
            // which ObjectMeta bounds.
            if path.is_empty() && name == "metadata" {
                continue;
            }
            below |= check(child, &format!("{path}.{name}"), problems);
        }
        for rule in &own {
            for field in fields_read(rule) {
                if let Some(child) = properties.get(field)
                    && child.get("type").and_then(Value::as_str) == Some("string")
                    && !is_bounded_string(child)
                {
                    problems.push(format!(
                        "{path}.{field}: string read by the rule `{rule}` has no maxLength"
                    ));
                }
            }
        }
    }
    if let Some(items) = schema.get("items") {
        let nested = check(items, &format!("{path}[]"), problems);
        if (nested || !own.is_empty()) && schema.get("maxItems").is_none() {
            problems.push(format!("{path}: list with CEL rules has no maxItems"));
        }
        if !own.is_empty()
            && items.get("type").and_then(Value::as_str) == Some("string")
            && !is_bounded_string(items)
        {
            problems.push(format!(
                "{path}[]: items read by the list's rules have no maxLength"
            ));
        }
        below |= nested;
    }
    if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        let nested = check(values, &format!("{path}{{}}"), problems);
        if (nested || !own.is_empty()) && schema.get("maxProperties").is_none() {
            problems.push(format!("{path}: map with CEL rules has no maxProperties"));
        }
        below |= nested;
    }
    if !own.is_empty()
        && schema.get("type").and_then(Value::as_str) == Some("string")
        && !is_bounded_string(schema)
    {
        problems.push(format!("{path}: string with CEL rules has no maxLength"));
    }
    below || !own.is_empty()
}

#[test]
fn every_rule_has_bounded_inputs() {
    let mut problems = Vec::new();
    check(&common::SCHEMA, "", &mut problems);
    assert!(
        problems.is_empty(),
        "unbounded inputs of CEL rules (the API server would refuse the CRD as too costly):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_notices_missing_bounds() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "m": {"type": "object", "additionalProperties": {
                "type": "object",
                "properties": {"s": {"type": "string",
                    "x-kubernetes-validations": [{"rule": "self.matches('^a$')"}]}}
            }},
            "l": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(x, x != '')"}]},
            "o": {"type": "object", "properties": {"v": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self.v != 'x'"}]}
        }
    });
    let mut problems = Vec::new();
    check(&schema, "", &mut problems);
    let text = problems.join("\n");
    for expected in [
        ".m{}.s: string with CEL rules has no maxLength",
        ".m: map with CEL rules has no maxProperties",
        ".l: list with CEL rules has no maxItems",
        ".l[]: items read by the list's rules have no maxLength",
        ".o.v: string read by the rule",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
