//! The public edge: how the hostname(s) reach the apps. Mode `ingress` builds one Ingress, mode
//! `gateway` one HTTPRoute per app (and the Gateway when it is managed). Both route the same
//! manifest paths to the same Services, resolved here once.

mod gateway;
mod ingress;

use std::collections::BTreeMap;

use wandb_api::NetworkingSpec;

pub use gateway::{API_VERSION as GATEWAY_API_VERSION, gateway_api};
pub use ingress::ingress;

use super::BuildContext;
use crate::instance::Instance;
use crate::names;

/// An enabled app's manifest ingress paths and the Service port they go to.
pub(super) struct AppPaths<'a> {
    pub app: &'a str,
    /// The app's Service (named like it).
    pub service: String,
    pub port: i32,
    pub paths: &'a [String],
    /// The manifest's `pathType` (`Prefix` when unset).
    pub path_type: Option<&'a str>,
}

/// Every enabled app with ingress paths, in manifest order. An app whose `servicePort` names no
/// port of its Service is skipped with a warning (prefixed by `edge`) rather than routed to a
/// port that does not exist.
pub(super) fn app_paths<'a>(
    ctx: &'a BuildContext,
    edge: &str,
    warnings: &mut Vec<String>,
) -> Vec<AppPaths<'a>> {
    let mut out = Vec::new();
    for (app_name, app) in ctx.manifest.enabled_applications(ctx.features) {
        let Some(spec) = &app.ingress else { continue };
        let Some(port) = app.find_service_port(spec.service_port.as_ref()) else {
            warnings.push(format!(
                "{edge}: application {app_name:?} has no Service port {:?}; its paths are skipped",
                spec.service_port
            ));
            continue;
        };
        out.push(AppPaths {
            app: app_name,
            service: names::scoped(&ctx.inst.name, app_name),
            port: port.port,
            paths: &spec.paths,
            path_type: spec.path_type.as_deref(),
        });
    }
    out
}

/// The public host, then each additional hostname.
pub(super) fn hosts(inst: &Instance) -> Vec<String> {
    let mut hosts = vec![inst.host.clone()];
    hosts.extend(inst.additional_hosts.iter().cloned());
    hosts
}

/// `networking.annotations` plus the cert-manager issuer annotations, for the Ingress or the
/// managed Gateway (cert-manager's ingress- and gateway-shims read the same keys).
pub(super) fn edge_annotations(net: &NetworkingSpec) -> BTreeMap<String, String> {
    let mut annotations = net.annotations.clone().unwrap_or_default();
    let cert_manager = net
        .tls
        .as_ref()
        .and_then(|t| t.cert_manager.clone())
        .unwrap_or_default();
    if let Some(i) = cert_manager.cluster_issuer {
        annotations.insert("cert-manager.io/cluster-issuer".into(), i);
    }
    if let Some(i) = cert_manager.issuer {
        annotations.insert("cert-manager.io/issuer".into(), i);
    }
    annotations
}

/// The TLS Secret of the public host(s): `networking.tls.secretName`, or `<cr>-tls` (the name
/// cert-manager fills when only an issuer is given).
pub(super) fn tls_secret(inst: &Instance, net: &NetworkingSpec) -> String {
    net.tls
        .as_ref()
        .and_then(|t| t.secret_name.clone())
        .unwrap_or_else(|| names::scoped(&inst.name, "tls"))
}
