//! Managed (built-in) services: one single-node StatefulSet each, for dev and small installs,
//! needing no other operator.
//!
//! | kind | image (default, pinned) | data | uid | setup Job |
//! |---|---|---|---|---|
//! | MySQL | `docker.io/library/mysql:8.4.8` | `/var/lib/mysql/data` | 999 | — (the image creates db and user) |
//! | Redis | `docker.io/library/redis:7.4.7` | `/data` | 999 | — |
//! | object store | `docker.io/chrislusf/seaweedfs:4.35` | `/data` | 1000 | bucket `wandb` (`weed shell`) |
//! | ClickHouse | `docker.io/clickhouse/clickhouse-server:25.8.29.51` | `/var/lib/clickhouse` | 101 | — (the image creates db and user) |
//! | Kafka (KRaft) | `docker.io/apache/kafka:3.9.1` | `/var/lib/kafka/data/logs` | 1000 | manifest topics (`kafka-topics.sh --if-not-exists`) |
//!
//! Images: the manifest's image for the role is used when it is the same plain image (Docker
//! Hub `library/mysql`, `library/redis`, `clickhouse/clickhouse-server`, any `seaweedfs`), so the
//! manifest stays the version authority; the official manifests point MySQL at a Moco image,
//! Redis at opstree images and ClickHouse at Altinity builds, which need their operators'
//! wrappers or differ in entrypoint, so those fall back to the pinned defaults here.
//! `spec.global.imageRegistry` retargets all of them like app images.
//!
//! Credentials are generated once by the controller into `<service>-credentials` (retained) and
//! reach the containers only through secretKeyRefs; the connection Secret is composed from them
//! ([`connection_inputs`]). Kafka is plaintext without SASL, reachable only inside the cluster.
//!
//! Security: every pod runs as the image's own non-root uid/gid (set explicitly with a matching
//! `fsGroup` so the volume is writable; the official images' `USER` is root or a name, which
//! `runAsNonRoot` cannot check without it) or, with `spec.global.managedServiceUids: platform`,
//! as whatever uid the platform assigns (OpenShift `restricted-v2`), drops all capabilities, forbids privilege escalation
//! and uses the RuntimeDefault seccomp profile: compatible with the `restricted` Pod Security
//! Standard. Root filesystems stay writable (the MySQL, ClickHouse and Kafka entrypoints write
//! configuration under `/etc` or `/opt` at start). Data directories sit one level below the
//! volume root where the server refuses a non-empty directory (`lost+found` on fresh ext4).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, ExecAction, HTTPGetAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, Service, ServicePort, ServiceSpec,
    TCPSocketAction, Toleration, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};
use wandb_api::{ManagedCommon, WeightsAndBiases};
use wandb_manifest::{ImageRef, InfraKind, Sizing};

use super::url::ConnInputs;
use super::{Backend, InfraContext, InfraPlan, connection_spec};
use crate::build::pod::container_security;
use crate::connection::{ConnValue, ServiceKind};
use crate::desired::{DesiredObject, Phase, SecretSource, SecretSpec};
use crate::instance::{Instance, Mode};
use crate::names;

pub mod backup;
pub mod backup_store;
mod services;
pub mod single_node;
mod telemetry;
mod workload;

pub use services::kafka_cluster_id;
pub use telemetry::exporter_image;

/// Length of generated credentials (alphanumeric, from the controller's generator).
pub const CREDENTIAL_LENGTH: u32 = 32;
/// Bucket of the managed object store (as in `Instance::default_connections`).
pub const BUCKET: &str = "wandb";
/// Region the managed object store answers to.
pub const REGION: &str = "us-east-1";
/// MySQL database and user.
pub const MYSQL_DATABASE: &str = "wandb_local";
pub const MYSQL_USER: &str = "wandb";
/// ClickHouse database and user.
pub const CLICKHOUSE_DATABASE: &str = "weave";
pub const CLICKHOUSE_USER: &str = "wandb";

/// Ports: the one table of the managed services' ports (the protocols' well-known ports, also
/// the defaults of external connections in `backends::url`).
pub const MYSQL_PORT: i32 = 3306;
pub const REDIS_PORT: i32 = 6379;
/// Redis Sentinel's well-known port (external Redis with `sentinel.master`).
pub const REDIS_SENTINEL_PORT: i32 = 26379;
pub const S3_PORT: i32 = 8333;
pub const SEAWEED_MASTER_PORT: i32 = 9333;
pub const SEAWEED_FILER_PORT: i32 = 8888;
pub const SEAWEED_VOLUME_PORT: i32 = 8080;
pub const CLICKHOUSE_HTTP_PORT: i32 = 8123;
pub const CLICKHOUSE_TCP_PORT: i32 = 9000;
pub const KAFKA_PORT: i32 = 9092;
pub const KAFKA_CONTROLLER_PORT: i32 = 9093;

/// The StatefulSet's volume claim template: its claims are `<this>-<statefulset>-<ordinal>`.
pub const VOLUME_CLAIM: &str = "data";

/// Credential Secret keys.
pub const KEY_ROOT_PASSWORD: &str = "root-password";
pub const KEY_PASSWORD: &str = "password";
pub const KEY_ACCESS_KEY: &str = "access-key";
pub const KEY_SECRET_KEY: &str = "secret-key";

fn image(registry: &str, repository: &str, tag: &str) -> ImageRef {
    ImageRef {
        registry: Some(registry.into()),
        repository: repository.into(),
        tag: Some(tag.into()),
        digest: None,
    }
}

/// The pinned default image of a managed service.
pub fn default_image(kind: ServiceKind) -> ImageRef {
    match kind {
        ServiceKind::Mysql => image("docker.io", "library/mysql", "8.4.8"),
        ServiceKind::Redis => image("docker.io", "library/redis", "7.4.7"),
        ServiceKind::ObjectStore => image("docker.io", "chrislusf/seaweedfs", "4.35"),
        ServiceKind::Clickhouse => image("docker.io", "clickhouse/clickhouse-server", "25.8.29.51"),
        ServiceKind::Kafka => image("docker.io", "apache/kafka", "3.9.1"),
    }
}

/// The manifest's infra kind and image role for a service kind.
fn manifest_role(kind: ServiceKind) -> Option<(InfraKind, &'static str)> {
    match kind {
        ServiceKind::Mysql => Some((InfraKind::Mysql, "mysql")),
        ServiceKind::Redis => Some((InfraKind::Redis, "standalone")),
        ServiceKind::ObjectStore => Some((InfraKind::Bucket, "seaweedfs")),
        ServiceKind::Clickhouse => Some((InfraKind::Clickhouse, "server")),
        ServiceKind::Kafka => None,
    }
}

/// True when the manifest's image is the same plain image our container spec is written for.
fn compatible(kind: ServiceKind, img: &ImageRef) -> bool {
    let (host, path) = img.host_and_path();
    let hub = host == "docker.io" || host == "index.docker.io";
    let tagged = img.tag.as_deref().is_some_and(|t| !t.is_empty())
        || img.digest.as_deref().is_some_and(|d| !d.is_empty());
    tagged
        && match kind {
            ServiceKind::Mysql => hub && (path == "library/mysql" || path == "mysql"),
            ServiceKind::Redis => hub && (path == "library/redis" || path == "redis"),
            ServiceKind::ObjectStore => path.rsplit('/').next() == Some("seaweedfs"),
            ServiceKind::Clickhouse => hub && path == "clickhouse/clickhouse-server",
            ServiceKind::Kafka => false,
        }
}

/// The image a managed service runs: the manifest's when compatible, else the pinned default.
pub fn resolve_image(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> ImageRef {
    manifest_role(kind)
        .and_then(|(ik, role)| ctx.manifest.infra_image(ik, instance, role))
        .filter(|i| compatible(kind, i))
        .cloned()
        .unwrap_or_else(|| default_image(kind))
}

/// The CR's managed settings of an instance: shared settings and container resources.
pub fn managed_settings<'a>(
    cr: &'a WeightsAndBiases,
    kind: ServiceKind,
    instance: &str,
) -> (Option<&'a ManagedCommon>, Option<&'a ResourceRequirements>) {
    let s = &cr.spec;
    macro_rules! pick {
        ($m:expr) => {
            match $m {
                Some(m) => (
                    Some(&m.common),
                    m.config.as_ref().and_then(|c| c.resources.as_ref()),
                ),
                None => (None, None),
            }
        };
    }
    match kind {
        ServiceKind::Mysql => pick!(
            s.mysql
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.managed_mysql.as_ref())
        ),
        ServiceKind::Redis => pick!(
            s.redis
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.managed_redis.as_ref())
        ),
        ServiceKind::ObjectStore => pick!(
            s.object_store
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.managed_object_store.as_ref())
        ),
        ServiceKind::Clickhouse => pick!(
            s.clickhouse
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.managed_clickhouse.as_ref())
        ),
        ServiceKind::Kafka => pick!(s.kafka.as_ref().and_then(|k| k.managed_kafka.as_ref())),
    }
}

/// Manifest sizing of a managed service for the CR's size (limits stripped unless required).
fn sizing(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> Sizing {
    let (size, limits) = (ctx.inst.size_key, ctx.inst.require_limits);
    match manifest_role(kind) {
        Some((ik, _)) => ctx.manifest.infra_sizing(ik, instance, size, limits),
        None => ctx.manifest.kafka_sizing(size, limits),
    }
}

/// Volume size: `storageSize` from the CR, else the manifest's `volumeSize`, else a default.
pub fn volume_size(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> String {
    let (common, _) = managed_settings(ctx.cr, kind, instance);
    common
        .and_then(|c| c.storage_size.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            sizing(ctx, kind, instance)
                .volume_size
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| {
            match kind {
                ServiceKind::Mysql => "20Gi",
                ServiceKind::Redis => "5Gi",
                ServiceKind::ObjectStore => "20Gi",
                ServiceKind::Clickhouse => "20Gi",
                ServiceKind::Kafka => "10Gi",
            }
            .into()
        })
}

/// Container resources: the CR's `config.resources`, else the manifest sizing.
fn resources(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
) -> Option<ResourceRequirements> {
    let (_, own) = managed_settings(ctx.cr, kind, instance);
    if let Some(r) = own {
        let mut r = r.clone();
        if !ctx.inst.require_limits {
            r.limits = None;
        }
        return Some(r);
    }
    sizing(ctx, kind, instance)
        .resources
        .filter(|r| !r.is_empty())
        .map(|r| r.to_k8s())
}

/// `<service>-credentials`.
pub fn credentials_secret(inst: &Instance, kind: ServiceKind, instance: &str) -> String {
    format!("{}-credentials", inst.service_name(kind, instance))
}

/// Keys of the generated credentials of a managed service (none for Kafka).
pub fn credential_keys(kind: ServiceKind) -> &'static [&'static str] {
    match kind {
        ServiceKind::Mysql => &[KEY_ROOT_PASSWORD, KEY_PASSWORD],
        ServiceKind::Redis | ServiceKind::Clickhouse => &[KEY_PASSWORD],
        ServiceKind::ObjectStore => &[KEY_ACCESS_KEY, KEY_SECRET_KEY],
        ServiceKind::Kafka => &[],
    }
}

/// `<service>-headless`, the StatefulSet's governing Service.
pub fn headless_service(inst: &Instance, kind: ServiceKind, instance: &str) -> String {
    names::dns_label(&format!("{}-headless", inst.service_name(kind, instance)))
}

/// The inputs of a managed service's connection Secret: the known coordinates plus the
/// generated credentials the controller read from `<service>-credentials` (by key). Pass the
/// result to [`super::url::connection_secret_data`].
pub fn connection_inputs(
    inst: &Instance,
    kind: ServiceKind,
    instance: &str,
    credentials: &BTreeMap<String, String>,
) -> ConnInputs {
    let mut i = ConnInputs::new(instance);
    let host = format!(
        "{}.{}.svc.cluster.local",
        inst.service_name(kind, instance),
        inst.namespace
    );
    let cred = |k: &str| credentials.get(k).cloned().filter(|v| !v.is_empty());
    match kind {
        ServiceKind::Mysql => {
            i.host = Some(host);
            i.port = Some(MYSQL_PORT.to_string());
            i.user = Some(MYSQL_USER.into());
            i.database = Some(MYSQL_DATABASE.into());
            i.password = cred(KEY_PASSWORD);
        }
        ServiceKind::Redis => {
            i.host = Some(host);
            i.port = Some(REDIS_PORT.to_string());
            i.password = cred(KEY_PASSWORD);
        }
        ServiceKind::ObjectStore => {
            i.provider = Some("s3".into());
            i.endpoint = Some(host);
            i.port = Some(S3_PORT.to_string());
            i.access_key = cred(KEY_ACCESS_KEY);
            i.secret_key = cred(KEY_SECRET_KEY);
            i.bucket = Some(BUCKET.into());
            i.region = Some(REGION.into());
            i.tls = Some("false".into());
            i.force_path_style = Some("true".into());
        }
        ServiceKind::Clickhouse => {
            i.host = Some(host);
            i.tcp_port = Some(CLICKHOUSE_TCP_PORT.to_string());
            i.http_port = Some(CLICKHOUSE_HTTP_PORT.to_string());
            i.user = Some(CLICKHOUSE_USER.into());
            i.password = cred(KEY_PASSWORD);
            i.database = Some(CLICKHOUSE_DATABASE.into());
            i.tls = Some("false".into());
            i.replicated = Some("false".into());
        }
        ServiceKind::Kafka => {
            i.bootstrap_servers = Some(format!("{host}:{KAFKA_PORT}"));
        }
    }
    i
}

/// The managed backend of `kind`.
pub fn backend(kind: ServiceKind, instance: &str) -> Box<dyn Backend> {
    let instance = instance.to_string();
    match kind {
        ServiceKind::Mysql => Box::new(ManagedMysql { instance }),
        ServiceKind::Redis => Box::new(ManagedRedis { instance }),
        ServiceKind::ObjectStore => Box::new(ManagedObjectStore { instance }),
        ServiceKind::Clickhouse => Box::new(ManagedClickhouse { instance }),
        ServiceKind::Kafka => Box::new(ManagedKafka { instance }),
    }
}

fn credentials_spec(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> Option<SecretSpec> {
    let inst = ctx.inst;
    let keys = credential_keys(kind);
    (!keys.is_empty()).then(|| SecretSpec {
        name: credentials_secret(inst, kind, instance),
        keys: keys.iter().map(|k| (*k).to_string()).collect(),
        source: SecretSource::Generated {
            length: CREDENTIAL_LENGTH,
        },
        retain: true,
        shared: false,
        manifest_name: None,
        on_delete: service_retention(ctx, kind, instance),
    })
}

/// The managed service's `retentionPolicy`, else the resource's.
fn service_retention(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
) -> wandb_api::RetentionPolicy {
    managed_settings(ctx.cr, kind, instance)
        .0
        .and_then(|c| c.retention_policy.as_ref())
        .map_or(ctx.inst.retention, |r| r.on_delete)
}

fn managed_plan(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
    jobs: &[DesiredObject],
) -> InfraPlan {
    let inst = ctx.inst;
    InfraPlan {
        kind,
        instance: instance.to_string(),
        mode: Mode::Managed,
        service_name: inst.service_name(kind, instance),
        statefulset_name: Some(inst.service_name(kind, instance)),
        setup_jobs: jobs
            .iter()
            .filter(|o| o.kind == "Job")
            .map(|o| o.name.clone())
            .collect(),
        connection_secret: inst.connection_secret(kind, instance),
        credentials_secret: (!credential_keys(kind).is_empty())
            .then(|| credentials_secret(inst, kind, instance)),
        retention: service_retention(ctx, kind, instance),
    }
}

fn managed_secrets(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> Vec<SecretSpec> {
    let mut out = vec![connection_spec(
        ctx.inst,
        kind,
        instance,
        Mode::Managed,
        service_retention(ctx, kind, instance),
    )];
    out.extend(credentials_spec(ctx, kind, instance));
    out
}

macro_rules! managed_backend {
    ($ty:ident, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $ty {
            instance: String,
        }

        impl Backend for $ty {
            fn kind(&self) -> ServiceKind {
                $kind
            }
            fn instance(&self) -> &str {
                &self.instance
            }
            fn mode(&self) -> Mode {
                Mode::Managed
            }
            fn desired(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
                self.objects(ctx)
            }
            fn secrets(&self, ctx: &InfraContext) -> Vec<SecretSpec> {
                managed_secrets(ctx, $kind, &self.instance)
            }
            fn plan(&self, ctx: &InfraContext) -> InfraPlan {
                managed_plan(ctx, $kind, &self.instance, &self.objects(ctx))
            }
        }
    };
}

managed_backend!(
    ManagedMysql,
    ServiceKind::Mysql,
    "MySQL 8 (official image), one node."
);
managed_backend!(
    ManagedRedis,
    ServiceKind::Redis,
    "Redis 7 (official image) with a password, one node."
);
managed_backend!(
    ManagedObjectStore,
    ServiceKind::ObjectStore,
    "SeaweedFS (master, volume, filer and S3 gateway in one process) with its bucket."
);
managed_backend!(
    ManagedClickhouse,
    ServiceKind::Clickhouse,
    "ClickHouse server (official image), one node, generated user."
);
managed_backend!(
    ManagedKafka,
    ServiceKind::Kafka,
    "Apache Kafka in KRaft mode, one node, with the manifest's topics."
);

/// The literal coordinates a managed connection publishes before the controller writes the
/// Secret, as `Instance::default_connections` declares them (used by tests to keep both in
/// step).
pub fn literal_fields(
    inst: &Instance,
    kind: ServiceKind,
    instance: &str,
) -> BTreeMap<String, String> {
    inst.default_connections()
        .map
        .remove(&(kind, instance.to_string()))
        .unwrap_or_default()
        .values
        .into_iter()
        .filter_map(|(k, v)| match v {
            ConnValue::Literal(s) => Some((k, s)),
            ConnValue::Secret { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::url::connection_secret_data;

    fn inst() -> Instance {
        let cr: WeightsAndBiases = serde_saphyr::from_str(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w, namespace: n}\nspec:\n  wandb:\n    hostname: https://w.example.com\n    version: \"0.84.0\"\n",
        )
        .unwrap();
        Instance::from_cr(&cr).unwrap()
    }

    #[test]
    fn cluster_ids_are_stable_kraft_uuids() {
        let a = kafka_cluster_id("n", "w-kafka");
        assert_eq!(a.len(), 22);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(a, kafka_cluster_id("n", "w-kafka"));
        assert_ne!(a, kafka_cluster_id("m", "w-kafka"));
    }

    #[test]
    fn manifest_images_are_used_only_when_compatible() {
        let moco = image("ghcr.io", "cybozu-go/moco/mysql", "8.4.8");
        assert!(!compatible(ServiceKind::Mysql, &moco));
        assert!(compatible(
            ServiceKind::Mysql,
            &image("docker.io", "library/mysql", "8.0")
        ));
        let opstree = image("quay.io", "opstree/redis", "v7.0.15");
        assert!(!compatible(ServiceKind::Redis, &opstree));
        assert!(compatible(
            ServiceKind::ObjectStore,
            &image("docker.io", "chrislusf/seaweedfs", "4.35")
        ));
        let altinity = image("docker.io", "altinity/clickhouse-server", "25.8");
        assert!(!compatible(ServiceKind::Clickhouse, &altinity));
        let untagged = ImageRef {
            repository: "mysql".into(),
            ..Default::default()
        };
        assert!(
            !compatible(ServiceKind::Mysql, &untagged),
            "an unpinned image is not used"
        );
    }

    #[test]
    fn managed_connections_agree_with_the_declared_literals() {
        let inst = inst();
        let creds = BTreeMap::from([
            (KEY_PASSWORD.to_string(), "pw".to_string()),
            (KEY_ROOT_PASSWORD.to_string(), "root".to_string()),
            (KEY_ACCESS_KEY.to_string(), "ak".to_string()),
            (KEY_SECRET_KEY.to_string(), "sk".to_string()),
        ]);
        for kind in ServiceKind::ALL {
            let data =
                connection_secret_data(kind, &connection_inputs(&inst, kind, "default", &creds))
                    .unwrap();
            for (k, v) in literal_fields(&inst, kind, "default") {
                assert_eq!(data.get(&k), Some(&v), "{kind:?}.{k}");
            }
        }
        for (kind, url) in [
            (
                ServiceKind::ObjectStore,
                "s3://ak:sk@w-objectstore.n.svc.cluster.local:8333/wandb?region=us-east-1&tls=false&forcePathStyle=true",
            ),
            (
                ServiceKind::Redis,
                "redis://:pw@w-redis.n.svc.cluster.local:6379?ttlInSeconds=604800",
            ),
            (
                ServiceKind::Clickhouse,
                "clickhouse://wandb:pw@w-clickhouse.n.svc.cluster.local:9000/weave?tls=false",
            ),
        ] {
            let inputs = connection_inputs(&inst, kind, "default", &creds);
            assert_eq!(connection_secret_data(kind, &inputs).unwrap()["url"], url);
        }
    }
}
