//! Where an upgrade's dumps go, on the local control plane. Without a managed object store the
//! dump Jobs of one upgrade share the backups PVC (`ReadWriteOnce`), so they run one after the
//! other. (With one, each pod dumps into its own `emptyDir` and uploads: `backups.rs`.)

mod common;

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use wandb_api::WeightsAndBiases;
use wandb_testkit::{condition_status, wait_for};

use common::{TIMEOUT, cr_yaml, fixtures, start, wait_ready};

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn mysql_and_clickhouse_dumps_run_one_after_the_other() {
    let ns = wandb_testkit::namespace("backup-seq").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let name = "w";
    // An external object store nothing listens at (its preflight failure is reported, not
    // gating): the dumps stay in the cluster, in the PVC.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    common::create_secret(
        &secrets,
        "ext",
        &[
            ("host", "127.0.0.1"),
            ("port", "1"),
            ("bucket", "b"),
            ("access", "ak"),
            ("secret", "sk"),
        ],
    )
    .await;
    let yaml = format!(
        "{}  clickhouse: {{default: {{managedClickhouse: {{}}}}}}\n  objectStore: {{default: {{externalObjectStore: \
         {{endpoint: {{name: ext, key: host}}, port: {{name: ext, key: port}}, bucket: {{name: ext, key: bucket}}, \
         accessKey: {{name: ext, key: access}}, secretKey: {{name: ext, key: secret}}}}}}}}\n",
        cr_yaml(name, &fixtures(), "0.79.0")
    );
    ns.apply_yaml(&yaml).await;
    wait_ready(&wb, name).await;

    // Every backup Job as the watch reports it: when it appears, when a pod of it is
    // scheduled (its start), and when it completes.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let out = seen.clone();
    let api: Api<Job> = ns.api();
    let watch = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(job)) = stream.next().await {
            let name = job.name_any();
            if !name.contains("-backup-") {
                continue;
            }
            let complete = condition_status(&serde_json::to_value(&job).unwrap(), "Complete")
                .is_some_and(|s| s == "True");
            let mut seen = out.lock().unwrap();
            for e in [
                Some(format!("+{name}")),
                complete.then(|| format!("={name}")),
            ]
            .into_iter()
            .flatten()
            {
                if !seen.contains(&e) {
                    seen.push(e);
                }
            }
        }
    });

    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"wandb": {"version": "0.84.0"}}})),
    )
    .await
    .unwrap();
    wait_for("Ready at 0.84.0", TIMEOUT, || async {
        let s = wb.get(name).await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(()))
    })
    .await;
    watch.abort();

    let order = seen.lock().unwrap().clone();
    let created: Vec<&String> = order.iter().filter(|e| e.starts_with('+')).collect();
    assert_eq!(created.len(), 2, "one dump per database: {order:?}");
    assert!(
        created.iter().any(|e| e.contains("-backup-mysql-"))
            && created.iter().any(|e| e.contains("-backup-clickhouse-")),
        "{order:?}"
    );
    // The second Job was created only after the first completed: never two dump pods on the
    // one ReadWriteOnce volume.
    let first = &created[0][1..];
    let second = created[1];
    let done = order
        .iter()
        .position(|e| *e == format!("={first}"))
        .unwrap_or_else(|| panic!("{first} completed: {order:?}"));
    let started = order.iter().position(|e| e == second).unwrap();
    assert!(done < started, "{order:?}");
    // Both dumped into the one PVC.
    let jobs: Api<Job> = ns.api();
    for e in &created {
        let job = jobs.get(&e[1..]).await.unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let claim = pod.volumes.unwrap()[0].persistent_volume_claim.clone();
        assert_eq!(claim.map(|c| c.claim_name).as_deref(), Some("w-backups"));
    }
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ns.api();
    let pvc = pvcs.get("w-backups").await.unwrap();
    assert_eq!(
        pvc.annotations()[wandb_engine::names::RETAIN_ANNOTATION],
        "true"
    );
    assert!(
        pvc.owner_references().is_empty(),
        "the backups outlive the instance unless their policy is purge"
    );
    // Both recorded.
    let st = wb.get(name).await.unwrap().status.unwrap();
    let services: Vec<String> = st
        .wandb
        .unwrap()
        .backups
        .iter()
        .map(|r| r.service.clone())
        .collect();
    assert_eq!(services.len(), 2, "{services:?}");
    running.finish(ns).await;
}
