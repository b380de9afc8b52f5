//! One manifest application -> Deployment, Service, files ConfigMap, HPA and PDB.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, KeyToPath, PodTemplateSpec,
    ProjectedVolumeSource, SecretVolumeSource, Service, ServiceAccountTokenProjection, ServicePort,
    ServiceSpec, TopologySpreadConstraint, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize as _;
use wandb_manifest::{Application, HorizontalAutoscaling};

use super::{BuildContext, pod, security};
use super::{overrides, probes};
use crate::EngineError;
use crate::desired::{DesiredObject, Phase};
use crate::names;

/// Desired objects of one enabled application.
pub fn build(
    app_name: &str,
    app: &Application,
    ctx: &BuildContext,
) -> Result<Vec<DesiredObject>, EngineError> {
    let inst = ctx.inst;
    let name = names::scoped(&inst.name, app_name);
    let labels = names::labels(&inst.name, app_name, app_name, &inst.version);
    let selector = names::selector(&inst.name, app_name);
    let meta = |n: &str| ObjectMeta {
        name: Some(n.to_string()),
        namespace: Some(inst.namespace.clone()),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let mut out = Vec::new();

    let mut mounts = pod::Mounts::default();
    mounts.add_manifest(
        &ctx.manifest.app_volume_mounts(app_name).unwrap_or_default(),
        &format!("applications.{app_name}"),
    )?;
    let files_checksum = add_files(app, &name, &meta, &mut mounts, &mut out);
    add_jwt_tokens(app_name, app, &mut mounts);

    let mut env = ctx.env_for(&ctx.manifest.app_env(app_name).unwrap_or_default());
    let ca = pod::add_custom_ca(ctx.cr, inst, &mut mounts, &mut env);
    // Certificates external services' URLs name (ssl-ca=/etc/ssl/certs/mysql_ca.pem, ...).
    crate::backends::certs::add_to_pod(ctx.cr, inst, &mut mounts);
    env.extend(ctx.proxy_env.iter().cloned());
    overrides::apply_env(ctx.cr, Some(app_name), app.legacy_key.as_deref(), &mut env);

    let containers = app
        .effective_containers(app_name)
        .iter()
        .map(|c| container(app_name, app, c, ctx, &env, &mounts.mounts))
        .collect::<Vec<_>>();
    let init_containers = app
        .effective_init_containers()
        .iter()
        .map(|c| container(app_name, app, c, ctx, &env, &mounts.mounts))
        .collect::<Vec<_>>();

    let sizing = app.sizing_for(inst.size_key, inst.require_limits);
    let hpa = autoscaling(app_name, app, ctx);
    let replicas = sizing.replicas.unwrap_or(1).max(1);

    let mut spec = pod::base_pod_spec(inst);
    spec.containers = containers;
    spec.init_containers = (!init_containers.is_empty()).then_some(init_containers);
    spec.volumes = (!mounts.volumes.is_empty()).then_some(mounts.volumes);
    spec.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname".into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(selector.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }]);

    let deployment = Deployment {
        metadata: meta(&name),
        spec: Some(DeploymentSpec {
            // With an HPA the replica count is the HPA's: leaving the field out keeps our field
            // manager from fighting it.
            replicas: if hpa.is_some() { None } else { Some(replicas) },
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    annotations: pod::checksum_annotations(ca, files_checksum),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    out.push(DesiredObject::new(Phase::Applications, &deployment));

    if let Some(svc) = &app.service.as_ref().filter(|s| !s.ports.is_empty()) {
        let service = Service {
            metadata: meta(&name),
            spec: Some(ServiceSpec {
                type_: svc.kind.clone().filter(|t| !t.is_empty()),
                selector: Some(selector.clone()),
                ports: Some(
                    svc.ports
                        .iter()
                        .map(|p| ServicePort {
                            name: p.name.clone(),
                            port: p.port,
                            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                            target_port: Some(
                                p.target_port.clone().unwrap_or(IntOrString::Int(p.port)),
                            ),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        out.push(DesiredObject::new(Phase::Applications, &service));
    }

    let min_available_pods = hpa
        .as_ref()
        .map_or(replicas, |h| h.min_replicas.unwrap_or(1));
    if let Some(h) = hpa {
        let hpa = HorizontalPodAutoscaler {
            metadata: meta(&name),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: name.clone(),
                },
                min_replicas: h.min_replicas,
                max_replicas: h.max_replicas.unwrap_or(1),
                metrics: h
                    .metrics
                    .as_ref()
                    .and_then(|m| Vec::<MetricSpec>::deserialize(m).ok()),
                behavior: h
                    .behavior
                    .as_ref()
                    .and_then(|b| HorizontalPodAutoscalerBehavior::deserialize(b).ok()),
            }),
            ..Default::default()
        };
        out.push(DesiredObject::new(Phase::Applications, &hpa));
    }
    if min_available_pods > 1 {
        let pdb = PodDisruptionBudget {
            metadata: meta(&name),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(selector),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        out.push(DesiredObject::new(Phase::Applications, &pdb));
    }
    Ok(out)
}

fn container(
    app_name: &str,
    app: &Application,
    c: &wandb_manifest::Container,
    ctx: &BuildContext,
    env: &[k8s_openapi::api::core::v1::EnvVar],
    mounts: &[VolumeMount],
) -> Container {
    let ports: Vec<ContainerPort> = c
        .ports
        .iter()
        .map(|p| ContainerPort {
            container_port: p.container_port,
            name: p.name.clone(),
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
            ..Default::default()
        })
        .collect();
    let (startup, liveness, readiness) = probes::build(c, &ports, ctx.probes);
    let mut resources = app
        .container_resources(c, ctx.inst.size_key, ctx.inst.require_limits)
        .to_k8s();
    overrides::apply_resources(
        ctx.cr,
        app_name,
        app.legacy_key.as_deref(),
        ctx.inst.require_limits,
        &mut resources,
    );
    let has_resources = resources.requests.is_some() || resources.limits.is_some();
    Container {
        name: names::dns_label(&c.name),
        image: c
            .image
            .as_ref()
            .map(|i| i.reference(ctx.inst.image_registry.as_deref())),
        args: c.args.clone().filter(|a| !a.is_empty()),
        command: c.command.clone().filter(|a| !a.is_empty()),
        ports: (!ports.is_empty()).then_some(ports),
        env: (!env.is_empty()).then(|| env.to_vec()),
        volume_mounts: (!mounts.is_empty()).then(|| mounts.to_vec()),
        resources: has_resources.then_some(resources),
        startup_probe: startup,
        liveness_probe: liveness,
        readiness_probe: readiness,
        security_context: Some(security::container_security(c.image.as_ref())),
        ..Default::default()
    }
}

/// HPA bounds: manifest sizing, overridden by `spec.wandb.applications.<app>.autoscaling`.
fn autoscaling(
    app_name: &str,
    app: &Application,
    ctx: &BuildContext,
) -> Option<HorizontalAutoscaling> {
    let from_manifest = app
        .sizing_for(ctx.inst.size_key, ctx.inst.require_limits)
        .hpa();
    let user = ctx
        .cr
        .spec
        .wandb
        .applications
        .as_ref()
        .and_then(|a| a.get(app_name))
        .and_then(|o| o.autoscaling.as_ref());
    match (from_manifest, user) {
        // Each bound is optional: an unset one keeps the manifest's (else min 1, max >= min),
        // and the manifest's metrics and behaviour are kept.
        (m, Some(u)) => {
            let base = m.unwrap_or_default();
            let min = u.min_replicas.or(base.min_replicas).unwrap_or(1);
            let max = u.max_replicas.or(base.max_replicas).unwrap_or(min).max(min);
            let h = HorizontalAutoscaling {
                min_replicas: Some(min),
                max_replicas: Some(max),
                ..base
            };
            h.normalized()
        }
        (m, None) => m,
    }
}

/// Inline files go into `<cr>-<app>-files`, each mounted as `<mountPath>/<fileName>`.
fn add_files(
    app: &Application,
    cm_name: &str,
    meta: &dyn Fn(&str) -> ObjectMeta,
    mounts: &mut pod::Mounts,
    out: &mut Vec<DesiredObject>,
) -> Option<String> {
    let mut data = BTreeMap::new();
    for f in &app.files {
        let key = config_map_key(&f.name);
        let file_name = f.file_name.clone().unwrap_or_else(|| f.name.clone());
        let mount_path = format!("{}/{file_name}", f.mount_path.trim_end_matches('/'));
        if let Some(inline) = &f.inline {
            data.insert(key.clone(), inline.clone());
            mounts.add(
                Volume {
                    name: "files".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: format!("{cm_name}-files"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                VolumeMount {
                    name: "files".into(),
                    mount_path,
                    sub_path: Some(key),
                    read_only: Some(true),
                    ..Default::default()
                },
            );
        } else if let Some(r) = &f.config_map_ref {
            let vol = names::dns_label(&format!("file-{}", f.name));
            let item = r.key.clone().unwrap_or_else(|| key.clone());
            mounts.add(
                Volume {
                    name: vol.clone(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: r.name.clone(),
                        items: Some(vec![KeyToPath {
                            key: item.clone(),
                            path: item.clone(),
                            mode: None,
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                VolumeMount {
                    name: vol,
                    mount_path,
                    sub_path: Some(item),
                    read_only: Some(true),
                    ..Default::default()
                },
            );
        }
    }
    if data.is_empty() {
        return None;
    }
    let checksum = names::short_hash(
        &data
            .iter()
            .map(|(k, v)| format!("{k}\n{v}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let cm = ConfigMap {
        metadata: meta(&format!("{cm_name}-files")),
        data: Some(data),
        ..Default::default()
    };
    out.push(DesiredObject::new(Phase::Config, &cm));
    Some(checksum)
}

fn config_map_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Manifest `jwtTokens`: projected service-account tokens, a Secret key, or (unsupported here)
/// a CSI driver, each mounted at its path.
fn add_jwt_tokens(app_name: &str, app: &Application, mounts: &mut pod::Mounts) {
    for t in &app.jwt_tokens {
        let vol_name = names::dns_label(&format!("{app_name}-{}", t.name));
        let mut volume = Volume {
            name: vol_name.clone(),
            ..Default::default()
        };
        if let Some(sa) = &t.source.kubernetes_service_account {
            volume.projected = Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(sa.audience.clone()),
                        expiration_seconds: Some(sa.expiration_seconds.max(600)),
                        path: "token".into(),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        } else if let Some(s) = &t.source.secret_ref {
            volume.secret = Some(SecretVolumeSource {
                secret_name: Some(s.name.clone()),
                items: Some(vec![KeyToPath {
                    key: s.key.clone(),
                    path: "token".into(),
                    mode: None,
                }]),
                ..Default::default()
            });
        } else if let Some(csi) = &t.source.csi_provider {
            volume.csi = Some(k8s_openapi::api::core::v1::CSIVolumeSource {
                driver: csi.driver.clone(),
                read_only: Some(true),
                volume_attributes: Some(csi.parameters.clone()),
                ..Default::default()
            });
        } else {
            continue;
        }
        mounts.add(
            volume,
            VolumeMount {
                name: vol_name,
                mount_path: t.mount_path.clone(),
                read_only: Some(true),
                ..Default::default()
            },
        );
    }
}
