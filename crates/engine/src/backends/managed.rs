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
//! `fsGroup` so the volume is writable), drops all capabilities, forbids privilege escalation
//! and uses the RuntimeDefault seccomp profile: compatible with the `restricted` Pod Security
//! Standard. Root filesystems stay writable (the MySQL, ClickHouse and Kafka entrypoints write
//! configuration under `/etc` or `/opt` at start). Data directories sit one level below the
//! volume root where the server refuses a non-empty directory (`lost+found` on fresh ext4).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector, Service,
    ServicePort, ServiceSpec, TCPSocketAction, Toleration, Volume, VolumeMount,
    VolumeResourceRequirements,
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

/// Ports.
pub const MYSQL_PORT: i32 = 3306;
pub const REDIS_PORT: i32 = 6379;
pub const S3_PORT: i32 = 8333;
pub const SEAWEED_MASTER_PORT: i32 = 9333;
pub const SEAWEED_FILER_PORT: i32 = 8888;
pub const SEAWEED_VOLUME_PORT: i32 = 8080;
pub const CLICKHOUSE_HTTP_PORT: i32 = 8123;
pub const CLICKHOUSE_TCP_PORT: i32 = 9000;
pub const KAFKA_PORT: i32 = 9092;
pub const KAFKA_CONTROLLER_PORT: i32 = 9093;

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

// ---------------------------------------------------------------------------------------------
// The shared StatefulSet shape.

/// What differs between managed services; [`Workload::objects`] builds the rest.
struct Workload {
    kind: ServiceKind,
    instance: String,
    uid: i64,
    container: Container,
    /// Where the volume is mounted.
    data_mount: &'static str,
    /// Extra writable emptyDir mounts (name, path).
    scratch: Vec<(&'static str, &'static str)>,
    /// Ports on the client Service.
    service_ports: Vec<(&'static str, i32)>,
    /// Ports on the headless Service (the StatefulSet's governing Service).
    headless_ports: Vec<(&'static str, i32)>,
}

fn port(name: &str, p: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: p,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(p)),
        ..Default::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..Default::default()
        }),
    }
}

fn lit(name: &str, value: &str) -> EnvVar {
    crate::env::literal(name, value)
}

fn exec_probe(cmd: &[&str], initial: i32, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(cmd.iter().map(|s| (*s).to_string()).collect()),
        }),
        initial_delay_seconds: (initial > 0).then_some(initial),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn tcp_probe(p: i32, period: i32, failures: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(p),
            host: None,
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn http_probe(path: &str, p: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(p),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

/// Probes: a generous startup budget (first initialisation), then liveness and readiness.
fn probes(c: &mut Container, check: Probe) {
    c.startup_probe = Some(Probe {
        failure_threshold: Some(60),
        period_seconds: Some(5),
        ..check.clone()
    });
    c.liveness_probe = Some(Probe {
        failure_threshold: Some(6),
        period_seconds: Some(10),
        ..check.clone()
    });
    c.readiness_probe = Some(check);
}

struct Names {
    name: String,
    app: String,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
}

fn names_of(ctx: &InfraContext, kind: ServiceKind, instance: &str, img: &ImageRef) -> Names {
    let inst = ctx.inst;
    let name = inst.service_name(kind, instance);
    // The app label is the name without the CR prefix, like applications' (`mysql`,
    // `runs-mysql`); the version label is the image tag, so a W&B upgrade does not restart data
    // services.
    let app = name
        .strip_prefix(&format!("{}-", inst.name))
        .unwrap_or(&name)
        .to_string();
    let version = img.tag.clone().unwrap_or_default();
    Names {
        labels: names::labels(&inst.name, &app, kind.object_suffix(), &version),
        selector: names::selector(&inst.name, &app),
        name,
        app,
    }
}

fn scheduling(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
) -> (Option<Affinity>, Option<Vec<Toleration>>) {
    let (common, _) = managed_settings(ctx.cr, kind, instance);
    let affinity = common
        .and_then(|c| c.affinity.clone())
        .or_else(|| ctx.inst.affinity.clone());
    let tolerations = common
        .and_then(|c| c.tolerations.clone())
        .or_else(|| (!ctx.inst.tolerations.is_empty()).then(|| ctx.inst.tolerations.clone()))
        .filter(|t| !t.is_empty());
    (affinity, tolerations)
}

/// Pod spec shared by the StatefulSet and setup Jobs: no API token, pull secrets, the image's
/// own uid/gid with a matching fsGroup, RuntimeDefault seccomp.
fn pod_spec(ctx: &InfraContext, kind: ServiceKind, instance: &str, uid: i64) -> PodSpec {
    let (affinity, tolerations) = scheduling(ctx, kind, instance);
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        image_pull_secrets: (!ctx.inst.pull_secrets.is_empty())
            .then(|| ctx.inst.pull_secrets.clone()),
        affinity,
        tolerations,
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: Some(uid),
            fs_group: Some(uid),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Workload {
    fn objects(self, ctx: &InfraContext, img: &ImageRef) -> Vec<DesiredObject> {
        let inst = ctx.inst;
        let n = names_of(ctx, self.kind, &self.instance, img);
        let headless = headless_service(inst, self.kind, &self.instance);
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(inst.namespace.clone()),
            labels: Some(n.labels.clone()),
            ..Default::default()
        };

        let mut container = self.container;
        container.image = Some(img.reference(inst.image_registry.as_deref()));
        container.resources = resources(ctx, self.kind, &self.instance);
        container.security_context = Some(container_security());
        container.ports = Some(
            self.headless_ports
                .iter()
                .map(|(name, p)| ContainerPort {
                    name: Some((*name).into()),
                    container_port: *p,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        );
        let mut mounts = vec![VolumeMount {
            name: "data".into(),
            mount_path: self.data_mount.into(),
            ..Default::default()
        }];
        let mut volumes = Vec::new();
        for (name, path) in &self.scratch {
            mounts.push(VolumeMount {
                name: (*name).into(),
                mount_path: (*path).into(),
                ..Default::default()
            });
            volumes.push(Volume {
                name: (*name).into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
        }
        container.volume_mounts = Some(mounts);

        let mut spec = pod_spec(ctx, self.kind, &self.instance, self.uid);
        spec.containers = vec![container];
        spec.volumes = (!volumes.is_empty()).then_some(volumes);
        spec.termination_grace_period_seconds = Some(60);

        let mut pvc_meta = ObjectMeta {
            name: Some("data".into()),
            labels: Some(n.labels.clone()),
            annotations: Some(BTreeMap::from([(
                names::RETAIN_ANNOTATION.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        };
        if let Some(l) = pvc_meta.labels.as_mut() {
            l.remove("app.kubernetes.io/version");
        }

        let sts = StatefulSet {
            metadata: meta(&n.name),
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(headless.clone()),
                pod_management_policy: Some("Parallel".into()),
                selector: LabelSelector {
                    match_labels: Some(n.selector.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(n.labels.clone()),
                        ..Default::default()
                    }),
                    spec: Some(spec),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: pvc_meta,
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".into()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_string(),
                                Quantity(volume_size(ctx, self.kind, &self.instance)),
                            )])),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                // Data outlives the StatefulSet; the retention policy decides (controller).
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some("Retain".into()),
                        when_scaled: Some("Retain".into()),
                    },
                ),
                ..Default::default()
            }),
            ..Default::default()
        };

        let service = Service {
            metadata: meta(&n.name),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(n.selector.clone()),
                ports: Some(
                    self.service_ports
                        .iter()
                        .map(|(a, p)| port(a, *p))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let headless_svc = Service {
            metadata: meta(&headless),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                publish_not_ready_addresses: Some(true),
                selector: Some(n.selector.clone()),
                ports: Some(
                    self.headless_ports
                        .iter()
                        .map(|(a, p)| port(a, *p))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        vec![
            DesiredObject::new(Phase::Infra, &sts),
            DesiredObject::new(Phase::Infra, &service),
            DesiredObject::new(Phase::Infra, &headless_svc),
        ]
    }
}

/// A setup Job. Its name carries a hash of its pod template, so a changed script (new topics,
/// new image) is a new Job rather than a rejected update of an immutable one.
fn setup_job(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
    purpose: &str,
    uid: i64,
    container: Container,
    img: &ImageRef,
) -> DesiredObject {
    let inst = ctx.inst;
    let n = names_of(ctx, kind, instance, img);
    // Own name label: the service's selector must never match a Job pod.
    let labels = names::labels(
        &inst.name,
        &format!("{}-{purpose}", n.app),
        &format!("{}-setup", kind.object_suffix()),
        img.tag.as_deref().unwrap_or_default(),
    );
    let mut container = container;
    container.image = Some(img.reference(inst.image_registry.as_deref()));
    container.security_context = Some(container_security());
    container
        .env
        .get_or_insert_with(Vec::new)
        .push(lit("HOME", "/tmp"));
    container.volume_mounts = Some(vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }]);
    let mut spec = pod_spec(ctx, kind, instance, uid);
    spec.containers = vec![container];
    spec.restart_policy = Some("OnFailure".into());
    spec.volumes = Some(vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }]);
    let hash = names::short_hash(&serde_json::to_string(&spec).expect("serializes"));
    let name = names::dns_label(&format!("{}-{purpose}-{hash}", n.name));
    let job = crate::build::pod::job(name, inst, labels, spec, 10, Some(1800));
    DesiredObject::new(Phase::Infra, &job)
}

fn credentials_spec(inst: &Instance, kind: ServiceKind, instance: &str) -> Option<SecretSpec> {
    let keys = credential_keys(kind);
    (!keys.is_empty()).then(|| SecretSpec {
        name: credentials_secret(inst, kind, instance),
        keys: keys.iter().map(|k| (*k).to_string()).collect(),
        source: SecretSource::Generated {
            length: CREDENTIAL_LENGTH,
        },
        retain: true,
    })
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
        retention: managed_settings(ctx.cr, kind, instance)
            .0
            .and_then(|c| c.retention_policy.as_ref())
            .map_or(inst.retention, |r| r.on_delete),
    }
}

fn managed_secrets(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> Vec<SecretSpec> {
    let mut out = vec![connection_spec(ctx.inst, kind, instance, Mode::Managed)];
    out.extend(credentials_spec(ctx.inst, kind, instance));
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

impl ManagedMysql {
    fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Mysql;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(ctx.inst, kind, &self.instance);
        let mut c = Container {
            name: "mysql".into(),
            // Server settings recurring across W&B installs (reference §6(a)); the data
            // directory is below the volume root (`lost+found`).
            args: Some(
                [
                    "--datadir=/var/lib/mysql/data",
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_0900_ai_ci",
                    "--skip-name-resolve",
                    "--binlog-row-image=MINIMAL",
                    "--max-prepared-stmt-count=1048576",
                    "--innodb-online-alter-log-max-size=268435456",
                    "--sort-buffer-size=33554432",
                ]
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            ),
            env: Some(vec![
                secret_env("MYSQL_ROOT_PASSWORD", &creds, KEY_ROOT_PASSWORD),
                lit("MYSQL_DATABASE", MYSQL_DATABASE),
                lit("MYSQL_USER", MYSQL_USER),
                secret_env("MYSQL_PASSWORD", &creds, KEY_PASSWORD),
            ]),
            ..Default::default()
        };
        // `mysqladmin ping` exits 0 whenever the server answers, even "access denied".
        probes(
            &mut c,
            exec_probe(
                &["mysqladmin", "ping", "-h", "127.0.0.1", "--silent"],
                0,
                10,
                3,
            ),
        );
        Workload {
            kind,
            instance: self.instance.clone(),
            uid: 999,
            container: c,
            data_mount: "/var/lib/mysql",
            scratch: vec![("tmp", "/tmp"), ("run", "/var/run/mysqld")],
            service_ports: vec![("mysql", MYSQL_PORT)],
            headless_ports: vec![("mysql", MYSQL_PORT)],
        }
        .objects(ctx, &img)
    }
}

impl ManagedRedis {
    fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Redis;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(ctx.inst, kind, &self.instance);
        let mut c = Container {
            name: "redis".into(),
            command: Some(vec!["redis-server".into()]),
            // `$(REDIS_PASSWORD)` is expanded by the kubelet: the pod spec holds no secret.
            args: Some(
                [
                    "--requirepass",
                    "$(REDIS_PASSWORD)",
                    "--appendonly",
                    "yes",
                    "--dir",
                    "/data",
                ]
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            ),
            env: Some(vec![
                secret_env("REDIS_PASSWORD", &creds, KEY_PASSWORD),
                // redis-cli reads the password from here (probes).
                secret_env("REDISCLI_AUTH", &creds, KEY_PASSWORD),
            ]),
            ..Default::default()
        };
        probes(
            &mut c,
            exec_probe(
                &["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"],
                0,
                10,
                3,
            ),
        );
        Workload {
            kind,
            instance: self.instance.clone(),
            uid: 999,
            container: c,
            data_mount: "/data",
            scratch: vec![],
            service_ports: vec![("redis", REDIS_PORT)],
            headless_ports: vec![("redis", REDIS_PORT)],
        }
        .objects(ctx, &img)
    }
}

/// The SeaweedFS start script: writes the S3 identity file from the env (the generated keys are
/// alphanumeric; anything that would break the JSON is refused) and starts all components.
const SEAWEED_START: &str = r#"case "$S3_ACCESS_KEY$S3_SECRET_KEY" in *'"'*|*'\'*) echo "S3 credentials must not contain quotes or backslashes" >&2; exit 1;; esac
printf '{"identities":[{"name":"wandb","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > /tmp/s3.json
exec /usr/bin/weed -logtostderr=true server -dir=/data -ip.bind=0.0.0.0 -master.volumeSizeLimitMB=1024 -volume.max=0 -s3 -s3.port=8333 -s3.config=/tmp/s3.json
"#;

/// Creates the bucket unless it exists (`weed shell` over the master's headless address).
const SEAWEED_BUCKET: &str = r#"set -e
if echo "s3.bucket.list" | weed shell -master="$MASTER" | grep -Eq "^[[:space:]]*$BUCKET_NAME([[:space:]]|$)"; then
  echo "bucket $BUCKET_NAME exists"; exit 0
fi
echo "s3.bucket.create -name $BUCKET_NAME" | weed shell -master="$MASTER"
echo "s3.bucket.list" | weed shell -master="$MASTER" | grep -Eq "^[[:space:]]*$BUCKET_NAME([[:space:]]|$)"
echo "bucket $BUCKET_NAME created"
"#;

impl ManagedObjectStore {
    fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::ObjectStore;
        let inst = ctx.inst;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(inst, kind, &self.instance);
        let mut c = Container {
            name: "seaweedfs".into(),
            command: Some(vec!["/bin/sh".into(), "-ec".into(), SEAWEED_START.into()]),
            env: Some(vec![
                secret_env("S3_ACCESS_KEY", &creds, KEY_ACCESS_KEY),
                secret_env("S3_SECRET_KEY", &creds, KEY_SECRET_KEY),
            ]),
            ..Default::default()
        };
        probes(&mut c, tcp_probe(S3_PORT, 10, 3));
        let mut out = Workload {
            kind,
            instance: self.instance.clone(),
            uid: 1000,
            container: c,
            data_mount: "/data",
            scratch: vec![("tmp", "/tmp")],
            service_ports: vec![("s3", S3_PORT)],
            headless_ports: vec![
                ("s3", S3_PORT),
                ("master", SEAWEED_MASTER_PORT),
                ("master-grpc", SEAWEED_MASTER_PORT + 10000),
                ("filer", SEAWEED_FILER_PORT),
                ("filer-grpc", SEAWEED_FILER_PORT + 10000),
                ("volume", SEAWEED_VOLUME_PORT),
                ("volume-grpc", SEAWEED_VOLUME_PORT + 10000),
            ],
        }
        .objects(ctx, &img);
        let master = format!(
            "{}.{}.svc.cluster.local:{SEAWEED_MASTER_PORT}",
            headless_service(inst, kind, &self.instance),
            inst.namespace
        );
        let job = Container {
            name: "create-bucket".into(),
            command: Some(vec!["/bin/sh".into(), "-ec".into(), SEAWEED_BUCKET.into()]),
            env: Some(vec![lit("MASTER", &master), lit("BUCKET_NAME", BUCKET)]),
            ..Default::default()
        };
        out.push(setup_job(
            ctx,
            kind,
            &self.instance,
            "bucket",
            1000,
            job,
            &img,
        ));
        out
    }
}

impl ManagedClickhouse {
    fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Clickhouse;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(ctx.inst, kind, &self.instance);
        let mut c = Container {
            name: "clickhouse".into(),
            // The image's entrypoint creates the user and database from these.
            env: Some(vec![
                lit("CLICKHOUSE_USER", CLICKHOUSE_USER),
                secret_env("CLICKHOUSE_PASSWORD", &creds, KEY_PASSWORD),
                lit("CLICKHOUSE_DB", CLICKHOUSE_DATABASE),
                lit("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1"),
            ]),
            ..Default::default()
        };
        probes(&mut c, http_probe("/ping", CLICKHOUSE_HTTP_PORT, 10, 3));
        Workload {
            kind,
            instance: self.instance.clone(),
            uid: 101,
            container: c,
            data_mount: "/var/lib/clickhouse",
            scratch: vec![("logs", "/var/log/clickhouse-server"), ("tmp", "/tmp")],
            service_ports: vec![
                ("http", CLICKHOUSE_HTTP_PORT),
                ("native", CLICKHOUSE_TCP_PORT),
            ],
            headless_ports: vec![
                ("http", CLICKHOUSE_HTTP_PORT),
                ("native", CLICKHOUSE_TCP_PORT),
            ],
        }
        .objects(ctx, &img)
    }
}

/// A stable KRaft cluster id per instance: 16 bytes of SHA-256 of `<namespace>/<service>`, in
/// URL-safe base64 without padding (22 characters), as `kafka-storage.sh random-uuid` prints.
pub fn kafka_cluster_id(namespace: &str, service: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let digest = Sha256::digest(format!("{namespace}/{service}").as_bytes());
    let bytes = &digest[..16];
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Creates each topic unless it exists; arguments are `topic:partitions`.
const KAFKA_TOPICS: &str = r#"for spec in "$@"; do
  topic="${spec%%:*}"; partitions="${spec##*:}"
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor 1
done
"#;

fn legal_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl ManagedKafka {
    fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Kafka;
        let inst = ctx.inst;
        let img = resolve_image(ctx, kind, &self.instance);
        let name = inst.service_name(kind, &self.instance);
        let host = format!("{name}.{}.svc.cluster.local", inst.namespace);
        let env = vec![
            lit("CLUSTER_ID", &kafka_cluster_id(&inst.namespace, &name)),
            lit("KAFKA_NODE_ID", "1"),
            lit("KAFKA_PROCESS_ROLES", "broker,controller"),
            lit(
                "KAFKA_LISTENERS",
                &format!("PLAINTEXT://:{KAFKA_PORT},CONTROLLER://:{KAFKA_CONTROLLER_PORT}"),
            ),
            lit(
                "KAFKA_ADVERTISED_LISTENERS",
                &format!("PLAINTEXT://{host}:{KAFKA_PORT}"),
            ),
            lit("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            lit(
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
            lit("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            lit(
                "KAFKA_CONTROLLER_QUORUM_VOTERS",
                &format!("1@localhost:{KAFKA_CONTROLLER_PORT}"),
            ),
            lit("KAFKA_LOG_DIRS", "/var/lib/kafka/data/logs"),
            lit("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            lit("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            lit("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            lit("KAFKA_MIN_INSYNC_REPLICAS", "1"),
            lit("KAFKA_DEFAULT_REPLICATION_FACTOR", "1"),
            lit("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            lit("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false"),
        ];
        let mut c = Container {
            name: "kafka".into(),
            env: Some(env),
            ..Default::default()
        };
        probes(&mut c, tcp_probe(KAFKA_PORT, 10, 3));
        let mut out = Workload {
            kind,
            instance: self.instance.clone(),
            uid: 1000,
            container: c,
            data_mount: "/var/lib/kafka/data",
            scratch: vec![("tmp", "/tmp")],
            service_ports: vec![("kafka", KAFKA_PORT)],
            headless_ports: vec![("kafka", KAFKA_PORT), ("controller", KAFKA_CONTROLLER_PORT)],
        }
        .objects(ctx, &img);

        let topics: Vec<String> = ctx
            .manifest
            .enabled_topics(ctx.features)
            .filter(|t| legal_topic(&t.topic))
            .map(|t| format!("{}:{}", t.topic, t.partition_count.unwrap_or(1).max(1)))
            .collect();
        if !topics.is_empty() {
            let mut args = vec!["topics".to_string()];
            args.extend(topics);
            let job = Container {
                name: "create-topics".into(),
                command: Some(vec!["/bin/sh".into(), "-ec".into(), KAFKA_TOPICS.into()]),
                args: Some(args),
                env: Some(vec![lit("BOOTSTRAP", &format!("{host}:{KAFKA_PORT}"))]),
                ..Default::default()
            };
            out.push(setup_job(
                ctx,
                kind,
                &self.instance,
                "topics",
                1000,
                job,
                &img,
            ));
        }
        out
    }
}

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
