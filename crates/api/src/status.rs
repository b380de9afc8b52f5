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
    /// `Pending`, `Running`, `Failed` or `Succeeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why the phase is what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Attempts made for a failing migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
}

/// One backing-service instance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InfraStatus {
    /// `managed` or `external`.
    pub mode: String,
    /// Whether it is ready for use.
    pub ready: bool,
    /// `Healthy`, `Pending`, `Unavailable` or `Error`.
    pub state: String,
    /// Details when not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The Secret the operator publishes the connection in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret: Option<String>,
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
