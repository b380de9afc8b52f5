//! Mode `gateway`: one HTTPRoute per enabled app with manifest paths, attached to the managed
//! Gateway `<cr>-gateway` or to `gatewayRef`, and the managed Gateway itself.
//!
//! Gateway API types are not in k8s-openapi, so the objects are built as JSON; the field names
//! follow `gateway.networking.k8s.io/v1`.

use serde_json::{Map, Value, json};
use wandb_api::{GatewayListener, GatewaySpec, NetworkingSpec};

use super::{AppPaths, BuildContext, app_paths, edge_annotations, hosts, tls_secret};
use crate::desired::{DesiredObject, Phase};
use crate::instance::Instance;
use crate::names;

pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";
const GROUP: &str = "gateway.networking.k8s.io";

/// Headers the routes strip before the request reaches an app: the apps build absolute URLs from
/// them, and behind a Gateway they carry the Gateway's own host/port rather than the public URL
/// (the official operator strips the same two).
const STRIPPED_HEADERS: [&str; 2] = ["X-Forwarded-Host", "X-Forwarded-Port"];

/// The managed Gateway's name.
pub fn managed_gateway_name(cr: &str) -> String {
    names::scoped(cr, "gateway")
}

/// The HTTPRoutes and, when `managed`, the Gateway.
pub fn gateway_api(ctx: &BuildContext, warnings: &mut Vec<String>) -> Vec<DesiredObject> {
    let inst = ctx.inst;
    let net = ctx.cr.spec.networking.clone().unwrap_or_default();
    // The CRD requires gatewayAPI in this mode; a CR that slipped past it builds no edge.
    let Some(api) = net.gateway_api.clone() else {
        warnings.push("gateway: spec.networking.gatewayAPI is unset; nothing is routed".into());
        return vec![];
    };
    let managed = api.gateway.managed.unwrap_or(false);
    let parent = parent_ref(inst, &api.gateway, managed, api.listener_name.as_deref());
    let hostnames = hosts(inst);
    let mut out: Vec<DesiredObject> = app_paths(ctx, "gateway", warnings)
        .iter()
        .filter(|a| !a.paths.is_empty())
        .map(|a| route(inst, a, &parent, &hostnames))
        .collect();
    if out.is_empty() {
        warnings.push(
            "gateway: no enabled application declares ingress paths; no HTTPRoute is created"
                .into(),
        );
    }
    if managed {
        out.push(gateway(
            inst,
            &net,
            &api.gateway,
            api.listener_name.as_deref(),
        ));
    }
    out
}

/// The parent every route attaches to; `sectionName` pins one listener when set.
fn parent_ref(inst: &Instance, gw: &GatewaySpec, managed: bool, listener: Option<&str>) -> Value {
    let mut p = Map::new();
    p.insert("group".into(), GROUP.into());
    p.insert("kind".into(), "Gateway".into());
    match (&gw.gateway_ref, managed) {
        (Some(r), false) => {
            p.insert("name".into(), r.name.clone().into());
            // Omitted means the route's namespace, which is what an unset namespace means here.
            if let Some(ns) = &r.namespace {
                p.insert("namespace".into(), ns.clone().into());
            }
        }
        _ => {
            p.insert("name".into(), managed_gateway_name(&inst.name).into());
        }
    }
    if let Some(l) = listener {
        p.insert("sectionName".into(), l.into());
    }
    Value::Object(p)
}

/// Gateway API path match type of a manifest `pathType`: `Exact` stays exact; `Prefix` and
/// `ImplementationSpecific` (whose Ingress controllers treat it as a prefix) become `PathPrefix`.
pub fn path_match_type(path_type: Option<&str>) -> &'static str {
    match path_type {
        Some("Exact") => "Exact",
        _ => "PathPrefix",
    }
}

fn route(inst: &Instance, app: &AppPaths, parent: &Value, hostnames: &[String]) -> DesiredObject {
    let match_type = path_match_type(app.path_type);
    let matches: Vec<Value> = app
        .paths
        .iter()
        .map(|p| json!({"path": {"type": match_type, "value": p}}))
        .collect();
    let route = json!({
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {
            "name": app.service,
            "namespace": inst.namespace,
            "labels": names::labels(&inst.name, app.app, "networking", &inst.version),
        },
        "spec": {
            "parentRefs": [parent],
            "hostnames": hostnames,
            "rules": [{
                "matches": matches,
                "filters": [{
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"remove": STRIPPED_HEADERS},
                }],
                "backendRefs": [{"name": app.service, "port": app.port}],
            }],
        },
    });
    DesiredObject::from_value(Phase::Networking, route)
}

fn gateway(
    inst: &Instance,
    net: &NetworkingSpec,
    gw: &GatewaySpec,
    listener_name: Option<&str>,
) -> DesiredObject {
    let listeners: Vec<Value> = match gw.listeners.as_deref() {
        Some(ls) if !ls.is_empty() => ls.iter().map(listener).collect(),
        _ => vec![default_listener(inst, net, listener_name)],
    };
    let mut spec = Map::new();
    if let Some(class) = &gw.gateway_class_name {
        spec.insert("gatewayClassName".into(), class.clone().into());
    }
    spec.insert("listeners".into(), listeners.into());
    if let Some(a) = gw
        .infrastructure_annotations
        .as_ref()
        .filter(|a| !a.is_empty())
    {
        spec.insert("infrastructure".into(), json!({"annotations": a}));
    }
    let mut metadata = json!({
        "name": managed_gateway_name(&inst.name),
        "namespace": inst.namespace,
        "labels": names::labels(&inst.name, "gateway", "networking", &inst.version),
    });
    let annotations = edge_annotations(net);
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    DesiredObject::from_value(
        Phase::Networking,
        json!({
            "apiVersion": API_VERSION,
            "kind": "Gateway",
            "metadata": metadata,
            "spec": spec,
        }),
    )
}

fn listener(l: &GatewayListener) -> Value {
    let mut v = json!({"name": l.name, "port": l.port, "protocol": l.protocol});
    if let Some(h) = &l.hostname {
        v["hostname"] = h.clone().into();
    }
    if let Some(tls) = &l.tls {
        let mut t = Map::new();
        if let Some(m) = &tls.mode {
            t.insert("mode".into(), m.clone().into());
        }
        if let Some(c) = &tls.certificate_ref {
            let mut r = json!({"name": c.name});
            if let Some(ns) = &c.namespace {
                r["namespace"] = ns.clone().into();
            }
            t.insert("certificateRefs".into(), json!([r]));
        }
        v["tls"] = Value::Object(t);
    }
    v
}

/// The one listener of a managed Gateway without listeners, from `spec.wandb.hostname`: HTTP on
/// 80, or HTTPS on 443 terminating with the public hosts' TLS Secret. It is named after
/// `listenerName` when set, so that the routes' `sectionName` finds it. Its hostname is the
/// public host (cert-manager's gateway-shim issues for listener hostnames); with additional
/// hostnames it has none, since one listener hostname would leave the other hosts unrouted.
fn default_listener(inst: &Instance, net: &NetworkingSpec, listener_name: Option<&str>) -> Value {
    let https = inst.url.starts_with("https://");
    let (default_name, port, protocol) = if https {
        ("https", 443, "HTTPS")
    } else {
        ("http", 80, "HTTP")
    };
    let mut l = json!({
        "name": listener_name.unwrap_or(default_name),
        "port": port,
        "protocol": protocol,
    });
    if inst.additional_hosts.is_empty() {
        l["hostname"] = inst.host.clone().into();
    }
    if https {
        l["tls"] = json!({
            "mode": "Terminate",
            "certificateRefs": [{"name": tls_secret(inst, net)}],
        });
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_paths_stay_exact_and_everything_else_is_a_prefix() {
        assert_eq!(path_match_type(Some("Exact")), "Exact");
        assert_eq!(path_match_type(Some("Prefix")), "PathPrefix");
        assert_eq!(
            path_match_type(Some("ImplementationSpecific")),
            "PathPrefix"
        );
        assert_eq!(path_match_type(None), "PathPrefix");
    }
}
