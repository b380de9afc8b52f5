//! Which apply phases may run, decided from observed facts only (pure).
//!
//! - RBAC, config and infra objects are always applied.
//! - Before an upgrade's migrations, its backup Jobs run once the infra is ready
//!   ([`super::backups`]); migration Jobs for version V run only when every connection Secret
//!   exists (infra ready) and every backup is done.
//! - Applications (and then networking) at V roll out only when every migration Job for V
//!   completed, or when the status already records V as the last successful migration (the
//!   finished Jobs are deleted after that is recorded, and are not re-created).
//! - A failed migration Job stops the rollout: the previous version's Deployments stay untouched.

use super::backups::BackupGate;
use crate::Phase;

/// What a migration Job looks like in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Not created (yet, or deleted after success).
    Missing,
    /// Created, neither complete nor failed.
    Running,
    /// Condition `Complete=True`.
    Complete,
    /// Condition `Failed=True`, with the Job's reason and message.
    Failed { reason: String, message: String },
}

/// One migration Job of the requested version, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationFact {
    pub job: String,
    pub state: JobState,
}

/// The migration gate for the requested version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationGate {
    /// `status.wandb.migration.lastSuccessVersion` already equals the version.
    Recorded,
    /// Every Job completed (or there are none): record it, then delete the Jobs.
    AllComplete,
    /// At least one Job is running, none failed.
    Running,
    /// Some Job is not created yet (and none failed).
    Pending,
    /// A Job failed; the rollout stops here.
    Failed {
        job: String,
        reason: String,
        message: String,
    },
}

impl MigrationGate {
    /// Applications of the version may roll out.
    pub fn succeeded(&self) -> bool {
        matches!(self, MigrationGate::Recorded | MigrationGate::AllComplete)
    }
}

/// Decides the migration gate. A failure wins over everything but an already recorded success.
/// A version without migrations succeeds vacuously, but only once the infra is ready (so that
/// `lastSuccessVersion` never records a version whose database was never reachable); callers
/// pass `infra_ready` false while the upgrade's backups are not done, for the same reason.
pub fn migration_gate(
    version: &str,
    last_success_version: Option<&str>,
    jobs: &[MigrationFact],
    infra_ready: bool,
) -> MigrationGate {
    if last_success_version == Some(version) {
        return MigrationGate::Recorded;
    }
    if jobs.is_empty() && !infra_ready {
        return MigrationGate::Pending;
    }
    if let Some((job, reason, message)) = jobs.iter().find_map(|j| match &j.state {
        JobState::Failed { reason, message } => Some((j.job.clone(), reason, message)),
        _ => None,
    }) {
        return MigrationGate::Failed {
            job,
            reason: reason.clone(),
            message: message.clone(),
        };
    }
    if jobs.iter().all(|j| j.state == JobState::Complete) {
        MigrationGate::AllComplete
    } else if jobs.iter().any(|j| j.state == JobState::Missing) {
        MigrationGate::Pending
    } else {
        MigrationGate::Running
    }
}

/// The migration Jobs to delete: once every Job of the version completed (and the success is
/// being recorded), the finished Jobs go; they are not re-created, as the gate is then
/// [`MigrationGate::Recorded`].
pub fn finished_jobs<'a>(gate: &MigrationGate, jobs: &'a [MigrationFact]) -> Vec<&'a str> {
    if *gate != MigrationGate::AllComplete {
        return vec![];
    }
    jobs.iter()
        .filter(|j| j.state == JobState::Complete)
        .map(|j| j.job.as_str())
        .collect()
}

/// The phases this reconcile may apply, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gates {
    pub infra_ready: bool,
    pub backups: BackupGate,
    pub migrations: MigrationGate,
}

impl Gates {
    /// Whether objects of `phase` may be applied now.
    pub fn open(&self, phase: Phase) -> bool {
        match phase {
            Phase::Rbac | Phase::Config | Phase::Infra => true,
            Phase::Backups => self.infra_ready && self.backups.taking(),
            Phase::Migrations => {
                self.infra_ready
                    && self.backups.done()
                    && matches!(
                        self.migrations,
                        MigrationGate::Pending | MigrationGate::Running
                    )
            }
            Phase::Applications | Phase::Networking => {
                self.infra_ready && self.migrations.succeeded()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(job: &str, state: JobState) -> MigrationFact {
        MigrationFact {
            job: job.into(),
            state,
        }
    }

    fn failed() -> JobState {
        JobState::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        }
    }

    #[test]
    fn recorded_success_wins_even_without_jobs() {
        assert_eq!(
            migration_gate(
                "0.84.0",
                Some("0.84.0"),
                &[fact("a", JobState::Missing)],
                false
            ),
            MigrationGate::Recorded
        );
    }

    #[test]
    fn an_older_recorded_version_does_not_open_the_gate() {
        assert_eq!(
            migration_gate(
                "0.84.0",
                Some("0.79.0"),
                &[fact("a", JobState::Missing)],
                false
            ),
            MigrationGate::Pending
        );
    }

    #[test]
    fn failure_wins_over_running_and_pending() {
        let jobs = [
            fact("a", JobState::Running),
            fact("b", failed()),
            fact("c", JobState::Missing),
        ];
        match migration_gate("1", None, &jobs, true) {
            MigrationGate::Failed { job, reason, .. } => {
                assert_eq!(job, "b");
                assert_eq!(reason, "BackoffLimitExceeded");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn complete_running_pending() {
        let done = [fact("a", JobState::Complete), fact("b", JobState::Complete)];
        assert_eq!(
            migration_gate("1", None, &done, true),
            MigrationGate::AllComplete
        );
        assert_eq!(
            migration_gate("1", None, &[], true),
            MigrationGate::AllComplete
        );
        assert_eq!(
            migration_gate("1", None, &[], false),
            MigrationGate::Pending
        );
        let running = [fact("a", JobState::Complete), fact("b", JobState::Running)];
        assert_eq!(
            migration_gate("1", None, &running, true),
            MigrationGate::Running
        );
        let pending = [fact("a", JobState::Running), fact("b", JobState::Missing)];
        assert_eq!(
            migration_gate("1", None, &pending, true),
            MigrationGate::Pending
        );
    }

    #[test]
    fn finished_jobs_go_only_once_all_completed() {
        let done = [fact("a", JobState::Complete), fact("b", JobState::Complete)];
        assert_eq!(
            finished_jobs(&MigrationGate::AllComplete, &done),
            ["a", "b"]
        );
        let running = [fact("a", JobState::Complete), fact("b", JobState::Running)];
        let gate = migration_gate("1", None, &running, true);
        assert!(finished_jobs(&gate, &running).is_empty());
        assert!(finished_jobs(&MigrationGate::Recorded, &done).is_empty());
    }

    #[test]
    fn phases_open_in_order() {
        let waiting_infra = Gates {
            infra_ready: false,
            backups: BackupGate::NotNeeded,
            migrations: MigrationGate::Pending,
        };
        assert!(waiting_infra.open(Phase::Rbac) && waiting_infra.open(Phase::Config));
        assert!(!waiting_infra.open(Phase::Migrations));
        assert!(!waiting_infra.open(Phase::Applications));

        let migrating = Gates {
            infra_ready: true,
            backups: BackupGate::NotNeeded,
            migrations: MigrationGate::Running,
        };
        assert!(migrating.open(Phase::Migrations));
        assert!(!migrating.open(Phase::Applications) && !migrating.open(Phase::Networking));

        let failed = Gates {
            infra_ready: true,
            backups: BackupGate::NotNeeded,
            migrations: migration_gate("1", None, &[fact("a", failed())], true),
        };
        assert!(!failed.open(Phase::Migrations) && !failed.open(Phase::Applications));

        for m in [MigrationGate::AllComplete, MigrationGate::Recorded] {
            let done = Gates {
                infra_ready: true,
                backups: BackupGate::NotNeeded,
                migrations: m,
            };
            assert!(
                !done.open(Phase::Migrations),
                "finished Jobs are not re-created"
            );
            assert!(done.open(Phase::Applications) && done.open(Phase::Networking));
        }
    }

    #[test]
    fn backups_come_before_migrations() {
        let backing_up = Gates {
            infra_ready: true,
            backups: BackupGate::Running,
            migrations: MigrationGate::Pending,
        };
        assert!(backing_up.open(Phase::Backups));
        assert!(!backing_up.open(Phase::Migrations) && !backing_up.open(Phase::Applications));
        let failed = Gates {
            backups: BackupGate::Failed {
                job: "b".into(),
                reason: "BackoffLimitExceeded".into(),
                message: "m".into(),
            },
            ..backing_up.clone()
        };
        assert!(!failed.open(Phase::Backups) && !failed.open(Phase::Migrations));
        let done = Gates {
            backups: BackupGate::Done,
            ..backing_up.clone()
        };
        assert!(!done.open(Phase::Backups) && done.open(Phase::Migrations));
        let waiting_infra = Gates {
            infra_ready: false,
            ..backing_up
        };
        assert!(!waiting_infra.open(Phase::Backups));
        // No migration Jobs: the version does not succeed vacuously while backups run.
        assert_eq!(
            migration_gate("1", Some("0"), &[], BackupGate::Running.done()),
            MigrationGate::Pending
        );
    }
}
