use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A Deployment of the operator-wandb chart for release `w`.
fn chart(kind: &str, name: &str, component: &str) -> WorkloadMeta {
    WorkloadMeta {
        kind: kind.into(),
        name: name.into(),
        labels: labels(&[
            ("app.kubernetes.io/managed-by", "Helm"),
            ("app.kubernetes.io/instance", "w"),
            ("app.kubernetes.io/name", component),
            ("helm.sh/chart", "wandb-base-0.12.4"),
        ]),
        controller: None,
        selector: None,
    }
}

/// A Deployment of the official v2 operator in namespace `ns1`.
fn official(name: &str) -> WorkloadMeta {
    WorkloadMeta {
        kind: "Deployment".into(),
        name: name.into(),
        labels: labels(&[
            ("app.kubernetes.io/name", name),
            ("app.kubernetes.io/instance", "ns1"),
        ]),
        controller: Some(("apps.wandb.com/v2".into(), "Application".into())),
        selector: None,
    }
}

fn ours(app: &str, legacy: Option<&str>, ready: bool) -> OurApp {
    OurApp {
        app: app.into(),
        legacy_key: legacy.map(Into::into),
        deployment: DeploymentFact {
            component: app.into(),
            name: format!("w-{app}"),
            exists: true,
            replicas: 1,
            ready_replicas: i32::from(ready),
            available: ready,
            up_to_date: true,
        },
    }
}

#[test]
fn chart_and_official_workloads_are_recognised_and_nothing_else() {
    assert_eq!(
        predecessor_of("w", "ns1", &chart("Deployment", "w-app-bc", "app")),
        Some(Predecessor::HelmChart)
    );
    assert_eq!(
        predecessor_of("w", "ns1", &official("api")),
        Some(Predecessor::OfficialV2)
    );
    // Another release of the chart, a user's Deployment, ours: nobody's predecessor.
    let mut other_release = chart("Deployment", "x-app-bc", "app");
    other_release
        .labels
        .insert("app.kubernetes.io/instance".into(), "x".into());
    assert_eq!(predecessor_of("w", "ns1", &other_release), None);
    let users = WorkloadMeta {
        kind: "Deployment".into(),
        name: "w-app-bc".into(),
        labels: labels(&[("app.kubernetes.io/instance", "w")]),
        ..Default::default()
    };
    assert_eq!(predecessor_of("w", "ns1", &users), None);
    let mine = WorkloadMeta {
        labels: labels(&[
            ("app.kubernetes.io/managed-by", "wandb-operator"),
            ("app.kubernetes.io/instance", "w"),
        ]),
        ..users.clone()
    };
    assert_eq!(predecessor_of("w", "ns1", &mine), None);
    // Labelled managed-by=wandb-operator as the official operator does: still theirs.
    let mut labelled = official("api");
    labelled.labels.insert(
        "app.kubernetes.io/managed-by".into(),
        "wandb-operator".into(),
    );
    assert!(!labelled.is_ours());
    assert_eq!(
        predecessor_of("w", "ns1", &labelled),
        Some(Predecessor::OfficialV2)
    );
    // An Application of another group is not the official operator's.
    let mut foreign = official("api");
    foreign.controller = Some(("example.com/v1".into(), "Application".into()));
    assert_eq!(predecessor_of("w", "ns1", &foreign), None);
}

#[test]
fn a_helm_release_secret_alone_is_a_predecessor() {
    let secrets = vec!["sh.helm.release.v1.w.v3".to_string()];
    assert_eq!(
        detect("w", "ns1", &secrets, &[]),
        vec![Predecessor::HelmChart]
    );
    // Release `w2` is not release `w`.
    let other = vec!["sh.helm.release.v1.w2.v1".to_string()];
    assert!(detect("w", "ns1", &other, &[]).is_empty());
    assert_eq!(
        detect("w", "ns1", &secrets, &[official("api")]),
        vec![Predecessor::HelmChart, Predecessor::OfficialV2]
    );
}

#[test]
fn the_session_key_is_seeded_from_the_charts_secret() {
    assert_eq!(
        credential_seeds("w", "session-key"),
        vec![(
            "w-gorilla-session-key".to_string(),
            "GORILLA_SESSION_KEY".to_string()
        )]
    );
    // The official v2 operator's generated Secrets have our names already.
    assert!(credential_seeds("w", "weave-worker-auth").is_empty());
}

#[test]
fn old_workloads_go_only_once_ours_are_ready_and_data_stays() {
    let workloads = vec![
        chart("Deployment", "w-app-bc", "app"),
        chart("Deployment", "w-weave-bc", "weave"),
        chart("Deployment", "w-console-bc", "console"),
        chart("StatefulSet", "w-mysql", "mysql"),
        official("parquet"),
    ];
    let apps = vec![
        ours("app", None, true),
        ours("weave", None, false),
        // Matched by its legacy (chart) key.
        ours("parquet-v2", Some("parquet"), true),
    ];
    let p = plan("w", "ns1", &[], &workloads, &apps);
    assert_eq!(
        p.predecessors,
        vec![Predecessor::HelmChart, Predecessor::OfficialV2]
    );
    assert_eq!(p.remove, vec!["w-app-bc", "parquet"]);
    assert_eq!(
        p.waiting,
        vec![("w-weave-bc".to_string(), "w-weave".to_string())]
    );
    let left: Vec<&str> = p.left.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(left, ["Deployment/w-console-bc", "StatefulSet/w-mysql"]);
    assert!(!p.complete());

    let f = fact(&p, &["w-session-key".into()]).unwrap();
    assert!(!f.complete);
    assert!(f.message.contains("credentials adopted into w-session-key"));
    assert!(
        f.message
            .contains("keeping w-weave-bc until w-weave is Available")
    );

    // Ours all ready: everything replaced goes, and the takeover is complete.
    let apps: Vec<OurApp> = apps
        .into_iter()
        .map(|a| ours(&a.app, a.legacy_key.as_deref(), true))
        .collect();
    let p = plan("w", "ns1", &[], &workloads, &apps);
    assert_eq!(p.remove, vec!["w-app-bc", "w-weave-bc", "parquet"]);
    assert!(p.complete());
    assert!(fact(&p, &[]).unwrap().complete);
}

#[test]
fn no_predecessor_no_condition() {
    let p = plan("w", "ns1", &[], &[], &[ours("app", None, true)]);
    assert!(p.predecessors.is_empty());
    assert_eq!(fact(&p, &[]), None);
}

#[test]
fn a_same_named_workload_is_adopted_only_when_clearly_the_predecessors_with_our_selector() {
    let ours_sel = labels(&[
        ("app.kubernetes.io/instance", "w"),
        ("app.kubernetes.io/name", "api"),
    ]);
    let mut theirs = chart("Deployment", "w-api", "api");
    theirs.selector = Some(ours_sel.clone());
    assert_eq!(
        collision("w", "ns1", &theirs, &ours_sel),
        Some(Collision::Adopt {
            kind: "Deployment".into(),
            name: "w-api".into()
        })
    );
    // A different selector cannot be patched: refused, saying how to proceed.
    theirs.selector = Some(labels(&[("app", "wandb-api")]));
    match collision("w", "ns1", &theirs, &ours_sel) {
        Some(Collision::Refuse { why, .. }) => {
            assert!(why.contains("{app=wandb-api}"), "{why}");
            assert!(why.contains("--cascade=orphan"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // Not the predecessor's: never touched.
    let users = WorkloadMeta {
        kind: "Deployment".into(),
        name: "w-api".into(),
        selector: Some(ours_sel.clone()),
        ..Default::default()
    };
    assert!(matches!(
        collision("w", "ns1", &users, &ours_sel),
        Some(Collision::Refuse { .. })
    ));
    // A StatefulSet of theirs: refused (data).
    let mut sts = chart("StatefulSet", "w-api", "api");
    sts.selector = Some(ours_sel.clone());
    assert!(matches!(
        collision("w", "ns1", &sts, &ours_sel),
        Some(Collision::Refuse { .. })
    ));
    // Ours: no collision.
    let mine = WorkloadMeta {
        labels: labels(&[("app.kubernetes.io/managed-by", "wandb-operator")]),
        ..users
    };
    assert_eq!(collision("w", "ns1", &mine, &ours_sel), None);
}

#[test]
fn the_official_operators_managed_services_are_never_started_empty_beside_it() {
    let managed = vec![("mysql".to_string(), "default".to_string())];
    let why = managed_services_refused(&[Predecessor::OfficialV2], &managed).unwrap();
    assert!(why.contains("mysql.default"), "{why}");
    // External only, or a chart install (its in-chart services are reconnected by the
    // conversion, and a managed one of ours under the chart's name collides explicitly).
    assert_eq!(
        managed_services_refused(&[Predecessor::OfficialV2], &[]),
        None
    );
    assert_eq!(
        managed_services_refused(&[Predecessor::HelmChart], &managed),
        None
    );
}

#[test]
fn a_takeover_stays_reported_once_nothing_of_the_predecessor_is_left() {
    assert_eq!(carried(None), None);
    let done = carried(Some((
        true,
        "predecessor: x; every replaced workload is gone",
    )))
    .unwrap();
    assert!(done.complete && done.message.starts_with("predecessor: x"));
    let vanished = carried(Some((false, "keeping a until w-a is Available"))).unwrap();
    assert!(vanished.complete);
}
