//! The Day-2 CLI tests' fixture: a Ready instance `w` on the built-in manifest whose MySQL,
//! Redis and object store are external, answering on loopback listeners, and a way to run the
//! CLI against the test cluster.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::net::TcpListener;
use wandb_api::WeightsAndBiases;
use wandb_testkit::TestNamespace;

use super::{Running, create_secret, start, wait_ready};

/// Credentials of the fixture: long and distinctive, so that finding one anywhere is a leak.
pub const MYSQL_PASSWORD: &str = "mysql-pw-Zq8vT3kLw9";
pub const REDIS_PASSWORD: &str = "redis-pw-Hn4xR7cPs2";
pub const S3_SECRET: &str = "s3-secret-Bv6mJ1yQe5";
pub const S3_ACCESS: &str = "s3-access-Gt2wK8nUa4";

/// Listeners standing in for the external services (the preflight only connects).
pub struct Services {
    _listeners: Vec<TcpListener>,
    pub ports: Vec<String>,
}

pub async fn services() -> Services {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(l.local_addr().unwrap().port().to_string());
        listeners.push(l);
    }
    Services {
        _listeners: listeners,
        ports,
    }
}

pub const CR: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n  \
wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n  \
mysql: {default: {externalMysql: {host: {name: ext, key: mysql-host}, port: {name: ext, key: mysql-port}, database: {name: ext, key: mysql-db}, username: {name: ext, key: mysql-user}, password: {name: ext, key: mysql-password}}}}\n  \
redis: {default: {externalRedis: {host: {name: ext, key: redis-host}, port: {name: ext, key: redis-port}, password: {name: ext, key: redis-password}}}}\n  \
objectStore: {default: {externalObjectStore: {provider: {name: ext, key: s3-provider}, endpoint: {name: ext, key: s3-host}, port: {name: ext, key: s3-port}, accessKey: {name: ext, key: s3-access}, secretKey: {name: ext, key: s3-secret}, bucket: {name: ext, key: s3-bucket}, tlsEnabled: {name: ext, key: s3-tls}}}}\n";

/// A Ready instance `w` with every service external; returns the running controller.
pub async fn ready_instance(ns: &TestNamespace, svc: &Services) -> Running {
    let running = start(ns).await;
    let secrets: Api<Secret> = ns.api();
    let p = &svc.ports;
    create_secret(
        &secrets,
        "ext",
        &[
            ("mysql-host", "127.0.0.1"),
            ("mysql-port", &p[0]),
            ("mysql-db", "wandbdb"),
            ("mysql-user", "wandbuser"),
            ("mysql-password", MYSQL_PASSWORD),
            ("redis-host", "127.0.0.1"),
            ("redis-port", &p[1]),
            ("redis-password", REDIS_PASSWORD),
            ("s3-provider", "s3"),
            ("s3-host", "127.0.0.1"),
            ("s3-port", &p[2]),
            ("s3-access", S3_ACCESS),
            ("s3-secret", S3_SECRET),
            ("s3-bucket", "wandb-bucket"),
            ("s3-tls", "false"),
        ],
    )
    .await;
    ns.apply_yaml(CR).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, "w").await;
    running
}

/// Runs the CLI against the test cluster in `ns`: (exit code, stdout, stderr).
pub async fn cli(ns: &TestNamespace, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
        .args(args)
        .arg("--kubeconfig")
        .arg(ns.cluster().kubeconfig_path())
        .args(["-n", ns.name()])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wandb-day2-{}-{}",
        std::process::id(),
        wandb_testkit::random_suffix(8)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Whether a unified diff has a `sign` line (`-` or `+`) whose content is `text`.
pub fn changed(diff: &str, sign: char, text: &str) -> bool {
    diff.lines()
        .any(|l| l.starts_with(sign) && l[1..].trim() == text)
}
