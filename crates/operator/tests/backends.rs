//! Backing services on the local control plane: managed services get StatefulSets, generated
//! credentials and connection Secrets whose URLs carry those credentials; external ones are
//! wired from the user's Secret keys (a whole `url` split into its parts), and a missing key is
//! named in status.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::{TIMEOUT, condition, secret_data, start, wait_ready};

/// Instance `w` on the built-in manifest, every service managed; tests append their services.
const BUILTIN_W: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n  wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n";

/// Creates Secret `db` with the coordinates of an external MySQL.
async fn create_db_secret(secrets: &Api<Secret>, fields: &[(&str, &str)]) {
    common::create_secret(secrets, "db", fields).await;
}

/// Secret `db` pointing at `host:port` and instance `w` using it as its external MySQL.
async fn apply_external_mysql(
    ns: &wandb_testkit::TestNamespace,
    secrets: &Api<Secret>,
    host: &str,
    port: &str,
) {
    create_db_secret(
        secrets,
        &[
            ("host", host),
            ("port", port),
            ("user", "wandb"),
            ("database", "wandb"),
            ("password", "secret"),
        ],
    )
    .await;
    ns.apply_yaml(
        &[BUILTIN_W, "  mysql:\n    default:\n      externalMysql:\n        host: {name: db, key: host}\n        port: {name: db, key: port}\n        database: {name: db, key: database}\n        username: {name: db, key: user}\n        password: {name: db, key: password}\n"].concat(),
    )
    .await;
}

/// `status.infra.mysql.default` of instance `w`: (state, message).
async fn mysql_state(wb: &Api<WeightsAndBiases>) -> Option<(String, String)> {
    let st = wb.get("w").await.ok()?.status?;
    let s = st.infra.get("mysql")?.get("default")?.clone();
    Some((s.state.to_string(), s.message.unwrap_or_default()))
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn managed_services_are_created_wired_and_the_instance_becomes_ready() {
    let ns = wandb_testkit::namespace("backends-managed").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    ns.apply_yaml(BUILTIN_W).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, "w").await;

    // One StatefulSet per service the built-in manifest needs, each with a claim template.
    let sts: Api<StatefulSet> = ns.api();
    let mut names: Vec<String> = sts
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["w-mysql", "w-objectstore", "w-redis"]);

    // Connection URLs carry the generated credentials (never a hard-coded one).
    let secrets: Api<Secret> = ns.api();
    let creds = secret_data(&secrets.get("w-mysql-credentials").await.unwrap());
    let password = creds.get("password").expect("a generated MySQL password");
    assert!(password.len() >= 16);
    let conn = secret_data(&secrets.get("w-mysql-connection").await.unwrap());
    assert_eq!(
        conn["url"],
        format!(
            "mysql://wandb:{password}@w-mysql.{}.svc.cluster.local:3306/wandb_local",
            ns.name()
        )
    );
    let redis = secret_data(&secrets.get("w-redis-connection").await.unwrap());
    assert!(
        redis["url"].starts_with("redis://:"),
        "the Redis password is in the password slot: {}",
        redis["url"]
    );

    // The app reads them by reference.
    let app: Deployment = ns.api::<Deployment>().get("w-app").await.unwrap();
    let env =
        serde_json::to_value(&app.spec.unwrap().template.spec.unwrap().containers[0].env).unwrap();
    assert!(
        env.to_string().contains("\"name\":\"w-mysql-connection\""),
        "{env}"
    );

    // Credentials are kept across reconciles.
    common::poke_and_count_writes(&running, &ns, "w").await;
    assert_eq!(
        &secret_data(&secrets.get("w-mysql-credentials").await.unwrap())["password"],
        password
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_external_service_with_a_missing_key_is_named_and_nothing_rolls_out() {
    let ns = wandb_testkit::namespace("backends-external").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let secrets: Api<Secret> = ns.api();
    // No `password` key yet.
    create_db_secret(
        &secrets,
        &[
            ("host", "db.example.com"),
            ("user", "wandb"),
            ("database", "wandb"),
        ],
    )
    .await;
    ns.apply_yaml(
        &[BUILTIN_W, "  mysql:\n    default:\n      externalMysql:\n        host: {name: db, key: host}\n        database: {name: db, key: database}\n        username: {name: db, key: user}\n        password: {name: db, key: password}\n"].concat(),
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let (_, msg) = wait_for("InfraReady to name the missing key", TIMEOUT, || async {
        Ok(condition(&wb, "w", "InfraReady")
            .await
            .filter(|(s, m)| s == "False" && m.contains("no key password")))
    })
    .await;
    assert!(
        msg.contains("Secret db") && msg.contains("spec.mysql.default"),
        "{msg}"
    );
    assert!(
        ns.api::<Deployment>()
            .get_opt("w-app")
            .await
            .unwrap()
            .is_none(),
        "nothing rolls out with half a configuration"
    );
    assert!(
        secrets
            .get_opt("w-mysql-connection")
            .await
            .unwrap()
            .is_none()
    );

    // Fixing the Secret wires the app, with the credentials URL-encoded.
    let fix = serde_json::json!({"stringData": {"password": "p@ss:w/rd?#%+ é"}});
    secrets
        .patch(
            "db",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(fix),
        )
        .await
        .unwrap();
    let conn = wait_for("the MySQL connection Secret", TIMEOUT, || async {
        Ok(secrets.get_opt("w-mysql-connection").await?)
    })
    .await;
    let url = &secret_data(&conn)["url"];
    assert!(
        url.starts_with(
            "mysql://wandb:p%40ss%3Aw%2Frd%3F%23%25%2B%20%C3%A9@db.example.com:3306/wandb"
        ),
        "{url}"
    );
    running.finish(ns).await;
}

async fn claims(ns: &wandb_testkit::TestNamespace) -> Vec<String> {
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ns.api();
    pvcs.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn detach_keeps_managed_data_and_purge_deletes_it() {
    let ns = wandb_testkit::namespace("backends-retention").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    for (name, policy) in [("keep", "detach"), ("drop", "purge")] {
        ns.apply_yaml(&format!(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: {name}}}\nspec:\n  retentionPolicy: {{onDelete: {policy}}}\n  wandb: {{hostname: http://{name}.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}}\n"
        ))
        .await;
    }
    // `mixed` detaches by default but purges its MySQL, which it names `mixed-db`.
    ns.apply_yaml(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: mixed}\nspec:\n  retentionPolicy: {onDelete: detach}\n  wandb: {hostname: http://mixed.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n  mysql: {default: {managedMysql: {name: mixed-db, retentionPolicy: {onDelete: purge}}}}\n",
    )
    .await;
    const ALL: [&str; 3] = ["keep", "drop", "mixed"];
    for name in ALL {
        wait_ready(&wb, name).await;
    }
    let before = claims(&ns).await;
    for volume in [
        "keep-mysql-0",
        "drop-mysql-0",
        "mixed-db-0",
        "mixed-redis-0",
    ] {
        assert!(
            before.iter().any(|c| c.ends_with(volume)),
            "{volume}: {before:?}"
        );
    }
    assert!(
        !before.iter().any(|c| c.contains("mixed-mysql")),
        "the named MySQL has no default-named volume: {before:?}"
    );
    for name in ALL {
        wb.delete(name, &Default::default()).await.unwrap();
    }
    for name in ALL {
        wait_for("the instance to be gone", TIMEOUT, || async {
            Ok(wb.get_opt(name).await?.is_none().then_some(()))
        })
        .await;
    }
    // detach: the claims and generated credentials stay, with no owner to collect them.
    let after = claims(&ns).await;
    for kind in ["mysql", "redis", "objectstore"] {
        assert!(
            after.iter().any(|c| c.ends_with(&format!("keep-{kind}-0"))),
            "keep's {kind} data is kept: {after:?}"
        );
    }
    for kept in ["keep-mysql-credentials", "mixed-redis-credentials"] {
        let creds = secrets
            .get(kept)
            .await
            .unwrap_or_else(|e| panic!("detached {kept} is kept: {e}"));
        assert!(
            creds
                .metadata
                .owner_references
                .unwrap_or_default()
                .is_empty(),
            "{kept} has no owner left"
        );
    }
    for kind in ["redis", "objectstore"] {
        assert!(
            after
                .iter()
                .any(|c| c.ends_with(&format!("mixed-{kind}-0"))),
            "mixed's {kind} data follows spec.retentionPolicy (detach): {after:?}"
        );
    }
    // purge: gone (PVCs may linger as Terminating while a pod still uses them), whether asked
    // for by the instance or by one service.
    for purged in ["drop-mysql-credentials", "mixed-db-credentials"] {
        wait_for("purged credentials to be gone", TIMEOUT, || async {
            Ok(secrets.get_opt(purged).await?.is_none().then_some(()))
        })
        .await;
    }
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ns.api();
    for c in after
        .iter()
        .filter(|c| c.contains("drop-") || c.ends_with("mixed-db-0"))
    {
        let p = pvcs.get_opt(c).await.unwrap();
        assert!(
            p.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
            "{c} is being deleted"
        );
    }
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn switching_mysql_from_managed_to_external_rewires_and_keeps_the_old_data() {
    let ns = wandb_testkit::namespace("backends-switch").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    ns.apply_yaml(BUILTIN_W).await;
    wait_ready(&wb, "w").await;
    assert!(
        secret_data(&secrets.get("w-mysql-connection").await.unwrap())["url"].contains("@w-mysql.")
    );

    create_db_secret(
        &secrets,
        &[
            ("host", "db.example.com"),
            ("user", "wandb"),
            ("database", "wandb"),
            ("password", "secret"),
        ],
    )
    .await;
    let external = serde_json::json!({"spec": {"mysql": {"default": {"externalMysql": {
        "host": {"name": "db", "key": "host"}, "database": {"name": "db", "key": "database"},
        "username": {"name": "db", "key": "user"}, "password": {"name": "db", "key": "password"}}}}}});
    wb.patch(
        "w",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(external),
    )
    .await
    .unwrap();
    wait_for(
        "the connection to point at the external MySQL",
        TIMEOUT,
        || async {
            let url = secret_data(&secrets.get("w-mysql-connection").await?)["url"].clone();
            Ok(url.contains("@db.example.com:3306/").then_some(url))
        },
    )
    .await;
    // The managed MySQL is no longer rendered: its StatefulSet goes, its data stays (detach).
    let sts: Api<StatefulSet> = ns.api();
    wait_for(
        "the managed MySQL StatefulSet to be pruned",
        TIMEOUT,
        || async { Ok(sts.get_opt("w-mysql").await?.is_none().then_some(())) },
    )
    .await;
    assert!(
        claims(&ns).await.iter().any(|c| c.ends_with("w-mysql-0")),
        "the old MySQL data is kept"
    );
    assert!(
        secrets
            .get_opt("w-mysql-credentials")
            .await
            .unwrap()
            .is_some(),
        "the old credentials are kept"
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn external_endpoints_are_preflighted_and_rechecked_when_they_change() {
    let ns = wandb_testkit::namespace("backends-preflight").await;
    let _pv = ns.start_volume_provisioner();
    // A reachable "MySQL": a listener on loopback (the operator runs on this host in tests).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let running = start(&ns).await;
    let secrets: Api<Secret> = ns.api();
    let port = port.to_string();
    apply_external_mysql(&ns, &secrets, "127.0.0.1", &port).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_for("the reachable MySQL to be Healthy", TIMEOUT, || async {
        Ok(mysql_state(&wb).await.filter(|(s, _)| s == "Healthy"))
    })
    .await;

    // The endpoint changes to one that does not resolve: checked again, reported, not gating.
    let moved = serde_json::json!({"stringData": {"host": "mysql.unreachable.invalid"}});
    secrets
        .patch(
            "db",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(moved),
        )
        .await
        .unwrap();
    let (_, msg) = wait_for("the moved MySQL to be Degraded", TIMEOUT, || async {
        Ok(mysql_state(&wb).await.filter(|(s, _)| s == "Degraded"))
    })
    .await;
    assert!(
        msg.contains(&format!("mysql.unreachable.invalid:{port}")),
        "{msg}"
    );
    drop(listener);
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_managed_service_in_another_namespace_stalls_and_creates_nothing() {
    let ns = wandb_testkit::namespace("backends-foreign-ns").await;
    let running = start(&ns).await;
    ns.apply_yaml(
        &[
            BUILTIN_W,
            "  redis: {default: {managedRedis: {namespace: somewhere-else}}}\n",
        ]
        .concat(),
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let (_, msg) = wait_for("the instance to stall", TIMEOUT, || async {
        Ok(condition(&wb, "w", "Stalled")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    assert!(
        msg.contains("spec.redis.default.managedRedis.namespace") && msg.contains("somewhere-else"),
        "{msg}"
    );
    common::wait_for_event(&ns, "an event naming the field", |e| {
        e.note
            .as_deref()
            .is_some_and(|m| m.contains("managedRedis.namespace"))
    })
    .await;
    let sts: Api<StatefulSet> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    assert!(
        sts.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn telemetry_toggles_a_metrics_exporter_on_a_running_service() {
    let ns = wandb_testkit::namespace("backends-telemetry").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let cr = |enabled: bool| {
        format!(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w}}\nspec:\n  wandb: {{hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}}\n  redis: {{default: {{managedRedis: {{telemetry: {{enabled: {enabled}}}}}}}}}\n"
        )
    };
    ns.apply_yaml(&cr(true)).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, "w").await;
    let sts: Api<StatefulSet> = ns.api();
    let services: Api<k8s_openapi::api::core::v1::Service> = ns.api();
    let containers = |s: StatefulSet| -> Vec<String> {
        s.spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(
        containers(sts.get("w-redis").await.unwrap()),
        ["redis", "metrics"]
    );
    let ports: Vec<_> = services
        .get("w-redis")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port))
        .collect();
    assert!(ports.contains(&("metrics".into(), 9121)), "{ports:?}");

    // Turned off: the exporter goes, and the instance stays Ready.
    ns.apply_yaml(&cr(false)).await;
    wait_for("the exporter to be removed", TIMEOUT, || async {
        let s = sts.get("w-redis").await?;
        Ok((containers(s) == ["redis"]).then_some(()))
    })
    .await;
    wait_ready(&wb, "w").await;
    running.finish(ns).await;
}

/// A throwaway CA (PEM) and a TLS server configuration with a certificate of that CA for
/// 127.0.0.1.
fn tls_identity(ca_name: &str) -> (String, std::sync::Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key.into())
    .unwrap();
    (ca.pem(), std::sync::Arc::new(config))
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn external_tls_endpoints_are_preflighted_with_the_ca_from_the_secret() {
    use tokio::io::AsyncReadExt;
    let ns = wandb_testkit::namespace("backends-preflight-tls").await;
    let _pv = ns.start_volume_provisioner();
    // A TLS "Redis" on loopback whose certificate only the Secret's CA vouches for.
    let (ca, server) = tls_identity("preflight integration CA");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let server = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    let _ = tls.read(&mut [0u8; 1]).await;
                }
            });
        }
    });
    let running = start(&ns).await;
    let secrets: Api<Secret> = ns.api();
    let cache: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cache"},
        "stringData": {"host": "127.0.0.1", "port": port, "tls": "true", "ca": ca},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &cache)
        .await
        .unwrap();
    ns.apply_yaml(
        &[BUILTIN_W, "  redis:\n    default:\n      externalRedis:\n        host: {name: cache, key: host}\n        port: {name: cache, key: port}\n        tls: {name: cache, key: tls}\n        sslCa: {name: cache, key: ca}\n"].concat(),
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let redis_state = || async {
        let st = wb.get("w").await.ok()?.status?;
        let s = st.infra.get("redis")?.get("default")?.clone();
        Some((s.state.to_string(), s.message.unwrap_or_default()))
    };
    wait_for("the TLS Redis to be Healthy", TIMEOUT, || async {
        Ok(redis_state().await.filter(|(s, _)| s == "Healthy"))
    })
    .await;

    // Same endpoint, another CA: checked again, and the handshake failure is reported.
    let set_ca = |pem: String| {
        let secrets = secrets.clone();
        async move {
            let patch = serde_json::json!({"stringData": {"ca": pem}});
            secrets
                .patch(
                    "cache",
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(patch),
                )
                .await
                .unwrap();
        }
    };
    set_ca(tls_identity("some other CA").0).await;
    let (_, msg) = wait_for(
        "the wrongly trusted Redis to be Degraded",
        TIMEOUT,
        || async { Ok(redis_state().await.filter(|(s, _)| s == "Degraded")) },
    )
    .await;
    assert!(
        msg.contains(&format!("127.0.0.1:{port}: TLS handshake failed"))
            && msg.contains("UnknownIssuer"),
        "{msg}"
    );
    assert!(!msg.contains("BEGIN CERTIFICATE"), "{msg}");

    // The right CA again: Healthy again.
    set_ca(ca).await;
    wait_for("the TLS Redis to be Healthy again", TIMEOUT, || async {
        Ok(redis_state().await.filter(|(s, _)| s == "Healthy"))
    })
    .await;
    server.abort();
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_external_service_that_comes_back_is_healthy_again() {
    let ns = wandb_testkit::namespace("backends-preflight-retry").await;
    let _pv = ns.start_volume_provisioner();
    // A free loopback port with nothing listening yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut ctx = wandb_operator::controller::Context::new(ns.client());
    ctx.preflight_retry = Duration::from_secs(2);
    let running = common::start_with(&ns, vec![ns.name().to_string()], ctx).await;
    let secrets: Api<Secret> = ns.api();
    let port_s = port.to_string();
    apply_external_mysql(&ns, &secrets, "127.0.0.1", &port_s).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_for("the down MySQL to be Degraded", TIMEOUT, || async {
        Ok(mysql_state(&wb).await.filter(|(s, _)| s == "Degraded"))
    })
    .await;
    // The database comes up at the same address; nothing in the resource changes.
    let _listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    wait_for("the MySQL to be Healthy again", TIMEOUT, || async {
        Ok(mysql_state(&wb).await.filter(|(s, _)| s == "Healthy"))
    })
    .await;
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn url_only_external_services_are_split_into_their_connection_secrets() {
    let ns = wandb_testkit::namespace("backends-url-only").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let secrets: Api<Secret> = ns.api();
    common::create_secret(
        &secrets,
        "urls",
        &[
            (
                "redis",
                "rediss://s3cret:@cache.example.com:6380?master=gorilla&poolSize=10",
            ),
            (
                "clickhouse",
                "clickhouse://weave:p%40ss@ch.example.com:9440/weave?secure=true&dial_timeout=10s",
            ),
            (
                "bucket",
                "s3://AK:S%2Fk@minio.example.com:9000/files/w?tls=false",
            ),
            ("other-bucket", "files2"),
        ],
    )
    .await;
    // Only urls; for the object store a field beside the url overrides its bucket. The fixture
    // manifest, whose weave-trace reads ClickHouse (the built-in one has none).
    let head = common::cr_yaml("w", &common::fixtures(), "0.84.0");
    ns.apply_yaml(
        &[&head, "  redis:\n    default:\n      externalRedis:\n        url: {name: urls, key: redis}\n  clickhouse:\n    default:\n      externalClickhouse:\n        url: {name: urls, key: clickhouse}\n  objectStore:\n    default:\n      externalObjectStore:\n        url: {name: urls, key: bucket}\n        bucket: {name: urls, key: other-bucket}\n"].concat(),
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, "w").await;
    let conn = |name: &'static str| {
        let secrets = secrets.clone();
        async move {
            let s = wait_for(name, TIMEOUT, || async { Ok(secrets.get_opt(name).await?) }).await;
            secret_data(&s)
        }
    };
    let redis = conn("w-redis-connection").await;
    assert_eq!(
        redis["url"],
        "redis://:s3cret@cache.example.com:6380?ttlInSeconds=604800&tls=true&master=gorilla&poolSize=10"
    );
    assert_eq!(
        (redis["host"].as_str(), redis["port"].as_str()),
        ("cache.example.com", "6380")
    );
    let ch = conn("w-clickhouse-connection").await;
    assert_eq!(
        ch["url"],
        "clickhouse://weave:p%40ss@ch.example.com:9440/weave?tls=true&dial_timeout=10s"
    );
    assert_eq!(
        (
            ch["user"].as_str(),
            ch["password"].as_str(),
            ch["database"].as_str()
        ),
        ("weave", "p@ss", "weave")
    );
    let store = conn("w-objectstore-connection").await;
    assert_eq!(
        store["url"],
        "s3://AK:S%2Fk@minio.example.com:9000/files2/w?tls=false&forcePathStyle=true"
    );
    assert_eq!(store["bucket"], "files2");
    running.finish(ns).await;
}

/// Each Deployment of the namespace: name -> (generation, pod template, whether it reads `secret`).
async fn deployments_reading(
    deployments: &Api<Deployment>,
    secret: &str,
) -> BTreeMap<String, (i64, serde_json::Value, bool)> {
    let needle = format!("\"{secret}\"");
    deployments
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| {
            let template = serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
            let reads = template["spec"].to_string().contains(&needle);
            let name = d.metadata.name.clone().unwrap();
            (name, (d.metadata.generation.unwrap_or(0), template, reads))
        })
        .collect()
}

fn inputs_hash(template: &serde_json::Value) -> Option<&str> {
    template["metadata"]["annotations"][wandb_engine::inputs_hash::INPUTS_HASH_ANNOTATION].as_str()
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_rotated_password_rolls_exactly_the_deployments_that_read_it() {
    let ns = wandb_testkit::namespace("backends-rotation").await;
    let _pv = ns.start_volume_provisioner();
    // A reachable "MySQL", so that the instance settles (its next periodic pass is minutes away).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    apply_external_mysql(&ns, &secrets, "127.0.0.1", &port).await;
    wait_ready(&wb, "w").await;

    let before = deployments_reading(&deployments, "w-mysql-connection").await;
    let (readers, others): (Vec<_>, Vec<_>) = before.iter().partition(|(_, (_, _, r))| *r);
    assert!(
        !readers.is_empty(),
        "some Deployment reads the MySQL connection"
    );
    assert!(!others.is_empty(), "some Deployment does not");
    for (name, (_, template, _)) in &readers {
        assert!(
            inputs_hash(template).is_some(),
            "{name} carries the inputs hash"
        );
    }
    let conn_before = secret_data(&secrets.get("w-mysql-connection").await.unwrap());
    assert_eq!(conn_before["password"], "secret");

    let rotated = serde_json::json!({"stringData": {"password": "rotated/p@ss"}});
    let t0 = std::time::Instant::now();
    secrets
        .patch(
            "db",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(rotated),
        )
        .await
        .unwrap();
    let after = wait_for(
        "the connection Secret and every Deployment reading it to change",
        Duration::from_secs(30),
        || async {
            let conn = secret_data(&secrets.get("w-mysql-connection").await?);
            if conn["password"] != "rotated/p@ss" {
                return Ok(None);
            }
            let now = deployments_reading(&deployments, "w-mysql-connection").await;
            let rolled = readers.iter().all(|(name, (generation, template, _))| {
                now.get(*name).is_some_and(|(g, t, _)| {
                    g > generation && inputs_hash(t) != inputs_hash(template)
                })
            });
            Ok(rolled.then_some((conn, now)))
        },
    )
    .await;
    eprintln!(
        "rotation: {} Deployment(s) reading the MySQL connection rolled {:?} after the Secret \
         changed; {} others kept their template",
        readers.len(),
        t0.elapsed(),
        others.len()
    );
    let (conn, now) = after;
    assert!(
        conn["url"].contains("rotated%2Fp%40ss@127.0.0.1"),
        "the URL carries it, encoded"
    );
    for (name, (generation, template, _)) in &others {
        let (g, t, _) = &now[*name];
        assert_eq!(
            g, generation,
            "{name} does not read the MySQL connection: not rolled"
        );
        assert_eq!(t, template, "{name} keeps its template");
    }
    drop(listener);
    running.finish(ns).await;
}
