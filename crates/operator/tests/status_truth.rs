//! Status tells the truth, on the local control plane: resources the API server accepts but
//! whose pods could never start, or whose objects it would refuse, are never Ready; the cause is
//! in a condition (and its event) naming the object and the field of the resource, and
//! `kubectl wait --for=condition=Ready` fails instead of hanging on a stale "starting".

mod common;

use std::process::Command;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Api;
use wandb_api::WeightsAndBiases;
use wandb_testkit::{TestNamespace, wait_for};

use common::{TIMEOUT, condition, create_secret, start, wait_ready};

fn cr(name: &str, extra_wandb: &str, extra_spec: &str) -> String {
    cr_from("builtin://", name, extra_wandb, extra_spec)
}

fn cr_from(manifest: &str, name: &str, extra_wandb: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: {name}}}\nspec:\n  \
         size: dev\n{extra_spec}  wandb:\n    hostname: http://w.local\n    version: \"0.84.0\"\n    \
         manifestRepository: \"{manifest}\"\n{extra_wandb}"
    )
}

/// Waits until condition `t` of `name` has `status` and `reason`, and returns its message.
async fn wait_condition(
    wb: &Api<WeightsAndBiases>,
    name: &str,
    t: &str,
    status: &str,
    reason: &str,
) -> String {
    wait_for(
        &format!("{t}={status} with reason {reason}"),
        TIMEOUT,
        || async {
            let cr = wb.get(name).await?;
            Ok(cr
                .status
                .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == t))
                .filter(|c| c.status == status && c.reason == reason)
                .map(|c| c.message))
        },
    )
    .await
}

/// `kubectl wait --for=condition=Ready` on `name`: must fail (time out) and print nothing Ready.
fn kubectl_wait_fails(ns: &TestNamespace, name: &str) {
    let out = Command::new("kubectl")
        .args([
            "wait",
            "--for=condition=Ready",
            "--timeout=5s",
            "-n",
            ns.name(),
            &format!("weightsandbiases/{name}"),
        ])
        .output()
        .expect("kubectl on PATH (scripts/test.sh puts the pinned one first)");
    assert!(
        !out.status.success(),
        "kubectl wait succeeded on a broken instance: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_missing_license_secret_is_named_and_creating_it_makes_the_instance_ready() {
    let ns = wandb_testkit::namespace("truth-license").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    ns.apply_yaml(&cr(
        "w",
        "    licenseSecret: {name: the-license, key: license}\n",
        "",
    ))
    .await;
    let msg = wait_condition(&wb, "w", "Ready", "False", "PodInputMissing").await;
    assert!(
        msg.contains("Secret the-license does not exist (set by spec.wandb.licenseSecret)"),
        "{msg}"
    );
    kubectl_wait_fails(&ns, "w");
    // Created: the Secret watch acts on it within seconds, and Ready means usable again.
    create_secret(&ns.api::<Secret>(), "the-license", &[("license", "l")]).await;
    wait_ready(&wb, "w").await;
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_missing_service_account_is_named_instead_of_migrations_running_forever() {
    let ns = wandb_testkit::namespace("truth-sa").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    ns.apply_yaml(&cr(
        "w",
        "    serviceAccount: {create: false, serviceAccountName: missing}\n",
        "",
    ))
    .await;
    let msg = wait_condition(&wb, "w", "Ready", "False", "PodInputMissing").await;
    assert!(
        msg.contains(
            "ServiceAccount missing does not exist (set by \
             spec.wandb.serviceAccount.serviceAccountName)"
        ),
        "{msg}"
    );
    kubectl_wait_fails(&ns, "w");
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn refused_specs_stall_with_the_field_and_write_nothing() {
    let ns = wandb_testkit::namespace("truth-spec").await;
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let long = "a".repeat(40);
    let cases = [
        (
            "clash",
            // The real manifest's `api` application: its Service is `clash-api`.
            cr_from(
                &common::fixtures(),
                "clash",
                "",
                "  redis: {default: {managedRedis: {name: clash-api}}}\n",
            ),
            "spec.redis.default.managedRedis.name",
        ),
        (
            long.as_str(),
            cr(
                &long,
                "",
                "  mysql: {default: {managedMysql: {}}, analytics-primary-01: {managedMysql: {}}}\n",
            ),
            "StatefulSet name",
        ),
        (
            "big",
            cr(
                "big",
                &format!("    license: {}\n", "x".repeat(1_100_000)),
                "",
            ),
            "spec.wandb.license: is 1100000 bytes",
        ),
    ];
    for (name, yaml, expected) in &cases {
        ns.apply_yaml(yaml).await;
        let msg = wait_condition(&wb, name, "Stalled", "True", "InvalidSpec").await;
        assert!(msg.contains(expected), "{name}: {msg}");
        kubectl_wait_fails(&ns, name);
    }
    // Refused before anything was written: no Service flips between two writers.
    let services: Api<Service> = ns.api();
    assert!(
        services.get_opt("clash-api").await.unwrap().is_none(),
        "nothing of a refused plan is applied"
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_write_the_api_server_refuses_stalls_in_its_words_and_a_fix_recovers() {
    let ns = wandb_testkit::namespace("truth-refused").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    // An annotation key the API server refuses (not a qualified name): only it can tell.
    let bad = "  networking: {mode: ingress, annotations: {\"bad key!\": \"x\"}}\n";
    ns.apply_yaml(&cr("w", "", bad)).await;
    let msg = wait_condition(&wb, "w", "Stalled", "True", "WriteRefused").await;
    assert!(msg.contains("writing Ingress w"), "{msg}");
    assert!(msg.contains("422") && msg.contains("bad key!"), "{msg}");
    assert!(
        !msg.contains("ErrorResponse") && !msg.contains("Status {"),
        "{msg}"
    );
    let event = common::wait_for_event(&ns, "a WriteRefused event", |e| {
        e.reason.as_deref() == Some("WriteRefused")
    })
    .await;
    assert!(event.note.unwrap_or_default().contains("Ingress w"));
    kubectl_wait_fails(&ns, "w");
    // Fixed: the refusal goes, and the instance becomes Ready.
    ns.apply_yaml(&cr("w", "", "  networking: {mode: ingress}\n"))
        .await;
    wait_ready(&wb, "w").await;
    assert_eq!(
        condition(&wb, "w", "Stalled").await.map(|c| c.0).as_deref(),
        Some("False")
    );
    running.finish(ns).await;
}
