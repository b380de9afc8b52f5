//! Status as a pure function of observed facts, and the events its transitions publish.
//!
//! `compute(previous, facts, now)` starts from the previous status so that
//! `lastTransitionTime` stays put for unchanged conditions: an unchanged world yields an equal
//! status, and the controller then writes nothing.

use std::collections::BTreeMap;

use crate::Readiness;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use wandb_api::{
    ComponentStatus, ConditionType, InfraMode, InfraState, InfraStatus, MigrationPhase,
    MigrationStatus, Reason, SecretKeySelector, WandbStatus, WeightsAndBiasesStatus, set_condition,
};

use super::backups::{self, BackupFact, BackupGate};
use super::gates::MigrationGate;

/// The Stalled message of an instance in gateway mode in a cluster without the Gateway API.
pub const GATEWAY_API_MISSING: &str = "networking.mode gateway needs the Gateway API CRDs \
     (gateway.networking.k8s.io/v1) in the cluster; the HTTPRoutes and Gateway are not created \
     until they are installed (the applications still roll out)";

/// Why the manifest could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestProblem {
    /// One of `Reason::MANIFEST_*`.
    pub reason: &'static str,
    pub message: String,
}

/// A connection (or composed) Secret that is not written, and why when known (its inputs are
/// incomplete: a Secret or key of the user's missing, a value that does not parse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingSecret {
    pub name: String,
    pub why: Option<String>,
}

impl MissingSecret {
    pub fn new(name: impl Into<String>) -> Self {
        MissingSecret {
            name: name.into(),
            why: None,
        }
    }
}

impl std::fmt::Display for MissingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.why {
            Some(why) => write!(f, "{} ({why})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Who can make a failed pass succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Only a change by the user (the resource, the manifest, RBAC): `Stalled=True`.
    User,
    /// Retrying may succeed (the API server was unavailable, a conflict): `Ready=False`.
    Transient,
    /// A bug in the operator: `Ready=False`, retried, reported.
    Internal,
}

/// Why a pass stopped before it finished, as a value: mapped to conditions here, to events by
/// [`transitions`], and to a requeue by the controller, each in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// One of `Reason::*`.
    pub reason: &'static str,
    /// Plain words: the object, what the API server said, the field to fix. Never a value.
    pub message: String,
}

/// A Deployment of the requested applications, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentFact {
    /// The component (manifest application) name.
    pub component: String,
    pub name: String,
    pub exists: bool,
    pub replicas: i32,
    pub ready_replicas: i32,
    /// `Available=True`.
    pub available: bool,
    /// `status.observedGeneration >= metadata.generation`.
    pub up_to_date: bool,
}

impl DeploymentFact {
    pub fn ready(&self) -> bool {
        self.exists && self.available && self.up_to_date && self.ready_replicas >= self.replicas
    }
}

/// One backing-service instance, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfraFact {
    /// `mysql`, `redis`, `objectStore`, `clickhouse`, `kafka`.
    pub kind: String,
    pub instance: String,
    pub mode: InfraMode,
    pub connection_secret: String,
    /// Readiness of everything but the connection Secret (StatefulSet, setup Jobs).
    pub readiness: Readiness,
    /// Why an external service's endpoint failed the preflight (reported, not gating).
    pub preflight: Option<String>,
}

/// Everything the status is computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub generation: Option<i64>,
    pub version: String,
    pub hostname: String,
    /// Set when the manifest could not be loaded; nothing else was attempted.
    pub manifest: Option<ManifestProblem>,
    /// Set when the engine rejected the spec; nothing else was attempted.
    pub invalid_spec: Option<String>,
    /// Connection Secrets that do not exist yet.
    pub missing_secrets: Vec<MissingSecret>,
    /// Backing services (their connection Secrets are in `missing_secrets`).
    pub infra: Vec<InfraFact>,
    pub migrations: MigrationGate,
    /// Number of migration Jobs for the version.
    pub migration_count: usize,
    /// The upgrade's backups: the gate, its Jobs, an acknowledged external backup
    /// `(from, to, snapshot id)`, and how many records to keep per service.
    pub backups: BackupGate,
    pub backup_jobs: Vec<BackupFact>,
    pub backup_acknowledged: Option<(String, String, String)>,
    pub backup_keep: usize,
    pub deployments: Vec<DeploymentFact>,
    /// Generated secrets: (manifest name, Secret name, key).
    pub generated_secrets: Vec<(String, String, String)>,
    /// `networking.mode: gateway`, but the cluster does not serve the Gateway API: the routes
    /// were not created (the applications were), so the instance is unreachable until the CRDs
    /// are installed.
    pub gateway_api_missing: bool,
    /// The email sink the apps read (`status.emailSink`), when there is one.
    pub email_sink: Option<SecretKeySelector>,
    /// The issuer check of internal service auth; `None` when it is disabled.
    pub internal_auth: Option<super::IssuerCheck>,
    /// Set when the pass stopped early; the other conditions keep their last computed values.
    pub failure: Option<Failure>,
    /// What a pod of the instance reads but does not exist (a Secret, a key, a ConfigMap, a
    /// ServiceAccount, a PVC), each naming the object, the reader and the field that set it.
    pub pod_inputs_missing: Vec<String>,
    /// Workloads whose controller reports it cannot create pods, with its message.
    pub creation_failures: Vec<String>,
    /// The `apps.wandb.com/paused` annotation: nothing was observed or written.
    pub paused: bool,
    /// How a resource created as v1 was converted; `None` for one created as v2.
    pub v1_conversion: Option<super::ConversionReport>,
    /// The takeover of an official operator's installation; `None` when there is none.
    pub takeover: Option<crate::takeover::TakeoverFact>,
}

impl Facts {
    /// The gate for migrations and applications: every connection Secret is published and
    /// every service is ready by its backend's rule (a managed StatefulSet ready and its setup
    /// Jobs, such as bucket or topic creation, complete). A failed setup Job stalls the instance.
    pub fn infra_ready(&self) -> bool {
        self.missing_secrets.is_empty()
            && self.infra.iter().all(|i| i.readiness == Readiness::Ready)
    }

    fn applications_ready(&self) -> bool {
        self.migrations.succeeded()
            && self.infra_ready()
            && self.deployments.iter().all(DeploymentFact::ready)
    }

    /// A service that will not become ready without a change.
    pub fn infra_failure(&self) -> Option<String> {
        let failed: Vec<String> = self
            .infra
            .iter()
            .filter_map(|i| match &i.readiness {
                Readiness::Failed(m) => Some(format!("{} {}: {m}", i.kind, i.instance)),
                _ => None,
            })
            .collect();
        (!failed.is_empty()).then(|| failed.join("; "))
    }

    fn infra_message(&self) -> String {
        let mut parts: Vec<String> = self
            .infra
            .iter()
            .filter_map(|i| match &i.readiness {
                Readiness::Ready => None,
                Readiness::Progressing(m) | Readiness::Failed(m) => {
                    Some(format!("{} {}: {m}", i.kind, i.instance))
                }
            })
            .collect();
        if !self.missing_secrets.is_empty() {
            // Last, so that the list is easy to read (and parse).
            parts.push(format!(
                "waiting for connection Secret(s) {}",
                self.missing_secrets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.infra_ready() {
            "every backing service is ready and its connection Secret published".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The new status. Pure: the same inputs give the same output.
pub fn compute(prev: &WeightsAndBiasesStatus, f: &Facts, now: &Time) -> WeightsAndBiasesStatus {
    let mut s = prev.clone();
    let g = f.generation;
    let c = &mut s.conditions;
    s.observed_generation = g;
    s.url = Some(f.hostname.clone());
    if f.paused {
        // Nothing was looked at or acted on: the status stays as last computed, including
        // observedGeneration (an edit made while paused is not observed), plus the condition.
        let mut s = prev.clone();
        let c = &mut s.conditions;
        let g = prev.observed_generation;
        let msg = format!(
            "paused by the annotation {}=true: no change to the resource or drift in the \
             cluster is acted on until it is removed",
            crate::names::PAUSED_ANNOTATION
        );
        set_condition(c, ConditionType::Paused, true, Reason::PAUSED, &msg, g, now);
        set_condition(
            c,
            ConditionType::Reconciling,
            false,
            Reason::PAUSED,
            &msg,
            g,
            now,
        );
        return s;
    }
    c.retain(|x| x.type_ != ConditionType::Paused.as_str());

    if let Some(p) = &f.manifest {
        set_condition(
            c,
            ConditionType::ManifestLoaded,
            false,
            p.reason,
            &p.message,
            g,
            now,
        );
        stalled(c, p.reason, &p.message, g, now);
        s.ready = false;
        return s;
    }
    set_condition(
        c,
        ConditionType::ManifestLoaded,
        true,
        Reason::AS_EXPECTED,
        format!("server manifest for version {} loaded", f.version),
        g,
        now,
    );
    if let Some(msg) = &f.invalid_spec {
        stalled(c, Reason::INVALID_SPEC, msg, g, now);
        s.ready = false;
        return s;
    }
    if let Some(failure) = &f.failure {
        match failure.kind {
            FailureKind::User => stalled(c, failure.reason, &failure.message, g, now),
            FailureKind::Transient | FailureKind::Internal => {
                not_ready(c, failure.reason, &failure.message, g, now)
            }
        }
        s.ready = false;
        return s;
    }

    // Infra: services ready and their connection Secrets written.
    let infra_ready = f.infra_ready();
    let infra_msg = f.infra_message();
    s.infra = infra_map(f);
    set_condition(
        c,
        ConditionType::InfraReady,
        infra_ready,
        if infra_ready {
            Reason::AS_EXPECTED
        } else {
            Reason::DEPENDENCIES_NOT_READY
        },
        &infra_msg,
        g,
        now,
    );

    // Migrations.
    let (mig_ok, mig_reason, mig_msg, phase) = match &f.migrations {
        MigrationGate::Recorded | MigrationGate::AllComplete => (
            true,
            Reason::AS_EXPECTED,
            format!(
                "{} migration(s) for version {} succeeded",
                f.migration_count, f.version
            ),
            MigrationPhase::Succeeded,
        ),
        MigrationGate::Running => (
            false,
            Reason::MIGRATION_RUNNING,
            format!("migrations for version {} are running", f.version),
            MigrationPhase::Running,
        ),
        MigrationGate::Pending if !infra_ready => (
            false,
            Reason::MIGRATION_PENDING,
            format!(
                "migrations for version {} wait for the backing services",
                f.version
            ),
            MigrationPhase::Pending,
        ),
        MigrationGate::Pending => (
            false,
            Reason::MIGRATION_PENDING,
            format!("migrations for version {} are starting", f.version),
            MigrationPhase::Pending,
        ),
        MigrationGate::Failed {
            job,
            reason,
            message,
        } => (
            false,
            Reason::MIGRATION_FAILED,
            format!(
                "migration Job {job} for version {} failed ({reason}): {message}; the previous \
                 version keeps running. Fix the cause, then delete the Job to retry",
                f.version
            ),
            MigrationPhase::Failed,
        ),
    };
    // An upgrade's backups come first: what they wait for is why the migrations wait.
    // (A migration Job that already ran and failed is said as such.)
    let (mig_reason, mig_msg) = match &f.backups {
        _ if f.migrations != MigrationGate::Pending => (mig_reason, mig_msg),
        BackupGate::Pending | BackupGate::Running => (
            Reason::BACKUP_RUNNING,
            format!(
                "migrations for version {} wait for the backup of the managed databases",
                f.version
            ),
        ),
        BackupGate::AwaitingAcknowledgement { version, external } => (
            Reason::BACKUP_REQUIRED,
            format!(
                "spec.wandb.upgrade.backup.mode is required and {external} is external: take a \
                 backup (e.g. a snapshot), then annotate the resource \
                 {}=\"{version}:<snapshot id>\"; migrations for version {version} wait for it",
                crate::names::BACKUP_TAKEN_ANNOTATION
            ),
        ),
        BackupGate::Failed {
            job,
            reason,
            message,
        } => (
            Reason::BACKUP_FAILED,
            format!(
                "backup Job {job} before the migrations of version {} failed ({reason}): \
                 {message}; no migration ran and the previous version keeps running. Fix the \
                 cause, then delete the Job to retry (or set spec.wandb.upgrade.backup.mode: \
                 none to upgrade without a backup)",
                f.version
            ),
        ),
        BackupGate::NotNeeded | BackupGate::Done => (mig_reason, mig_msg),
    };
    let backup_failed =
        matches!(f.backups, BackupGate::Failed { .. }) && f.migrations == MigrationGate::Pending;
    set_condition(
        c,
        ConditionType::MigrationsComplete,
        mig_ok,
        mig_reason,
        &mig_msg,
        g,
        now,
    );
    let prev_backups = prev
        .wandb
        .as_ref()
        .map(|w| w.backups.clone())
        .unwrap_or_default();
    let ack = f
        .backup_acknowledged
        .as_ref()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()));
    let backup_records = backups::records(&prev_backups, &f.backup_jobs, ack, f.backup_keep);
    let prev_migration = prev.wandb.as_ref().and_then(|w| w.migration.clone());
    let last_success = if mig_ok {
        Some(f.version.clone())
    } else {
        prev_migration.and_then(|m| m.last_success_version)
    };
    s.wandb = Some(WandbStatus {
        hostname: Some(f.hostname.clone()),
        migration: Some(MigrationStatus {
            version: Some(f.version.clone()),
            last_success_version: last_success,
            ready: mig_ok,
            phase: Some(phase),
            reason: Some(mig_reason.into()),
        }),
        backups: backup_records,
    });

    // Internal service auth: reported, not gating.
    match &f.internal_auth {
        Some(check) => set_condition(
            c,
            ConditionType::InternalServiceAuth,
            check.ok,
            check.reason,
            &check.message,
            g,
            now,
        ),
        None => c.retain(|x| x.type_ != ConditionType::InternalServiceAuth.as_str()),
    }
    // v1 conversion: reported, not gating.
    match &f.v1_conversion {
        Some(r) => set_condition(
            c,
            ConditionType::V1ValuesMapped,
            r.complete,
            r.reason,
            &r.message,
            g,
            now,
        ),
        None => c.retain(|x| x.type_ != ConditionType::V1ValuesMapped.as_str()),
    }
    // Takeover of a predecessor's installation: reported, not gating (ours serve already).
    match &f.takeover {
        Some(t) => set_condition(
            c,
            ConditionType::TakeoverComplete,
            t.complete,
            if t.complete {
                Reason::TAKEOVER_COMPLETE
            } else {
                Reason::TAKEOVER_IN_PROGRESS
            },
            &t.message,
            g,
            now,
        ),
        None => c.retain(|x| x.type_ != ConditionType::TakeoverComplete.as_str()),
    }

    // Applications.
    let apps_ready = f.applications_ready();
    let apps_msg = if apps_ready {
        format!("{} application(s) available", f.deployments.len())
    } else if !mig_ok {
        format!("applications for version {} wait for migrations", f.version)
    } else {
        let waiting: Vec<String> = f
            .deployments
            .iter()
            .filter(|d| !d.ready())
            .map(|d| format!("{} ({}/{})", d.name, d.ready_replicas, d.replicas))
            .collect();
        format!("waiting for Deployment(s) {}", waiting.join(", "))
    };
    set_condition(
        c,
        ConditionType::ApplicationsReady,
        apps_ready,
        if apps_ready {
            Reason::AS_EXPECTED
        } else {
            Reason::APPLICATIONS_NOT_READY
        },
        &apps_msg,
        g,
        now,
    );
    s.components = f
        .deployments
        .iter()
        .map(|d| {
            let ready = d.ready();
            let message = (!ready).then(|| {
                if d.exists {
                    "not available yet".to_string()
                } else {
                    "not created yet".to_string()
                }
            });
            (
                d.component.clone(),
                ComponentStatus {
                    kind: "Application".into(),
                    ready,
                    replicas: Some(format!("{}/{}", d.ready_replicas, d.replicas)),
                    message,
                },
            )
        })
        .collect();
    s.email_sink = f.email_sink.clone();
    s.generated_secrets = f
        .generated_secrets
        .iter()
        .map(|(manifest_name, name, key)| {
            (
                manifest_name.clone(),
                SecretKeySelector {
                    name: name.clone(),
                    key: key.clone(),
                    optional: None,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();

    // Summary conditions.
    let infra_failure = f.infra_failure();
    let is_stalled = matches!(f.migrations, MigrationGate::Failed { .. })
        || backup_failed
        || infra_failure.is_some()
        || f.gateway_api_missing;
    if let Some(msg) = &infra_failure {
        stalled(c, Reason::DEPENDENCIES_NOT_READY, msg, g, now);
    } else if matches!(f.migrations, MigrationGate::Failed { .. }) || backup_failed {
        stalled(c, mig_reason, &mig_msg, g, now);
    } else if f.gateway_api_missing {
        stalled(c, Reason::GATEWAY_API_MISSING, GATEWAY_API_MISSING, g, now);
    } else if !f.creation_failures.is_empty() || !f.pod_inputs_missing.is_empty() {
        // Pods that cannot start make nothing Ready, whatever else is true; said first, as the
        // cause of every wait downstream (e.g. migrations that never run).
        let (reason, msg) = if f.creation_failures.is_empty() {
            (Reason::POD_INPUT_MISSING, f.pod_inputs_missing.join("; "))
        } else {
            let mut all = f.creation_failures.clone();
            all.extend(f.pod_inputs_missing.iter().cloned());
            (Reason::POD_CREATION_FAILED, all.join("; "))
        };
        not_ready(c, reason, &msg, g, now);
    } else {
        set_condition(
            c,
            ConditionType::Stalled,
            false,
            Reason::AS_EXPECTED,
            "",
            g,
            now,
        );
        if apps_ready {
            set_condition(
                c,
                ConditionType::Ready,
                true,
                Reason::SUCCEEDED,
                format!("W&B Server {} is available", f.version),
                g,
                now,
            );
            set_condition(
                c,
                ConditionType::Reconciling,
                false,
                Reason::SUCCEEDED,
                "",
                g,
                now,
            );
            s.version = Some(f.version.clone());
        } else {
            let (reason, msg) = if !infra_ready {
                (Reason::DEPENDENCIES_NOT_READY, infra_msg)
            } else if !mig_ok {
                (mig_reason, mig_msg)
            } else {
                (Reason::APPLICATIONS_NOT_READY, apps_msg)
            };
            set_condition(c, ConditionType::Ready, false, reason, &msg, g, now);
            set_condition(
                c,
                ConditionType::Reconciling,
                true,
                Reason::PROGRESSING,
                &msg,
                g,
                now,
            );
        }
    }
    s.ready = apps_ready
        && !is_stalled
        && f.creation_failures.is_empty()
        && f.pod_inputs_missing.is_empty();
    s
}

/// `status.infra`: kind -> instance -> state.
fn infra_map(f: &Facts) -> BTreeMap<String, BTreeMap<String, InfraStatus>> {
    let mut out: BTreeMap<String, BTreeMap<String, InfraStatus>> = BTreeMap::new();
    for i in &f.infra {
        let conn_missing = f
            .missing_secrets
            .iter()
            .find(|m| m.name == i.connection_secret);
        let (ready, state, message) = match &i.readiness {
            // Why its connection is not published says more than "not written yet".
            Readiness::Progressing(_)
                if let Some(MissingSecret { why: Some(why), .. }) = conn_missing =>
            {
                (
                    false,
                    InfraState::Pending,
                    Some(format!(
                        "connection Secret {} is not written: {why}",
                        i.connection_secret
                    )),
                )
            }
            Readiness::Failed(m) => (false, InfraState::Error, Some(m.clone())),
            Readiness::Progressing(m) => (false, InfraState::Pending, Some(m.clone())),
            Readiness::Ready if let Some(missing) = conn_missing => (
                false,
                InfraState::Pending,
                Some(match &missing.why {
                    Some(why) => format!(
                        "connection Secret {} is not written: {why}",
                        i.connection_secret
                    ),
                    None => format!(
                        "connection Secret {} is not written yet",
                        i.connection_secret
                    ),
                }),
            ),
            Readiness::Ready => match &i.preflight {
                Some(p) => (true, InfraState::Degraded, Some(format!("preflight: {p}"))),
                None => (true, InfraState::Healthy, None),
            },
        };
        out.entry(i.kind.clone()).or_default().insert(
            i.instance.clone(),
            InfraStatus {
                mode: i.mode,
                ready,
                state,
                message,
                connection_secret: Some(i.connection_secret.clone()),
            },
        );
    }
    out
}

/// Not ready, but retrying (or the user adding what is missing) can help.
fn not_ready(c: &mut Vec<Condition>, reason: &str, msg: &str, g: Option<i64>, now: &Time) {
    set_condition(
        c,
        ConditionType::Stalled,
        false,
        Reason::AS_EXPECTED,
        "",
        g,
        now,
    );
    set_condition(c, ConditionType::Ready, false, reason, msg, g, now);
    set_condition(c, ConditionType::Reconciling, true, reason, msg, g, now);
}

fn stalled(c: &mut Vec<Condition>, reason: &str, msg: &str, g: Option<i64>, now: &Time) {
    set_condition(c, ConditionType::Stalled, true, reason, msg, g, now);
    set_condition(c, ConditionType::Ready, false, reason, msg, g, now);
    set_condition(c, ConditionType::Reconciling, false, reason, msg, g, now);
}

/// A Kubernetes event to publish for a status transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for condition transitions between two statuses (a change of status or reason).
pub fn transitions(
    prev: &WeightsAndBiasesStatus,
    next: &WeightsAndBiasesStatus,
) -> Vec<Transition> {
    let find = |s: &WeightsAndBiasesStatus, t: ConditionType| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t.as_str())
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let changed = |t: ConditionType| {
        let n = find(next, t)?;
        let p = find(prev, t);
        (p.map(|p| (p.0, p.1)) != Some((n.0.clone(), n.1.clone()))).then_some(n)
    };
    let mut out = Vec::new();
    if let Some((status, reason, note)) = changed(ConditionType::Stalled)
        && status == "True"
    {
        out.push(Transition {
            warning: true,
            reason,
            note,
        });
    }
    if let Some((status, reason, note)) = changed(ConditionType::InfraReady)
        && status == "False"
    {
        out.push(Transition {
            warning: true,
            reason,
            note,
        });
    }
    if let Some((status, _, note)) = changed(ConditionType::MigrationsComplete)
        && status == "True"
    {
        out.push(Transition {
            warning: false,
            reason: "MigrationsSucceeded".into(),
            note,
        });
    }
    // Ready=False for a cause the user should see (not mere progress), once per cause.
    if let Some((status, reason, note)) = changed(ConditionType::Ready)
        && status == "False"
        && [
            Reason::API_UNAVAILABLE,
            Reason::FORBIDDEN,
            Reason::INTERNAL_ERROR,
            Reason::POD_INPUT_MISSING,
            Reason::POD_CREATION_FAILED,
        ]
        .contains(&reason.as_str())
    {
        out.push(Transition {
            warning: true,
            reason,
            note,
        });
    }
    if let Some((status, _, note)) = changed(ConditionType::Ready)
        && status == "True"
    {
        out.push(Transition {
            warning: false,
            reason: "Ready".into(),
            note,
        });
    }
    // A takeover starting and completing, each said once.
    if let Some((_, reason, note)) = changed(ConditionType::TakeoverComplete) {
        out.push(Transition {
            warning: false,
            reason,
            note,
        });
    }
    out
}

#[cfg(test)]
mod tests;
