//! `spec.networking.mode: gateway` over the real fixture manifest: one HTTPRoute per app with
//! ingress paths, attached to the managed or referenced Gateway, and the managed Gateway.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wandb_api::WeightsAndBiases;
use wandb_engine::Built;
use wandb_manifest::ServerManifest;

mod common;

fn manifest() -> ServerManifest {
    common::manifest("fixture", "0.84.0")
}

/// A CR with `hostname`, the given extra spec.wandb lines and `networking` block.
fn cr(hostname: &str, wandb_extra: &str, networking: &str) -> WeightsAndBiases {
    let yaml = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: wandb, namespace: wandb}}\nspec:\n  wandb:\n    hostname: {hostname}\n    version: \"0.84.0\"\n{wandb_extra}  networking:\n{networking}"
    );
    let cr: WeightsAndBiases = serde_saphyr::from_str(&yaml).unwrap();
    cr.validate_cel().unwrap();
    cr
}

const MANAGED: &str =
    "    mode: gateway\n    gatewayAPI:\n      gateway: {managed: true, gatewayClassName: eg}\n";

fn render(cr: &WeightsAndBiases) -> Built {
    wandb_engine::plan(cr, &manifest(), None).unwrap_or_else(|e| panic!("plan failed: {e:?}"))
}

fn objects_of<'a>(built: &'a Built, kind: &str) -> Vec<&'a Value> {
    built
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| &o.object)
        .collect()
}

fn by_name<'a>(built: &'a Built, kind: &str, name: &str) -> &'a Value {
    objects_of(built, kind)
        .into_iter()
        .find(|o| o.pointer("/metadata/name") == Some(&json!(name)))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn one_route_per_app_with_its_paths_hosts_service_and_header_filter() {
    let m = manifest();
    let built = render(&cr(
        "https://wandb.example.com",
        "    additionalHostnames: [wandb.internal.example.com]\n",
        MANAGED,
    ));
    let features = m.effective_features(&BTreeMap::new());
    let apps: Vec<_> = m
        .enabled_applications(&features)
        .filter_map(|(name, a)| a.ingress.as_ref().map(|i| (name, i)))
        .filter(|(_, i)| !i.paths.is_empty())
        .collect();
    assert!(apps.len() >= 2, "the fixture routes several apps");
    let routes = objects_of(&built, "HTTPRoute");
    assert_eq!(routes.len(), apps.len());
    for (app, ing) in apps {
        let name = format!("wandb-{app}");
        let route = by_name(&built, "HTTPRoute", &name);
        assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(route["metadata"]["namespace"], "wandb");
        assert_eq!(
            route["metadata"]["labels"]["app.kubernetes.io/instance"],
            "wandb"
        );
        assert_eq!(
            route["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "wandb-operator"
        );
        let spec = &route["spec"];
        assert_eq!(
            spec["parentRefs"],
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "wandb-gateway"}])
        );
        assert_eq!(
            spec["hostnames"],
            json!(["wandb.example.com", "wandb.internal.example.com"])
        );
        let rules = spec["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        let rule = &rules[0];
        let expected_type = if ing.path_type.as_deref() == Some("Exact") {
            "Exact"
        } else {
            "PathPrefix"
        };
        let matches: Vec<Value> = ing
            .paths
            .iter()
            .map(|p| json!({"path": {"type": expected_type, "value": p}}))
            .collect();
        assert_eq!(rule["matches"], json!(matches));
        assert_eq!(
            rule["filters"],
            json!([{"type": "RequestHeaderModifier", "requestHeaderModifier": {"remove": ["X-Forwarded-Host", "X-Forwarded-Port"]}}])
        );
        // The backend is the app's Service on the port the Ingress would use.
        let backends = rule["backendRefs"].as_array().unwrap();
        assert_eq!(backends.len(), 1);
        assert_eq!(backends[0]["name"], json!(name));
        let service = by_name(&built, "Service", &name);
        let port = &backends[0]["port"];
        assert!(
            service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| &p["port"] == port),
            "{name}: port {port} is not a port of its Service"
        );
    }
}

#[test]
fn routes_and_ingress_route_the_same_paths_to_the_same_backends() {
    let gw = render(&cr("https://wandb.example.com", "", MANAGED));
    let ing = render(&cr("https://wandb.example.com", "", "    mode: ingress\n"));
    let mut from_routes: Vec<(String, String, i64)> = objects_of(&gw, "HTTPRoute")
        .iter()
        .flat_map(|r| {
            let rule = &r["spec"]["rules"][0];
            let b = &rule["backendRefs"][0];
            rule["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["path"]["value"].as_str().unwrap().to_string(),
                        b["name"].as_str().unwrap().to_string(),
                        b["port"].as_i64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let ingress = objects_of(&ing, "Ingress")[0];
    let mut from_ingress: Vec<(String, String, i64)> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = &p["backend"]["service"];
            (
                p["path"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
                s["port"]["number"].as_i64().unwrap(),
            )
        })
        .collect();
    from_routes.sort();
    from_ingress.sort();
    assert_eq!(from_routes, from_ingress);
}

#[test]
fn referenced_gateway_gets_routes_with_its_namespace_and_listener_and_no_gateway() {
    let built = render(&cr(
        "https://wandb.example.com",
        "",
        "    mode: gateway\n    gatewayAPI:\n      gateway: {gatewayRef: {name: shared, namespace: edge}}\n      listenerName: wandb-https\n",
    ));
    assert!(objects_of(&built, "Gateway").is_empty());
    let routes = objects_of(&built, "HTTPRoute");
    assert!(!routes.is_empty());
    for r in routes {
        assert_eq!(
            r["spec"]["parentRefs"],
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": "edge", "sectionName": "wandb-https"}])
        );
    }
    // Without a namespace the reference means the instance's own.
    let built = render(&cr(
        "https://wandb.example.com",
        "",
        "    mode: gateway\n    gatewayAPI:\n      gateway: {managed: false, gatewayRef: {name: shared}}\n",
    ));
    assert!(objects_of(&built, "Gateway").is_empty());
    for r in objects_of(&built, "HTTPRoute") {
        assert_eq!(
            r["spec"]["parentRefs"],
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared"}])
        );
    }
}

#[test]
fn managed_gateway_for_an_http_hostname_listens_on_80() {
    let built = render(&cr("http://wandb.example.com", "", MANAGED));
    let gws = objects_of(&built, "Gateway");
    assert_eq!(gws.len(), 1);
    let gw = gws[0];
    assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(gw["metadata"]["name"], "wandb-gateway");
    assert_eq!(gw["metadata"]["namespace"], "wandb");
    assert_eq!(
        gw["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "wandb-operator"
    );
    assert!(gw["metadata"].get("annotations").is_none());
    assert_eq!(
        gw["spec"],
        json!({
            "gatewayClassName": "eg",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "wandb.example.com"}],
        })
    );
}

#[test]
fn managed_gateway_for_an_https_hostname_terminates_tls_with_the_tls_secret() {
    let built = render(&cr(
        "https://wandb.example.com",
        "    additionalHostnames: [wandb.internal.example.com]\n",
        concat!(
            "    mode: gateway\n",
            "    gatewayAPI:\n",
            "      gateway:\n",
            "        managed: true\n",
            "        gatewayClassName: eg\n",
            "        infrastructureAnnotations: {service.beta.kubernetes.io/aws-load-balancer-scheme: internal}\n",
            "      listenerName: public\n",
            "    tls: {secretName: wandb-cert, certManager: {clusterIssuer: letsencrypt}}\n",
            "    annotations: {team: ml}\n",
        ),
    ));
    let gw = by_name(&built, "Gateway", "wandb-gateway");
    assert_eq!(
        gw["metadata"]["annotations"],
        json!({"cert-manager.io/cluster-issuer": "letsencrypt", "team": "ml"})
    );
    // Named after listenerName so that the routes' sectionName finds it; no hostname, so that
    // the additional hostname is routed too.
    assert_eq!(
        gw["spec"],
        json!({
            "gatewayClassName": "eg",
            "listeners": [{
                "name": "public", "port": 443, "protocol": "HTTPS",
                "tls": {"mode": "Terminate", "certificateRefs": [{"name": "wandb-cert"}]},
            }],
            "infrastructure": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}},
        })
    );
    for r in objects_of(&built, "HTTPRoute") {
        assert_eq!(r["spec"]["parentRefs"][0]["sectionName"], "public");
    }
    // Without a secretName the listener uses `<cr>-tls`, like the Ingress.
    let built = render(&cr("https://wandb.example.com", "", MANAGED));
    let gw = by_name(&built, "Gateway", "wandb-gateway");
    assert_eq!(
        gw["spec"]["listeners"],
        json!([{
            "name": "https", "port": 443, "protocol": "HTTPS", "hostname": "wandb.example.com",
            "tls": {"mode": "Terminate", "certificateRefs": [{"name": "wandb-tls"}]},
        }])
    );
}

#[test]
fn managed_gateway_takes_the_given_listeners() {
    let built = render(&cr(
        "https://wandb.example.com",
        "",
        concat!(
            "    mode: gateway\n",
            "    gatewayAPI:\n",
            "      gateway:\n",
            "        managed: true\n",
            "        gatewayClassName: eg\n",
            "        listeners:\n",
            "        - {name: web, port: 8080, protocol: HTTP}\n",
            "        - {name: secure, port: 8443, protocol: HTTPS, hostname: wandb.example.com, tls: {mode: Terminate, certificateRef: {name: cert, namespace: certs}}}\n",
        ),
    ));
    let gw = by_name(&built, "Gateway", "wandb-gateway");
    assert_eq!(
        gw["spec"]["listeners"],
        json!([
            {"name": "web", "port": 8080, "protocol": "HTTP"},
            {"name": "secure", "port": 8443, "protocol": "HTTPS", "hostname": "wandb.example.com",
             "tls": {"mode": "Terminate", "certificateRefs": [{"name": "cert", "namespace": "certs"}]}},
        ])
    );
}

#[test]
fn other_modes_build_no_gateway_api_objects() {
    for networking in ["    mode: ingress\n", "    mode: \"\"\n"] {
        let built = render(&cr("https://wandb.example.com", "", networking));
        assert!(objects_of(&built, "HTTPRoute").is_empty(), "{networking}");
        assert!(objects_of(&built, "Gateway").is_empty(), "{networking}");
    }
    // And gateway mode builds no Ingress.
    let built = render(&cr("https://wandb.example.com", "", MANAGED));
    assert!(objects_of(&built, "Ingress").is_empty());
}

#[test]
fn gateway_mode_snapshot() {
    let built = render(&cr(
        "https://wandb.example.com",
        "    additionalHostnames: [wandb.internal.example.com]\n",
        concat!(
            "    mode: gateway\n",
            "    gatewayAPI:\n",
            "      gateway: {managed: true, gatewayClassName: eg}\n",
            "    tls: {certManager: {clusterIssuer: letsencrypt}}\n",
        ),
    ));
    let networking = Built {
        objects: built
            .objects
            .into_iter()
            .filter(|o| o.phase == wandb_engine::Phase::Networking)
            .collect(),
        secrets: vec![],
        warnings: vec![],
        infra: vec![],
        ..built
    };
    insta::assert_snapshot!(wandb_engine::render::to_yaml(&networking, "wandb"));
}
