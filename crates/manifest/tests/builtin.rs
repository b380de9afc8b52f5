//! The built-in classic manifest (wandb/local + console, weave, parquet).

use std::collections::{BTreeMap, BTreeSet};

use wandb_manifest::builtin::{self, MANIFEST_YAML, VERSION_PLACEHOLDER};
use wandb_manifest::{
    EnvSourceType, InfraKind, MANIFEST_FORMAT_VERSION, ManifestError, ManifestLocation, size_key,
};

const SIZES: [&str; 7] = [
    "dev", "micro", "small", "medium", "large", "xlarge", "xxlarge",
];

#[test]
fn parses_validates_and_is_compatible() {
    let m = builtin::manifest("0.79.0").unwrap();
    m.check_compatible().unwrap();
    assert_eq!(m.ensure_valid().unwrap(), [], "no errors and no warnings");
    let req = semver::VersionReq::parse(m.required_operator_version.as_deref().unwrap()).unwrap();
    assert!(req.matches(&MANIFEST_FORMAT_VERSION));
    assert_eq!(
        m.applications
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["app", "console", "parquet", "weave"]
    );
    assert!(
        m.migrations.is_empty(),
        "wandb/local migrates itself at start"
    );
    assert_eq!(m.generated_secrets[0].name, "session-key");
}

#[test]
fn needs_only_mysql_redis_and_a_bucket() {
    let m = builtin::manifest("0.79.0").unwrap();
    let mut infra = BTreeSet::new();
    let all_vars = m
        .common_envvars
        .values()
        .chain(m.applications.values().map(|a| &a.env))
        .flatten();
    for var in all_vars {
        for s in &var.sources {
            match &s.kind {
                EnvSourceType::Mysql | EnvSourceType::Redis | EnvSourceType::Bucket => {
                    infra.insert(s.kind.as_str().to_owned());
                }
                EnvSourceType::CustomResource
                | EnvSourceType::GeneratedSecret
                | EnvSourceType::Service => {}
                other => panic!("{}: unexpected source type {other}", var.name),
            }
        }
    }
    assert_eq!(
        infra,
        BTreeSet::from(["bucket".into(), "mysql".into(), "redis".into()])
    );
    assert!(m.kafka.topics.is_empty() && m.kafka.sizing.is_empty());
    assert!(m.clickhouse.is_empty() && m.clickhouse_keeper.is_empty());
    // The monolith gets every connection it reads.
    let env: BTreeSet<String> = m
        .app_env("app")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for name in [
        "MYSQL",
        "REDIS",
        "BUCKET",
        "HOST",
        "LICENSE",
        "GORILLA_SESSION_KEY",
        "GORILLA_HISTORY_STORE",
        "WEAVE_SERVICE",
        "PARQUET_HOST",
        "BUCKET_QUEUE",
        "GORILLA_LICENSE_CERT_PATH",
    ] {
        assert!(env.contains(name), "app env lacks {name}");
    }
}

#[test]
fn the_version_selects_the_image_tags() {
    assert!(MANIFEST_YAML.contains(VERSION_PLACEHOLDER));
    let m = builtin::manifest("0.80.1").unwrap();
    let refs: BTreeMap<String, String> = m
        .images()
        .into_iter()
        .map(|(path, image)| (path, image.reference(None)))
        .collect();
    assert_eq!(
        refs["applications.app.image"],
        "docker.io/wandb/local:0.80.1"
    );
    assert_eq!(
        refs["applications.weave.image"],
        "docker.io/wandb/weave-python:0.80.1"
    );
    assert_eq!(
        refs["applications.parquet.image"],
        "docker.io/wandb/megabinary:0.80.1"
    );
    assert_eq!(
        refs["applications.console.image"],
        "docker.io/wandb/console:latest"
    );
    assert!(refs.values().all(|r| !r.contains(VERSION_PLACEHOLDER)));
    // The loader path gives the same manifest, and checks the version.
    let loaded = ManifestLocation::parse("builtin://")
        .unwrap()
        .load("0.80.1")
        .unwrap();
    assert_eq!(loaded, m);
    for bad in ["latest", "", "1.0/../../x", "${VERSION}"] {
        assert!(
            matches!(
                builtin::manifest(bad),
                Err(ManifestError::BadVersion { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn every_app_and_backend_has_sizing_with_requests_for_every_size() {
    let m = builtin::manifest("0.79.0").unwrap();
    for size in SIZES {
        for (name, app) in &m.applications {
            let has_entry = app.sizing.contains_key(size_key(size));
            assert!(has_entry, "{name} has no {size} entry");
            let r = app.sizing_for(size, false).resources.unwrap_or_default();
            assert!(
                r.requests.contains_key("cpu") && r.requests.contains_key("memory"),
                "{name}/{size}"
            );
            assert!(r.limits.is_empty());
            let with_limits = app.sizing_for(size, true).resources.unwrap();
            assert!(
                with_limits.limits.contains_key("memory"),
                "{name}/{size} limits"
            );
        }
        for kind in [InfraKind::Mysql, InfraKind::Redis, InfraKind::Bucket] {
            let s = m.infra_sizing(kind, "default", size, true);
            assert!(s.volume_size.is_some(), "{kind:?}/{size}");
            assert!(
                s.resources.unwrap().requests.contains_key("memory"),
                "{kind:?}/{size}"
            );
        }
    }
    // The monolith is never autoscaled: glue runs inside it.
    assert!(
        SIZES
            .iter()
            .all(|s| m.applications["app"].sizing_for(s, true).hpa().is_none())
    );
    assert_eq!(
        m.applications["weave"]
            .sizing_for("small", true)
            .hpa()
            .unwrap()
            .min_replicas,
        Some(2)
    );
}

#[test]
fn ingress_reaches_the_app_and_the_console() {
    let m = builtin::manifest("0.79.0").unwrap();
    let mut routes = BTreeMap::new();
    for (name, app) in &m.applications {
        if let Some(ingress) = &app.ingress {
            let port = app.ingress_port().expect("ingress port resolves").port;
            for path in &ingress.paths {
                routes.insert(path.clone(), (name.clone(), port));
            }
        }
    }
    assert_eq!(routes["/"], ("app".to_string(), 8080));
    assert_eq!(routes["/console"], ("console".to_string(), 8082));
    assert_eq!(routes.len(), 2);
}

/// A readable summary of what the built-in manifest deploys; changes show up in review.
#[test]
fn builtin_summary_snapshot() {
    use std::fmt::Write;
    let m = builtin::manifest("0.79.0").unwrap();
    let mut out = String::new();
    for (name, app) in &m.applications {
        let image = app
            .image
            .as_ref()
            .unwrap()
            .reference(Some("mirror.example"));
        writeln!(out, "{name}: {image}").unwrap();
        let ports = &app.service.as_ref().unwrap().ports;
        let ports: Vec<String> = ports
            .iter()
            .map(|p| format!("{}={}", p.name.as_deref().unwrap_or("-"), p.port))
            .collect();
        writeln!(out, "  service: {}", ports.join(" ")).unwrap();
        let small = app.sizing_for("small", true);
        let r = small.resources.clone().unwrap();
        let hpa = small.hpa().map(|h| {
            format!(
                " hpa {}-{}",
                h.min_replicas.unwrap(),
                h.max_replicas.unwrap()
            )
        });
        writeln!(
            out,
            "  small: requests {:?} limits {:?}{}",
            r.requests,
            r.limits,
            hpa.unwrap_or_default()
        )
        .unwrap();
        for var in m.app_env(name).unwrap() {
            let how = if let Some(v) = &var.value {
                format!("= {v}")
            } else if var.value_from.is_some() {
                "<- valueFrom".to_owned()
            } else {
                let kinds: Vec<String> = var
                    .sources
                    .iter()
                    .map(|s| {
                        format!(
                            "{}:{}",
                            s.kind,
                            s.field.as_deref().or(s.name.as_deref()).unwrap_or("")
                        )
                    })
                    .collect();
                format!("<- {}", kinds.join(" + "))
            };
            writeln!(out, "  env {} {how}", var.name).unwrap();
        }
    }
    insta::assert_snapshot!(out);
}
