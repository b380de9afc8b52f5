//! Condition types and reasons, and a pure setter that keeps `lastTransitionTime` stable.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types written by the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// Everything is up at the requested version.
    Ready,
    /// The operator is working towards the desired state.
    Reconciling,
    /// Progress needs a user's action (bad input, failing migration, missing Secret).
    Stalled,
    /// The server manifest for the version was loaded and is usable.
    ManifestLoaded,
    /// Every backing service is reachable and ready.
    InfraReady,
    /// Migrations for the requested version succeeded.
    MigrationsComplete,
    /// Every application Deployment is available at the requested version.
    ApplicationsReady,
    /// W&B's internal service auth can check ServiceAccount tokens: the issuer's discovery
    /// document is readable as the apps read it (reported, not gating Ready; absent when
    /// `spec.wandb.internalServiceAuth.enabled` is false).
    InternalServiceAuth,
    /// The annotation `apps.wandb.com/paused: "true"` stops every write for the instance.
    Paused,
    /// The resource was created as `apps.wandb.com/v1` (operator-wandb chart values): True when
    /// every value was carried over, False naming the v1 value paths that were not (reported,
    /// not gating Ready; absent for resources created as v2).
    V1ValuesMapped,
    /// An installation of the official operator (v1 Helm chart or v2) is being taken over in
    /// place: True once every workload ours replace is gone (reported, not gating Ready;
    /// absent when there is no predecessor).
    TakeoverComplete,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::ManifestLoaded => "ManifestLoaded",
            ConditionType::InfraReady => "InfraReady",
            ConditionType::MigrationsComplete => "MigrationsComplete",
            ConditionType::ApplicationsReady => "ApplicationsReady",
            ConditionType::InternalServiceAuth => "InternalServiceAuth",
            ConditionType::Paused => "Paused",
            ConditionType::V1ValuesMapped => "V1ValuesMapped",
            ConditionType::TakeoverComplete => "TakeoverComplete",
        }
    }
}

/// Condition reasons (CamelCase, stable: tools match on them).
pub struct Reason;

impl Reason {
    pub const SUCCEEDED: &'static str = "ReconciliationSucceeded";
    pub const PROGRESSING: &'static str = "Progressing";
    pub const MANIFEST_INVALID: &'static str = "ManifestInvalid";
    pub const MANIFEST_UNAVAILABLE: &'static str = "ManifestUnavailable";
    pub const MANIFEST_INCOMPATIBLE: &'static str = "ManifestIncompatible";
    pub const SECRET_MISSING: &'static str = "SecretMissing";
    pub const INVALID_SPEC: &'static str = "InvalidSpec";
    pub const DEPENDENCIES_NOT_READY: &'static str = "DependenciesNotReady";
    pub const MIGRATION_PENDING: &'static str = "MigrationPending";
    pub const MIGRATION_RUNNING: &'static str = "MigrationRunning";
    pub const MIGRATION_FAILED: &'static str = "MigrationFailed";
    pub const APPLICATIONS_NOT_READY: &'static str = "ApplicationsNotReady";
    /// `networking.mode: gateway` in a cluster without the Gateway API CRDs.
    pub const GATEWAY_API_MISSING: &'static str = "GatewayAPIMissing";
    /// Every v1 value was carried over to v2.
    pub const CONVERSION_COMPLETE: &'static str = "ConversionComplete";
    /// Some v1 values were not carried over (the message names their paths).
    pub const CONVERSION_INCOMPLETE: &'static str = "ConversionIncomplete";
    pub const AS_EXPECTED: &'static str = "AsExpected";
    /// The predecessor's workloads that ours replace wait for ours to be Available.
    pub const TAKEOVER_IN_PROGRESS: &'static str = "TakeoverInProgress";
    /// Every predecessor workload ours replace is gone.
    pub const TAKEOVER_COMPLETE: &'static str = "TakeoverComplete";
    /// A predecessor's workload has the name of one of ours and cannot be replaced in place.
    pub const TAKEOVER_COLLISION: &'static str = "TakeoverCollision";
    /// The API server refused a write and will refuse it again (invalid, too large, immutable).
    pub const WRITE_REFUSED: &'static str = "WriteRefused";
    /// The API server forbade a request (the operator's RBAC, or a ResourceQuota); retried.
    pub const FORBIDDEN: &'static str = "Forbidden";
    /// The API server could not be reached or answered with a transient error; retried.
    pub const API_UNAVAILABLE: &'static str = "APIUnavailable";
    /// A bug in the operator (please report it); retried.
    pub const INTERNAL_ERROR: &'static str = "InternalError";
    /// `spec.wandb.version` is older than a version whose migrations already ran.
    pub const DOWNGRADE_REFUSED: &'static str = "DowngradeRefused";
    /// A backup Job before an upgrade's migrations failed; the previous version keeps running.
    pub const BACKUP_FAILED: &'static str = "BackupFailed";
    /// The backups before an upgrade's migrations are being taken.
    pub const BACKUP_RUNNING: &'static str = "BackupRunning";
    /// `spec.wandb.upgrade.backup.mode: required` waits for `apps.wandb.com/backup-taken`.
    pub const BACKUP_REQUIRED: &'static str = "BackupRequired";
    /// Paused by the `apps.wandb.com/paused` annotation.
    pub const PAUSED: &'static str = "Paused";
    /// A Secret, key, ConfigMap, ServiceAccount or PersistentVolumeClaim a pod reads is missing.
    pub const POD_INPUT_MISSING: &'static str = "PodInputMissing";
    /// A workload's controller could not create its pods (`FailedCreate`).
    pub const POD_CREATION_FAILED: &'static str = "PodCreationFailed";
    /// Clients without credentials may not read the in-cluster issuer's discovery document.
    pub const ISSUER_DISCOVERY_FORBIDDEN: &'static str = "IssuerDiscoveryForbidden";
    /// The cluster's tokens carry another issuer than `internalServiceAuth.oidcIssuer`.
    pub const ISSUER_MISMATCH: &'static str = "IssuerMismatch";
    /// The issuer's discovery document could not be read at all.
    pub const ISSUER_UNREACHABLE: &'static str = "IssuerUnreachable";
}

/// Sets (or replaces) the condition of `type_`, keeping `lastTransitionTime` when the status did
/// not change so that an unchanged state writes an identical status.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let message = message.into();
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == type_.as_str() && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    let new = Condition {
        type_: type_.as_str().to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => *existing = new,
        None => conditions.push(new),
    }
}
