//! The two real manifests in shared/fixtures: 0.79.0 (one file) and 0.84.0 (manifest.yaml +
//! sizing.yaml, merged). Assertions use values read off the files.

mod common;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wandb_manifest::{
    EnvSourceType, InfraKind, ManifestError, ServerManifest, VolumeSourceType, app_enabled,
    size_key, topic_enabled,
};

fn flags(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn keys<V>(m: &BTreeMap<String, V>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

#[test]
fn v0_79_0_single_file_has_the_documented_content() {
    let m = common::fixture("0.79.0");
    assert_eq!(m.required_operator_version.as_deref(), Some("^2.0.0"));
    assert_eq!(m.manifest_version.as_deref(), Some("v1alpha1"));
    assert_eq!(
        m.features,
        flags(&[("filestreamQueue", false), ("proxy", false)])
    );
    assert_eq!(
        keys(&m.applications),
        [
            "anaconda2",
            "api",
            "executor",
            "filemeta",
            "filestream",
            "flat-run-fields-updater",
            "frontend",
            "glue",
            "metric-observer",
            "nginx-proxy",
            "parquet",
            "weave",
            "weave-trace",
            "weave-trace-evaluate-model-worker",
            "weave-trace-worker",
        ]
    );
    assert_eq!(
        keys(&m.migrations),
        ["gorilla", "internal-signer", "weave-trace"]
    );
    assert_eq!(
        m.migrations["gorilla"].args,
        [
            "migrate",
            "--db=$(GORILLA_METADATA_STORE)",
            "--runs-db=$(GORILLA_RUN_STORE)",
            "--usage-db=$(GORILLA_USAGE_STORE)",
            "--squash",
            "true"
        ]
    );

    let secrets: Vec<_> = m
        .generated_secrets
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.length,
                s.kind.as_deref(),
                s.use_exact_name,
            )
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("session-key", 32, Some("password"), false),
            ("weave-worker-auth", 32, Some("password"), true),
        ]
    );

    let topics: Vec<_> = m
        .kafka
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.topic.as_str(), t.partition_count))
        .collect();
    assert_eq!(topics[2], ("weave-worker", "weave.call_ended", Some(48)));
    assert_eq!(m.kafka.topics[0].features, ["filestreamQueue"]);

    // Probes without ports parse (k8s-openapi's Probe would refuse them).
    let anaconda = &m.applications["anaconda2"].containers[0];
    let http = anaconda
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!((http.path.as_deref(), &http.port), (Some("/ping"), &None));

    // Numeric quantities become strings.
    let cache_clear = &m.applications["weave"].containers[1];
    let res = cache_clear.resources.as_ref().unwrap();
    assert_eq!(res.limits["cpu"], "2");
    assert_eq!(res.requests["cpu"], "100m");
    assert_eq!(
        m.bucket["default"].sizing["small"]
            .resources
            .as_ref()
            .unwrap()
            .requests["cpu"],
        "2"
    );

    // Other shapes: jwt tokens, files, NodePort service, common mounts, source params.
    let jwt = &m.applications["weave-trace"].jwt_tokens[0];
    let sa = jwt.source.kubernetes_service_account.as_ref().unwrap();
    assert_eq!(
        (sa.audience.as_str(), sa.expiration_seconds),
        ("internal-service", 600)
    );
    let proxy = &m.applications["nginx-proxy"];
    assert_eq!(
        proxy.service.as_ref().unwrap().kind.as_deref(),
        Some("NodePort")
    );
    assert_eq!(proxy.files.len(), 2);
    assert!(
        proxy.files[1]
            .inline
            .as_ref()
            .unwrap()
            .contains("client_max_body_size 0")
    );
    let signer = &m.common_volume_mounts["internalSigner"][0];
    assert_eq!(signer.source.kind, VolumeSourceType::Secret);
    assert_eq!(signer.source.name, "wandb-internal-signer");
    let task_queue = &m.common_envvars["gorillaTaskQueueConsumer"][0].sources[0];
    assert_eq!(
        task_queue.params,
        Some(serde_json::json!({"concurrency": 10}))
    );
    let history = &m.common_envvars["gorillaHistoryStore"][0].sources[0];
    assert_eq!(history.port, Some(IntOrString::String("parquet".into())));
    assert_eq!(
        m.bucket["default"].ingress.as_ref().unwrap().service_port,
        Some(IntOrString::String("http-minio".into()))
    );

    assert_eq!(m.ensure_valid().unwrap(), []);
    m.check_compatible().unwrap();
}

#[test]
fn source_alias_is_read_so_react_app_host_resolves() {
    for v in ["0.79.0", "0.84.0"] {
        let m = common::fixture(v);
        let host = m.common_envvars["frontend"]
            .iter()
            .find(|e| e.name == "REACT_APP_HOST")
            .unwrap();
        assert_eq!(
            host.sources.len(),
            1,
            "{v}: `source:` must be read as `sources:`"
        );
        assert_eq!(host.sources[0].kind, EnvSourceType::CustomResource);
        assert_eq!(
            host.sources[0].field.as_deref(),
            Some("status.wandb.hostname")
        );
    }
}

#[test]
fn v0_84_0_merges_manifest_and_sizing_files_without_dropping_fields() {
    let m = common::fixture("0.84.0");
    assert_eq!(m.applications.len(), 14);
    assert_eq!(
        keys(&m.migrations),
        ["gorilla", "internal-signer", "weave-trace"]
    );
    assert!(
        m.generated_secrets
            .iter()
            .any(|s| s.name == "weave-worker-auth" && s.use_exact_name)
    );

    // api: image/env from manifest.yaml AND sizing from sizing.yaml (the official per-app merge
    // keeps only some fields).
    let api = &m.applications["api"];
    assert_eq!(
        api.image.as_ref().unwrap().tag.as_deref(),
        Some("0.84.0-notifications-security-flags.0")
    );
    assert_eq!(api.env.len(), 5);
    assert_eq!(
        keys(&api.sizing),
        ["2xlarge", "large", "medium", "micro", "small", "xlarge"]
    );
    assert_eq!(
        m.applications["weave-trace-evaluate-model-worker"]
            .legacy_key
            .as_deref(),
        Some("weave-evaluate-model-worker")
    );

    let small = api.sizing_for("small", true);
    let r = small.resources.as_ref().unwrap();
    assert_eq!(
        (r.requests["cpu"].as_str(), r.requests["memory"].as_str()),
        ("4", "8Gi")
    );
    assert_eq!(
        (r.limits["cpu"].as_str(), r.limits["memory"].as_str()),
        ("4", "8Gi")
    );
    let hpa = small.hpa().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), Some(3)));

    // Infra sizing and images from the two files.
    let mysql = m.infra_sizing(InfraKind::Mysql, "default", "small", true);
    assert_eq!(
        (mysql.replicas, mysql.volume_size.as_deref()),
        (Some(3), Some("100Gi"))
    );
    let bucket = m.infra_sizing(InfraKind::Bucket, "default", "small", true);
    assert_eq!(
        (bucket.copies, bucket.metadata_volume_size.as_deref()),
        (Some(1), Some("15Gi"))
    );
    let keeper = m.infra_sizing(InfraKind::ClickhouseKeeper, "default", "dev", true);
    assert_eq!(keeper.resources.unwrap().requests["cpu"], "500m");
    let kafka = m.kafka_sizing("medium", true);
    assert_eq!(
        (kafka.replicas, kafka.replication_factor),
        (Some(3), Some(1))
    );
    assert_eq!(m.kafka.topics[0].partition_count, Some(96));
    let moco = m.infra_image(InfraKind::Mysql, "default", "mysql").unwrap();
    assert_eq!(moco.reference(None), "ghcr.io/cybozu-go/moco/mysql:8.4.8");

    assert_eq!(m.ensure_valid().unwrap(), []);
}

#[test]
fn logical_infra_instances_fall_back_to_default() {
    let m = common::fixture("0.84.0");
    // `mysql.metadata: {}` has no sizing or images of its own.
    assert!(m.mysql["metadata"].sizing.is_empty());
    let metadata = m.infra_sizing(InfraKind::Mysql, "metadata", "small", true);
    assert_eq!(
        metadata,
        m.infra_sizing(InfraKind::Mysql, "default", "small", true)
    );
    let unknown = m.infra_sizing(InfraKind::Redis, "no-such-instance", "large", true);
    assert_eq!(unknown.volume_size.as_deref(), Some("64Gi"));
    assert_eq!(
        m.infra_image(InfraKind::Mysql, "runs", "exporter")
            .unwrap()
            .reference(None),
        "docker.io/prom/mysqld-exporter:v0.15.1"
    );
}

#[test]
fn xxlarge_uses_the_2xlarge_entries() {
    assert_eq!(size_key("xxlarge"), "2xlarge");
    assert_eq!(size_key("small"), "small");
    let m = common::fixture("0.84.0");
    let api = m.applications["api"].sizing_for("xxlarge", true);
    assert_eq!(api.resources.as_ref().unwrap().requests["cpu"], "16");
    let hpa = api.hpa().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(8), Some(16)));
    let mysql = m.infra_sizing(InfraKind::Mysql, "default", "xxlarge", true);
    assert_eq!(mysql.volume_size.as_deref(), Some("2Ti"));
    assert_eq!(mysql.resources.unwrap().requests["memory"], "120Gi");
    let redis = m.infra_sizing(InfraKind::Redis, "default", size_key("xxlarge"), true);
    assert_eq!(redis.shards, Some(4));
}

#[test]
fn limits_are_stripped_unless_required() {
    let m = common::fixture("0.84.0");
    let api = &m.applications["api"];
    let stripped = api.sizing_for("small", false);
    let r = stripped.resources.unwrap();
    assert!(r.limits.is_empty());
    assert_eq!(r.requests["memory"], "8Gi");
    assert!(
        m.infra_sizing(InfraKind::Mysql, "default", "small", false)
            .resources
            .unwrap()
            .limits
            .is_empty()
    );
    assert!(
        m.kafka_sizing("small", false)
            .resources
            .unwrap()
            .limits
            .is_empty()
    );

    // Container resources: sizing, then the container's own, then stripping.
    let weave = &m.applications["weave"];
    let clear = &weave.containers[1];
    let with = weave.container_resources(clear, "small", true);
    assert_eq!(with.requests["cpu"], "100m");
    assert_eq!(with.limits["memory"], "2Gi");
    let main = weave.container_resources(&weave.containers[0], "small", true);
    assert_eq!(main.requests["memory"], "16Gi");
    assert!(
        weave
            .container_resources(clear, "small", false)
            .limits
            .is_empty()
    );
    let k8s = with.to_k8s();
    assert_eq!(k8s.requests.unwrap()["cpu"].0, "100m");
}

#[test]
fn features_gate_apps_and_topics_with_cr_overrides() {
    let m = common::fixture("0.84.0");
    let off = m.effective_features(&BTreeMap::new());
    assert!(!app_enabled(&m.applications["filestream"], &off));
    assert!(app_enabled(&m.applications["api"], &off));
    assert!(!topic_enabled(&m.kafka.topics[0], &off));
    assert_eq!(m.enabled_applications(&off).count(), 13);
    assert_eq!(m.enabled_topics(&off).count(), 3);

    let on = m.effective_features(&flags(&[("filestreamQueue", true), ("newThing", true)]));
    assert_eq!(on, flags(&[("filestreamQueue", true), ("newThing", true)]));
    assert!(app_enabled(&m.applications["filestream"], &on));
    assert_eq!(m.enabled_topics(&on).count(), 4);

    let m79 = common::fixture("0.79.0");
    let default = m79.effective_features(&BTreeMap::new());
    assert!(!app_enabled(&m79.applications["nginx-proxy"], &default));
    let proxy = m79.effective_features(&flags(&[("proxy", true)]));
    assert!(app_enabled(&m79.applications["nginx-proxy"], &proxy));

    // No features map at all in the manifest: overrides still apply (no panic, §9.3).
    let bare = ServerManifest::default();
    assert_eq!(
        bare.effective_features(&flags(&[("proxy", true)])),
        flags(&[("proxy", true)])
    );
}

#[test]
fn required_operator_version_is_enforced() {
    let mut m = common::fixture("0.79.0");
    m.check_compatible().unwrap();
    m.required_operator_version = Some("^3.0.0".into());
    let err = m.check_compatible().unwrap_err();
    assert!(matches!(err, ManifestError::Incompatible { .. }));
    assert!(
        err.to_string().starts_with(
            "server manifest requires operator manifest format ^3.0.0, this operator implements 2.0.0"
        ),
        "{err}"
    );
    m.required_operator_version = Some(">=2.0.0, <2.5.0".into());
    m.check_compatible().unwrap();
    m.required_operator_version = None;
    m.check_compatible().unwrap();
    m.required_operator_version = Some("two please".into());
    assert!(matches!(
        m.check_compatible(),
        Err(ManifestError::BadRequirement { .. })
    ));
}

#[test]
fn env_and_mounts_expand_common_groups() {
    let m = common::fixture("0.84.0");
    let env = m.app_env("api").unwrap();
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names[0], "MYSQL");
    assert!(names.contains(&"REDIS") && names.contains(&"KAFKA_URL") && names.contains(&"TMPDIR"));
    assert_eq!(names.last(), Some(&"MIGRATE_USAGE_DB"));
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "names are unique after the merge"
    );

    let mounts = m.app_volume_mounts("api").unwrap();
    let mount_names: Vec<_> = mounts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(mount_names, ["wandb-internal-signer-root", "runtime-tmp"]);

    let gorilla = m.migration_env("gorilla").unwrap();
    assert!(gorilla.iter().any(|e| e.name == "GORILLA_METADATA_STORE"));
    assert_eq!(m.migration_volume_mounts("weave-trace").unwrap().len(), 1);
    assert!(matches!(
        m.app_env("nope"),
        Err(ManifestError::NotInManifest { .. })
    ));
}

#[test]
fn containers_inherit_app_image_and_args() {
    let m = common::fixture("0.79.0");
    // filemeta declares no containers: one implicit container runs the app's image and args.
    let filemeta = m.applications["filemeta"].effective_containers("filemeta");
    assert_eq!(filemeta.len(), 1);
    assert_eq!(filemeta[0].name, "filemeta");
    assert_eq!(
        filemeta[0].args.as_deref(),
        Some(&["filemeta".to_string()][..])
    );
    assert!(
        filemeta[0]
            .image
            .as_ref()
            .unwrap()
            .repository
            .ends_with("/wandb/megabinary")
    );

    let glue = m.applications["glue"].effective_containers("glue");
    assert_eq!(glue[0].args.as_deref(), Some(&["glue".to_string()][..]));
    // A container's own args win.
    let api = m.applications["api"].effective_containers("api");
    assert_eq!(api[0].args.as_deref(), Some(&["gorilla".to_string()][..]));
}

#[test]
fn service_ports_resolve_by_number_or_name() {
    let m = common::fixture("0.79.0");
    let api = &m.applications["api"];
    assert_eq!(api.ingress_port().unwrap().port, 8080); // servicePort: "8080"
    let parquet = &m.applications["parquet"];
    assert_eq!(
        parquet
            .find_service_port(Some(&IntOrString::String("parquet".into())))
            .unwrap()
            .port,
        8080
    );
    assert_eq!(parquet.find_service_port(None).unwrap().port, 8080);
    assert!(
        parquet
            .find_service_port(Some(&IntOrString::Int(9999)))
            .is_none()
    );
}

#[test]
fn images_can_be_listed_and_retargeted() {
    let m = common::fixture("0.84.0");
    let images = m.images();
    let aws = images
        .iter()
        .find(|(path, _)| path == "kafka.images.bucketEnsure")
        .unwrap()
        .1;
    assert_eq!(aws.reference(None), "amazon/aws-cli:2.35.10");
    assert_eq!(
        aws.reference(Some("mirror.corp")),
        "mirror.corp/docker.io/amazon/aws-cli:2.35.10"
    );
    let api = images
        .iter()
        .find(|(path, _)| path == "applications.api.image")
        .unwrap()
        .1;
    assert_eq!(
        api.reference(Some("mirror.corp")),
        "mirror.corp/us-docker.pkg.dev/wandb-production/public/wandb/megabinary:0.84.0-notifications-security-flags.0"
    );
    // 14 apps + 3 migrations + 9 infra images (seaweedfs, clickhouse, keeper, mysql x2,
    // redis x4) + 3 kafka images.
    assert_eq!(images.len(), 29);
}
