use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{
    ClickHouseSpec, GlobalSpec, KafkaSpec, MySqlSpec, NetworkingSpec, ObjectStoreSpec, RedisSpec,
    WandbAppSpec, WeightsAndBiasesStatus,
};

/// A complete self-hosted W&B Server: its applications (from the server manifest of
/// `spec.wandb.version`), backing services, networking and upgrades.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "apps.wandb.com",
    version = "v2",
    kind = "WeightsAndBiases",
    plural = "weightsandbiases",
    singular = "weightsandbiases",
    shortname = "wandb",
    category = "wandb",
    namespaced,
    cel,
    status = "WeightsAndBiasesStatus",
    doc = "A self-hosted W&B Server instance managed by wandb-operator.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name must be at most 40 characters: every object the operator creates is named <name>-<component>"),
)]
#[x_kube(
    validation = Rule::new("!has(self.clickhouse) || !has(self.objectStore) || size(self.objectStore) > 0 || self.clickhouse.all(k, !has(self.clickhouse[k].managedClickhouse))").message("spec.objectStore must not be empty when a managed ClickHouse is used"),
)]
#[serde(rename_all = "camelCase")]
pub struct WeightsAndBiasesSpec {
    /// T-shirt size that selects the server manifest's sizing for apps and managed services.
    /// `xxlarge` uses the manifests' `2xlarge` sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,

    /// When false (the default), computed resource limits are dropped and only requests are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_limits: Option<bool>,

    /// What happens to data-bearing objects (PVCs, generated credentials) when this resource is
    /// deleted. Defaults to `detach`: they are kept and re-adopted by a new resource of the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<RetentionSpec>,

    /// Settings that apply to every workload: registry mirror, pull secrets, CAs, proxy, and
    /// the uids of managed services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalSpec>,

    /// The W&B application: public hostname, pinned version, license, auth and features.
    pub wandb: WandbAppSpec,

    /// MySQL instances keyed by instance name (`default` is required when any is given).
    /// Manifest env sources naming another instance (for example `runs`) fall back to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(
        validation = Rule::new("self.all(k, k != 'managedMysql' && k != 'externalMysql')").message("spec.mysql is keyed by instance name; write `mysql: {default: {managedMysql: {...}}}` or `mysql: {default: {externalMysql: {...}}}`"),
        validation = Rule::new("size(self) == 0 || 'default' in self || 'managedMysql' in self || 'externalMysql' in self").message("spec.mysql must have a `default` instance"),
        validation = Rule::new("self.all(k, k == 'managedMysql' || k == 'externalMysql' || (size(k) <= 20 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')))").message("spec.mysql instance names must be lowercase DNS labels of at most 20 characters"),
    )]
    pub mysql: Option<BTreeMap<String, Box<MySqlSpec>>>,

    /// Redis instances keyed by instance name (`default` is required when any is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(
        validation = Rule::new("self.all(k, k != 'managedRedis' && k != 'externalRedis')").message("spec.redis is keyed by instance name; write `redis: {default: {managedRedis: {...}}}` or `redis: {default: {externalRedis: {...}}}`"),
        validation = Rule::new("size(self) == 0 || 'default' in self || 'managedRedis' in self || 'externalRedis' in self").message("spec.redis must have a `default` instance"),
        validation = Rule::new("self.all(k, k == 'managedRedis' || k == 'externalRedis' || (size(k) <= 20 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')))").message("spec.redis instance names must be lowercase DNS labels of at most 20 characters"),
    )]
    pub redis: Option<BTreeMap<String, Box<RedisSpec>>>,

    /// Object stores keyed by instance name (`default` is required when any is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(
        validation = Rule::new("self.all(k, k != 'managedObjectStore' && k != 'externalObjectStore')").message("spec.objectStore is keyed by instance name; write `objectStore: {default: {managedObjectStore: {...}}}` or `objectStore: {default: {externalObjectStore: {...}}}`"),
        validation = Rule::new("size(self) == 0 || 'default' in self || 'managedObjectStore' in self || 'externalObjectStore' in self").message("spec.objectStore must have a `default` instance"),
        validation = Rule::new("self.all(k, k == 'managedObjectStore' || k == 'externalObjectStore' || (size(k) <= 20 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')))").message("spec.objectStore instance names must be lowercase DNS labels of at most 20 characters"),
    )]
    pub object_store: Option<BTreeMap<String, Box<ObjectStoreSpec>>>,

    /// ClickHouse instances keyed by instance name (`default` is required when any is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    #[x_kube(
        validation = Rule::new("self.all(k, k != 'managedClickhouse' && k != 'externalClickhouse')").message("spec.clickhouse is keyed by instance name; write `clickhouse: {default: {managedClickhouse: {...}}}` or `clickhouse: {default: {externalClickhouse: {...}}}`"),
        validation = Rule::new("size(self) == 0 || 'default' in self || 'managedClickhouse' in self || 'externalClickhouse' in self").message("spec.clickhouse must have a `default` instance"),
        validation = Rule::new("self.all(k, k == 'managedClickhouse' || k == 'externalClickhouse' || (size(k) <= 20 && k.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')))").message("spec.clickhouse instance names must be lowercase DNS labels of at most 20 characters"),
    )]
    pub clickhouse: Option<BTreeMap<String, Box<ClickHouseSpec>>>,

    /// Kafka (one instance): managed in the cluster, or external.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSpec>,

    /// How W&B is exposed: no operator-managed edge, an Ingress, or Gateway API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<NetworkingSpec>,

    /// Affinity for application pods and managed services (unless they set their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Tolerations for application pods and managed services (unless they set their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
}

/// T-shirt sizes of the server manifest.
#[derive(
    schemars::JsonSchema,
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    #[default]
    Dev,
    Micro,
    Small,
    Medium,
    Large,
    Xlarge,
    Xxlarge,
}

impl Size {
    /// The key that server manifests use for this size (they write `2xlarge`).
    pub fn manifest_key(self) -> &'static str {
        match self {
            Size::Dev => "dev",
            Size::Micro => "micro",
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
            Size::Xlarge => "xlarge",
            Size::Xxlarge => "2xlarge",
        }
    }
}

/// Retention of data-bearing objects on delete.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// `detach` keeps PVCs and generated credentials (owner references removed); `purge` deletes them.
    #[serde(default)]
    pub on_delete: RetentionPolicy,
}

/// `detach` keeps data on delete; `purge` removes it.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    #[default]
    Detach,
    Purge,
}
