//! Render over the real fixture manifests and the built-in one, across sizes, networking modes and
//! connection sets: snapshots of the full output, plus invariants that hold for any manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::{Built, Connections};
use wandb_manifest::{ManifestLocation, ServerManifest};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/server-manifest")
}

fn manifest(source: &str, version: &str) -> ServerManifest {
    let loc = if source == "builtin" {
        ManifestLocation::parse("builtin://").unwrap()
    } else {
        let dir = fixtures();
        assert!(
            dir.is_dir(),
            "fixtures missing at {} (shared/ must sit beside the repo)",
            dir.display()
        );
        ManifestLocation::parse(&format!("file://{}", dir.display())).unwrap()
    };
    let m = loc
        .load(version)
        .unwrap_or_else(|e| panic!("load {source} {version}: {e}"));
    m.check_compatible().unwrap();
    m
}

fn cr(version: &str, size: &str, ingress: bool, external: bool) -> WeightsAndBiases {
    let mut yaml = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: wandb, namespace: wandb}}\nspec:\n  size: {size}\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"{version}\"\n    license: not-a-real-license\n    additionalHostnames: [wandb.internal.example.com]\n"
    );
    if ingress {
        yaml.push_str("  networking:\n    mode: ingress\n    ingress: {ingressClassName: nginx}\n    tls: {certManager: {clusterIssuer: letsencrypt}}\n");
    }
    if external {
        yaml.push_str(concat!(
            "  mysql: {default: {externalMysql: {host: {name: db, key: host}, database: {name: db, key: database}, username: {name: db, key: user}, password: {name: db, key: password}}}}\n",
            "  redis: {default: {externalRedis: {host: {name: cache, key: host}}}}\n",
            "  objectStore: {default: {externalObjectStore: {bucket: {name: bucket, key: name}}}}\n",
            "  clickhouse: {default: {externalClickhouse: {host: {name: ch, key: host}, username: {name: ch, key: user}, password: {name: ch, key: password}}}}\n",
            "  kafka: {externalKafka: {bootstrapServers: {name: kafka, key: servers}}}\n",
        ));
    }
    let cr: WeightsAndBiases = serde_saphyr::from_str(&yaml).unwrap();
    cr.validate_cel().unwrap();
    cr
}

fn external_connections() -> Connections {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/inputs/external-connections.yaml"),
    )
    .unwrap();
    Connections::from_yaml(&text).unwrap()
}

fn render(cr: &WeightsAndBiases, m: &ServerManifest, conns: Option<&Connections>) -> Built {
    wandb_engine::plan(cr, m, conns).unwrap_or_else(|e| panic!("plan failed: {e:?}"))
}

/// (manifest source, version)
const MANIFESTS: [(&str, &str); 3] = [
    ("fixture", "0.79.0"),
    ("fixture", "0.84.0"),
    ("builtin", "0.84.0"),
];

#[test]
fn snapshots_across_sizes_networking_and_connections() {
    let ext = external_connections();
    // Each size, networking mode and connection set appears for every manifest, without the
    // full cross product (whose snapshots would mostly repeat each other).
    let combos = [
        ("dev", false, false),
        ("small", true, true),
        ("xxlarge", true, false),
        ("small", false, true),
    ];
    for (source, version) in MANIFESTS {
        let m = manifest(source, version);
        for (size, ingress, external) in combos {
            let c = cr(version, size, ingress, external);
            let built = render(&c, &m, external.then_some(&ext));
            let yaml = wandb_engine::render::to_yaml(&built, "wandb");
            let name = format!(
                "{source}-{version}-{size}-{}-{}",
                if ingress { "ingress" } else { "none" },
                if external { "external" } else { "managed" }
            );
            insta::assert_snapshot!(name, yaml);
        }
    }
}

fn objects_of<'a>(built: &'a Built, kind: &str) -> Vec<&'a Value> {
    built
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| &o.object)
        .collect()
}

/// Every container env of every pod template.
fn all_env(built: &Built) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for o in &built.objects {
        let pod = match o.kind.as_str() {
            "Deployment" | "Job" => &o.object["spec"]["template"]["spec"],
            _ => continue,
        };
        for c in pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(pod["initContainers"].as_array().into_iter().flatten())
        {
            for e in c["env"].as_array().into_iter().flatten() {
                out.push((
                    format!(
                        "{}/{}/{}",
                        o.name,
                        c["name"].as_str().unwrap(),
                        e["name"].as_str().unwrap()
                    ),
                    e.clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn each_enabled_app_is_one_deployment_and_env_is_fully_resolved() {
    let ext = external_connections();
    for (source, version) in MANIFESTS {
        let m = manifest(source, version);
        for external in [false, true] {
            let c = cr(version, "small", true, external);
            let built = render(&c, &m, external.then_some(&ext));
            let features = m.effective_features(&BTreeMap::new());
            let enabled: Vec<&String> = m.enabled_applications(&features).map(|(n, _)| n).collect();
            let deployments = objects_of(&built, "Deployment");
            for app in &enabled {
                let count = deployments
                    .iter()
                    .filter(|d| d["metadata"]["name"] == format!("wandb-{app}"))
                    .count();
                assert_eq!(
                    count, 1,
                    "{source} {version}: app {app} must appear exactly once as a Deployment"
                );
            }
            assert_eq!(
                deployments.len(),
                enabled.len(),
                "{source} {version}: no Deployment beyond the enabled apps"
            );
            assert_eq!(
                objects_of(&built, "Job").len(),
                m.migrations.len(),
                "one Job per migration"
            );

            // Every env var whose manifest source exists resolves to a non-empty value or a
            // secretKeyRef; no secret value is inlined.
            let env = all_env(&built);
            assert!(!env.is_empty());
            for (path, e) in &env {
                let value = e.get("value").and_then(Value::as_str);
                let from = e.get("valueFrom");
                assert!(
                    value.is_some_and(|v| !v.is_empty()) || from.is_some(),
                    "{source} {version}: {path} is empty: {e}"
                );
                if let Some(v) = value {
                    assert!(
                        !v.contains("not-a-real-license"),
                        "{path}: the license literal leaked into a pod spec"
                    );
                }
            }
            for needs_secret in ["MYSQL", "GORILLA_SESSION_KEY", "LICENSE", "REDIS", "BUCKET"] {
                for (path, e) in env
                    .iter()
                    .filter(|(p, _)| p.ends_with(&format!("/{needs_secret}")))
                {
                    assert!(
                        e["valueFrom"]["secretKeyRef"]["name"].is_string(),
                        "{source} {version}: {path} must be a secretKeyRef: {e}"
                    );
                }
            }
            // The manifest's vars with sources all made it into some container.
            let resolved: std::collections::BTreeSet<&str> = env
                .iter()
                .map(|(p, _)| p.rsplit('/').next().unwrap())
                .collect();
            for (name, _) in m.enabled_applications(&features) {
                for var in m.app_env(name).unwrap() {
                    let has_source_value =
                        !var.sources.is_empty() && var.sources.iter().any(|s| source_exists(s, &m));
                    if has_source_value {
                        assert!(
                            resolved.contains(var.name.as_str()),
                            "{source} {version}: {name}: env {} has a source but was dropped",
                            var.name
                        );
                    }
                }
            }
        }
    }
}

/// Sources that resolve without optional inputs (telemetry is off, email/oidc/slack unset).
fn source_exists(s: &wandb_manifest::EnvSource, m: &ServerManifest) -> bool {
    use wandb_manifest::EnvSourceType as T;
    match &s.kind {
        T::Mysql | T::Redis | T::Bucket | T::Kafka | T::JwtIssuerMap => true,
        T::Clickhouse => !matches!(
            s.field.as_deref(),
            Some("replicated" | "replicated-cluster")
        ),
        T::GeneratedSecret => m
            .generated_secrets
            .iter()
            .any(|g| Some(&g.name) == s.name.as_ref()),
        T::Service => s
            .name
            .as_ref()
            .is_some_and(|n| m.applications.contains_key(n)),
        T::CustomResource => matches!(
            s.field.as_deref(),
            Some("status.wandb.hostname" | "spec.wandb.license" | "spec.wandb.bucketProxy")
        ),
        _ => false,
    }
}

#[test]
fn ingress_routes_every_manifest_path_for_every_host() {
    let m = manifest("fixture", "0.84.0");
    let built = render(&cr("0.84.0", "small", true, false), &m, None);
    let ingresses = objects_of(&built, "Ingress");
    assert_eq!(ingresses.len(), 1);
    let ing = ingresses[0];
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"],
        "0"
    );
    assert_eq!(
        ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    let rules = ing["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "the hostname and one additional hostname");
    let features = m.effective_features(&BTreeMap::new());
    let expected: usize = m
        .enabled_applications(&features)
        .filter_map(|(_, a)| a.ingress.as_ref())
        .map(|i| i.paths.len())
        .sum();
    for r in rules {
        assert_eq!(r["http"]["paths"].as_array().unwrap().len(), expected);
    }
    assert_eq!(ing["spec"]["tls"][0]["hosts"].as_array().unwrap().len(), 2);
}

#[test]
fn render_is_deterministic() {
    let m = manifest("fixture", "0.84.0");
    let c = cr("0.84.0", "small", true, false);
    let a = wandb_engine::render::to_yaml(&render(&c, &m, None), "wandb");
    let b = wandb_engine::render::to_yaml(&render(&c, &m, None), "wandb");
    assert_eq!(a, b);
}

#[test]
fn xxlarge_uses_the_manifests_2xlarge_sizing() {
    let m = manifest("fixture", "0.84.0");
    let small = render(&cr("0.84.0", "small", false, false), &m, None);
    let xx = render(&cr("0.84.0", "xxlarge", false, false), &m, None);
    let api = |b: &Built| {
        objects_of(b, "Deployment")
            .into_iter()
            .find(|d| d["metadata"]["name"] == "wandb-api")
            .unwrap()
            .clone()
    };
    let want = m.applications["api"]
        .sizing_for("2xlarge", false)
        .resources
        .unwrap()
        .requests;
    let got = &api(&xx)["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"];
    assert!(!want.is_empty(), "the fixture has 2xlarge sizing for api");
    for (k, v) in &want {
        assert_eq!(got[k].as_str(), Some(v.as_str()), "xxlarge {k}");
    }
    assert_ne!(
        api(&small)["spec"]["template"]["spec"]["containers"][0]["resources"],
        api(&xx)["spec"]["template"]["spec"]["containers"][0]["resources"]
    );
    assert!(got.get("limits").is_none());
}
