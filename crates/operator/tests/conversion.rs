//! apps.wandb.com/v1 on the API server, through the operator's conversion webhook served from
//! this process on 127.0.0.1 (kwok Services carry no traffic): a v1 resource created as v1 is
//! stored as v2 with the mapped fields and its literals in the conversion Secret, reconciles to
//! Ready, reads back as v1 unchanged, and keeps reading while the webhook's certificates rotate
//! (serving certificate and CA). A resource with the v1 operator's `<name>-spec-active` Secret is
//! converted from the values that Secret holds.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use serde_json::json;
use wandb_api::{SecretKeySelector, WeightsAndBiases};
use wandb_operator::controller::Context;
use wandb_operator::webhook::{self, Endpoint, Options, Policy};
use wandb_testkit::wait_for;

use common::{TIMEOUT, fixtures, start_with, wait_ready};

fn v1_resource() -> ApiResource {
    ApiResource {
        group: "apps.wandb.com".into(),
        version: "v1".into(),
        api_version: "apps.wandb.com/v1".into(),
        kind: "WeightsAndBiases".into(),
        plural: "weightsandbiases".into(),
    }
}

/// Serves the conversion webhook on a fresh 127.0.0.1 port and points the CRD at it.
async fn serve_webhook(
    client: &kube::Client,
    namespace: &str,
    secret_name: &str,
    policy: Policy,
) -> webhook::Webhook {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    webhook::start(
        client.clone(),
        listener,
        Options {
            endpoint: Endpoint::Url(format!("https://127.0.0.1:{port}/convert")),
            secret_namespace: namespace.to_string(),
            secret_name: secret_name.into(),
            policy,
            check_every: Duration::from_millis(300),
        },
    )
    .await
    .expect("the webhook starts")
}

fn secret_text(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn v1_resource_converts_reconciles_reads_back_and_survives_certificate_rotation() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let ns = wandb_testkit::namespace("conv").await;
    ns.cluster().require_ready_node().await;
    let client = ns.client();
    common::install_crd(&client).await;

    // The webhook as `run` starts it (certificates valid for months).
    let webhook = serve_webhook(&client, ns.name(), "webhook-cert", Policy::default()).await;
    let secrets: Api<Secret> = ns.api();
    // The API server picks up the CRD's new conversion a moment after the change: wait until a
    // dry-run v1 create (converted for storage, not stored) reaches the webhook.
    let v1: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &v1_resource());
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.wandb.com/v1", "kind": "WeightsAndBiases",
        "metadata": {"name": "probe"}, "spec": {"values": {}},
    }))
    .unwrap();
    wait_for("the API server to call the webhook", TIMEOUT, || async {
        let _ = v1
            .create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &probe,
            )
            .await;
        Ok((webhook.reviews.load(Ordering::Relaxed) > 0).then_some(()))
    })
    .await;
    // The dry run stored nothing, so the Secret written for it goes away.
    wait_for(
        "the dry run's conversion Secret removed",
        TIMEOUT,
        || async {
            Ok(secrets
                .get_opt("probe-v1-values")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await;

    // Created as v1 (what Terraform's wandb/wandb/helm module does).
    let name = "legacy";
    let spec = json!({
        "chart": {"url": "https://charts.wandb.ai", "name": "operator-wandb"},
        "values": {
            "global": {"host": "http://legacy.local", "license": "v1-literal-license", "size": "dev",
                       "extraEnv": {"GLOBAL_FLAG": "on"}},
            "mysql": {"install": false},
            "redis": {"install": false},
            "app": {"image": {"tag": "0.84.0"}, "extraEnv": {"APP_FLAG": "1"},
                    "env": {"APP_FLAG": "2", "OIDC_SECRET": "v1-literal-oidc"}},
            "yace": {"install": true},
        },
    });
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.wandb.com/v1", "kind": "WeightsAndBiases",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "weightsandbiases"}},
        "spec": spec,
    }))
    .unwrap();
    v1.create(&PostParams::default(), &obj)
        .await
        .expect("the API server accepts a v1 resource");

    // Stored and read as v2, with the mapped fields.
    let wb: Api<WeightsAndBiases> = ns.api();
    let cr = wb.get(name).await.expect("readable as v2");
    assert_eq!(cr.spec.wandb.version, "0.84.0");
    assert_eq!(cr.spec.wandb.hostname, "http://legacy.local");
    let conversion_secret = format!("{name}-v1-values");
    assert_eq!(
        cr.spec.wandb.license_secret,
        Some(SecretKeySelector {
            name: conversion_secret.clone(),
            key: "values.global.license".into(),
            optional: None
        })
    );
    let overrides = cr
        .spec
        .wandb
        .legacy_overrides
        .clone()
        .expect("legacyOverrides");
    let app_env = overrides["app"].env.clone().unwrap();
    assert_eq!(
        app_env
            .iter()
            .find(|e| e.name == "APP_FLAG")
            .unwrap()
            .value
            .as_deref(),
        Some("2"),
        "env wins over extraEnv"
    );
    let stored = serde_json::to_string(&cr).unwrap();
    assert!(
        !stored.contains("v1-literal-license") && !stored.contains("v1-literal-oidc"),
        "no literal credential in the stored v2 object: {stored}"
    );
    let findings = &cr.metadata.annotations.as_ref().unwrap()["v1.apps.wandb.com/findings"];
    assert!(findings.contains("spec.values.yace"), "{findings}");
    let s = wait_for("the conversion Secret, owned", TIMEOUT, || async {
        Ok(secrets
            .get_opt(&conversion_secret)
            .await?
            .filter(|s| s.metadata.owner_references.is_some()))
    })
    .await;
    assert_eq!(
        secret_text(&s, "values.global.license").as_deref(),
        Some("v1-literal-license")
    );
    assert_eq!(
        s.metadata.owner_references.unwrap()[0].uid,
        cr.metadata.uid.clone().unwrap(),
        "the Secret goes with the resource"
    );

    // A resource the v1 operator applied: its `<name>-spec-active` Secret holds the merged
    // values (here the release channel's image tag), which are mapped instead of spec.values.
    let applied = "applied";
    let active_values = json!({"global": {"host": "http://applied.local"},
                               "app": {"image": {"tag": "0.74.1"}}, "weave": {"install": true}});
    let active_secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{applied}-spec-active")},
        "stringData": {"values": active_values.to_string(), "chart": "{}"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &active_secret)
        .await
        .unwrap();
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.wandb.com/v1", "kind": "WeightsAndBiases",
        "metadata": {"name": applied},
        "spec": {"values": {"global": {"host": "http://applied.local"}}},
    }))
    .unwrap();
    v1.create(&PostParams::default(), &obj).await.unwrap();
    let cr2 = wb.get(applied).await.expect("readable as v2");
    assert_eq!(
        cr2.spec.wandb.version, "0.74.1",
        "from the spec-active Secret"
    );
    let findings = &cr2.metadata.annotations.as_ref().unwrap()["v1.apps.wandb.com/findings"];
    assert!(
        findings.contains("secret applied-spec-active") && findings.contains("weave"),
        "{findings}"
    );
    let back = v1.get(applied).await.unwrap();
    assert_eq!(
        back.data["spec"]["values"],
        json!({"global": {"host": "http://applied.local"}}),
        "the v1 view is the resource's own values"
    );
    wb.delete(applied, &Default::default()).await.unwrap();

    // Reconciled to Ready by the controller (no manifestRepository in v1 values: the
    // operator's default, as `run --default-manifest-repository` sets it).
    // Managed services (the v1 values name none): their volumes need binding on kwok.
    let _pv = ns.start_volume_provisioner();
    let mut ctx = Context::new(client.clone());
    ctx.anonymous = Some(Context::anonymous_client(ns.cluster().config()).unwrap());
    ctx.default_manifest = Some(fixtures());
    let running = start_with(&ns, vec![ns.name().to_string()], ctx).await;
    wait_ready(&wb, name).await;

    // The findings are reported as an event naming the v1 paths.
    let events: Api<Event> = ns.api();
    let msg = wait_for("a ConversionIncomplete event", TIMEOUT, || async {
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ConversionIncomplete"))
            .and_then(|e| e.message))
    })
    .await;
    assert!(msg.contains("spec.values.yace"), "{msg}");

    // Read back as v1: the same spec, none of our annotations, a v1 status.
    let back = v1.get(name).await.expect("readable as v1");
    assert_eq!(back.data["spec"], spec, "v1 -> v2 -> v1 is lossless");
    let annotations = back.metadata.annotations.clone().unwrap_or_default();
    assert!(
        annotations
            .keys()
            .all(|k| !k.starts_with("v1.apps.wandb.com/")),
        "{annotations:?}"
    );
    assert_eq!(back.data["status"]["phase"], "Completed");

    // Rotation without an outage. A webhook whose certificates live seconds (the serving one is
    // renewed every ~4 s, the CA after ~20 s) takes over; then v1 is listed and read (every call
    // converts) until the serving certificate changed several times and the CA was replaced and
    // its predecessor dropped. Each CA step changes the CRD, which restarts the API server's
    // watches of it; the controller re-lists and keeps the instance Ready.
    drop(webhook);
    let secret_name = "webhook-cert-short";
    let webhook = serve_webhook(
        &client,
        ns.name(),
        secret_name,
        Policy {
            ca_validity: Duration::from_secs(30),
            leaf_validity: Duration::from_secs(6),
            renew_remaining: 1.0 / 3.0,
            grace: Duration::from_secs(2),
        },
    )
    .await;
    wait_for(
        "the API server to call the new webhook",
        TIMEOUT,
        || async {
            let _ = v1.get(name).await;
            Ok((webhook.reviews.load(Ordering::Relaxed) > 0).then_some(()))
        },
    )
    .await;
    let first: Secret = secrets.get(secret_name).await.unwrap();
    let first_ca = secret_text(&first, "ca.name").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let (v1, stop, ok, failures) = (v1.clone(), stop.clone(), ok.clone(), failures.clone());
        let spec = spec.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let listed = v1.list(&ListParams::default()).await;
                let got = v1.get(name).await;
                match (listed, got) {
                    (Ok(l), Ok(g)) if l.items.len() == 1 && g.data["spec"] == spec => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    (l, g) => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{:?} / {:?}", l.err(), g.err()))
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // (serving certificates seen, whether old + new CA were ever both in the bundle)
    let seen = Arc::new(std::sync::Mutex::new((BTreeSet::new(), false)));
    wait_for(
        "the CA rotated (overlap, then the old CA dropped) and several serving certificates",
        Duration::from_secs(90),
        || {
            let (secrets, first_ca, seen) = (secrets.clone(), first_ca.clone(), seen.clone());
            async move {
                let s = secrets.get(secret_name).await?;
                let prev = secret_text(&s, "ca.previous.crt");
                let ca = secret_text(&s, "ca.name").unwrap_or_default();
                let mut seen = seen.lock().unwrap();
                seen.0
                    .insert(secret_text(&s, "tls.crt").unwrap_or_default());
                seen.1 |= prev.is_some();
                Ok((ca != first_ca && prev.is_none() && seen.1 && seen.0.len() >= 4).then_some(()))
            }
        },
    )
    .await;
    let leaves = seen.lock().unwrap().0.len();
    // Reads go on through one more serving-certificate renewal after the old CA left the bundle.
    wait_for(
        "one more serving certificate after the old CA left",
        Duration::from_secs(60),
        || {
            let (secrets, seen) = (secrets.clone(), seen.clone());
            async move {
                let s = secrets.get(secret_name).await?;
                let leaf = secret_text(&s, "tls.crt").unwrap_or_default();
                Ok((!seen.lock().unwrap().0.contains(&leaf)).then_some(()))
            }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    let reads = ok.load(Ordering::Relaxed);
    eprintln!(
        "rotation: {leaves} serving certificates, {reads} v1 list+get rounds, {} failures",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "v1 reads failed during rotation: {failures:?}"
    );
    assert!(reads > 50, "{reads}");

    // Unchanged as v1, and still Ready.
    let back = v1.get(name).await.unwrap();
    assert_eq!(back.data["spec"], spec);
    wait_ready(&wb, name).await;
    running.finish(ns).await;
    drop(webhook);
    // Leave the CRD as shipped (its Service), not pointing at this process.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client);
    crds.patch(
        webhook::CRD_NAME,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"conversion": {"webhook": {"clientConfig": {
            "url": null, "caBundle": null,
            "service": {"name": wandb_api::WEBHOOK_SERVICE_NAME, "namespace": wandb_api::WEBHOOK_SERVICE_NAMESPACE,
                        "path": wandb_api::CONVERSION_PATH, "port": 443},
        }}}}})),
    )
    .await
    .expect("restore the CRD's conversion");
}
