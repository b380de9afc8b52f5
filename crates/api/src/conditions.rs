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
    pub const AS_EXPECTED: &'static str = "AsExpected";
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
