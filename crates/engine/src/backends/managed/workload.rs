//! The StatefulSet shape every managed service shares: pod security, probes, scheduling,
//! Services, the volume claim, and setup Jobs.

use super::telemetry::Metrics;
use super::*;
use wandb_api::ManagedServiceUids;
/// What differs between managed services; [`Workload::objects`] builds the rest.
pub(super) struct Workload {
    pub(super) kind: ServiceKind,
    pub(super) instance: String,
    pub(super) uid: i64,
    pub(super) container: Container,
    /// Where the volume is mounted.
    pub(super) data_mount: &'static str,
    /// Extra writable emptyDir mounts (name, path).
    pub(super) scratch: Vec<(&'static str, &'static str)>,
    /// Ports on the client Service.
    pub(super) service_ports: Vec<(&'static str, i32)>,
    /// Ports on the headless Service (the StatefulSet's governing Service).
    pub(super) headless_ports: Vec<(&'static str, i32)>,
    /// Metrics, when the CR asks for them.
    pub(super) metrics: Option<Metrics>,
}

pub(super) fn port(name: &str, p: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: p,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(p)),
        ..Default::default()
    }
}

pub(super) fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
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

pub(super) fn lit(name: &str, value: &str) -> EnvVar {
    crate::env::literal(name, value)
}

pub(super) fn exec_probe(cmd: &[&str], initial: i32, period: i32, failures: i32) -> Probe {
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

pub(super) fn tcp_probe(p: i32, period: i32, failures: i32) -> Probe {
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

pub(super) fn http_probe(path: &str, p: i32, period: i32, failures: i32) -> Probe {
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
pub(super) fn probes(c: &mut Container, check: Probe) {
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

pub(super) struct Names {
    pub(super) name: String,
    pub(super) app: String,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) selector: BTreeMap<String, String>,
}

pub(super) fn names_of(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
    img: &ImageRef,
) -> Names {
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

pub(super) fn scheduling(
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
/// own uid/gid with a matching fsGroup (unless `spec.global.managedServiceUids` leaves them to
/// the platform), RuntimeDefault seccomp.
pub(super) fn pod_spec(ctx: &InfraContext, kind: ServiceKind, instance: &str, uid: i64) -> PodSpec {
    let (affinity, tolerations) = scheduling(ctx, kind, instance);
    let fixed_uid = match ctx
        .cr
        .spec
        .global
        .as_ref()
        .and_then(|g| g.managed_service_uids)
    {
        None | Some(ManagedServiceUids::Fixed) => Some(uid),
        Some(ManagedServiceUids::Platform) => None,
    };
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        image_pull_secrets: (!ctx.inst.pull_secrets.is_empty())
            .then(|| ctx.inst.pull_secrets.clone()),
        affinity,
        tolerations,
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: fixed_uid,
            run_as_group: fixed_uid,
            fs_group: fixed_uid,
            fs_group_change_policy: fixed_uid.map(|_| "OnRootMismatch".into()),
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
    pub(super) fn objects(self, ctx: &InfraContext, img: &ImageRef) -> Vec<DesiredObject> {
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
            name: VOLUME_CLAIM.into(),
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
        let mut containers = Vec::new();
        let mut service_ports = self.service_ports.clone();
        let mut pod_annotations = None;
        let mut config_map = None;
        if let Some(m) = &self.metrics {
            service_ports.push(("metrics", m.port));
            pod_annotations = Some(BTreeMap::from([
                ("prometheus.io/scrape".to_string(), "true".to_string()),
                ("prometheus.io/port".to_string(), m.port.to_string()),
                ("prometheus.io/path".to_string(), m.path.to_string()),
            ]));
            match &m.sidecar {
                Some((c, image)) => {
                    let mut c = c.clone();
                    c.image = Some(image.reference(inst.image_registry.as_deref()));
                    c.security_context = Some(container_security());
                    if !inst.require_limits
                        && let Some(r) = c.resources.as_mut()
                    {
                        r.limits = None;
                    }
                    containers.push(c);
                }
                None => container
                    .ports
                    .get_or_insert_with(Vec::new)
                    .push(ContainerPort {
                        name: Some("metrics".into()),
                        container_port: m.port,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }),
            }
            if let Some((path, content)) = m.config_file.clone() {
                let file = path.rsplit('/').next().unwrap_or(path);
                let cm_name = names::dns_label(&format!("{}-metrics-config", n.name));
                mounts.push(VolumeMount {
                    name: "metrics-config".into(),
                    mount_path: path.into(),
                    sub_path: Some(file.into()),
                    read_only: Some(true),
                    ..Default::default()
                });
                volumes.push(Volume {
                    name: "metrics-config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: cm_name.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                config_map = Some(ConfigMap {
                    metadata: meta(&cm_name),
                    data: Some(BTreeMap::from([(file.to_string(), content.to_string())])),
                    ..Default::default()
                });
            }
        }
        container.volume_mounts = Some(mounts);
        containers.insert(0, container);

        let mut spec = pod_spec(ctx, self.kind, &self.instance, self.uid);
        spec.containers = containers;
        spec.volumes = (!volumes.is_empty()).then_some(volumes);
        spec.termination_grace_period_seconds = Some(60);

        let mut pvc_meta = ObjectMeta {
            name: Some(VOLUME_CLAIM.into()),
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
                        annotations: pod_annotations,
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
                ports: Some(service_ports.iter().map(|(a, p)| port(a, *p)).collect()),
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
        let mut out = Vec::with_capacity(4);
        if let Some(cm) = &config_map {
            out.push(DesiredObject::new(Phase::Infra, cm));
        }
        out.extend([
            DesiredObject::new(Phase::Infra, &sts),
            DesiredObject::new(Phase::Infra, &service),
            DesiredObject::new(Phase::Infra, &headless_svc),
        ]);
        out
    }
}

/// A setup Job. Its name carries a hash of its pod template, so a changed script (new topics,
/// new image) is a new Job rather than a rejected update of an immutable one.
pub(super) fn setup_job(
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
