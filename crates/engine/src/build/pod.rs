//! What every pod the operator builds shares: volumes from manifest mounts, custom CA, proxy env,
//! the pod-level security context, pull secrets, service account, scheduling.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, EmptyDirVolumeSource, EnvVar, PodSecurityContext, PodSpec,
    PodTemplateSpec, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wandb_api::{ProxySpec, ProxyValue, WeightsAndBiases};
use wandb_manifest::VolumeSourceType;

use crate::EngineError;
use crate::env;
use crate::instance::Instance;
use crate::names;

/// Where custom CA certificates are mounted (one folder per source) and trusted from.
pub const CA_ROOT: &str = "/usr/local/share/ca-certificates";

/// Volumes and mounts accumulated for one pod; volumes are de-duplicated by name.
#[derive(Default)]
pub struct Mounts {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

impl Mounts {
    pub fn add(&mut self, volume: Volume, mount: VolumeMount) {
        if !self.volumes.iter().any(|v| v.name == volume.name) {
            self.volumes.push(volume);
        }
        if !self.mounts.iter().any(|m| m.mount_path == mount.mount_path) {
            self.mounts.push(mount);
        }
    }

    /// Manifest volume mounts (`commonVolumeMounts` and `volumeMounts`).
    pub fn add_manifest(
        &mut self,
        list: &[wandb_manifest::VolumeMount],
        owner: &str,
    ) -> Result<(), EngineError> {
        for (i, m) in list.iter().enumerate() {
            let mut volume = Volume {
                name: names::dns_label(&m.name),
                ..Default::default()
            };
            match &m.source.kind {
                VolumeSourceType::EmptyDir => {
                    volume.empty_dir = Some(EmptyDirVolumeSource::default())
                }
                VolumeSourceType::Secret => {
                    volume.secret = Some(SecretVolumeSource {
                        secret_name: Some(m.source.name.clone()),
                        ..Default::default()
                    })
                }
                VolumeSourceType::ConfigMap => {
                    volume.config_map = Some(ConfigMapVolumeSource {
                        name: m.source.name.clone(),
                        ..Default::default()
                    })
                }
                VolumeSourceType::Unknown(other) => {
                    return Err(EngineError::invalid(
                        format!("manifest {owner}.volumeMounts[{i}].source.type"),
                        format!(
                            "unsupported volume source type {other:?} (supported: secret, configMap, emptyDir)"
                        ),
                    ));
                }
            }
            let mount = VolumeMount {
                name: volume.name.clone(),
                mount_path: m.mount_path.clone(),
                ..Default::default()
            };
            self.add(volume, mount);
        }
        Ok(())
    }
}

/// Custom CA volumes and env, plus a checksum of the inline certificates so that a change rolls
/// the pods.
pub fn add_custom_ca(
    cr: &WeightsAndBiases,
    inst: &Instance,
    mounts: &mut Mounts,
    env: &mut Vec<EnvVar>,
) -> Option<String> {
    let global = cr.spec.global.as_ref()?;
    let mut dirs = vec!["/etc/ssl/certs".to_string()];
    let mut checksum = None;
    if let Some(certs) = global.custom_ca_certs.as_ref().filter(|c| !c.is_empty()) {
        dirs.push(mount_ca_dir(mounts, &ca_config_map(inst), "inline"));
        checksum = Some(names::short_hash(&certs.join("\n")));
    }
    if let Some(cm) = global
        .ca_certs_config_map
        .as_ref()
        .filter(|c| !c.is_empty())
    {
        dirs.push(mount_ca_dir(mounts, cm, "configmap"));
    }
    if dirs.len() > 1 {
        env.push(env::literal("SSL_CERT_DIR", &dirs.join(":")));
    }
    checksum
}

/// Mounts ConfigMap `cm` read-only at `<CA_ROOT>/<dir>`; returns that folder.
fn mount_ca_dir(mounts: &mut Mounts, cm: &str, dir: &str) -> String {
    let volume = format!("wandb-ca-{dir}");
    let path = format!("{CA_ROOT}/{dir}");
    mounts.add(
        Volume {
            name: volume.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: cm.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: volume,
            mount_path: path.clone(),
            read_only: Some(true),
            ..Default::default()
        },
    );
    path
}

/// Name of the ConfigMap holding `spec.global.customCACerts`.
pub fn ca_config_map(inst: &Instance) -> String {
    names::scoped(&inst.name, "ca-certs")
}

/// HTTP(S)_PROXY / NO_PROXY (both spellings) from `spec.global.proxy`.
pub fn proxy_env(proxy: Option<&ProxySpec>, inst: &Instance) -> Vec<EnvVar> {
    let Some(proxy) = proxy else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut add = |names: [&str; 2], value: &ProxyValue| {
        for name in names {
            if let Some(v) = &value.value {
                out.push(env::literal(name, v));
            } else if let Some(from) = &value.value_from {
                out.push(env::secret(name, from.secret_key_ref.clone()));
            }
        }
    };
    if let Some(v) = &proxy.http_proxy {
        add(["HTTP_PROXY", "http_proxy"], v);
    }
    if let Some(v) = &proxy.https_proxy {
        add(["HTTPS_PROXY", "https_proxy"], v);
    }
    if proxy.http_proxy.is_some() || proxy.https_proxy.is_some() {
        let mut no_proxy: Vec<String> = [
            "localhost",
            "127.0.0.1",
            "::1",
            ".svc",
            ".svc.cluster.local",
            ".cluster.local",
            "kubernetes.default.svc",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        no_proxy.push(format!(".{}.svc.cluster.local", inst.namespace));
        for extra in proxy.no_proxy.iter().flatten() {
            if !no_proxy.contains(extra) {
                no_proxy.push(extra.clone());
            }
        }
        let joined = no_proxy.join(",");
        out.push(env::literal("NO_PROXY", &joined));
        out.push(env::literal("no_proxy", &joined));
    }
    out
}

/// Container security context compatible with the `restricted` Pod Security Standard, for
/// managed services whose pod sets the image's numeric user (W&B apps: see `security`).
pub fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// The pod-level parts every workload shares.
pub fn base_pod_spec(inst: &Instance) -> PodSpec {
    PodSpec {
        service_account_name: Some(inst.service_account.clone()),
        image_pull_secrets: (!inst.pull_secrets.is_empty()).then(|| inst.pull_secrets.clone()),
        affinity: inst.affinity.clone(),
        tolerations: (!inst.tolerations.is_empty()).then(|| inst.tolerations.clone()),
        // The user is each container's (see `security`): images differ.
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Job running `spec` with `labels` on the Job and its pods; retries with backoff up to
/// `backoff_limit`, within `deadline_seconds` when given.
pub fn job(
    name: String,
    inst: &Instance,
    labels: BTreeMap<String, String>,
    spec: PodSpec,
    backoff_limit: i32,
    deadline_seconds: Option<i64>,
) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(inst.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(backoff_limit),
            active_deadline_seconds: deadline_seconds,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Pod template annotations: checksums that force a rollout when mounted content changes.
pub fn checksum_annotations(
    ca: Option<String>,
    files: Option<String>,
) -> Option<BTreeMap<String, String>> {
    let mut a = BTreeMap::new();
    if let Some(c) = ca {
        a.insert("apps.wandb.com/ca-certs-checksum".to_string(), c);
    }
    if let Some(f) = files {
        a.insert("apps.wandb.com/files-checksum".to_string(), f);
    }
    (!a.is_empty()).then_some(a)
}
