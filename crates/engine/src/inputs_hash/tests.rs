use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use serde_json::json;

use super::*;
use crate::desired::Phase;

/// A workload of `kind` named `name` whose pod spec is `pod_spec` (JSON).
fn workload(kind: &str, name: &str, pod_spec: Value) -> DesiredObject {
    let spec = json!({"template": {"spec": pod_spec}});
    match kind {
        "Deployment" => DesiredObject::new(
            Phase::Applications,
            &serde_json::from_value::<Deployment>(
                json!({"metadata": {"name": name}, "spec": spec}),
            )
            .unwrap(),
        ),
        "StatefulSet" => DesiredObject::new(
            Phase::Applications,
            &serde_json::from_value::<StatefulSet>(
                json!({"metadata": {"name": name}, "spec": spec}),
            )
            .unwrap(),
        ),
        _ => DesiredObject::new(
            Phase::Migrations,
            &serde_json::from_value::<Job>(json!({"metadata": {"name": name}, "spec": spec}))
                .unwrap(),
        ),
    }
}

/// A pod spec with one container reading `key` of Secret `secret` as env.
fn reads_key(secret: &str, key: &str) -> Value {
    json!({"containers": [{"name": "c", "env": [
        {"name": "V", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    ]}]})
}

fn hash_of(o: &DesiredObject) -> Option<String> {
    o.object
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(INPUTS_HASH_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn digests(secrets: &[(&str, &[(&str, &str)])]) -> SecretDigests {
    let mut d = SecretDigests::default();
    for (name, data) in secrets {
        d.insert(name, data.iter().map(|(k, v)| (*k, v.as_bytes())));
    }
    d
}

fn stamped(objects: &[DesiredObject], d: &SecretDigests) -> Vec<DesiredObject> {
    let mut out = objects.to_vec();
    stamp(&mut out, d);
    out
}

#[test]
fn a_rotated_key_changes_exactly_the_templates_that_read_it() {
    let objects = vec![
        workload("Deployment", "api", reads_key("w-mysql-connection", "url")),
        workload(
            "Deployment",
            "console",
            reads_key("w-redis-connection", "url"),
        ),
        workload(
            "StatefulSet",
            "parquet",
            reads_key("w-mysql-connection", "url"),
        ),
    ];
    let before = digests(&[
        ("w-mysql-connection", &[("url", "mysql://u:old@db:3306/w")]),
        ("w-redis-connection", &[("url", "redis://r:6379")]),
    ]);
    let after = digests(&[
        ("w-mysql-connection", &[("url", "mysql://u:new@db:3306/w")]),
        ("w-redis-connection", &[("url", "redis://r:6379")]),
    ]);
    let (b, a) = (stamped(&objects, &before), stamped(&objects, &after));
    for o in b.iter().chain(&a) {
        assert!(hash_of(o).is_some(), "{} is stamped", o.name);
    }
    assert_ne!(hash_of(&b[0]), hash_of(&a[0]), "api reads the rotated url");
    assert_eq!(hash_of(&b[1]), hash_of(&a[1]), "console does not");
    assert_ne!(hash_of(&b[2]), hash_of(&a[2]), "a StatefulSet rolls too");
    // Nothing but the annotation differs.
    let mut unstamped = a[1].clone();
    unstamped.object["spec"]["template"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(INPUTS_HASH_ANNOTATION);
    assert_eq!(
        unstamped.object["spec"]["template"]["spec"],
        objects[1].object["spec"]["template"]["spec"]
    );
}

#[test]
fn a_change_to_a_key_the_template_does_not_read_changes_nothing() {
    let objects = vec![workload("Deployment", "api", reads_key("conn", "url"))];
    let a = digests(&[("conn", &[("url", "u"), ("password", "one")])]);
    let b = digests(&[("conn", &[("url", "u"), ("password", "two")])]);
    assert_eq!(
        hash_of(&stamped(&objects, &a)[0]),
        hash_of(&stamped(&objects, &b)[0])
    );
}

#[test]
fn whole_secret_reads_depend_on_every_key() {
    let env_from =
        json!({"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]});
    let volume = json!({"containers": [{"name": "c"}],
        "volumes": [{"name": "v", "secret": {"secretName": "s"}}]});
    let projected = json!({"containers": [{"name": "c"}],
        "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "s"}}]}}]});
    let init = json!({"containers": [{"name": "c"}], "initContainers": [{"name": "i", "env": [
        {"name": "V", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b"}}}]}]});
    let objects = vec![
        workload("Deployment", "env-from", env_from),
        workload("Deployment", "volume", volume),
        workload("Deployment", "projected", projected),
        workload("Deployment", "init", init),
    ];
    let one = digests(&[("s", &[("a", "1"), ("b", "x")])]);
    let two = digests(&[("s", &[("a", "2"), ("b", "x")])]);
    let (b, a) = (stamped(&objects, &one), stamped(&objects, &two));
    for i in 0..3 {
        assert!(hash_of(&b[i]).is_some());
        assert_ne!(hash_of(&b[i]), hash_of(&a[i]), "{}", b[i].name);
    }
    assert_eq!(
        hash_of(&b[3]),
        hash_of(&a[3]),
        "an init container reads key b only"
    );
    assert!(hash_of(&b[3]).is_some());
}

#[test]
fn unknown_secrets_jobs_and_render_stamp_nothing() {
    let objects = vec![
        workload("Deployment", "api", reads_key("user-secret", "k")),
        workload("Job", "migrate", reads_key("conn", "url")),
    ];
    let d = digests(&[("conn", &[("url", "u")])]);
    let out = stamped(&objects, &d);
    assert_eq!(
        out, objects,
        "nothing known is read; Jobs are never stamped"
    );
    // render has no Secret data: the objects stay exactly as built.
    assert_eq!(stamped(&objects, &SecretDigests::default()), objects);
}

#[test]
fn a_missing_key_appearing_is_a_change() {
    let objects = vec![workload("Deployment", "api", reads_key("conn", "password"))];
    let without = digests(&[("conn", &[("url", "u")])]);
    let with = digests(&[("conn", &[("url", "u"), ("password", "p")])]);
    let (a, b) = (stamped(&objects, &without), stamped(&objects, &with));
    assert!(hash_of(&a[0]).is_some());
    assert_ne!(hash_of(&a[0]), hash_of(&b[0]));
}

#[test]
fn the_hash_is_deterministic_and_order_independent() {
    let pod = json!({"containers": [{"name": "c", "env": [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "y", "key": "k"}}}]}]});
    let swapped = json!({"containers": [{"name": "c", "env": [
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "y", "key": "k"}}},
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]}]});
    let d = digests(&[("x", &[("k", "1")]), ("y", &[("k", "2")])]);
    let a = stamped(&[workload("Deployment", "a", pod)], &d);
    let b = stamped(&[workload("Deployment", "a", swapped)], &d);
    let again = stamped(&a, &d);
    assert_eq!(hash_of(&a[0]), hash_of(&b[0]));
    assert_eq!(a, again, "stamping twice is stamping once");
    let h = hash_of(&a[0]).unwrap();
    assert_eq!(h.len(), 64);
    assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn no_value_appears_in_the_stamp() {
    let objects = vec![workload("Deployment", "api", reads_key("conn", "password"))];
    let d = digests(&[("conn", &[("password", "hunter2-very-secret")])]);
    let out = serde_json::to_string(&stamped(&objects, &d)[0].object).unwrap();
    assert!(!out.contains("hunter2"));
}

#[test]
fn secrets_read_lists_the_templates_secrets() {
    let objects = vec![
        workload("Deployment", "api", reads_key("a", "k")),
        workload("StatefulSet", "s", reads_key("b", "k")),
        workload("Job", "j", reads_key("c", "k")),
    ];
    assert_eq!(
        secrets_read(&objects).into_iter().collect::<Vec<_>>(),
        ["a", "b"]
    );
}
