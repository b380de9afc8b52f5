//! Backing services: each instance is either managed in the cluster or external.
//!
//! External connection details are Secret key selectors (never literals), so credentials stay in
//! Secrets. Managed services are single-node StatefulSets with generated credentials.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, SecretKeySelector, Toleration};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::RetentionSpec;

/// Settings every managed service shares.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCommon {
    /// Overrides `spec.retentionPolicy` for this service's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<RetentionSpec>,
    /// Overrides `spec.affinity` for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Overrides `spec.tolerations` for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Object name of the service (StatefulSet, Service, Secrets, volumes); defaults to
    /// `<name>[-<instance>]-<service>`. Cannot change once set, or be added later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 40))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("a managed service name must be a lowercase DNS label of at most 40 characters"))]
    pub name: Option<String>,
    /// Namespace of the service. Managed services run in the resource's own namespace, beside
    /// the apps (owner references and retention need it); any other value stops the rollout
    /// with a `Stalled` condition naming this field, and nothing is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("a managed service's namespace is immutable"))]
    pub namespace: Option<String>,
    /// Persistent volume size, e.g. `20Gi`; defaults to the manifest sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+([.][0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$') && !self.matches('^0+([.]0+)?[A-Za-z]*$')").message("storageSize must be a positive quantity such as 20Gi"))]
    pub storage_size: Option<String>,
    /// Prometheus metrics for this service (off by default): an exporter sidecar for MySQL
    /// (`prom/mysqld-exporter`, :9104) and Redis (`oliver006/redis_exporter`, :9121), the
    /// server's own endpoint for the object store (:9327) and ClickHouse (:9363); announced
    /// by `prometheus.io/*` pod annotations and a `metrics` Service port. Not available for
    /// Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetrySpec>,
}

/// Exporter toggle.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// Enable the exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Resources of a managed service's containers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedConfig {
    /// Requests and limits; default from the manifest sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// One MySQL instance: `managedMysql` or `externalMysql`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.managedMysql) || has(self.externalMysql)").message("each spec.mysql instance needs managedMysql or externalMysql"),
    validation = Rule::new("!(has(self.managedMysql) && has(self.externalMysql))").message("each spec.mysql instance takes managedMysql or externalMysql, not both"),
)]
// Unknown fields are kept (not pruned, no strict-decoding error) at this one level, so that the
// pre-release un-keyed shape (`mysql: {managedMysql: {replicas: 1}}`) reaches the map's CEL rule,
// whose message shows the instance-keyed form; kubectl's default strict validation would otherwise
// stop at "unknown field spec.mysql.managedMysql.replicas". Nested objects are still pruned and
// strictly checked. The cost: a misspelt field directly under an instance is stored, not refused.
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct MySqlSpec {
    /// MySQL 8 run by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_mysql: Option<ManagedMySql>,
    /// Your MySQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_mysql: Option<ExternalMySql>,
}

/// Managed MySQL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("managedMysql.name cannot change: the service's volumes and credentials are named after it"))]
pub struct ManagedMySql {
    #[serde(flatten)]
    pub common: ManagedCommon,
    /// Replicas of the official operator's API: only 1 (the built-in MySQL is a single server),
    /// accepted so that resources which spell it out keep working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 1").message("managedMysql.replicas above 1 is not supported by wandb-operator: the built-in MySQL is a single server; set 1 or remove it, or use externalMysql for a replicated database"))]
    pub replicas: Option<i32>,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ManagedConfig>,
}

/// External MySQL connection, from Secret keys: a `url`, or host, database, username and
/// password (fields given beside a `url` override its parts).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) || (has(self.host) && has(self.database) && has(self.username) && has(self.password))").message("externalMysql needs url, or host, database, username and password"))]
pub struct ExternalMySql {
    /// A whole connection URL, `mysql://user:password@host:port/database[?tls=...]` (user and
    /// password percent-encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretKeySelector>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<SecretKeySelector>,
    /// Port (default 3306).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SecretKeySelector>,
    /// Database name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<SecretKeySelector>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeySelector>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
    /// TLS mode: `true`, `false`, `skip-verify`, `preferred` (or `custom` with sslCa).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SecretKeySelector>,
    /// CA certificate (PEM), mounted at /etc/ssl/certs/mysql_ca.pem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ca: Option<SecretKeySelector>,
    /// Client certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_cert: Option<SecretKeySelector>,
    /// Client key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_key: Option<SecretKeySelector>,
}

/// One Redis instance: `managedRedis` or `externalRedis`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.managedRedis) || has(self.externalRedis)").message("each spec.redis instance needs managedRedis or externalRedis"),
    validation = Rule::new("!(has(self.managedRedis) && has(self.externalRedis))").message("each spec.redis instance takes managedRedis or externalRedis, not both"),
)]
// Unknown fields are kept at this level, as for `MySqlSpec`.
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct RedisSpec {
    /// Redis 7 run by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_redis: Option<ManagedRedis>,
    /// Your Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_redis: Option<ExternalRedis>,
}

/// Managed Redis.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(oldSelf.storageSize) || (has(self.storageSize) && self.storageSize == oldSelf.storageSize)").message("managedRedis.storageSize cannot be changed once set"),
    validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("managedRedis.name cannot change: the service's volumes and credentials are named after it"),
)]
pub struct ManagedRedis {
    #[serde(flatten)]
    pub common: ManagedCommon,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ManagedConfig>,
    /// Sentinel mode of the official operator's API: only `enabled: false` (the built-in Redis is
    /// a single node without sentinel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelSpec>,
}

/// Redis sentinel settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.enabled) || !self.enabled").message("managedRedis.sentinel.enabled: true is not supported by wandb-operator: Redis Sentinel is not supported by the built-in Redis (a single node); remove it or set false, or use externalRedis with sentinelMaster"),
    validation = Rule::new("!has(self.config)").message("managedRedis.sentinel.config is not supported by wandb-operator: the built-in Redis is a single node without sentinel; remove it"),
)]
pub struct SentinelSpec {
    /// Enable sentinel (only false is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The official operator's sentinel settings (master name, resources). Refused: the built-in
    /// Redis has no sentinel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<SentinelConfig>,
}

/// Official sentinel settings (refused, see [`SentinelSpec::config`]).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SentinelConfig {
    /// Sentinel master name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub master_name: Option<String>,
    /// Sentinel container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// A ServiceAccount of a managed service in the official operator's API (refused where used).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InfraServiceAccount {
    /// Create it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub service_account_name: Option<String>,
    /// Its annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// External Redis connection, from Secret keys: a `url`, or a host (fields given beside a `url`
/// override its parts).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) || has(self.host)").message("externalRedis needs url or host"))]
pub struct ExternalRedis {
    /// A whole connection URL, `redis://[:password@]host:port[?tls=true&master=..&<params>]`
    /// (`rediss://` for TLS; the password percent-encoded; the official operator's
    /// `redis://password:@host` form is read too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretKeySelector>,
    /// Host name (of the sentinel when `sentinelMaster` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<SecretKeySelector>,
    /// Port (default 6379, or 26379 with a sentinel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SecretKeySelector>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
    /// `true` to connect with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SecretKeySelector>,
    /// CA certificate (PEM), mounted at /etc/ssl/certs/redis_ca.pem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ca: Option<SecretKeySelector>,
    /// Sentinel master name; connects through a sentinel when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_master: Option<String>,
    /// Extra URL parameters W&B understands, e.g. `ttlInSeconds: "604800"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
}

/// One object store: `managedObjectStore` or `externalObjectStore`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.managedObjectStore) || has(self.externalObjectStore)").message("each spec.objectStore instance needs managedObjectStore or externalObjectStore"),
    validation = Rule::new("!(has(self.managedObjectStore) && has(self.externalObjectStore))").message("each spec.objectStore instance takes managedObjectStore or externalObjectStore, not both"),
)]
// Unknown fields are kept at this level, as for `MySqlSpec`.
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ObjectStoreSpec {
    /// Disable bucket attribution (`GORILLA_BUCKET_ATTRIBUTION_DISABLED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_attribution_disabled: Option<bool>,
    /// S3-compatible store run by the operator, with its bucket created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_object_store: Option<ManagedObjectStore>,
    /// Your bucket: S3, S3-compatible, GCS, Azure Blob or CoreWeave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_object_store: Option<ExternalObjectStore>,
}

/// Managed object store.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("managedObjectStore.name cannot change: the service's volumes and credentials are named after it"),
)]
pub struct ManagedObjectStore {
    #[serde(flatten)]
    pub common: ManagedCommon,
    /// The official operator's SeaweedFS settings (its capitalised key). `tlsEnabled: false` is
    /// what the built-in store does; TLS and a separate filer volume are refused.
    #[serde(
        default,
        rename = "SeaweedObjectStoreSpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub seaweed: Option<SeaweedSpec>,
    /// Volume servers of the official operator's API: only 1 (the built-in store is a single
    /// server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 1").message("managedObjectStore.replicas above 1 is not supported by wandb-operator: the built-in object store is a single server; set 1 or remove it"))]
    pub replicas: Option<i32>,
    /// Extra copies of each object in the official operator's API: only 0 (one server, one copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 0").message("managedObjectStore.copies above 0 is not supported by wandb-operator: the built-in object store is a single server keeping one copy; set 0 or remove it"))]
    pub copies: Option<i32>,
    /// Container resources; the official operator's access key settings are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ObjectStoreConfig>,
}

/// Resources of the built-in object store, and the official operator's access key settings,
/// which it does not take: its credentials are generated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.accessKey)").message("managedObjectStore.config.accessKey is not supported by wandb-operator: the built-in object store's access key and secret are generated into its connection Secret; remove it"),
    validation = Rule::new("!has(self.rootUser)").message("managedObjectStore.config.rootUser is not supported by wandb-operator: the built-in object store's credentials are generated into its connection Secret; remove it"),
    validation = Rule::new("!has(self.minioBrowserSetting)").message("managedObjectStore.config.minioBrowserSetting is not supported by wandb-operator (the official operator ignores it too); remove it"),
)]
pub struct ObjectStoreConfig {
    /// Requests and limits; default from the manifest sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The official operator's access key name; refused (credentials are generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub access_key: Option<String>,
    /// The official operator's deprecated alias of `accessKey`; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub root_user: Option<String>,
    /// The official operator's deprecated, unused MinIO console switch; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub minio_browser_setting: Option<String>,
}

/// Official SeaweedFS settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.tlsEnabled) || !self.tlsEnabled").message("managedObjectStore.SeaweedObjectStoreSpec.tlsEnabled: true is not supported by wandb-operator: the built-in object store serves plain HTTP inside the cluster; remove it or set false"),
    validation = Rule::new("!has(self.filerStorageSize)").message("managedObjectStore.SeaweedObjectStoreSpec.filerStorageSize is not supported by wandb-operator: the built-in object store keeps its metadata on its data volume (storageSize); remove it"),
)]
pub struct SeaweedSpec {
    /// TLS between W&B and the store (only false is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_enabled: Option<bool>,
    /// Filer volume size (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub filer_storage_size: Option<String>,
}

/// External object store connection, from Secret keys: a `url`, or a bucket and what else the
/// provider needs (fields given beside a `url` override its parts).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) || has(self.bucket)").message("externalObjectStore needs url or bucket"))]
pub struct ExternalObjectStore {
    /// A whole bucket URL as W&B reads it: `s3://[ak:sk@]bucket[/path][?region=..]` (AWS),
    /// `s3://[ak:sk@]host[:port]/bucket[/path]?forcePathStyle=..[&tls=..]` (S3-compatible; told
    /// apart by a port, `forcePathStyle` or `tls`, or a host with a dot followed by a path),
    /// `gs://bucket[/path]`, `az://[:key@]account/container[/path]`, `cw://[ak:sk@]bucket[/path]`
    /// (credentials percent-encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretKeySelector>,
    /// `s3` (default), `gcs`, `azure` or `coreweave`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<SecretKeySelector>,
    /// Custom endpoint host (S3-compatible stores); empty for AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SecretKeySelector>,
    /// Endpoint port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SecretKeySelector>,
    /// Access key (or the Azure storage account). Leave both keys unset for workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<SecretKeySelector>,
    /// Secret key (or the Azure account key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<SecretKeySelector>,
    /// Bucket (or Azure container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<SecretKeySelector>,
    /// Key prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<SecretKeySelector>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<SecretKeySelector>,
    /// KMS key for server-side encryption (S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<SecretKeySelector>,
    /// `true` for https to a custom endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_enabled: Option<SecretKeySelector>,
    /// `true` for path-style addressing (default true for custom endpoints other than CoreWeave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<SecretKeySelector>,
}

/// One ClickHouse instance: `managedClickhouse` or `externalClickhouse`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.managedClickhouse) || has(self.externalClickhouse)").message("each spec.clickhouse instance needs managedClickhouse or externalClickhouse"),
    validation = Rule::new("!(has(self.managedClickhouse) && has(self.externalClickhouse))").message("each spec.clickhouse instance takes managedClickhouse or externalClickhouse, not both"),
)]
// Unknown fields are kept at this level, as for `MySqlSpec`.
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClickHouseSpec {
    /// Single-node ClickHouse run by the operator, with generated credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_clickhouse: Option<ManagedClickHouse>,
    /// Your ClickHouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_clickhouse: Option<ExternalClickHouse>,
}

/// Managed ClickHouse.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("managedClickhouse.name cannot change: the service's volumes and credentials are named after it"),
    validation = Rule::new("!has(self.objectStorage)").message("managedClickhouse.objectStorage is not supported by wandb-operator: the built-in ClickHouse keeps its data on its own volume, not in the object store; remove it"),
    validation = Rule::new("!has(self.serviceAccount)").message("managedClickhouse.serviceAccount is not supported by wandb-operator: the built-in ClickHouse needs no cloud identity (it does not use the object store); remove it"),
)]
pub struct ManagedClickHouse {
    #[serde(flatten)]
    pub common: ManagedCommon,
    /// Replicas of the official operator's API: only 1 (the built-in ClickHouse is a single
    /// node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 1").message("managedClickhouse.replicas above 1 is not supported by wandb-operator: the built-in ClickHouse is a single node; set 1 or remove it, or use externalClickhouse for a replicated cluster"))]
    pub replicas: Option<i32>,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ManagedConfig>,
    /// The official operator's ClickHouse Keeper: only an empty object (the built-in ClickHouse
    /// is a single node and runs no Keeper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper: Option<KeeperSpec>,
    /// The official operator's S3 disk settings (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage: Option<ClickHouseObjectStorage>,
    /// The official operator's ServiceAccount for ClickHouse (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<InfraServiceAccount>,
    /// The official operator's ClickHouse version (which it ignores): refused, as the image comes
    /// from the server manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("false").message("managedClickhouse.version is not supported by wandb-operator: the ClickHouse image comes from the server manifest of spec.wandb.version (the official operator ignores this field too); remove it"))]
    pub version: Option<String>,
}

/// Official ClickHouse S3 disk settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClickHouseObjectStorage {
    /// Key prefix in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub prefix: Option<String>,
    /// Plain HTTP to the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
}

/// The official operator's ClickHouse Keeper settings: each refused (no Keeper runs).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.replicas)").message("managedClickhouse.keeper.replicas is not supported by wandb-operator: the built-in ClickHouse is a single node and runs no Keeper; remove it"),
    validation = Rule::new("!has(self.storageSize)").message("managedClickhouse.keeper.storageSize is not supported by wandb-operator: the built-in ClickHouse is a single node and runs no Keeper; remove it"),
    validation = Rule::new("!has(self.config)").message("managedClickhouse.keeper.config is not supported by wandb-operator: the built-in ClickHouse is a single node without a separate Keeper; remove it"),
)]
pub struct KeeperSpec {
    /// Keeper replicas (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Keeper volume size (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub storage_size: Option<String>,
    /// Keeper container resources (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ManagedConfig>,
}

/// External ClickHouse connection, from Secret keys: a `url`, or host, username and password
/// (fields given beside a `url` override its parts).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) || (has(self.host) && has(self.username) && has(self.password))").message("externalClickhouse needs url, or host, username and password"))]
pub struct ExternalClickHouse {
    /// A whole connection URL: `clickhouse://user:password@host:tcpPort/database[?tls=..&<params>]`
    /// (native protocol; `tcp://` likewise), or `http(s)://user:password@host:httpPort/database`
    /// (user and password percent-encoded; `secure=true` means TLS). Extra parameters are passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretKeySelector>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<SecretKeySelector>,
    /// Native protocol port (default 9000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_port: Option<SecretKeySelector>,
    /// HTTP port (default 8123).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<SecretKeySelector>,
    /// Database (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<SecretKeySelector>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeySelector>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
    /// `true` for a replicated cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<SecretKeySelector>,
    /// Cluster name for replicated tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<SecretKeySelector>,
}

/// Kafka: `managedKafka` or `externalKafka` (at most one; none means managed).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.managedKafka) && has(self.externalKafka))").message("spec.kafka takes managedKafka or externalKafka, not both"))]
pub struct KafkaSpec {
    /// Single-node Kafka in KRaft mode run by the operator, with the manifest's topics created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_kafka: Option<ManagedKafka>,
    /// Your Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_kafka: Option<ExternalKafka>,
}

/// Managed Kafka.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)").message("managedKafka.name cannot change: the service's volumes and credentials are named after it"),
    validation = Rule::new("!has(self.skipDataRecovery) || !self.skipDataRecovery").message("managedKafka.skipDataRecovery: true is not supported by wandb-operator: the built-in Kafka keeps its data on its volume, there is no recovery to skip; remove it or set false"),
    validation = Rule::new("!has(self.serviceAccount)").message("managedKafka.serviceAccount is not supported by wandb-operator: the built-in Kafka needs no cloud identity (it does not use the object store); remove it"),
    validation = Rule::new("!has(self.telemetry) || !has(self.telemetry.enabled) || !self.telemetry.enabled").message("managedKafka.telemetry.enabled: true is not supported by wandb-operator: the built-in Kafka has no metrics exporter; remove it or set false"),
)]
pub struct ManagedKafka {
    #[serde(flatten)]
    pub common: ManagedCommon,
    /// Brokers of the official operator's API: only 1 (the built-in Kafka is a single broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 1").message("managedKafka.replicas above 1 is not supported by wandb-operator: the built-in Kafka is a single broker; set 1 or remove it, or use externalKafka"))]
    pub replicas: Option<i32>,
    /// Container resources, and the official operator's replication settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ManagedKafkaConfig>,
    /// Official: skip data recovery (only false is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_data_recovery: Option<bool>,
    /// Official: the Kafka ServiceAccount (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<InfraServiceAccount>,
}

/// Kafka resources and replication.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedKafkaConfig {
    /// Requests and limits; default from the manifest sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Replication factors: the built-in Kafka is one broker, so each must be 1 (what it uses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_config: Option<KafkaReplicationConfig>,
}

/// Official Kafka replication settings; with one broker only 1 is possible.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.defaultReplicationFactor) ? self.defaultReplicationFactor : 1, has(self.minInSyncReplicas) ? self.minInSyncReplicas : 1, has(self.offsetsTopicRF) ? self.offsetsTopicRF : 1, has(self.transactionStateRF) ? self.transactionStateRF : 1, has(self.transactionStateISR) ? self.transactionStateISR : 1].all(v, v == 1)").message("managedKafka.config.replicationConfig: the built-in Kafka is a single broker, so every replication factor must be 1"))]
pub struct KafkaReplicationConfig {
    /// Default topic replication factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_replication_factor: Option<i32>,
    /// Minimum in-sync replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_in_sync_replicas: Option<i32>,
    /// `__consumer_offsets` replication factor.
    #[serde(
        default,
        rename = "offsetsTopicRF",
        skip_serializing_if = "Option::is_none"
    )]
    pub offsets_topic_rf: Option<i32>,
    /// Transaction state log replication factor.
    #[serde(
        default,
        rename = "transactionStateRF",
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_state_rf: Option<i32>,
    /// Transaction state log minimum ISR.
    #[serde(
        default,
        rename = "transactionStateISR",
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_state_isr: Option<i32>,
}

/// External Kafka connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalKafka {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: SecretKeySelector,
    /// `true` to connect with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SecretKeySelector>,
    /// CA certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ca: Option<SecretKeySelector>,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self in ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']").message("externalKafka.saslMechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeySelector>,
    /// SASL password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
}
