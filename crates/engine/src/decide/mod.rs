//! Decide, purely: from the plan, the observed world and the previous status, which phases may
//! be applied (gates), which finished Jobs go, and what the status says. The controller observes
//! (from its watch caches), calls these, applies what they allow, and writes the status they
//! compute; nothing downstream re-derives a decision.

pub mod backups;
pub mod failure;
pub mod gates;
pub mod observed;
pub mod pod_needs;
pub mod status;
pub mod versions;

pub use backups::{BackupFact, BackupGate, backup_gate};
pub use gates::{Gates, JobState, MigrationFact, MigrationGate, finished_jobs, migration_gate};
pub use status::{
    DeploymentFact, Facts, Failure, FailureKind, InfraFact, ManifestProblem, MissingSecret,
    Transition, compute, transitions,
};

/// How a resource created as `apps.wandb.com/v1` was converted, for the `V1ValuesMapped`
/// condition (reported, never gating Ready).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversionReport {
    pub complete: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What the check of internal service auth's token issuer found, for the `InternalServiceAuth`
/// condition (reported, never gating Ready).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerCheck {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}
