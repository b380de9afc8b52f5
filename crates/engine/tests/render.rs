//! Render over the real fixture manifests and the built-in one, across sizes, networking modes and
//! connection sets: snapshots of the full output, plus invariants that hold for any manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod common;
use common::manifest;

use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::{Built, Connections};
use wandb_manifest::ServerManifest;

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
                built
                    .objects
                    .iter()
                    .filter(|o| o.kind == "Job" && o.phase == wandb_engine::Phase::Migrations)
                    .count(),
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

/// Every container (and init container) of every pod template, with the owning object's name.
fn all_containers(built: &Built) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for o in &built.objects {
        let pod = match o.kind.as_str() {
            "Deployment" | "Job" | "StatefulSet" => &o.object["spec"]["template"]["spec"],
            _ => continue,
        };
        for c in pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(pod["initContainers"].as_array().into_iter().flatten())
        {
            out.push((o.name.clone(), c));
        }
    }
    out
}

fn infra_kinds(built: &Built) -> Vec<&'static str> {
    built.infra.iter().map(|p| p.kind.key()).collect()
}

#[test]
fn fully_managed_render_has_one_statefulset_per_needed_service() {
    let m = manifest("fixture", "0.84.0");
    let built = render(&cr("0.84.0", "small", false, false), &m, None);
    let features = m.effective_features(&BTreeMap::new());
    let needed = wandb_engine::needs::service_kinds(&m, &features);
    assert_eq!(needed.len(), 5, "0.84.0 reads all five kinds of service");
    let sts = objects_of(&built, "StatefulSet");
    assert_eq!(sts.len(), needed.len());
    for kind in &needed {
        let plan = built
            .infra
            .iter()
            .find(|p| p.kind == *kind)
            .unwrap_or_else(|| panic!("no infra plan for {kind:?}"));
        assert_eq!(plan.mode, wandb_engine::Mode::Managed);
        let name = plan.statefulset_name.as_deref().unwrap();
        let s = sts
            .iter()
            .find(|s| s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("StatefulSet {name} missing"));
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(
            s["metadata"]["labels"]["app.kubernetes.io/component"],
            kind.object_suffix()
        );
        let templates = s["spec"]["volumeClaimTemplates"].as_array().unwrap();
        assert_eq!(templates.len(), 1, "{name}: one PVC template");
        assert_eq!(
            templates[0]["metadata"]["annotations"]["apps.wandb.com/retain"],
            "true"
        );
        assert!(
            templates[0]["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .is_some_and(|q| !q.is_empty())
        );
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            "Retain"
        );
        // Every setup Job the plan names is rendered, in the Infra phase.
        for job in &plan.setup_jobs {
            assert!(
                built.objects.iter().any(|o| o.kind == "Job"
                    && &o.name == job
                    && o.phase == wandb_engine::Phase::Infra),
                "setup Job {job} missing"
            );
        }
        // Generated credentials are declared, retained, and never regenerated.
        if let Some(creds) = &plan.credentials_secret {
            let spec = built.secrets.iter().find(|s| &s.name == creds).unwrap();
            assert!(spec.retain);
            assert!(matches!(
                spec.source,
                wandb_engine::SecretSource::Generated { .. }
            ));
        }
        assert!(
            built
                .secrets
                .iter()
                .any(|s| s.name == plan.connection_secret)
        );
    }
    // Infra sizing: small in the fixture sets requests; limits are stripped without requireLimits.
    let mysql = sts
        .iter()
        .find(|s| s["metadata"]["name"] == "wandb-mysql")
        .unwrap();
    let c = &mysql["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["requests"]["memory"], "8Gi");
    assert!(c["resources"].get("limits").is_none());
    assert_eq!(
        mysql["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "100Gi",
        "manifest volumeSize for small"
    );
    // The manifest's Moco image is not a plain MySQL image: the pinned default is used.
    assert_eq!(c["image"], "docker.io/library/mysql:8.4.8");
    // Topics from the manifest, with its partition counts.
    let topics = built
        .objects
        .iter()
        .find(|o| o.kind == "Job" && o.name.starts_with("wandb-kafka-topics-"))
        .expect("a topics Job");
    let args = topics.object["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::String("flat-run-fields-updater:96".into()))
    );
}

#[test]
fn no_credential_is_ever_written_as_a_literal() {
    for (source, version) in MANIFESTS {
        let m = manifest(source, version);
        let built = render(&cr(version, "small", true, false), &m, None);
        let yaml = wandb_engine::render::to_yaml(&built, "wandb");
        for line in yaml.lines() {
            let t = line.trim_start().trim_start_matches("- ");
            if let Some((k, v)) = t.split_once(": ") {
                let k = k.to_ascii_lowercase();
                assert!(
                    !(k.contains("password") || k.contains("secretkey") || k.contains("accesskey")),
                    "{source} {version}: a credential-named field has a value: {line}"
                );
                assert!(
                    !(k == "value" && v.to_ascii_lowercase().contains("password")),
                    "{source} {version}: literal env value mentions a password: {line}"
                );
            }
        }
        for (owner, c) in all_containers(&built) {
            for e in c["env"].as_array().into_iter().flatten() {
                let name = e["name"].as_str().unwrap();
                let upper = name.to_ascii_uppercase();
                let credential = ["PASSWORD", "SECRET_KEY", "ACCESS_KEY", "REDISCLI_AUTH"]
                    .iter()
                    .any(|w| upper.contains(w));
                let reference = ["_NAME", "_PATH", "_FILE", "_URL"]
                    .iter()
                    .any(|s| upper.ends_with(s));
                if credential && !reference {
                    assert!(
                        e.get("value").is_none(),
                        "{source} {version}: {owner}/{name} is a literal: {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn builtin_manifest_needs_exactly_mysql_redis_and_an_object_store() {
    let m = manifest("builtin", "0.84.0");
    let built = render(&cr("0.84.0", "dev", false, false), &m, None);
    assert_eq!(infra_kinds(&built), ["mysql", "redis", "objectStore"]);
    let mut sts: Vec<&str> = objects_of(&built, "StatefulSet")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    sts.sort_unstable();
    assert_eq!(sts, ["wandb-mysql", "wandb-objectstore", "wandb-redis"]);
    let jobs: Vec<&String> = built.infra.iter().flat_map(|p| &p.setup_jobs).collect();
    assert_eq!(jobs.len(), 1, "only the bucket Job");
    assert!(jobs[0].starts_with("wandb-objectstore-bucket-"));
}

#[test]
fn external_services_get_no_objects_and_their_certificates_are_mounted() {
    let version = "0.84.0";
    let m = manifest("fixture", version);
    let mut c = cr(version, "small", false, true);
    let mysql = c
        .spec
        .mysql
        .as_mut()
        .unwrap()
        .get_mut("default")
        .unwrap()
        .external_mysql
        .as_mut()
        .unwrap();
    let sel = |key: &str| k8s_openapi::api::core::v1::SecretKeySelector {
        name: "db-tls".into(),
        key: key.into(),
        optional: None,
    };
    mysql.tls = Some(sel("tls"));
    mysql.ssl_ca = Some(sel("ca.crt"));
    mysql.ssl_cert = Some(sel("tls.crt"));
    mysql.ssl_key = Some(sel("tls.key"));
    c.spec
        .redis
        .as_mut()
        .unwrap()
        .get_mut("default")
        .unwrap()
        .external_redis
        .as_mut()
        .unwrap()
        .ssl_ca = Some(sel("redis-ca.crt"));
    c.spec
        .kafka
        .as_mut()
        .unwrap()
        .external_kafka
        .as_mut()
        .unwrap()
        .ssl_ca = Some(sel("kafka-ca.crt"));
    let built = render(&c, &m, Some(&external_connections()));
    assert!(
        built
            .objects
            .iter()
            .all(|o| o.phase != wandb_engine::Phase::Infra),
        "external services build no objects"
    );
    assert!(
        built
            .infra
            .iter()
            .all(|p| p.mode == wandb_engine::Mode::External
                && p.statefulset_name.is_none()
                && p.setup_jobs.is_empty())
    );
    let expected = [
        ("/etc/ssl/certs/mysql_ca.pem", "ca.crt"),
        ("/etc/ssl/certs/mysql_ssl_cert.pem", "tls.crt"),
        ("/etc/ssl/certs/mysql_ssl_key.pem", "tls.key"),
        ("/etc/ssl/certs/redis_ca.pem", "redis-ca.crt"),
        ("/etc/ssl/certs/kafka_ca.pem", "kafka-ca.crt"),
    ];
    let mut pods = 0;
    for o in &built.objects {
        if !matches!(o.kind.as_str(), "Deployment" | "Job") {
            continue;
        }
        pods += 1;
        let pod = &o.object["spec"]["template"]["spec"];
        for (path, key) in expected {
            let file = path.rsplit('/').next().unwrap();
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["secret"]["items"][0]["path"] == file)
                .unwrap_or_else(|| panic!("{}: no volume for {file}", o.name));
            assert_eq!(volume["secret"]["secretName"], "db-tls");
            assert_eq!(volume["secret"]["items"][0]["key"], key);
            for c in pod["containers"].as_array().unwrap() {
                let m = c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["mountPath"] == path)
                    .unwrap_or_else(|| panic!("{}: {path} not mounted", o.name));
                assert_eq!(m["subPath"], file);
                assert_eq!(m["name"], volume["name"]);
                assert_eq!(m["readOnly"], true);
            }
        }
    }
    assert!(pods > 0);
}

/// A kubelet refuses `runAsNonRoot` for an image whose user it cannot verify (a named user), so
/// every container that asks for it also names the numeric user (its own or its pod's); the
/// frontend's `nginx` user is uid 101.
#[test]
fn run_as_non_root_always_comes_with_a_numeric_user() {
    for (source, version) in MANIFESTS {
        let m = manifest(source, version);
        let built = render(&cr(version, "small", false, false), &m, None);
        let mut frontends = 0;
        for o in &built.objects {
            if !matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "Job") {
                continue;
            }
            let pod = &o.object["spec"]["template"]["spec"];
            let pod_user = pod["securityContext"]["runAsUser"].as_i64();
            for c in ["containers", "initContainers"]
                .iter()
                .flat_map(|f| pod[*f].as_array().into_iter().flatten())
            {
                let sc = &c["securityContext"];
                let user = sc["runAsUser"].as_i64().or(pod_user);
                if sc["runAsNonRoot"] == true || pod["securityContext"]["runAsNonRoot"] == true {
                    assert!(
                        user.is_some_and(|u| u > 0),
                        "{source} {version} {} {}: runAsNonRoot without a numeric user",
                        o.name,
                        c["name"]
                    );
                }
                if c["image"]
                    .as_str()
                    .is_some_and(|i| i.contains("wandb/frontend-nginx"))
                {
                    assert_eq!(user, Some(101), "{}: frontend runs as nginx (101)", o.name);
                    frontends += 1;
                }
            }
        }
        if source == "fixture" {
            assert!(frontends > 0, "{version}: the fixture has a frontend");
        }
    }
}
