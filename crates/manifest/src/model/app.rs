//! Applications (long-running workloads) and migrations (one-shot Jobs).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use super::{EnvVar, ImageRef, Probe, Resources, Sizing, VolumeMount};
use crate::lenient;

/// One W&B application: a Deployment, optionally a Service, HPA and Ingress paths.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Application {
    /// Display name; the key in `applications` is authoritative.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Name the app had in the legacy (v1/Helm) layout, for `legacyOverrides` and migration.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub legacy_key: Option<String>,
    /// Default image of the app's containers.
    pub image: Option<ImageRef>,
    /// Default args of the app's containers.
    #[serde(deserialize_with = "lenient::string_vec")]
    pub args: Vec<String>,
    /// Default command of the app's containers.
    #[serde(deserialize_with = "lenient::string_vec")]
    pub command: Vec<String>,
    /// Names of `commonEnvvars` groups, applied in order before `env`.
    #[serde(deserialize_with = "lenient::string_vec")]
    pub common_envs: Vec<String>,
    /// Names of `commonVolumeMounts` groups, applied before `volumeMounts`.
    #[serde(deserialize_with = "lenient::string_vec")]
    pub common_volume_mounts: Vec<String>,
    /// Init containers (the official operator skips one named `migrate`; migrations are Jobs).
    #[serde(deserialize_with = "lenient::nullable")]
    pub init_containers: Vec<Container>,
    /// Containers; empty means one container named after the app (see
    /// [`Application::effective_containers`]).
    #[serde(deserialize_with = "lenient::nullable")]
    pub containers: Vec<Container>,
    /// All of these features must be enabled for the app to be deployed.
    #[serde(deserialize_with = "lenient::string_vec")]
    pub features: Vec<String>,
    /// App-specific env; replaces same-named entries of the common groups.
    #[serde(deserialize_with = "lenient::nullable")]
    pub env: Vec<EnvVar>,
    pub service: Option<Service>,
    /// Inline or ConfigMap-backed files mounted into the containers.
    #[serde(deserialize_with = "lenient::nullable")]
    pub files: Vec<FileSpec>,
    /// Tokens mounted for service-to-service auth.
    #[serde(deserialize_with = "lenient::nullable")]
    pub jwt_tokens: Vec<JwtToken>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Sizing by size key; resolve with [`Application::sizing_for`].
    #[serde(deserialize_with = "lenient::nullable_values")]
    pub sizing: BTreeMap<String, Sizing>,
    /// Public paths routed to this app.
    pub ingress: Option<Ingress>,
}

/// A container of an application. `image`, `args` and `command` fall back to the app's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    pub image: Option<ImageRef>,
    /// `None` (absent or `null`) inherits the app's args; `Some(vec![])` means no args.
    #[serde(deserialize_with = "lenient::opt_string_vec")]
    pub args: Option<Vec<String>>,
    /// `None` inherits the app's command.
    #[serde(deserialize_with = "lenient::opt_string_vec")]
    pub command: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub ports: Vec<ContainerPort>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    /// Container-level resources, applied on top of the resolved sizing.
    pub resources: Option<Resources>,
}

/// A container port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: i32,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub protocol: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
}

/// The app's Service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Service {
    /// `ClusterIP` (default), `NodePort`, ...
    #[serde(rename = "type", deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub ports: Vec<ServicePort>,
}

/// A Service port; `targetPort` defaults to `port`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePort {
    pub port: i32,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub protocol: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    pub target_port: Option<IntOrString>,
}

/// Paths on the public host routed to an app's (or infra's) Service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Ingress {
    #[serde(deserialize_with = "lenient::string_vec")]
    pub paths: Vec<String>,
    /// Service port by number or name. Manifests quote numbers (`"8080"`), so a numeric string
    /// is a number; see [`Application::ingress_port`].
    pub service_port: Option<IntOrString>,
    /// `Prefix` (usual), `Exact` or `ImplementationSpecific`.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub path_type: Option<String>,
}

/// A file mounted into the app's containers, from inline text or an existing ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FileSpec {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Directory the file is mounted into.
    #[serde(deserialize_with = "lenient::string")]
    pub mount_path: String,
    /// File name under `mountPath` (default: `name`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub file_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub inline: Option<String>,
    pub config_map_ref: Option<ConfigMapRef>,
}

/// An existing ConfigMap (and optionally one key of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ConfigMapRef {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub key: Option<String>,
}

/// A token mounted at `mountPath`, from exactly one source.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JwtToken {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub mount_path: String,
    #[serde(deserialize_with = "lenient::nullable")]
    pub source: JwtTokenSource,
}

/// Where a [`JwtToken`] comes from; validation requires exactly one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JwtTokenSource {
    pub kubernetes_service_account: Option<ServiceAccountToken>,
    pub secret_ref: Option<SecretTokenRef>,
    pub csi_provider: Option<CsiProvider>,
}

/// Default lifetime of a projected service-account token, in seconds.
pub const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3607;

fn token_expiration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS))
}

/// A projected service-account token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceAccountToken {
    #[serde(deserialize_with = "lenient::string")]
    pub audience: String,
    /// Default 3607 s, as in the official operator.
    #[serde(deserialize_with = "token_expiration")]
    pub expiration_seconds: i64,
}

impl Default for ServiceAccountToken {
    fn default() -> Self {
        Self {
            audience: String::new(),
            expiration_seconds: DEFAULT_TOKEN_EXPIRATION_SECONDS,
        }
    }
}

/// Default key of a token Secret.
pub const DEFAULT_TOKEN_KEY: &str = "token";

fn token_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient::opt_string(d)?.unwrap_or_else(|| DEFAULT_TOKEN_KEY.to_owned()))
}

/// A token stored in a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SecretTokenRef {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Default `token`.
    #[serde(deserialize_with = "token_key")]
    pub key: String,
}

impl Default for SecretTokenRef {
    fn default() -> Self {
        Self {
            name: String::new(),
            key: DEFAULT_TOKEN_KEY.to_owned(),
        }
    }
}

/// A token provided by a CSI driver (e.g. a secrets-store provider).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CsiProvider {
    #[serde(deserialize_with = "lenient::string")]
    pub driver: String,
    #[serde(deserialize_with = "lenient::string_map")]
    pub parameters: BTreeMap<String, String>,
}

/// A migration Job, run once per version before the applications roll out.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MigrationJob {
    pub image: Option<ImageRef>,
    #[serde(deserialize_with = "lenient::string_vec")]
    pub args: Vec<String>,
    #[serde(deserialize_with = "lenient::string_vec")]
    pub command: Vec<String>,
    #[serde(deserialize_with = "lenient::string_vec")]
    pub common_envs: Vec<String>,
    #[serde(deserialize_with = "lenient::string_vec")]
    pub common_volume_mounts: Vec<String>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub env: Vec<EnvVar>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub volume_mounts: Vec<VolumeMount>,
}
