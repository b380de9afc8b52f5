//! Certificates that connection URLs name (`ssl-ca=/etc/ssl/certs/mysql_ca.pem`,
//! `caCertPath=/etc/ssl/certs/redis_ca.pem`, ...): each is the user's Secret key, mounted by
//! `subPath` at its fixed path in every app and migration pod.

use k8s_openapi::api::core::v1::{
    KeyToPath, SecretKeySelector, SecretVolumeSource, Volume, VolumeMount,
};
use wandb_api::WeightsAndBiases;

use super::url::{CertRole, cert_file, cert_path};
use crate::build::pod::Mounts;
use crate::connection::ServiceKind;
use crate::instance::{Instance, Mode};
use crate::names;

/// One certificate file to mount.
#[derive(Clone, Debug, PartialEq)]
pub struct CertMount {
    pub kind: ServiceKind,
    pub instance: String,
    pub role: CertRole,
    pub selector: SecretKeySelector,
}

impl CertMount {
    pub fn file(&self) -> String {
        cert_file(self.kind, &self.instance, self.role)
    }
    pub fn path(&self) -> String {
        cert_path(self.kind, &self.instance, self.role)
    }
}

/// Certificates of the external MySQL, Redis and Kafka instances the instance uses, in a stable
/// order.
pub fn cert_mounts(cr: &WeightsAndBiases, inst: &Instance) -> Vec<CertMount> {
    let mut out = Vec::new();
    for ((kind, instance), mode) in &inst.services {
        if *mode != Mode::External {
            continue;
        }
        let roles: Vec<(CertRole, Option<&SecretKeySelector>)> = match kind {
            ServiceKind::Mysql => {
                let Some(e) = cr
                    .spec
                    .mysql
                    .as_ref()
                    .and_then(|m| m.get(instance))
                    .and_then(|m| m.external_mysql.as_ref())
                else {
                    continue;
                };
                vec![
                    (CertRole::Ca, e.ssl_ca.as_ref()),
                    (CertRole::Cert, e.ssl_cert.as_ref()),
                    (CertRole::Key, e.ssl_key.as_ref()),
                ]
            }
            ServiceKind::Redis => {
                let Some(e) = cr
                    .spec
                    .redis
                    .as_ref()
                    .and_then(|m| m.get(instance))
                    .and_then(|m| m.external_redis.as_ref())
                else {
                    continue;
                };
                vec![(CertRole::Ca, e.ssl_ca.as_ref())]
            }
            ServiceKind::Kafka => {
                let Some(e) = cr
                    .spec
                    .kafka
                    .as_ref()
                    .and_then(|k| k.external_kafka.as_ref())
                else {
                    continue;
                };
                vec![(CertRole::Ca, e.ssl_ca.as_ref())]
            }
            _ => continue,
        };
        for (role, sel) in roles {
            if let Some(sel) = sel {
                out.push(CertMount {
                    kind: *kind,
                    instance: instance.clone(),
                    role,
                    selector: sel.clone(),
                });
            }
        }
    }
    out
}

/// The pod-building hook: adds a Secret volume (only the named key, via `items`) and a
/// read-only `subPath` mount per certificate.
pub fn add_to_pod(cr: &WeightsAndBiases, inst: &Instance, mounts: &mut Mounts) {
    for c in cert_mounts(cr, inst) {
        let file = c.file();
        let volume = names::dns_label(&format!("cert-{}", file.trim_end_matches(".pem")));
        mounts.add(
            Volume {
                name: volume.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(c.selector.name.clone()),
                    items: Some(vec![KeyToPath {
                        key: c.selector.key.clone(),
                        path: file.clone(),
                        mode: None,
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            VolumeMount {
                name: volume,
                mount_path: c.path(),
                sub_path: Some(file),
                read_only: Some(true),
                ..Default::default()
            },
        );
    }
}
