//! Serde types for the W&B server manifest (format: reference `wandb-operator.md` §2.1).
//!
//! Design rules, applied to every type here:
//!
//! * Unknown keys are ignored (no `deny_unknown_fields`): manifests gain keys faster than
//!   operators, and a newer manifest must still load.
//! * Every field has a default (struct-level `#[serde(default)]`), including fields the format
//!   treats as required. A file of a multi-file manifest may carry only a fragment (0.84.0's
//!   `sizing.yaml` holds just `applications.<app>.sizing`), so each file is type-checked alone
//!   and required-ness is checked once, on the merged result, by [`crate::validate`].
//! * `null` (YAML `key:` with nothing) is the empty value for collections (see
//!   [`crate::lenient`]).
//! * Field names are the manifest's camelCase spelling.

mod app;
mod env;
mod probe;
mod sizing;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use app::{
    Application, ConfigMapRef, Container, ContainerPort, CsiProvider, FileSpec, Ingress, JwtToken,
    JwtTokenSource, MigrationJob, SecretTokenRef, Service, ServiceAccountToken, ServicePort,
};
pub use env::{EnvSource, EnvSourceType, EnvVar, VolumeMount, VolumeSource, VolumeSourceType};
pub use probe::{ExecAction, GrpcAction, HttpGetAction, HttpHeader, Probe, TcpSocketAction};
pub use sizing::{Autoscaling, HorizontalAutoscaling, Resources, Sizing};

use crate::lenient;

/// A whole server manifest: the merge of all files of one W&B Server version.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerManifest {
    /// Semver requirement on the operator's manifest-format level (e.g. `^2.0.0`); see
    /// [`crate::compat`].
    #[serde(deserialize_with = "lenient::opt_string")]
    pub required_operator_version: Option<String>,
    /// Informational format tag some manifests carry (`v1alpha1`); not interpreted.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub manifest_version: Option<String>,
    /// Feature flags gating applications and Kafka topics; the CR may override them.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub features: BTreeMap<String, bool>,
    /// Random secrets the operator creates once and never rotates.
    #[serde(deserialize_with = "lenient::nullable")]
    pub generated_secrets: Vec<GeneratedSecret>,
    /// Named, reusable env groups referenced by `commonEnvs`.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub common_envvars: BTreeMap<String, Vec<EnvVar>>,
    /// Named, reusable volume-mount groups referenced by `commonVolumeMounts`.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub common_volume_mounts: BTreeMap<String, Vec<VolumeMount>>,
    /// Object store instances (key = CR instance name, `default` is the fallback).
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub bucket: BTreeMap<String, InfraConfig>,
    /// ClickHouse instances.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub clickhouse: BTreeMap<String, InfraConfig>,
    /// ClickHouse Keeper instances.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub clickhouse_keeper: BTreeMap<String, InfraConfig>,
    /// MySQL instances; besides `default`, logical databases (`metadata`, `runs`, `usage`) that a
    /// CR may split into separate instances.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub mysql: BTreeMap<String, InfraConfig>,
    /// Redis instances.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub redis: BTreeMap<String, InfraConfig>,
    /// Kafka (single cluster): sizing, images and topics to create.
    #[serde(deserialize_with = "lenient::nullable")]
    pub kafka: Kafka,
    /// The W&B applications, by name (one Deployment each).
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub applications: BTreeMap<String, Application>,
    /// Jobs run once per version before applications roll out, by name.
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub migrations: BTreeMap<String, MigrationJob>,
}

/// A secret the operator generates (`<cr>-<name>`, or exactly `<name>` with `useExactName`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GeneratedSecret {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Number of random characters (default 32, also when written as `length:` with no value).
    #[serde(deserialize_with = "secret_length")]
    pub length: u32,
    /// Character class (`password` in all known manifests). The official operator never reads
    /// it (§9.10); it is kept so the engine can honour it.
    #[serde(rename = "type", deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    /// Name the Secret exactly `name`, not `<cr>-<name>` (for secrets other tools look up).
    #[serde(deserialize_with = "lenient::nullable")]
    pub use_exact_name: bool,
}

impl Default for GeneratedSecret {
    fn default() -> Self {
        Self {
            name: String::new(),
            length: DEFAULT_SECRET_LENGTH,
            kind: None,
            use_exact_name: false,
        }
    }
}

/// Default length of a generated secret.
pub const DEFAULT_SECRET_LENGTH: u32 = 32;

fn secret_length<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.unwrap_or(DEFAULT_SECRET_LENGTH))
}

/// Per-instance configuration of a backing service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InfraConfig {
    /// Sizing by size key (`default`, `dev`, `small`, ... `2xlarge`).
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub sizing: BTreeMap<String, Sizing>,
    /// Route to the service through the public endpoint (e.g. `/bucket` for a managed store).
    pub ingress: Option<Ingress>,
    /// Images by role (`mysql`, `exporter`, `standalone`, `seaweedfs`, ...).
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub images: BTreeMap<String, ImageRef>,
}

/// Kafka settings (one cluster per W&B instance).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Kafka {
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub sizing: BTreeMap<String, Sizing>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub topics: Vec<KafkaTopic>,
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub images: BTreeMap<String, ImageRef>,
}

/// A Kafka topic the operator creates, optionally gated by features.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KafkaTopic {
    /// Logical name (stable key).
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Topic name on the broker.
    #[serde(deserialize_with = "lenient::string")]
    pub topic: String,
    /// Partitions; `None` lets the engine pick (the official operator uses 1).
    pub partition_count: Option<i32>,
    /// All of these features must be enabled for the topic to exist.
    #[serde(deserialize_with = "lenient::string_vec")]
    pub features: Vec<String>,
}

/// A container image. Older manifests put the registry inside `repository`
/// (`us-docker.pkg.dev/wandb-production/public/wandb/megabinary`); newer ones split it out.
/// See [`ImageRef::reference`] for how the final reference is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageRef {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub registry: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub repository: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub tag: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub digest: Option<String>,
}
