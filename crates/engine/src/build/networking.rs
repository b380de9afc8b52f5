//! Mode `ingress`: one Ingress carrying every enabled app's manifest paths for the public host and
//! each additional hostname.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::BuildContext;
use crate::desired::{DesiredObject, Phase};
use crate::names;

pub fn ingress(ctx: &BuildContext, warnings: &mut Vec<String>) -> Option<DesiredObject> {
    let inst = ctx.inst;
    let net = ctx.cr.spec.networking.clone().unwrap_or_default();
    let ing = net.ingress.clone().unwrap_or_default();
    let mut paths = Vec::new();
    for (app_name, app) in ctx.manifest.enabled_applications(ctx.features) {
        let Some(spec) = &app.ingress else { continue };
        let Some(port) = app.find_service_port(spec.service_port.as_ref()) else {
            warnings.push(format!(
                "ingress: application {app_name:?} has no Service port {:?}; its paths are skipped",
                spec.service_port
            ));
            continue;
        };
        for path in &spec.paths {
            paths.push(HTTPIngressPath {
                path: Some(path.clone()),
                path_type: spec.path_type.clone().unwrap_or_else(|| "Prefix".into()),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: names::scoped(&inst.name, app_name),
                        port: Some(ServiceBackendPort {
                            number: Some(port.port),
                            name: None,
                        }),
                    }),
                    resource: None,
                },
            });
        }
    }
    if paths.is_empty() {
        warnings.push(
            "ingress: no enabled application declares ingress paths; no Ingress is created".into(),
        );
        return None;
    }
    let mut hosts = vec![inst.host.clone()];
    hosts.extend(inst.additional_hosts.iter().cloned());
    let rules = hosts
        .iter()
        .map(|h| IngressRule {
            host: Some(h.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: paths.clone(),
            }),
        })
        .collect();

    let mut annotations: BTreeMap<String, String> = net.annotations.clone().unwrap_or_default();
    if ing.ingress_class_name.as_deref() == Some("nginx") {
        annotations
            .entry("nginx.ingress.kubernetes.io/proxy-body-size".into())
            .or_insert_with(|| "0".into());
    }
    let tls_spec = net.tls.clone().unwrap_or_default();
    let cert_manager = tls_spec.cert_manager.clone().unwrap_or_default();
    if let Some(i) = &cert_manager.cluster_issuer {
        annotations.insert("cert-manager.io/cluster-issuer".into(), i.clone());
    }
    if let Some(i) = &cert_manager.issuer {
        annotations.insert("cert-manager.io/issuer".into(), i.clone());
    }
    let wants_tls = tls_spec.secret_name.is_some()
        || cert_manager.cluster_issuer.is_some()
        || cert_manager.issuer.is_some();
    let tls = wants_tls.then(|| {
        vec![IngressTLS {
            hosts: Some(hosts.clone()),
            secret_name: Some(
                tls_spec
                    .secret_name
                    .clone()
                    .unwrap_or_else(|| names::scoped(&inst.name, "tls")),
            ),
        }]
    });
    let name = ing.name.clone().unwrap_or_else(|| inst.name.clone());
    let ingress = Ingress {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(inst.namespace.clone()),
            labels: Some(names::labels(
                &inst.name,
                "ingress",
                "networking",
                &inst.version,
            )),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: ing.ingress_class_name.clone(),
            rules: Some(rules),
            tls,
            ..Default::default()
        }),
        status: None,
    };
    Some(DesiredObject::new(Phase::Networking, &ingress))
}
