use super::*;

fn now(secs: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
}

fn deployment(name: &str, ready: bool) -> DeploymentFact {
    DeploymentFact {
        component: name.into(),
        name: format!("w-{name}"),
        exists: true,
        replicas: 1,
        ready_replicas: i32::from(ready),
        available: ready,
        up_to_date: true,
    }
}

fn facts() -> Facts {
    Facts {
        generation: Some(3),
        version: "0.84.0".into(),
        hostname: "https://wandb.example.com".into(),
        manifest: None,
        invalid_spec: None,
        missing_secrets: vec![],
        infra: vec![InfraFact {
            preflight: None,
            kind: "mysql".into(),
            instance: "default".into(),
            mode: wandb_api::InfraMode::Managed,
            connection_secret: "w-mysql-connection".into(),
            readiness: Readiness::Ready,
        }],
        migrations: MigrationGate::AllComplete,
        migration_count: 3,
        backups: crate::decide::BackupGate::NotNeeded,
        backup_jobs: vec![],
        backup_acknowledged: None,
        backup_keep: 5,
        email_sink: None,
        deployments: vec![deployment("api", true), deployment("frontend", true)],
        generated_secrets: vec![("session-key".into(), "w-session-key".into(), "value".into())],
        gateway_api_missing: false,
        failure: None,
        pod_inputs_missing: vec![],
        creation_failures: vec![],
        paused: false,
        internal_auth: None,
        v1_conversion: None,
        takeover: None,
    }
}

fn cond(s: &WeightsAndBiasesStatus, t: ConditionType) -> &Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == t.as_str())
        .unwrap_or_else(|| panic!("no {t:?} in {:#?}", s.conditions))
}

#[test]
fn all_good_is_ready() {
    let s = compute(&Default::default(), &facts(), &now(10));
    assert!(s.ready);
    assert_eq!(cond(&s, ConditionType::Ready).status, "True");
    assert_eq!(cond(&s, ConditionType::Reconciling).status, "False");
    assert_eq!(cond(&s, ConditionType::Stalled).status, "False");
    assert_eq!(s.version.as_deref(), Some("0.84.0"));
    assert_eq!(s.observed_generation, Some(3));
    assert!(
        s.conditions
            .iter()
            .all(|c| c.observed_generation == Some(3))
    );
    let m = s.wandb.unwrap().migration.unwrap();
    assert_eq!(m.last_success_version.as_deref(), Some("0.84.0"));
    assert_eq!(s.components["api"].replicas.as_deref(), Some("1/1"));
    assert_eq!(s.generated_secrets["session-key"].name, "w-session-key");
    assert_eq!(s.generated_secrets["session-key"].key, "value");
}

#[test]
fn unchanged_facts_give_an_equal_status_later() {
    let first = compute(&Default::default(), &facts(), &now(10));
    let second = compute(&first, &facts(), &now(99));
    assert_eq!(first, second);
    assert!(transitions(&first, &second).is_empty());
}

#[test]
fn missing_connection_secrets_are_named() {
    let mut f = facts();
    f.missing_secrets = vec![
        MissingSecret::new("w-mysql-connection"),
        MissingSecret::new("w-redis-connection"),
    ];
    f.migrations = MigrationGate::Pending;
    let s = compute(&Default::default(), &f, &now(1));
    let infra = cond(&s, ConditionType::InfraReady);
    assert_eq!(infra.status, "False");
    assert!(
        infra
            .message
            .contains("w-mysql-connection, w-redis-connection")
    );
    assert_eq!(
        cond(&s, ConditionType::Ready).reason,
        Reason::DEPENDENCIES_NOT_READY
    );
    assert_eq!(cond(&s, ConditionType::Reconciling).status, "True");
    assert!(!s.ready);
    let t = transitions(&Default::default(), &s);
    assert!(
        t.iter()
            .any(|t| t.warning && t.note.contains("w-redis-connection"))
    );
}

#[test]
fn failed_migration_stalls_and_keeps_the_running_version() {
    let ready = compute(&Default::default(), &facts(), &now(1));
    let mut f = facts();
    f.version = "0.85.0".into();
    f.migrations = MigrationGate::Failed {
        job: "w-migrate-gorilla-0-85-0".into(),
        reason: "BackoffLimitExceeded".into(),
        message: "Job has reached the specified backoff limit".into(),
    };
    let s = compute(&ready, &f, &now(2));
    let st = cond(&s, ConditionType::Stalled);
    assert_eq!(
        (st.status.as_str(), st.reason.as_str()),
        ("True", Reason::MIGRATION_FAILED)
    );
    assert!(st.message.contains("w-migrate-gorilla-0-85-0"));
    assert!(st.message.contains("BackoffLimitExceeded"));
    assert_eq!(
        s.version.as_deref(),
        Some("0.84.0"),
        "old version still runs"
    );
    let m = s.wandb.as_ref().unwrap().migration.as_ref().unwrap();
    assert_eq!(m.last_success_version.as_deref(), Some("0.84.0"));
    assert_eq!(m.phase, Some(wandb_api::MigrationPhase::Failed));
    let t = transitions(&ready, &s);
    assert!(
        t.iter()
            .any(|t| t.warning && t.reason == Reason::MIGRATION_FAILED)
    );
}

#[test]
fn transition_time_moves_only_on_change() {
    let a = compute(&Default::default(), &facts(), &now(10));
    let mut f = facts();
    f.deployments[0] = deployment("api", false);
    let b = compute(&a, &f, &now(20));
    assert_eq!(cond(&b, ConditionType::Ready).status, "False");
    assert_eq!(cond(&b, ConditionType::Ready).last_transition_time, now(20));
    assert_eq!(
        cond(&b, ConditionType::ManifestLoaded).last_transition_time,
        now(10)
    );
    assert!(
        cond(&b, ConditionType::ApplicationsReady)
            .message
            .contains("w-api (0/1)")
    );
    assert_eq!(s_version(&b), Some("0.84.0"), "last version that ran");
}

fn s_version(s: &WeightsAndBiasesStatus) -> Option<&str> {
    s.version.as_deref()
}

#[test]
fn manifest_problem_stalls_and_changes_nothing_else() {
    let mut f = facts();
    f.manifest = Some(ManifestProblem {
        reason: Reason::MANIFEST_UNAVAILABLE,
        message: "file:///nope: no such directory".into(),
    });
    let s = compute(&Default::default(), &f, &now(1));
    assert_eq!(cond(&s, ConditionType::ManifestLoaded).status, "False");
    assert_eq!(
        cond(&s, ConditionType::Stalled).reason,
        Reason::MANIFEST_UNAVAILABLE
    );
    assert!(s.components.is_empty() && s.wandb.is_none());
    assert!(!s.ready);
}

#[test]
fn infra_progress_and_failure_are_reported_per_service() {
    let mut f = facts();
    f.migrations = MigrationGate::Pending;
    f.infra[0].readiness = Readiness::Progressing("StatefulSet w-mysql: 0/1 replicas ready".into());
    f.missing_secrets = vec![MissingSecret::new("w-mysql-connection")];
    let s = compute(&Default::default(), &f, &now(1));
    let infra = cond(&s, ConditionType::InfraReady);
    assert_eq!(infra.status, "False");
    assert!(
        infra
            .message
            .starts_with("mysql default: StatefulSet w-mysql: 0/1"),
        "{}",
        infra.message
    );
    assert!(
        infra
            .message
            .ends_with("waiting for connection Secret(s) w-mysql-connection")
    );
    let st = &s.infra["mysql"]["default"];
    assert_eq!(
        (st.ready, st.state),
        (false, wandb_api::InfraState::Pending)
    );
    assert_eq!(cond(&s, ConditionType::Stalled).status, "False");

    f.infra[0].readiness = Readiness::Failed("Job w-bucket failed: BackoffLimitExceeded".into());
    let s = compute(&s, &f, &now(2));
    let st = cond(&s, ConditionType::Stalled);
    assert_eq!(st.status, "True");
    assert!(st.message.contains("w-bucket"));
    assert_eq!(
        s.infra["mysql"]["default"].state,
        wandb_api::InfraState::Error
    );

    let mut starting = facts();
    starting.infra[0].readiness = Readiness::Progressing("StatefulSet w-mysql: 0/1".into());
    let s2 = compute(&s, &starting, &now(3));
    let infra = cond(&s2, ConditionType::InfraReady);
    assert_eq!(
        infra.status, "False",
        "a published Secret is not enough: the service itself must be ready"
    );
    assert!(
        infra.message.contains("StatefulSet w-mysql: 0/1"),
        "{}",
        infra.message
    );
    assert_eq!(
        s2.infra["mysql"]["default"].state,
        wandb_api::InfraState::Pending
    );

    let ok = compute(&s, &facts(), &now(3));
    assert!(ok.ready);
    assert_eq!(
        ok.infra["mysql"]["default"].state,
        wandb_api::InfraState::Healthy
    );
}

#[test]
fn invalid_spec_stalls() {
    let mut f = facts();
    f.invalid_spec = Some("spec.mysql.default: bad".into());
    let s = compute(&Default::default(), &f, &now(1));
    assert_eq!(cond(&s, ConditionType::ManifestLoaded).status, "True");
    assert_eq!(
        cond(&s, ConditionType::Stalled).reason,
        Reason::INVALID_SPEC
    );
}

#[test]
fn gateway_mode_without_the_gateway_api_is_stalled_with_a_warning_but_keeps_its_applications() {
    let prev = compute(&Default::default(), &facts(), &now(10));
    let f = Facts {
        gateway_api_missing: true,
        ..facts()
    };
    let s = compute(&prev, &f, &now(20));
    assert!(!s.ready);
    let stalled = cond(&s, ConditionType::Stalled);
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason, Reason::GATEWAY_API_MISSING);
    assert!(stalled.message.contains(
        "networking.mode gateway needs the Gateway API CRDs (gateway.networking.k8s.io/v1) in the cluster"
    ));
    assert_eq!(cond(&s, ConditionType::Ready).status, "False");
    // The applications themselves are reported available.
    assert_eq!(cond(&s, ConditionType::ApplicationsReady).status, "True");
    let events = transitions(&prev, &s);
    assert!(
        events
            .iter()
            .any(|t| t.warning && t.reason == Reason::GATEWAY_API_MISSING),
        "{events:?}"
    );
    // Installing the CRDs clears it.
    let s = compute(&s, &facts(), &now(30));
    assert!(s.ready);
    assert_eq!(cond(&s, ConditionType::Stalled).status, "False");
}

#[test]
fn the_email_sink_is_reported_and_cleared_when_gone() {
    let sink = SecretKeySelector {
        name: "w-email-sink".into(),
        key: "sink".into(),
        optional: None,
    };
    let f = Facts {
        email_sink: Some(sink.clone()),
        ..facts()
    };
    let s = compute(&Default::default(), &f, &now(1));
    assert_eq!(s.email_sink, Some(sink));
    let s = compute(&s, &facts(), &now(2));
    assert_eq!(s.email_sink, None, "SMTP taken out of the resource");
}

#[test]
fn the_issuer_check_is_reported_without_gating_ready() {
    let mut f = facts();
    f.internal_auth = Some(super::super::IssuerCheck {
        ok: false,
        reason: Reason::ISSUER_DISCOVERY_FORBIDDEN,
        message: "clients without credentials may not read the discovery document".into(),
    });
    let s = compute(&Default::default(), &f, &now(10));
    assert!(s.ready, "reported, not gating");
    let c = cond(&s, ConditionType::InternalServiceAuth);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "IssuerDiscoveryForbidden")
    );
    // Disabled: the condition goes.
    let s = compute(&s, &facts(), &now(20));
    assert!(
        !s.conditions
            .iter()
            .any(|c| c.type_ == ConditionType::InternalServiceAuth.as_str())
    );
}

#[test]
fn a_refused_write_stalls_with_the_api_servers_words_and_one_event() {
    let ready = compute(&Default::default(), &facts(), &now(1));
    assert!(ready.ready);
    let f = Facts {
        failure: Some(Failure {
            kind: FailureKind::User,
            reason: Reason::WRITE_REFUSED,
            message: "writing Ingress w: the API server answered 422 (Invalid): path must be \
                      absolute"
                .into(),
        }),
        ..facts()
    };
    let s = compute(&ready, &f, &now(2));
    assert!(!s.ready);
    for t in [ConditionType::Stalled, ConditionType::Ready] {
        let c = cond(&s, t);
        assert_eq!(c.reason, Reason::WRITE_REFUSED);
        assert!(c.message.contains("Ingress w") && c.message.contains("absolute"));
    }
    assert_eq!(cond(&s, ConditionType::Stalled).status, "True");
    let events = transitions(&ready, &s);
    assert!(
        events
            .iter()
            .any(|e| e.warning && e.reason == Reason::WRITE_REFUSED)
    );
    // Unchanged failure: the same status, no new event.
    let again = compute(&s, &f, &now(3));
    assert_eq!(again, s);
    assert!(transitions(&s, &again).is_empty());
}

#[test]
fn a_transient_failure_is_not_ready_but_not_stalled() {
    let f = Facts {
        failure: Some(Failure {
            kind: FailureKind::Transient,
            reason: Reason::API_UNAVAILABLE,
            message: "reading the Deployments: the API server could not be reached".into(),
        }),
        ..facts()
    };
    let s = compute(&Default::default(), &f, &now(1));
    assert!(!s.ready);
    assert_eq!(cond(&s, ConditionType::Stalled).status, "False");
    assert_eq!(
        cond(&s, ConditionType::Ready).reason,
        Reason::API_UNAVAILABLE
    );
}

#[test]
fn pods_that_cannot_start_keep_ready_false_and_say_why() {
    let f = Facts {
        pod_inputs_missing: vec![
            "Secret license does not exist (set by spec.wandb.licenseSecret); read by \
             Deployment w-api container api env LICENSE"
                .into(),
        ],
        ..facts()
    };
    let s = compute(&Default::default(), &f, &now(1));
    assert!(!s.ready);
    let c = cond(&s, ConditionType::Ready);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", Reason::POD_INPUT_MISSING)
    );
    assert!(c.message.contains("spec.wandb.licenseSecret"));
    assert!(
        transitions(&Default::default(), &s)
            .iter()
            .any(|t| t.warning && t.reason == Reason::POD_INPUT_MISSING)
    );
    let f = Facts {
        creation_failures: vec![
            "Job w-migrate cannot create pods: serviceaccount \"missing\" not found".into(),
        ],
        ..facts()
    };
    let s = compute(&Default::default(), &f, &now(1));
    assert!(!s.ready);
    assert_eq!(
        cond(&s, ConditionType::Ready).reason,
        Reason::POD_CREATION_FAILED
    );
}

#[test]
fn pausing_keeps_the_last_status_and_resuming_drops_the_condition() {
    let ready = compute(&Default::default(), &facts(), &now(1));
    let paused = compute(
        &ready,
        &Facts {
            paused: true,
            ..facts()
        },
        &now(2),
    );
    assert!(paused.ready, "pausing changes nothing it does not know");
    let c = cond(&paused, ConditionType::Paused);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", Reason::PAUSED)
    );
    let edited = Facts {
        paused: true,
        generation: Some(4),
        ..facts()
    };
    let again = compute(&paused, &edited, &now(3));
    assert_eq!(
        again, paused,
        "a paused pass writes nothing, even after an edit"
    );
    let resumed = compute(&paused, &facts(), &now(4));
    assert!(
        !resumed
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Paused.as_str())
    );
}

#[test]
fn an_external_service_whose_inputs_are_missing_is_pending_with_the_reason() {
    let mut f = facts();
    f.infra[0].mode = wandb_api::InfraMode::External;
    f.missing_secrets = vec![MissingSecret {
        name: "w-mysql-connection".into(),
        why: Some("Secret nosuch not found (for spec.mysql.default host)".into()),
    }];
    let s = compute(&Default::default(), &f, &now(1));
    let mysql = &s.infra["mysql"]["default"];
    assert_eq!(mysql.state, wandb_api::InfraState::Pending);
    assert!(!mysql.ready);
    assert!(
        mysql
            .message
            .as_deref()
            .unwrap()
            .contains("Secret nosuch not found")
    );
}

#[test]
fn a_failed_backup_stalls_the_upgrade_and_a_taken_one_is_recorded() {
    use crate::decide::{BackupFact, BackupGate, JobState};
    let ready = compute(&Default::default(), &facts(), &now(1));
    let mut f = facts();
    f.version = "0.85.0".into();
    f.migrations = MigrationGate::Pending;
    f.backups = BackupGate::Failed {
        job: "w-backup-mysql-default-0-84-0-0-85-0".into(),
        reason: "BackoffLimitExceeded".into(),
        message: "Job has reached the specified backoff limit".into(),
    };
    let s = compute(&ready, &f, &now(2));
    let st = cond(&s, ConditionType::Stalled);
    assert_eq!(
        (st.status.as_str(), st.reason.as_str()),
        ("True", Reason::BACKUP_FAILED)
    );
    assert!(st.message.contains("w-backup-mysql-default-0-84-0-0-85-0"));
    assert!(st.message.contains("BackoffLimitExceeded"));
    assert!(st.message.contains("no migration ran"));
    assert_eq!(
        s.version.as_deref(),
        Some("0.84.0"),
        "old version still runs"
    );
    assert!(!s.ready);

    // A migration Job that already failed is said as such, whatever the backups do.
    let mut g = f.clone();
    g.backups = BackupGate::Pending;
    g.migrations = MigrationGate::Failed {
        job: "w-migrate-gorilla-0-85-0".into(),
        reason: "DeadlineExceeded".into(),
        message: "m".into(),
    };
    let s = compute(&ready, &g, &now(2));
    assert_eq!(
        cond(&s, ConditionType::Stalled).reason,
        Reason::MIGRATION_FAILED
    );

    f.backups = BackupGate::Running;
    let s = compute(&ready, &f, &now(3));
    assert_eq!(
        cond(&s, ConditionType::Ready).reason,
        Reason::BACKUP_RUNNING
    );
    assert_eq!(cond(&s, ConditionType::Stalled).status, "False");

    f.backups = BackupGate::Done;
    f.backup_jobs = vec![BackupFact {
        job: "w-backup-mysql-default-0-84-0-0-85-0".into(),
        service: "mysql-default".into(),
        from: "0.84.0".into(),
        to: "0.85.0".into(),
        location: "w/mysql-default/0.84.0-0.85.0-20261206T210000Z.sql.gz".into(),
        state: JobState::Complete,
        completed: Some("2026-12-06T21:00:05Z".into()),
    }];
    let s = compute(&ready, &f, &now(4));
    let b = &s.wandb.as_ref().unwrap().backups;
    assert_eq!(b.len(), 1);
    assert_eq!(
        (
            b[0].from_version.as_str(),
            b[0].to_version.as_str(),
            b[0].service.as_str()
        ),
        ("0.84.0", "0.85.0", "mysql-default")
    );
    assert_eq!(b[0].time.as_deref(), Some("2026-12-06T21:00:05Z"));
    // Kept when later passes no longer see the Job (the upgrade finished).
    let mut later = facts();
    later.version = "0.85.0".into();
    let s2 = compute(&s, &later, &now(5));
    assert_eq!(s2.wandb.as_ref().unwrap().backups, *b);

    f.backups = BackupGate::AwaitingAcknowledgement {
        version: "0.85.0".into(),
        external: "mysql default".into(),
    };
    let s = compute(&ready, &f, &now(6));
    let r = cond(&s, ConditionType::Ready);
    assert_eq!(r.reason, Reason::BACKUP_REQUIRED);
    assert!(
        r.message
            .contains("apps.wandb.com/backup-taken=\"0.85.0:<snapshot id>\"")
    );
}

#[test]
fn a_takeover_is_announced_when_it_starts_and_when_it_completes() {
    let now = now(0);
    let mut f = facts();
    f.takeover = Some(crate::takeover::TakeoverFact {
        complete: false,
        message: "keeping w-app-bc until w-app is Available".into(),
    });
    let started = compute(&Default::default(), &f, &now);
    let t = transitions(&Default::default(), &started);
    assert!(
        t.iter()
            .any(|t| t.reason == "TakeoverInProgress" && !t.warning)
    );
    // Unchanged: said once.
    let again = compute(&started, &f, &now);
    assert!(
        !transitions(&started, &again)
            .iter()
            .any(|t| t.reason.starts_with("Takeover"))
    );
    f.takeover = Some(crate::takeover::TakeoverFact {
        complete: true,
        message: "every replaced workload is gone".into(),
    });
    let done = compute(&again, &f, &now);
    assert!(
        transitions(&again, &done)
            .iter()
            .any(|t| t.reason == "TakeoverComplete")
    );
}
