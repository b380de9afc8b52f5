use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::SecretKeySelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Observed state. `conditions` follow Kubernetes conventions (`Ready`, `Reconciling`, `Stalled`
/// and domain conditions), so `kubectl wait --for=condition=Ready` works.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WeightsAndBiasesStatus {
    /// Mirrors the Ready condition.
    #[serde(default)]
    pub ready: bool,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The W&B version whose applications are running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Per-component summary (applications, managed services, migrations).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentStatus>,
    /// Official-API compatible application status (hostname, migration gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wandb: Option<WandbStatus>,
    /// Where each generated secret lives, by manifest name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub generated_secrets: BTreeMap<String, SecretKeySelector>,
    /// Backing services by kind (`mysql`, `redis`, `objectStore`, `clickhouse`, `kafka`) and instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub infra: BTreeMap<String, BTreeMap<String, InfraStatus>>,
    /// The effective email sink Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_sink: Option<SecretKeySelector>,
}

/// One component's state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// `Application`, `Migration`, `MySQL`, ...
    pub kind: String,
    /// Whether the component is ready.
    pub ready: bool,
    /// Ready replicas / desired replicas, e.g. `2/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<String>,
    /// Why it is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Application status in the official API's shape.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WandbStatus {
    /// Effective public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The migration gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
    /// The backups taken before upgrades' migrations, oldest first (the last
    /// `spec.wandb.upgrade.backup.keep` per service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub backups: Vec<BackupRecord>,
}

/// One backup an upgrade used.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// The version whose data it holds (the rollback target).
    pub from_version: String,
    /// The version the upgrade went to.
    pub to_version: String,
    /// `mysql-<instance>` or `clickhouse-<instance>` for a dump the operator took; `external`
    /// for a backup the user acknowledged (`apps.wandb.com/backup-taken`).
    pub service: String,
    /// Where the dump is, and its ID for `wandb-operator restore --backup`:
    /// `s3://<bucket>/backups/<name>/<service>/<from>-<to>-<time>.sql.gz` in the managed object
    /// store, or that path after `backups/` in the PVC `<name>-backups`, with a `.sha256` file
    /// beside it; for an acknowledged backup, the snapshot id the user gave.
    pub location: String,
    /// The Job that took it (none for an acknowledged backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// When it completed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Migrations for a version.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// Version the migrations are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Last version whose migrations all succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_version: Option<String>,
    /// True when every migration of `version` succeeded.
    #[serde(default)]
    pub ready: bool,
    /// Where the migrations of `version` are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MigrationPhase>,
    /// Why the phase is what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Phases of the migrations of one version.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    /// Waiting for the backing services, or not started yet.
    Pending,
    /// At least one migration Job runs.
    Running,
    /// A migration Job failed; the previous version keeps running.
    Failed,
    /// Every migration Job succeeded.
    Succeeded,
}

/// One backing-service instance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InfraStatus {
    /// Who runs the service.
    pub mode: InfraMode,
    /// Whether it is ready for use.
    pub ready: bool,
    /// How the service is doing.
    pub state: InfraState,
    /// Details when not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The Secret the operator publishes the connection in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret: Option<String>,
}

/// Who runs a backing service.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum InfraMode {
    /// A StatefulSet the operator runs.
    #[default]
    Managed,
    /// The user's service, reached with the user's credentials.
    External,
}

/// How a backing service is doing.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum InfraState {
    /// Ready, and (external services) its endpoint answered the preflight.
    Healthy,
    /// Ready, but its endpoint failed the preflight (reported, not gating).
    Degraded,
    /// Not ready yet: starting, or its connection Secret is not written yet.
    #[default]
    Pending,
    /// Failed: a setup Job failed or its inputs are wrong.
    Error,
}

fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    let obj = schema.ensure_object();
    obj.insert("x-kubernetes-list-type".into(), "map".into());
    obj.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

/// Shows a status enum as it is written in the status (`Healthy`, `managed`, ...).
macro_rules! display_as_serialized {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(s)) => f.write_str(&s),
                    _ => Err(std::fmt::Error),
                }
            }
        }
    )*};
}

display_as_serialized!(MigrationPhase, InfraMode, InfraState);
