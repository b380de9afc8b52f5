//! The backup gate before an upgrade's migrations, and the backup records of the status (pure).
//!
//! - No upgrade (first install, same version, a restored version, `mode: none`): nothing to wait
//!   for.
//! - A failed backup Job stops the upgrade (`BackupFailed`): no migration starts, the running
//!   version keeps serving.
//! - Migrations start once every backup Job completed and, with `mode: required` and an
//!   external database, the user acknowledged a backup of it
//!   (`apps.wandb.com/backup-taken: "<version>:<snapshot id>"`).

use wandb_api::BackupRecord;

use super::gates::JobState;

/// One backup Job of the upgrade, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupFact {
    pub job: String,
    /// `mysql-default`, ...
    pub service: String,
    pub from: String,
    pub to: String,
    /// The dump's path in the backups PVC (from the live Job's annotation once it exists).
    pub location: String,
    pub state: JobState,
    /// When the Job completed (RFC 3339).
    pub completed: Option<String>,
}

/// What the upgrade's backups allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupGate {
    /// No backup is needed for this version.
    NotNeeded,
    /// Every backup was taken (and acknowledged when required): migrations may run.
    Done,
    /// Some backup Job is not created yet.
    Pending,
    /// Backup Jobs run.
    Running,
    /// `mode: required` with external databases: waiting for the acknowledgement.
    AwaitingAcknowledgement { version: String, external: String },
    /// A backup Job failed; the upgrade stops here.
    Failed {
        job: String,
        reason: String,
        message: String,
    },
}

impl BackupGate {
    /// Migrations may start.
    pub fn done(&self) -> bool {
        matches!(self, BackupGate::NotNeeded | BackupGate::Done)
    }

    /// Backup Jobs may be created.
    pub fn taking(&self) -> bool {
        matches!(self, BackupGate::Pending | BackupGate::Running)
    }
}

/// The acknowledged snapshot id for the upgrade to `version`, from the annotation's value.
pub fn acknowledged<'a>(annotation: Option<&'a str>, version: &str) -> Option<&'a str> {
    let (v, id) = annotation?.split_once(':')?;
    (v.trim() == version && !id.trim().is_empty()).then(|| id.trim())
}

/// Decides the backup gate. `upgrade_to` is the version upgraded to (`None`: no backup needed);
/// `external` names the external databases `mode: required` waits for (empty otherwise).
pub fn backup_gate(
    upgrade_to: Option<&str>,
    jobs: &[BackupFact],
    external: &[String],
    acknowledgement: Option<&str>,
) -> BackupGate {
    let Some(version) = upgrade_to else {
        return BackupGate::NotNeeded;
    };
    if let Some(j) = jobs
        .iter()
        .find(|j| matches!(j.state, JobState::Failed { .. }))
    {
        let JobState::Failed { reason, message } = &j.state else {
            unreachable!()
        };
        return BackupGate::Failed {
            job: j.job.clone(),
            reason: reason.clone(),
            message: message.clone(),
        };
    }
    if jobs.iter().any(|j| j.state == JobState::Missing) {
        return BackupGate::Pending;
    }
    if jobs.iter().any(|j| j.state == JobState::Running) {
        return BackupGate::Running;
    }
    if !external.is_empty() && acknowledged(acknowledgement, version).is_none() {
        return BackupGate::AwaitingAcknowledgement {
            version: version.to_string(),
            external: external.join(", "),
        };
    }
    BackupGate::Done
}

/// The backup gate of `cr` (planned as `inst`) from its observed backup Jobs, and the external
/// backup the user acknowledged for this upgrade `(from, to, snapshot id)`, if any.
pub fn decide(
    cr: &wandb_api::WeightsAndBiases,
    inst: &crate::Instance,
    jobs: &[BackupFact],
) -> (BackupGate, Option<(String, String, String)>) {
    use crate::backends::managed::backup;
    let Some(up) = backup::upgrade_of(cr) else {
        return (BackupGate::NotNeeded, None);
    };
    let external: Vec<String> = if backup::mode(cr) == wandb_api::BackupMode::Required {
        backup::external_databases(inst)
            .into_iter()
            .map(|(kind, i)| format!("{} {i}", kind.key()))
            .collect()
    } else {
        vec![]
    };
    let annotation = cr
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::names::BACKUP_TAKEN_ANNOTATION))
        .map(String::as_str);
    let gate = backup_gate(Some(&up.to), jobs, &external, annotation);
    let ack = (!external.is_empty())
        .then(|| acknowledged(annotation, &up.to))
        .flatten()
        .map(|id| (up.from.clone(), up.to.clone(), id.to_string()));
    (gate, ack)
}

/// The backup Jobs not to create yet: every Job after the first one that has not completed.
/// The dumps of an upgrade share the backups PVC, which is `ReadWriteOnce`: two dump pods on
/// different nodes could not both mount it, so the Jobs run one after the other, in plan order.
/// Only Jobs that do not exist are held back (an existing Job is observed, never deleted here).
pub fn held_back(jobs: &[BackupFact]) -> Vec<String> {
    let Some(first_open) = jobs.iter().position(|j| j.state != JobState::Complete) else {
        return vec![];
    };
    jobs[first_open + 1..]
        .iter()
        .filter(|j| j.state == JobState::Missing)
        .map(|j| j.job.clone())
        .collect()
}

/// The status's backup records: the previous ones plus the backups of this upgrade that
/// completed (and an acknowledged external one), the last `keep` per service, oldest first.
pub fn records(
    prev: &[BackupRecord],
    jobs: &[BackupFact],
    acknowledged_external: Option<(&str, &str, &str)>,
    keep: usize,
) -> Vec<BackupRecord> {
    let mut out: Vec<BackupRecord> = prev.to_vec();
    let mut add = |r: BackupRecord| {
        // A dump's location carries its time: a second attempt of an upgrade is a new record.
        if !out
            .iter()
            .any(|p| p.service == r.service && p.location == r.location)
        {
            out.push(r);
        }
    };
    for j in jobs.iter().filter(|j| j.state == JobState::Complete) {
        add(BackupRecord {
            from_version: j.from.clone(),
            to_version: j.to.clone(),
            service: j.service.clone(),
            location: j.location.clone(),
            job: Some(j.job.clone()),
            time: j.completed.clone(),
        });
    }
    if let Some((from, to, id)) = acknowledged_external {
        add(BackupRecord {
            from_version: from.into(),
            to_version: to.into(),
            service: "external".into(),
            location: id.into(),
            job: None,
            time: None,
        });
    }
    // The last `keep` of each service.
    let mut kept = Vec::with_capacity(out.len());
    for (i, r) in out.iter().enumerate() {
        let newer = out[i + 1..]
            .iter()
            .filter(|x| x.service == r.service)
            .count();
        if newer < keep {
            kept.push(r.clone());
        }
    }
    kept
}

/// A backup Job that exists, for [`retired`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptJob {
    pub name: String,
    pub service: String,
    pub from: String,
    pub to: String,
    /// Creation time, for ordering (RFC 3339 sorts as text).
    pub created: String,
}

/// The backup Jobs to delete: those of an upgrade from the version the instance settled on that
/// is not the one in progress (abandoned, or rolled back by a restore: a new attempt must take
/// a fresh dump, not find the old Job complete), and beyond the newest `keep` per service.
/// Their records stay in the status and their dumps in the PVC (pruned by the dump script).
pub fn retired(
    jobs: &[KeptJob],
    last_success: Option<&str>,
    upgrade_to: Option<&str>,
    keep: usize,
) -> Vec<String> {
    let stale =
        |j: &KeptJob| Some(j.from.as_str()) == last_success && Some(j.to.as_str()) != upgrade_to;
    let mut out: Vec<String> = jobs
        .iter()
        .filter(|j| stale(j))
        .map(|j| j.name.clone())
        .collect();
    let mut by_service: std::collections::BTreeMap<&str, Vec<&KeptJob>> = Default::default();
    for j in jobs.iter().filter(|j| !stale(j)) {
        by_service.entry(&j.service).or_default().push(j);
    }
    for (_, mut list) in by_service {
        list.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
        let excess = list.len().saturating_sub(keep);
        out.extend(list.into_iter().take(excess).map(|j| j.name.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(job: &str, state: JobState) -> BackupFact {
        BackupFact {
            job: job.into(),
            service: "mysql-default".into(),
            from: "0.79.0".into(),
            to: "0.84.0".into(),
            location: "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz".into(),
            state,
            completed: Some("2026-12-06T21:00:05Z".into()),
        }
    }

    #[test]
    fn the_gate_waits_for_every_backup_and_a_failure_stops_it() {
        assert_eq!(backup_gate(None, &[], &[], None), BackupGate::NotNeeded);
        let v = Some("0.84.0");
        assert_eq!(
            backup_gate(v, &[fact("a", JobState::Missing)], &[], None),
            BackupGate::Pending
        );
        assert_eq!(
            backup_gate(
                v,
                &[fact("a", JobState::Complete), fact("b", JobState::Running)],
                &[],
                None
            ),
            BackupGate::Running
        );
        let failed = JobState::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        };
        match backup_gate(
            v,
            &[fact("a", JobState::Running), fact("b", failed)],
            &[],
            None,
        ) {
            BackupGate::Failed { job, reason, .. } => {
                assert_eq!(
                    (job.as_str(), reason.as_str()),
                    ("b", "BackoffLimitExceeded")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            backup_gate(v, &[fact("a", JobState::Complete)], &[], None),
            BackupGate::Done
        );
        assert!(!BackupGate::Pending.done() && BackupGate::Pending.taking());
    }

    #[test]
    fn backup_jobs_run_one_after_the_other() {
        use JobState::*;
        let names = |v: Vec<String>| v.join(",");
        assert_eq!(names(held_back(&[])), "");
        // Nothing created yet: only the first may be.
        assert_eq!(
            names(held_back(&[fact("a", Missing), fact("b", Missing)])),
            "b"
        );
        assert_eq!(
            names(held_back(&[fact("a", Running), fact("b", Missing)])),
            "b"
        );
        // The first completed: the second may start.
        assert_eq!(
            names(held_back(&[fact("a", Complete), fact("b", Missing)])),
            ""
        );
        // A failed dump holds the rest back (the upgrade stops there anyway).
        let failed = Failed {
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
        };
        assert_eq!(
            names(held_back(&[
                fact("a", failed),
                fact("b", Missing),
                fact("c", Missing)
            ])),
            "b,c"
        );
        // An existing later Job is never held back (it is observed, not re-created).
        assert_eq!(
            names(held_back(&[fact("a", Missing), fact("b", Running)])),
            ""
        );
    }

    #[test]
    fn required_waits_for_the_acknowledgement_of_that_version() {
        let ext = vec!["mysql default".to_string()];
        let v = Some("0.84.0");
        assert!(matches!(
            backup_gate(v, &[], &ext, None),
            BackupGate::AwaitingAcknowledgement { .. }
        ));
        assert!(matches!(
            backup_gate(v, &[], &ext, Some("0.83.0:snap-1")),
            BackupGate::AwaitingAcknowledgement { .. }
        ));
        assert!(matches!(
            backup_gate(v, &[], &ext, Some("0.84.0:")),
            BackupGate::AwaitingAcknowledgement { .. }
        ));
        assert_eq!(
            backup_gate(v, &[], &ext, Some("0.84.0:rds:snap-1")),
            BackupGate::Done
        );
        assert_eq!(
            acknowledged(Some("0.84.0:rds:snap-1"), "0.84.0"),
            Some("rds:snap-1")
        );
    }

    #[test]
    fn records_add_completed_backups_once_and_keep_the_last_n_per_service() {
        let mut prev = Vec::new();
        for (i, to) in ["0.80.0", "0.81.0", "0.82.0"].iter().enumerate() {
            prev.push(BackupRecord {
                from_version: format!("0.7{i}.0"),
                to_version: (*to).into(),
                service: "mysql-default".into(),
                location: format!("l{i}"),
                job: None,
                time: None,
            });
        }
        let jobs = [fact("a", JobState::Complete), fact("b", JobState::Running)];
        let r = records(&prev, &jobs, Some(("0.79.0", "0.84.0", "snap-1")), 2);
        let got: Vec<(&str, &str)> = r
            .iter()
            .map(|r| (r.service.as_str(), r.location.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("mysql-default", "l2"),
                (
                    "mysql-default",
                    "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz"
                ),
                ("external", "snap-1"),
            ]
        );
        assert_eq!(records(&r, &jobs, None, 2), r, "recorded once");
    }

    #[test]
    fn abandoned_and_excess_backup_jobs_are_retired() {
        let job = |name: &str, service: &str, from: &str, to: &str, created: &str| KeptJob {
            name: name.into(),
            service: service.into(),
            from: from.into(),
            to: to.into(),
            created: created.into(),
        };
        let jobs = [
            job(
                "a",
                "mysql-default",
                "0.70.0",
                "0.75.0",
                "2026-01-01T00:00:00Z",
            ),
            job(
                "b",
                "mysql-default",
                "0.75.0",
                "0.79.0",
                "2026-02-01T00:00:00Z",
            ),
            job(
                "c",
                "mysql-default",
                "0.79.0",
                "0.84.0",
                "2026-03-01T00:00:00Z",
            ),
            job(
                "d",
                "clickhouse-default",
                "0.75.0",
                "0.79.0",
                "2026-02-01T00:00:00Z",
            ),
        ];
        // Settled at 0.84.0: nothing stale, two kept per service.
        assert_eq!(retired(&jobs, Some("0.84.0"), None, 2), ["a"]);
        // Upgrading 0.79.0 -> 0.84.0: its own Job stays.
        assert_eq!(
            retired(&jobs, Some("0.79.0"), Some("0.84.0"), 5),
            Vec::<String>::new()
        );
        // Back at 0.79.0 (restored, or the upgrade abandoned): its upgrade's Job goes.
        assert_eq!(retired(&jobs, Some("0.79.0"), None, 5), ["c"]);
        // Now upgrading 0.79.0 -> 0.85.0 instead.
        assert_eq!(retired(&jobs, Some("0.79.0"), Some("0.85.0"), 5), ["c"]);
    }
}
