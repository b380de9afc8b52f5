//! `status` and `diff` as a user runs them against the local control plane, on the Day-2
//! fixture (`common::day2`): a Ready instance run by the controller in-process.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use wandb_api::WeightsAndBiases;

use common::day2::*;
use common::{settle, start};

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn status_shows_a_ready_instance_and_why_another_is_not() {
    let ns = wandb_testkit::namespace("day2-status").await;
    let svc = services().await;
    let running = ready_instance(&ns, &svc).await;

    let (code, out, err) = cli(&ns, &["status", "w", "-o", "json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["ready"], true);
    assert_eq!(r["desiredVersion"], "0.84.0");
    assert_eq!(r["runningVersion"], "0.84.0");
    assert_eq!(r["url"], "http://w.local");
    let components = r["components"].as_array().unwrap();
    assert!(!components.is_empty());
    for c in components {
        assert_eq!(c["ready"], true, "{c}");
        assert!(c["images"][0].as_str().unwrap().contains('/'), "{c}");
    }
    assert!(
        components
            .iter()
            .any(|c| c["images"][0] == "docker.io/wandb/local:0.84.0"),
        "{components:#?}"
    );
    let mysql = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "mysql")
        .unwrap();
    assert_eq!(mysql["mode"], "external");
    assert_eq!(mysql["state"], "Healthy");
    assert_eq!(mysql["preflight"], "ok");
    assert_eq!(
        mysql["endpoint"],
        format!("mysql://127.0.0.1:{}/wandbdb", svc.ports[0])
    );
    assert!(!out.contains(MYSQL_PASSWORD) && !out.contains("wandbuser"));

    let (code, text, _) = cli(&ns, &["status", "w"]).await;
    eprintln!("{text}");
    assert_eq!(code, 0);
    assert!(
        text.starts_with(&format!("{}/w: Ready", ns.name())),
        "{text}"
    );

    // An instance whose external MySQL Secret does not exist: not Ready, and status says why.
    ns.apply_yaml(
        &CR.replace("{name: w}", "{name: broken}")
            .replace("name: ext, key: mysql", "name: nosuch, key: mysql"),
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wandb_testkit::wait_for("broken to report", common::TIMEOUT, || async {
        Ok(common::condition(&wb, "broken", "Ready")
            .await
            .filter(|(s, _)| s == "False"))
    })
    .await;
    let (code, text, _) = cli(&ns, &["status", "broken"]).await;
    eprintln!("{text}");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("NOT READY"), "{text}");
    assert!(text.contains("Secret nosuch not found"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("mysql/default")
            && l.contains("preflight not run (its connection Secret is not written)")),
        "{text}"
    );

    // As a kubectl plugin: kubectl finds `kubectl-wandb` on PATH and passes the arguments on.
    let dir = tmp("plugin");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_wandb-operator"),
        dir.join("kubectl-wandb"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("kubectl")
        .env("PATH", path)
        .args(["wandb", "status", "w", "--kubeconfig"])
        .arg(ns.cluster().kubeconfig_path())
        .args(["-n", ns.name()])
        .output()
        .await
        .expect("kubectl on PATH (scripts/test.sh puts the pinned one there)");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/w: Ready"));

    let (code, _, err) = cli(&ns, &["status", "w", "--context", "nosuch-context"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("nosuch-context"), "{err}");

    let (code, _, err) = cli(&ns, &["status", "nothere"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn diff_is_empty_when_settled_and_shows_drift_and_spec_changes() {
    let ns = wandb_testkit::namespace("day2-diff").await;
    let svc = services().await;
    let running = ready_instance(&ns, &svc).await;
    settle(&running, &ns, "w").await;

    let (code, out, err) = cli(&ns, &["diff", "w"]).await;
    assert_eq!(code, 0, "a settled instance diffs empty:\n{out}{err}");
    assert!(out.is_empty(), "{out}");

    // Stop the controller, then drift a Deployment: the next reconcile would set it back.
    running.stop().await;
    let deployments: Api<Deployment> = ns.api();
    let d = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/instance=w"))
        .await
        .unwrap()
        .items
        .remove(0);
    let name = d.metadata.name.clone().unwrap();
    let c0 = d.spec.unwrap().template.spec.unwrap().containers.remove(0);
    let (container, image) = (c0.name, c0.image.unwrap());
    deployments
        .patch(
            &name,
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {"template": {"spec": {"containers": [
                    {"name": container, "image": "busybox:drifted"}]}}}
            })),
        )
        .await
        .unwrap();
    let (code, out, err) = cli(&ns, &["diff", "w"]).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("--- live/Deployment/{name}")),
        "{out}"
    );
    assert!(changed(&out, '-', "image: busybox:drifted"), "{out}");
    assert!(changed(&out, '+', &format!("image: {image}")), "{out}");
    assert_eq!(
        out.matches("--- live/").count(),
        1,
        "only the drifted object:\n{out}"
    );

    // A rotated MySQL password: the connection Secret would change (values not shown) and so
    // would the inputs hash of the pods that read it.
    let secrets: Api<Secret> = ns.api();
    secrets
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"mysql-password": "rotated-pw-Xc5nB8"}})),
        )
        .await
        .unwrap();
    let (code, out, err) = cli(&ns, &["diff", "w"]).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("--- live/Secret/w-mysql-connection"), "{out}");
    assert!(changed(&out, '+', "password: REDACTED (changed)"), "{out}");
    assert!(changed(&out, '+', "url: REDACTED (changed)"), "{out}");
    assert!(changed(&out, ' ', "host: REDACTED"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with('+') && l.contains("apps.wandb.com/inputs-hash")),
        "{out}"
    );
    assert!(!out.contains("rotated-pw-Xc5nB8") && !out.contains(MYSQL_PASSWORD));

    // A changed resource file: the resource itself and the objects it changes.
    let file = tmp("w.yaml");
    std::fs::write(&file, CR.replace("http://w.local", "http://w2.local")).unwrap();
    let (code, out, err) = cli(&ns, &["diff", "-f", file.to_str().unwrap()]).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("--- live/WeightsAndBiases/w"), "{out}");
    assert!(changed(&out, '+', "hostname: http://w2.local"), "{out}");
    assert!(
        out.matches("--- live/").count() > 1,
        "the objects the new hostname changes are shown too:\n{out}"
    );
    for secret in [MYSQL_PASSWORD, REDIS_PASSWORD, S3_SECRET, S3_ACCESS] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    // A resource that does not exist yet: itself and every object it would create.
    let fresh = tmp("fresh.yaml");
    std::fs::write(&fresh, CR.replace("{name: w}", "{name: fresh}")).unwrap();
    let (code, out, err) = cli(&ns, &["diff", "-f", fresh.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("--- live/WeightsAndBiases/fresh (absent)"),
        "{out}"
    );
    assert!(
        out.contains("--- live/Deployment/fresh-app (absent)"),
        "{out}"
    );
    assert!(
        out.contains("# Secret/fresh-mysql-connection: would be created"),
        "{out}"
    );
    assert!(err.contains("without owner references"), "{err}");

    // The drift is not the controller's to fix while it is stopped; restart it to clean up.
    let running = start(&ns).await;
    running.finish(ns).await;
}
