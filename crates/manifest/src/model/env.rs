//! Env vars and volume mounts: the wiring between applications and backing services.

use k8s_openapi::api::core::v1::EnvVarSource;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use crate::lenient::{self, open_enum};

/// One environment variable of an application or migration.
///
/// Resolution order (done by the engine, §2.2): literal `value`, then `valueFrom` passthrough,
/// then `sources` (components joined with `,`), then `defaultValue`; if nothing resolves the
/// variable is omitted.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVar {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Literal value; any YAML scalar is accepted and kept as text (`value: 0` -> `"0"`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
    /// Kubernetes `valueFrom`, passed through unchanged.
    pub value_from: Option<EnvVarSource>,
    /// Values computed from backing services, the CR or other applications.
    ///
    /// `source:` is accepted as an alias: the 0.79.0/0.84.0 manifests spell `REACT_APP_HOST`
    /// that way and the official operator silently drops it, leaving the frontend without its
    /// host. We read it. (Writing both `source:` and `sources:` on one var is a duplicate-field
    /// error.)
    #[serde(alias = "source", deserialize_with = "lenient::nullable")]
    pub sources: Vec<EnvSource>,
    /// Used when no source resolves.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub default_value: Option<String>,
}

open_enum! {
    /// What an [`EnvSource`] reads from.
    pub enum EnvSourceType {
        /// MySQL connection URL of instance `name` (fallback `default`).
        Mysql => "mysql",
        /// Redis connection URL.
        Redis => "redis",
        /// Object store connection (`url`, or `field` host/port/region).
        Bucket => "bucket",
        /// ClickHouse connection field.
        Clickhouse => "clickhouse",
        /// Kafka connection (`url`, host, port).
        Kafka => "kafka",
        /// Telemetry (OTel/statsd/Datadog) settings.
        Telemetry => "telemetry",
        /// A secret from `generatedSecrets`, by `name`.
        GeneratedSecret => "generatedSecret",
        /// In-cluster URL of another application's Service.
        Service => "service",
        /// JSON map of trusted service-account subjects to issuers.
        JwtIssuerMap => "jwt-issuer-map",
        /// Dotted path (`field`) into the custom resource.
        CustomResource => "custom-resource",
    }
}

/// One component of an env var's value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvSource {
    /// Instance, secret, or application name, depending on `type`.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: EnvSourceType,
    /// Which part of the source (e.g. `host`, `region`, or a CR path for `custom-resource`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub field: Option<String>,
    /// URL scheme for `service` sources (`http`); empty means `host:port` only.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub proto: Option<String>,
    /// Path suffix for `service` sources.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub path: Option<String>,
    /// Port for `service` sources: number, or a named Service/container port.
    pub port: Option<IntOrString>,
    /// Extra parameters seen in manifests (`params: {concurrency: 10}`); not interpreted by the
    /// official operator, kept for the engine.
    pub params: Option<serde_json::Value>,
}

/// A volume mounted into an application or migration pod.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(deserialize_with = "lenient::string")]
    pub mount_path: String,
    /// Volume name in the pod.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::nullable")]
    pub source: VolumeSource,
}

open_enum! {
    /// Kind of volume behind a [`VolumeMount`]. Other kinds parse as `Unknown` and are rejected by
    /// validation with the app and mount named (the official operator fails the reconcile).
    pub enum VolumeSourceType {
        Secret => "secret",
        ConfigMap => "configMap",
        EmptyDir => "emptyDir",
    }
}

/// The object behind a volume.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeSource {
    #[serde(rename = "type")]
    pub kind: VolumeSourceType,
    /// Secret or ConfigMap name (unused for `emptyDir`).
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
}
