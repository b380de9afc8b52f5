//! Per-service options of the CR that change what is built: a managed service's `name` and
//! `namespace`, and an external object store's SSE-KMS key.

use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::{Built, EngineError};
use wandb_manifest::ServerManifest;

mod common;

fn manifest() -> ServerManifest {
    common::manifest("fixture", "0.84.0")
}

fn cr(services: &str) -> WeightsAndBiases {
    let yaml = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: team}}\nspec:\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"0.84.0\"\n{services}"
    );
    let cr: WeightsAndBiases = serde_saphyr::from_str(&yaml).unwrap();
    cr.validate_cel().unwrap();
    cr
}

fn plan(cr: &WeightsAndBiases) -> Result<Built, Vec<EngineError>> {
    wandb_engine::plan(cr, &manifest(), None)
}

fn names_of(built: &Built, kind: &str) -> Vec<String> {
    built
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.name.clone())
        .collect()
}

/// `(object/container, env var)` for every app and Job container.
fn env_vars(built: &Built) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for o in built
        .objects
        .iter()
        .filter(|o| o.kind == "Deployment" || o.kind == "Job")
    {
        let pod = &o.object["spec"]["template"]["spec"];
        for c in pod["containers"].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                out.push((format!("{}/{}", o.name, c["name"]), e.clone()));
            }
        }
    }
    out
}

#[test]
fn a_managed_service_name_names_all_its_objects_and_the_apps_follow() {
    let built = plan(&cr("  mysql: {default: {managedMysql: {name: main-db}}}\n")).unwrap();
    assert!(names_of(&built, "StatefulSet").contains(&"main-db".to_string()));
    assert!(names_of(&built, "Service").contains(&"main-db".to_string()));
    assert!(!names_of(&built, "StatefulSet").contains(&"w-mysql".to_string()));
    let mysql = built
        .infra
        .iter()
        .find(|p| p.kind.key() == "mysql")
        .unwrap();
    assert_eq!(mysql.service_name, "main-db");
    assert_eq!(mysql.connection_secret, "main-db-connection");
    assert_eq!(
        mysql.credentials_secret.as_deref(),
        Some("main-db-credentials")
    );
    let secrets: Vec<_> = built.secrets.iter().map(|s| s.name.clone()).collect();
    assert!(
        secrets.contains(&"main-db-credentials".to_string()),
        "{secrets:?}"
    );
    // Every app reading MySQL reads the renamed connection; none reads the default name.
    let env = env_vars(&built);
    let refs: Vec<_> = env
        .iter()
        .filter_map(|(_, e)| e["valueFrom"]["secretKeyRef"]["name"].as_str())
        .filter(|n| n.contains("mysql") || n.contains("main-db"))
        .collect();
    assert!(refs.contains(&"main-db-connection"), "{refs:?}");
    assert!(!refs.iter().any(|n| n.starts_with("w-mysql")), "{refs:?}");
    // Other services keep their default names.
    assert_eq!(
        built
            .infra
            .iter()
            .find(|p| p.kind.key() == "redis")
            .unwrap()
            .service_name,
        "w-redis"
    );
}

#[test]
fn a_managed_service_in_another_namespace_is_refused_by_field() {
    let errs = plan(&cr(
        "  redis: {default: {managedRedis: {namespace: elsewhere}}}\n",
    ))
    .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "spec.redis.default.managedRedis.namespace");
    assert!(errs[0].message.contains("\"elsewhere\""), "{}", errs[0]);
    assert!(errs[0].message.contains("\"team\""), "{}", errs[0]);
    // The resource's own namespace is what it means anyway.
    plan(&cr(
        "  redis: {default: {managedRedis: {namespace: team}}}\n",
    ))
    .unwrap();
}

#[test]
fn two_services_with_one_name_are_refused() {
    let errs = plan(&cr(concat!(
        "  mysql: {default: {managedMysql: {name: data}}}\n",
        "  redis: {default: {managedRedis: {name: data}}}\n",
    )))
    .unwrap_err();
    assert!(
        errs[0]
            .to_string()
            .contains("\"data\" is already the name of"),
        "{errs:?}"
    );
    // A name equal to another service's default name collides too.
    let errs = plan(&cr("  mysql: {default: {managedMysql: {name: w-redis}}}\n")).unwrap_err();
    assert!(errs[0].to_string().contains("w-redis"), "{errs:?}");
}

const EXTERNAL_S3: &str = "  objectStore: {default: {externalObjectStore: {bucket: {name: s3, key: bucket}, region: {name: s3, key: region}";

#[test]
fn an_s3_kms_key_reaches_every_container_that_reads_the_bucket() {
    let built = plan(&cr(&format!(
        "{EXTERNAL_S3}, kmsKey: {{name: s3, key: kms}}}}}}}}\n"
    )))
    .unwrap();
    let env = env_vars(&built);
    let readers: std::collections::BTreeSet<_> = env
        .iter()
        .filter(|(_, e)| e["name"] == "BUCKET" || e["name"] == "GORILLA_FILE_STORE")
        .map(|(c, _)| c.clone())
        .collect();
    assert!(!readers.is_empty());
    for c in &readers {
        let kms = env
            .iter()
            .find(|(o, e)| o == c && e["name"] == "AWS_S3_KMS_ID")
            .unwrap_or_else(|| panic!("{c} reads the bucket but has no AWS_S3_KMS_ID"));
        assert_eq!(
            kms.1["valueFrom"]["secretKeyRef"],
            // Optional: the writer leaves an empty value out.
            serde_json::json!({"name": "w-objectstore-connection", "key": "kmskey", "optional": true}),
            "{c}"
        );
    }
    // Containers that do not read the bucket get no KMS key.
    for (c, e) in &env {
        if e["name"] == "AWS_S3_KMS_ID" {
            assert!(
                readers.contains(c),
                "{c} got AWS_S3_KMS_ID without a bucket"
            );
        }
    }

    let without = plan(&cr(&format!("{EXTERNAL_S3}}}}}}}\n"))).unwrap();
    assert!(
        !env_vars(&without)
            .iter()
            .any(|(_, e)| e["name"] == "AWS_S3_KMS_ID"),
        "no KMS key configured, no AWS_S3_KMS_ID"
    );
}

fn statefulset<'a>(built: &'a Built, name: &str) -> &'a Value {
    &built
        .objects
        .iter()
        .find(|o| o.kind == "StatefulSet" && o.name == name)
        .unwrap_or_else(|| panic!("no StatefulSet {name}"))
        .object
}

fn service_ports(built: &Built, name: &str) -> Vec<(String, i64)> {
    let svc = &built
        .objects
        .iter()
        .find(|o| o.kind == "Service" && o.name == name)
        .unwrap()
        .object;
    svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["port"].as_i64().unwrap(),
            )
        })
        .collect()
}

const TELEMETRY: &str = concat!(
    "  global: {imageRegistry: mirror.example.com}\n",
    "  mysql: {default: {managedMysql: {telemetry: {enabled: true}}}}\n",
    "  redis: {default: {managedRedis: {telemetry: {enabled: true}}}}\n",
    "  objectStore: {default: {managedObjectStore: {telemetry: {enabled: true}}}}\n",
    "  clickhouse: {default: {managedClickhouse: {telemetry: {enabled: true}}}}\n",
);

#[test]
fn telemetry_adds_a_metrics_endpoint_to_each_managed_service() {
    let built = plan(&cr(TELEMETRY)).unwrap();
    for (sts, port) in [
        ("w-mysql", 9104),
        ("w-redis", 9121),
        ("w-objectstore", 9327),
        ("w-clickhouse", 9363),
    ] {
        let s = statefulset(&built, sts);
        let ann = &s["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(ann["prometheus.io/scrape"], "true", "{sts}");
        assert_eq!(ann["prometheus.io/port"], port.to_string(), "{sts}");
        assert!(
            service_ports(&built, sts).contains(&("metrics".to_string(), port)),
            "{sts}"
        );
        // Some container of the pod declares the port.
        let containers = s["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert!(
            containers.iter().any(|c| c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "metrics" && p["containerPort"] == port)),
            "{sts}"
        );
    }
    // Exporter sidecars: pinned, retargeted to the mirror, hardened, password by reference.
    for (sts, image, env) in [
        (
            "w-mysql",
            "mirror.example.com/docker.io/prom/mysqld-exporter:v0.17.2",
            "MYSQLD_EXPORTER_PASSWORD",
        ),
        (
            "w-redis",
            "mirror.example.com/docker.io/oliver006/redis_exporter:v1.68.0",
            "REDIS_PASSWORD",
        ),
    ] {
        let containers = statefulset(&built, sts)["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(containers.len(), 2, "{sts}");
        let exporter = &containers[1];
        assert_eq!(exporter["image"], image);
        assert_eq!(
            exporter["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        let pw = exporter["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == env)
            .unwrap();
        assert!(pw.get("value").is_none(), "{sts}: {pw}");
        assert_eq!(
            pw["valueFrom"]["secretKeyRef"]["name"],
            format!("{sts}-credentials")
        );
    }
    // SeaweedFS and ClickHouse serve metrics themselves.
    let seaweed = statefulset(&built, "w-objectstore")["spec"]["template"]["spec"]["containers"][0]
        ["command"][2]
        .as_str()
        .unwrap()
        .to_string();
    assert!(seaweed.contains("-metricsPort=9327"), "{seaweed}");
    let cm = built
        .objects
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.name == "w-clickhouse-metrics-config")
        .expect("ClickHouse metrics config");
    assert!(
        cm.object["data"]["prometheus.xml"]
            .as_str()
            .unwrap()
            .contains("<port>9363</port>")
    );
    let ch = &statefulset(&built, "w-clickhouse")["spec"]["template"]["spec"];
    assert_eq!(
        ch["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "metrics-config")
            .unwrap()["configMap"]["name"],
        "w-clickhouse-metrics-config"
    );
    assert!(
        ch["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |m| m["mountPath"] == "/etc/clickhouse-server/config.d/prometheus.xml"
                    && m["subPath"] == "prometheus.xml"
            )
    );
}

#[test]
fn without_telemetry_no_service_exposes_metrics() {
    let built = plan(&cr(&TELEMETRY.replace("enabled: true", "enabled: false"))).unwrap();
    for sts in ["w-mysql", "w-redis", "w-objectstore", "w-clickhouse"] {
        let s = statefulset(&built, sts);
        assert!(
            s["spec"]["template"]["metadata"]["annotations"].is_null(),
            "{sts}"
        );
        assert_eq!(
            s["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "{sts}"
        );
        assert!(
            !service_ports(&built, sts)
                .iter()
                .any(|(n, _)| n == "metrics")
        );
    }
    assert!(
        !built
            .objects
            .iter()
            .any(|o| o.name.ends_with("-metrics-config"))
    );
}

/// The pod securityContext of every managed StatefulSet and setup Job, by object name.
fn managed_pod_security(built: &Built) -> Vec<(String, Value)> {
    let managed: Vec<&String> = built
        .infra
        .iter()
        .flat_map(|p| p.statefulset_name.iter().chain(&p.setup_jobs))
        .collect();
    let out: Vec<(String, Value)> = built
        .objects
        .iter()
        .filter(|o| (o.kind == "StatefulSet" || o.kind == "Job") && managed.contains(&&o.name))
        .map(|o| {
            let ctx = o.object["spec"]["template"]["spec"]["securityContext"].clone();
            (o.name.clone(), ctx)
        })
        .collect();
    assert_eq!(out.len(), managed.len(), "every managed workload is built");
    out
}

const EVERY_SERVICE_MANAGED: &str = "  mysql: {default: {managedMysql: {}}}\n  redis: {default: {managedRedis: {}}}\n  objectStore: {default: {managedObjectStore: {}}}\n  clickhouse: {default: {managedClickhouse: {}}}\n  kafka: {managedKafka: {}}\n";

#[test]
fn managed_services_run_as_their_images_uids_by_default() {
    let built = plan(&cr(EVERY_SERVICE_MANAGED)).unwrap();
    let pods = managed_pod_security(&built);
    assert!(
        pods.len() >= 7,
        "5 StatefulSets and the setup Jobs: {pods:?}"
    );
    for (name, ctx) in pods {
        let uid = ctx["runAsUser"].as_i64();
        assert!(uid.is_some_and(|u| u > 0), "{name}: {ctx}");
        assert_eq!(ctx["runAsGroup"].as_i64(), uid, "{name}");
        assert_eq!(ctx["fsGroup"].as_i64(), uid, "{name}");
        assert_eq!(ctx["runAsNonRoot"], true, "{name}");
    }
}

#[test]
fn managed_service_uids_platform_leaves_every_uid_to_the_platform() {
    let services = format!("  global: {{managedServiceUids: platform}}\n{EVERY_SERVICE_MANAGED}");
    let built = plan(&cr(&services)).unwrap();
    for (name, ctx) in managed_pod_security(&built) {
        for field in ["runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy"] {
            assert!(ctx.get(field).is_none(), "{name} sets {field}: {ctx}");
        }
        assert_eq!(ctx["runAsNonRoot"], true, "{name}: {ctx}");
        assert_eq!(ctx["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    }
}
