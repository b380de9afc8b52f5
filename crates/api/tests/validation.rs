//! Offline validation of `WeightsAndBiases` objects against the CRD, over YAML case files.
//!
//! * `tests/cases/valid/*.yaml` must be admitted unchanged, and must survive a round trip
//!   through the Rust types without losing or renaming a field (which catches field names that
//!   differ from the official API: the API server would silently prune such a field).
//! * `tests/cases/invalid/*.yaml` must be rejected, and the rejection must contain every
//!   `# expect: <fragment>` and `# expect-decode: <fragment>` line of the file's header. Messages
//!   are formatted as the API server formats them; `tests/apiserver.rs` checks the `# expect:`
//!   fragments against a real one.
//!
//! A case file holding two YAML documents is an update: the first is the stored object (it must
//! be valid on its own), the second the new one; transition rules (`oldSelf`) are evaluated.
//! Adding a file adds a case; see `tests/cases/README.md`.

mod common;

use std::collections::BTreeMap;

use common::{Case, admit, json_diff, load_cases};

fn describe(errors: &[String]) -> String {
    errors
        .iter()
        .map(|e| format!("      {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_valid(case: &Case) -> Result<(), String> {
    if let Some(old) = &case.old {
        admit(old, None).map_err(|e| format!("the old object is rejected:\n{}", describe(&e)))?;
    }
    let typed = admit(&case.object, case.old.as_ref())
        .map_err(|e| format!("rejected:\n{}", describe(&e)))?;

    // The derived client-side check (what `WeightsAndBiases::validate_cel()` callers get).
    typed
        .validate_cel()
        .map_err(|e| format!("WeightsAndBiases::validate_cel() fails: {e:?}"))?;

    let round_trip = serde_json::to_value(&typed).expect("the typed object serializes");
    if round_trip != case.object {
        let mut diff = Vec::new();
        json_diff(&case.object, &round_trip, "", &mut diff);
        return Err(format!(
            "the Rust types do not round-trip the object (- dropped, + added, ~ changed):\n{}",
            describe(&diff)
        ));
    }
    Ok(())
}

fn check_invalid(case: &Case) -> Result<Vec<String>, String> {
    if case.expect.is_empty() {
        return Err("has no `# expect: <message fragment>` line".into());
    }
    if let Some(old) = &case.old {
        admit(old, None).map_err(|e| {
            format!(
                "the old object (first document) must be valid, but is rejected:\n{}",
                describe(&e)
            )
        })?;
    }
    let errors = match admit(&case.object, case.old.as_ref()) {
        Ok(_) => return Err("was admitted".into()),
        Err(errors) => errors,
    };
    let message = errors.join("\n");
    let missing: Vec<&String> = case
        .expect
        .iter()
        .chain(&case.expect_decode)
        .filter(|fragment| !message.contains(fragment.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "rejected, but without {missing:?}; the rejection was:\n{}",
            describe(&errors)
        ));
    }
    Ok(errors)
}

#[test]
fn valid_cases_are_admitted_and_round_trip() {
    let cases = load_cases("valid");
    assert!(cases.len() >= 10, "expected at least 10 valid cases");
    let mut failures = Vec::new();
    for case in &cases {
        let kind = if case.old.is_some() { " (update)" } else { "" };
        match check_valid(case) {
            Ok(()) => println!("ok    valid/{}{kind}", case.name),
            Err(e) => {
                println!("FAIL  valid/{}{kind}: {e}", case.name);
                failures.push(format!("valid/{}: {e}", case.name));
            }
        }
        assert!(
            case.expect.is_empty() && case.expect_decode.is_empty(),
            "valid/{} has `# expect:` lines; it belongs in invalid/",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} valid cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_cases_are_rejected_with_their_message() {
    let cases = load_cases("invalid");
    assert!(cases.len() >= 25, "expected at least 25 invalid cases");
    let mut failures = Vec::new();
    for case in &cases {
        let kind = if case.old.is_some() { " (update)" } else { "" };
        match check_invalid(case) {
            Ok(errors) => {
                println!("ok    invalid/{}{kind}", case.name);
                for e in errors {
                    println!("        {e}");
                }
            }
            Err(e) => {
                println!("FAIL  invalid/{}{kind}: {e}", case.name);
                failures.push(format!("invalid/{}: {e}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Each invalid case exercises its own rule: no two cases may expect the same first fragment.
#[test]
fn invalid_cases_test_distinct_rules() {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for case in load_cases("invalid") {
        let Some(first) = case.expect.first() else {
            continue; // reported by invalid_cases_are_rejected_with_their_message
        };
        if let Some(other) = seen.insert(first.clone(), case.name.clone()) {
            panic!(
                "invalid/{} and invalid/{other} expect the same message {first:?}; \
                 each case should exercise a different rule",
                case.name
            );
        }
    }
}

/// The same object is rejected on create but its update counterpart is what the transition
/// case tests: make sure update cases are not rejected by a plain (non-transition) rule.
#[test]
fn update_cases_are_valid_on_create() {
    for case in load_cases("invalid")
        .into_iter()
        .filter(|c| c.old.is_some())
    {
        if let Err(errors) = admit(&case.object, None) {
            panic!(
                "invalid/{}: the new object is already rejected on create, so the case does not \
                 test a transition rule:\n{}",
                case.name,
                describe(&errors)
            );
        }
        println!("ok    invalid/{} is valid on create", case.name);
    }
}

/// Every CEL rule of the schema compiles with kube's evaluator.
#[test]
fn every_rule_compiles() {
    let compiled = kube::core::cel::compile_schema(&common::SCHEMA);
    let errors: Vec<String> = compiled
        .compilation_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "rules that do not compile:\n{}",
        errors.join("\n")
    );
}
