//! Mode `ingress`: one Ingress carrying every enabled app's manifest paths for the public host and
//! each additional hostname.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{BuildContext, app_paths, edge_annotations, hosts, tls_secret};
use crate::desired::{DesiredObject, Phase};
use crate::names;

pub fn ingress(ctx: &BuildContext, warnings: &mut Vec<String>) -> Option<DesiredObject> {
    let inst = ctx.inst;
    let net = ctx.cr.spec.networking.clone().unwrap_or_default();
    let ing = net.ingress.clone().unwrap_or_default();
    let mut paths = Vec::new();
    for app in app_paths(ctx, "ingress", warnings) {
        for path in app.paths {
            paths.push(HTTPIngressPath {
                path: Some(path.clone()),
                path_type: app.path_type.unwrap_or("Prefix").to_string(),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: app.service.clone(),
                        port: Some(ServiceBackendPort {
                            number: Some(app.port),
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
    let hosts = hosts(inst);
    let rules = hosts
        .iter()
        .map(|h| IngressRule {
            host: Some(h.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: paths.clone(),
            }),
        })
        .collect();

    let mut annotations = edge_annotations(&net);
    if ing.ingress_class_name.as_deref() == Some("nginx") {
        annotations
            .entry("nginx.ingress.kubernetes.io/proxy-body-size".into())
            .or_insert_with(|| "0".into());
    }
    let tls_spec = net.tls.clone().unwrap_or_default();
    let cert_manager = tls_spec.cert_manager.clone().unwrap_or_default();
    let wants_tls = tls_spec.secret_name.is_some()
        || cert_manager.cluster_issuer.is_some()
        || cert_manager.issuer.is_some();
    let tls = wants_tls.then(|| {
        vec![IngressTLS {
            hosts: Some(hosts.clone()),
            secret_name: Some(tls_secret(inst, &net)),
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
