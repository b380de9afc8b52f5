//! Which values are mapped: the v1 operator's `<name>-spec-active` Secret when the webhook
//! could read it, else `spec.values`; the v1 view is always `spec.values`.

use serde_json::{Value, json};

use super::*;

fn v1(values: Value) -> Value {
    json!({
        "apiVersion": "apps.wandb.com/v1",
        "kind": "WeightsAndBiases",
        "metadata": {"name": "wandb", "namespace": "default", "uid": "u-1"},
        "spec": {"chart": {"name": "operator-wandb"}, "values": values},
    })
}

/// What a Terraform-made resource holds, and what the v1 operator applied: the same values
/// merged with the release channel's (the image tag) and its own defaults.
fn own_and_active() -> (Value, Value) {
    let own = json!({"global": {"host": "https://wandb.example.com", "license": "LIC"},
                     "ingress": {"class": "nginx"}});
    let active = json!({
        "global": {"host": "https://wandb.example.com", "license": "LIC", "size": "medium",
                   "operator": {"namespace": "wandb-system", "apiVersion": "v1"}},
        "ingress": {"class": "nginx"},
        "app": {"image": {"tag": "0.74.1"}},
        "weave": {"install": true}, "parquet": {"replicas": 2},
    });
    (own, active)
}

#[test]
fn the_applied_values_are_mapped_and_the_v1_view_stays_spec_values() {
    let (own, active) = own_and_active();
    let original = v1(own.clone());
    // From spec.values alone the version is unknown (the channel chose it).
    assert_eq!(to_v2(&original).v2.spec.wandb.version, "");
    let c = to_v2_with(&original, ActiveValues::Found(active));
    assert_eq!(c.v2.spec.wandb.version, "0.74.1");
    assert_eq!(c.v2.spec.size, Some(wandb_api::Size::Medium));
    // The v1 view gives back exactly what the resource holds, not the merged values.
    let v2 = serde_json::to_value(&c.v2).unwrap();
    let (back, missing) = to_v1(&v2, Some(&c.secret_data));
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(back, original);
    // Values only the Secret holds are one finding naming it; the operator's own defaults
    // are not reported; nothing is reported under spec.values for them.
    let about_secret: Vec<&Finding> = c
        .findings
        .iter()
        .filter(|f| f.path == "secret wandb-spec-active")
        .collect();
    assert_eq!(about_secret.len(), 1, "{:?}", c.findings);
    let m = &about_secret[0].message;
    assert!(
        m.contains("2 values") && m.contains("parquet") && m.contains("weave"),
        "{m}"
    );
    assert!(!m.contains("operator"), "{m}");
    assert!(
        c.findings
            .iter()
            .all(|f| !f.path.starts_with("spec.values.weave")),
        "{:?}",
        c.findings
    );
}

#[test]
fn values_of_the_resource_itself_are_still_reported_by_their_path() {
    let (mut own, mut active) = own_and_active();
    own["global"]["kafka"] = json!({"brokers": "k:9092"});
    active["global"]["kafka"] = json!({"brokers": "k:9092"});
    let c = to_v2_with(&v1(own), ActiveValues::Found(active));
    assert!(
        c.findings
            .iter()
            .any(|f| f.path == "spec.values.global.kafka" && f.kind == FindingKind::Unmapped),
        "{:?}",
        c.findings
    );
}

#[test]
fn an_unreadable_or_absent_secret_falls_back_to_spec_values() {
    let (mut own, _) = own_and_active();
    own["app"] = json!({"image": {"tag": "0.70.0"}});
    let original = v1(own);
    let c = to_v2_with(&original, ActiveValues::Absent);
    assert_eq!(c.v2.spec.wandb.version, "0.70.0");
    assert!(c.findings.iter().all(|f| !f.path.contains("spec-active")));

    let c = to_v2_with(
        &original,
        ActiveValues::Unreadable("reading it did not complete within 5s".into()),
    );
    assert_eq!(c.v2.spec.wandb.version, "0.70.0");
    let f = c
        .findings
        .iter()
        .find(|f| f.path == "secret wandb-spec-active")
        .expect("the fallback is reported");
    assert!(
        f.message
            .contains("was not used: reading it did not complete within 5s")
            && f.message.contains("spec.values was converted instead"),
        "{}",
        f.message
    );
    // A Secret whose values are not an object counts as unreadable.
    let c = to_v2_with(&original, ActiveValues::Found(json!(["x"])));
    assert_eq!(c.v2.spec.wandb.version, "0.70.0");
    assert!(
        c.findings
            .iter()
            .any(|f| f.path == "secret wandb-spec-active")
    );
}
