//! Backups before an upgrade's migrations, and the restore back, on the local control plane.
//! No container runs under kwok (Jobs just complete), so these assert the gating, the order and
//! the objects; the dump and restore commands themselves are unit-tested in the engine
//! (`crates/engine/tests/backups.rs`).

mod common;

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Resource as _, ResourceExt};
use serde_json::json;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::managed::backup;
use wandb_engine::{ServiceKind, names};
use wandb_testkit::{TestNamespace, condition_status, wait_for};

use common::{TIMEOUT, condition, cr_yaml, fixtures, start, wait_ready};

/// Jobs of the namespace as one watch stream reports them, in order: `+name` when it appears,
/// `=name` when it completes.
fn record_jobs(ns: &TestNamespace) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api: Api<Job> = ns.api();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(job)) = stream.next().await {
            let mut seen = out.lock().unwrap();
            let name = job.name_any();
            let complete = condition_status(&serde_json::to_value(&job).unwrap(), "Complete")
                .is_some_and(|s| s == "True");
            for event in [
                Some(format!("+{name}")),
                complete.then(|| format!("={name}")),
            ]
            .into_iter()
            .flatten()
            {
                if !seen.contains(&event) {
                    seen.push(event);
                }
            }
        }
    });
    (seen, task)
}

fn is_migration_of(job: &str, version_label: &str) -> bool {
    job.contains("-migrate-") && job.ends_with(version_label)
}

async fn upgrade_to(wb: &Api<WeightsAndBiases>, name: &str, version: &str) {
    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"wandb": {"version": version}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_upgrade_backs_up_managed_mysql_first_and_restore_rolls_back() {
    let ns = wandb_testkit::namespace("backup").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let jobs: Api<Job> = ns.api();
    let name = "w";
    ns.apply_yaml(&cr_yaml(name, &fixtures(), "0.79.0")).await;
    wait_ready(&wb, name).await;
    let at_079 = common::deployment_images(&ns, name).await;
    let (seen, watch) = record_jobs(&ns);
    // A first install takes no backup (nothing to lose).
    assert!(
        !jobs
            .list(&ListParams::default())
            .await
            .unwrap()
            .iter()
            .any(|j| j.name_any().contains("-backup-")),
        "no backup on a first install"
    );

    upgrade_to(&wb, name, "0.84.0").await;
    wait_for("Ready at 0.84.0", TIMEOUT, || async {
        let s = wb.get(name).await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(s))
    })
    .await;

    // Order: every backup Job completed before any migration Job of 0.84.0 was created.
    let order = seen.lock().unwrap().clone();
    let up = backup::Upgrade {
        from: "0.79.0".into(),
        to: "0.84.0".into(),
    };
    let inst = wandb_engine::Instance::from_cr(&wb.get(name).await.unwrap()).unwrap();
    let mysql_job = backup::job_name(&inst, ServiceKind::Mysql, "default", &up);
    let pos = |n: &str| order.iter().position(|j| j == n);
    let first_migration = order
        .iter()
        .position(|j| j.starts_with('+') && is_migration_of(j, "0-84-0"))
        .unwrap_or_else(|| panic!("no 0.84.0 migration Job in {order:?}"));
    let backups: Vec<String> = order
        .iter()
        .filter(|j| j.starts_with('+') && j.contains("-backup-"))
        .map(|j| j[1..].to_string())
        .collect();
    assert!(backups.contains(&mysql_job), "{mysql_job} in {order:?}");
    for b in &backups {
        let done =
            pos(&format!("={b}")).unwrap_or_else(|| panic!("{b} never completed: {order:?}"));
        assert!(
            done < first_migration,
            "{b} completed after a migration started: {order:?}"
        );
    }

    // The backup Job: the managed MySQL's image and dump command, credentials by reference,
    // then the upload into the instance's managed object store; kept after the upgrade.
    let job = jobs.get(&mysql_job).await.unwrap();
    let location = job.annotations()[backup::LOCATION_ANNOTATION].clone();
    let prefix = format!("s3://wandb/backups/{name}/mysql-default/0.79.0-0.84.0-");
    assert!(
        location.starts_with(&prefix) && location.ends_with(".sql.gz"),
        "{location}"
    );
    let stamp = &location[prefix.len()..location.len() - ".sql.gz".len()];
    assert!(
        stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
        "{stamp}"
    );
    let pod = job.spec.as_ref().unwrap().template.spec.clone().unwrap();
    let c = &pod.init_containers.as_ref().unwrap()[0];
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = ns.api();
    let mysql = sts.get(&format!("{name}-mysql")).await.unwrap();
    assert_eq!(
        c.image,
        mysql.spec.unwrap().template.spec.unwrap().containers[0].image
    );
    let command = c.command.clone().unwrap();
    assert_eq!(command[..2], ["bash".to_string(), "-c".to_string()]);
    assert_eq!(
        command[2],
        backup::dump_script(
            ServiceKind::Mysql,
            &format!("{name}-mysql"),
            &format!("{name}/mysql-default"),
            5
        )
    );
    assert!(command[2].contains("mysqldump") && command[2].contains("--single-transaction"));
    let env = c.env.clone().unwrap();
    let password = env
        .iter()
        .find(|e| e.name == "MYSQL_ROOT_PASSWORD")
        .unwrap();
    assert!(password.value.is_none(), "never a literal");
    let key = password
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("w-mysql-credentials", "root-password")
    );
    assert_eq!(
        env.iter()
            .find(|e| e.name == "BACKUP_FILE")
            .unwrap()
            .value
            .as_deref(),
        location.rsplit('/').next()
    );
    let upload = &pod.containers[0];
    assert_eq!(
        upload.image.as_deref(),
        Some("docker.io/amazon/aws-cli:2.27.9")
    );
    assert_eq!(
        upload.command.as_ref().unwrap()[2],
        wandb_engine::backends::managed::backup_store::upload_script(
            backup::MOUNT,
            &format!("{name}/mysql-default"),
            5
        )
    );
    assert!(
        pod.volumes.unwrap()[0].empty_dir.is_some(),
        "the dump stays in the pod until uploaded"
    );
    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    assert!(
        pvcs.get_opt("w-backups").await.unwrap().is_none(),
        "no backups PVC with an object store"
    );

    // The status records the backup used for the upgrade.
    let status = wb.get(name).await.unwrap().status.unwrap();
    let records = &status.wandb.as_ref().unwrap().backups;
    let mysql_record = records
        .iter()
        .find(|r| r.service == "mysql-default")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(mysql_record.location, location);
    assert_eq!(
        (
            mysql_record.from_version.as_str(),
            mysql_record.to_version.as_str()
        ),
        ("0.79.0", "0.84.0")
    );
    assert_eq!(mysql_record.job.as_deref(), Some(mysql_job.as_str()));
    assert!(mysql_record.time.is_some());
    assert!(jobs.get_opt(&mysql_job).await.unwrap().is_some(), "kept");
    // `status` shows it, with the ID `restore` takes.
    let id = location.rsplit('/').next().unwrap().to_string();
    let (_, out, err) = common::day2::cli(&ns, &["status", name, "-o", "json"]).await;
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let shown = report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["service"] == "mysql-default")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        (
            &shown["id"],
            &shown["location"],
            &shown["fromVersion"],
            &shown["toVersion"]
        ),
        (
            &json!(id),
            &json!(location),
            &json!("0.79.0"),
            &json!("0.84.0")
        )
    );
    assert_eq!(shown["time"], json!(mysql_record.time));
    let (_, text, _) = common::day2::cli(&ns, &["status", name]).await;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&id))
        .unwrap_or_else(|| panic!("{id} in {text}"));
    assert!(
        line.contains("mysql-default")
            && line.contains("0.79.0 -> 0.84.0")
            && line.contains(&location),
        "{line}"
    );
    common::settle(&running, &ns, name).await;

    // Restore: the CLI pauses, restores the chosen dump with a Job, then sets 0.79.0 (with the
    // acknowledgement) and resumes; 0.79.0 rolls out again.
    let (code, out, err) = common::day2::cli(&ns, &["restore", name, "--backup", &id]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let steps: Vec<&str> = [
        "pausing",
        "restoring mysql-default",
        "setting spec.wandb.version to 0.79.0",
        "restored;",
    ]
    .into_iter()
    .collect();
    let mut at = 0;
    for s in steps {
        let found = out[at..]
            .find(s)
            .unwrap_or_else(|| panic!("{s} in order in {out}"));
        at += found;
    }
    let restore = jobs
        .list(&ListParams::default().labels(backup::RESTORE_LABEL))
        .await
        .unwrap()
        .items;
    assert_eq!(restore.len(), 1, "one restore Job");
    let r = &restore[0];
    assert_eq!(r.annotations()[backup::LOCATION_ANNOTATION], location);
    let rpod = r.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let rel = location.strip_prefix("s3://wandb/backups/").unwrap();
    assert_eq!(
        rpod.init_containers.as_ref().unwrap()[0]
            .command
            .as_ref()
            .unwrap()[2],
        wandb_engine::backends::managed::backup_store::download_script(backup::MOUNT, rel)
    );
    assert_eq!(
        rpod.containers[0].command.as_ref().unwrap()[2],
        backup::restore_script(ServiceKind::Mysql, "w-mysql", rel)
    );
    assert_eq!(
        condition_status(&serde_json::to_value(r).unwrap(), "Complete").as_deref(),
        Some("True")
    );
    let cr = wb.get(name).await.unwrap();
    assert_eq!(cr.spec.wandb.version, "0.79.0");
    assert_eq!(
        cr.annotations()
            .get(names::RESTORED_VERSION_ANNOTATION)
            .map(String::as_str),
        Some("0.79.0")
    );
    assert!(!cr.annotations().contains_key(names::PAUSED_ANNOTATION));
    wait_for("Ready at 0.79.0 again", TIMEOUT, || async {
        let s = wb.get(name).await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.79.0")).then_some(()))
    })
    .await;
    assert_eq!(
        common::deployment_images(&ns, name).await,
        at_079,
        "the old version runs again"
    );
    // Going back to a restored version takes no new backup; the rolled back upgrade's Job goes
    // (its record stays), so upgrading again takes a fresh dump.
    let count_backups = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|j| j.starts_with('+') && j.contains("-backup-"))
            .count()
    };
    assert_eq!(count_backups(), backups.len());
    wait_for(
        "the rolled back upgrade's backup Job to go",
        TIMEOUT,
        || async { Ok(jobs.get_opt(&mysql_job).await?.is_none().then_some(())) },
    )
    .await;
    let status = wb.get(name).await.unwrap().status.unwrap();
    assert!(
        status
            .wandb
            .unwrap()
            .backups
            .iter()
            .any(|r| r.location == location),
        "the record stays"
    );
    upgrade_to(&wb, name, "0.84.0").await;
    wait_for("Ready at 0.84.0 again", TIMEOUT, || async {
        let s = wb.get(name).await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(()))
    })
    .await;
    let again = jobs.get(&mysql_job).await.unwrap();
    let fresh = &again.annotations()[backup::LOCATION_ANNOTATION];
    assert_ne!(*fresh, location, "a fresh backup");
    let status = wb.get(name).await.unwrap().status.unwrap();
    let mysql: Vec<&str> = status
        .wandb
        .as_ref()
        .unwrap()
        .backups
        .iter()
        .filter(|r| r.service == "mysql-default")
        .map(|r| r.location.as_str())
        .collect();
    assert_eq!(mysql, [location.as_str(), fresh.as_str()]);
    watch.abort();
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_failed_backup_stops_the_upgrade_before_any_migration() {
    let ns = wandb_testkit::namespace("backup-fail").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let jobs: Api<Job> = ns.api();
    let name = "w";
    ns.apply_yaml(&cr_yaml(name, &fixtures(), "0.79.0")).await;
    wait_ready(&wb, name).await;
    let at_079 = common::deployment_images(&ns, name).await;

    // The backup Job of the upgrade, failing for real: its pod can never be scheduled and the
    // Job controller fails it at its deadline. It looks like the operator's own (labels, owner,
    // kept), which the operator observes and never re-applies.
    let inst = wandb_engine::Instance::from_cr(&wb.get(name).await.unwrap()).unwrap();
    let up = backup::Upgrade {
        from: "0.79.0".into(),
        to: "0.84.0".into(),
    };
    let failing = backup::job_name(&inst, ServiceKind::Mysql, "default", &up);
    let owner = wb
        .get(name)
        .await
        .unwrap()
        .controller_owner_ref(&())
        .unwrap();
    let job: Job = serde_json::from_value(json!({
        "metadata": {
            "name": failing,
            "labels": {
                names::INSTANCE_LABEL: name,
                names::MANAGED_BY_LABEL: names::MANAGED_BY,
                backup::BACKUP_LABEL: "mysql-default",
            },
            "annotations": {names::RETAIN_ANNOTATION: "true"},
            "ownerReferences": [owner],
        },
        "spec": {"activeDeadlineSeconds": 1, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"wandb-test/no-such-node": "true"},
            "containers": [{"name": "backup", "image": "example.com/fails:1"}]
        }}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    wait_for("the stand-in backup Job to fail", TIMEOUT, || async {
        let j = serde_json::to_value(jobs.get(&failing).await?)?;
        Ok((condition_status(&j, "Failed").as_deref() == Some("True")).then_some(()))
    })
    .await;

    upgrade_to(&wb, name, "0.84.0").await;
    let (_, msg) = wait_for("Stalled=True", TIMEOUT, || async {
        Ok(condition(&wb, name, "Stalled")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    assert!(
        msg.contains(&failing) && msg.contains("DeadlineExceeded"),
        "{msg}"
    );
    let st = wb.get(name).await.unwrap().status.unwrap();
    let stalled = st.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.reason, "BackupFailed");
    assert_eq!(
        st.version.as_deref(),
        Some("0.79.0"),
        "the old version runs"
    );
    assert!(!st.ready);
    // A completed reconcile after the failure: still no migration, the apps untouched.
    common::poke_and_count_writes(&running, &ns, name).await;
    let all: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(
        !all.iter().any(|j| is_migration_of(j, "0-84-0")),
        "no migration starts after a failed backup: {all:?}"
    );
    assert_eq!(
        common::deployment_images(&ns, name).await,
        at_079,
        "old Deployments keep their image"
    );

    // Retry: delete the failed Job; the operator takes the backup, then migrates.
    jobs.delete(&failing, &kube::api::DeleteParams::background())
        .await
        .unwrap();
    wait_for("Ready at 0.84.0", TIMEOUT, || async {
        let s = wb.get(name).await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(()))
    })
    .await;
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn required_waits_for_the_acknowledged_backup_of_an_external_database() {
    let ns = wandb_testkit::namespace("backup-required").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let jobs: Api<Job> = ns.api();
    let name = "w";
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    // An external MySQL nothing listens at: its preflight fails, which is reported, not gating.
    common::create_secret(
        &secrets,
        "db",
        &[
            ("host", "127.0.0.1"),
            ("port", "1"),
            ("user", "wandb"),
            ("database", "wandb"),
            ("password", "secret"),
        ],
    )
    .await;
    let yaml = format!(
        "{}    upgrade: {{backup: {{mode: required}}}}\n  mysql:\n    default:\n      externalMysql:\n        \
         host: {{name: db, key: host}}\n        port: {{name: db, key: port}}\n        \
         database: {{name: db, key: database}}\n        username: {{name: db, key: user}}\n        \
         password: {{name: db, key: password}}\n",
        cr_yaml(name, &fixtures(), "0.79.0")
    );
    ns.apply_yaml(&yaml).await;
    wait_ready(&wb, name).await;

    upgrade_to(&wb, name, "0.84.0").await;
    let (_, msg) = wait_for("Ready=False with BackupRequired", TIMEOUT, || async {
        let cr = wb.get(name).await?;
        Ok(cr
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "BackupRequired")
            .map(|c| (c.reason, c.message)))
    })
    .await;
    assert!(
        msg.contains("mysql default")
            && msg.contains("apps.wandb.com/backup-taken=\"0.84.0:<snapshot id>\""),
        "{msg}"
    );
    common::poke_and_count_writes(&running, &ns, name).await;
    let all: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(
        !all.iter().any(|j| is_migration_of(j, "0-84-0")),
        "no migration before the acknowledgement: {all:?}"
    );
    assert!(
        !all.iter().any(|j| j.contains("-backup-mysql-")),
        "an external MySQL is not dumped: {all:?}"
    );

    // The acknowledgement lets it proceed (one for another version does not: unit-tested).
    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {names::BACKUP_TAKEN_ANNOTATION: "0.84.0:rds:wandb-pre-0-84-0"}}})),
    )
    .await
    .unwrap();
    wait_for("Ready at 0.84.0", TIMEOUT, || async {
        let s = wb.get(name).await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(()))
    })
    .await;
    let status = wb.get(name).await.unwrap().status.unwrap();
    let external = status
        .wandb
        .unwrap()
        .backups
        .into_iter()
        .find(|r| r.service == "external")
        .expect("the acknowledged backup is recorded");
    assert_eq!(
        (
            external.from_version.as_str(),
            external.to_version.as_str(),
            external.location.as_str()
        ),
        ("0.79.0", "0.84.0", "rds:wandb-pre-0-84-0")
    );
    running.finish(ns).await;
}
