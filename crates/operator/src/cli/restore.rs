//! `restore NAME --backup ID`: rolls an instance back to the version a backup was taken from.
//!
//! W&B's migrations are forward-only, so going back means loading the data as it was before the
//! upgrade. In order: pause the instance (the controller writes nothing, so no migration or app
//! of the newer version touches the database meanwhile), run a restore Job per chosen backup
//! (built by the engine, like every object: the managed service's image, credentials by
//! secretKeyRef, the dump checked against its sha256), wait for it, then in one patch set
//! `spec.wandb.version` to the backup's from-version, acknowledge it with
//! `apps.wandb.com/restored-version` (or the forward-only check would refuse it) and resume.
//! A failed restore Job leaves the instance paused, at its version.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use wandb_api::{BackupRecord, WeightsAndBiases};
use wandb_engine::decide::JobState;
use wandb_engine::decide::observed::job_state;
use wandb_engine::{ServiceKind, names};

use super::{Cluster, KubeArgs, ManifestArgs, fail, get_cr, plan};
use crate::backups::find_record;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Name of the WeightsAndBiases resource.
    pub name: String,
    /// The backup to restore: its location in `status.wandb.backups` (or a unique end of it,
    /// such as `0.79.0-0.84.0-20261206T210000Z`). Repeat it to restore MySQL and ClickHouse
    /// dumps of the same upgrade together.
    #[arg(long = "backup", required = true)]
    pub backups: Vec<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Seconds to wait for the controller to pause and for each restore Job.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

pub fn run(args: &RestoreArgs) -> ExitCode {
    super::block_on(async {
        let cluster = match args.kube.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        match restore(&cluster, args, &mut |line| println!("{line}")).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

/// The service a backup record names: `mysql-default` -> (MySQL, `default`).
pub fn service_of(record: &BackupRecord) -> Result<(ServiceKind, String), String> {
    let (kind, instance) = record
        .service
        .split_once('-')
        .ok_or_else(|| format!("backup {} names no service", record.location))?;
    let kind = ServiceKind::ALL
        .into_iter()
        .find(|k| k.key() == kind)
        .ok_or_else(|| format!("backup {}: unknown service {kind}", record.location))?;
    Ok((kind, instance.to_string()))
}

/// The restore Job's name: `<cr>-restore-<service>-<time>`.
fn job_name(cr: &str, service: &str, now: &str) -> String {
    names::dns_label(&format!("{cr}-restore-{service}-{now}"))
}

/// The whole sequence; `say` gets one line per step.
pub async fn restore(
    cluster: &Cluster,
    args: &RestoreArgs,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), String> {
    let timeout = Duration::from_secs(args.timeout);
    let cr = get_cr(cluster, &args.name).await?;
    let records = cr
        .status
        .as_ref()
        .and_then(|s| s.wandb.as_ref())
        .map(|w| w.backups.clone())
        .unwrap_or_default();
    let chosen: Vec<BackupRecord> = args
        .backups
        .iter()
        .map(|id| find_record(&records, id).cloned())
        .collect::<Result<_, _>>()?;
    let target = chosen[0].from_version.clone();
    if let Some(other) = chosen.iter().find(|r| r.from_version != target) {
        return Err(format!(
            "the backups were taken from different versions ({target} and {}): restore one \
             version's data at a time",
            other.from_version
        ));
    }
    let services = chosen
        .iter()
        .map(service_of)
        .collect::<Result<Vec<_>, _>>()?;
    // Build every Job before touching anything: a backup of a service the instance no longer
    // runs is refused while the instance still runs as before.
    let manifest = args.manifest.load(&cr, Some(cluster)).await?;
    let built = plan(&cr, &manifest)?;
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y%m%dt%H%M%Sz")
        .to_string();
    let owner = cr
        .controller_owner_ref(&())
        .ok_or("the resource has no uid")?;
    let mut jobs = Vec::new();
    for (record, (kind, instance)) in chosen.iter().zip(&services) {
        let name = job_name(&cr.name_any(), &record.service, &now);
        let mut job = wandb_engine::restore_job(
            &cr,
            &manifest,
            &built,
            *kind,
            instance,
            &record.location,
            &name,
        )?;
        job.object["metadata"]["ownerReferences"] = json!([owner]);
        jobs.push((record, job));
    }

    let wb: Api<WeightsAndBiases> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    say(format!(
        "pausing {} (annotation {}=true)",
        args.name,
        names::PAUSED_ANNOTATION
    ));
    annotate(&wb, &args.name, json!({names::PAUSED_ANNOTATION: "true"})).await?;
    wait_paused(&wb, &args.name, timeout).await?;

    let api: Api<Job> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    for (record, job) in &jobs {
        let job: Job = serde_json::from_value(job.object.clone()).map_err(|e| e.to_string())?;
        let name = job.name_any();
        say(format!(
            "restoring {} from {} (Job {name})",
            record.service, record.location
        ));
        api.create(&PostParams::default(), &job)
            .await
            .map_err(|e| format!("creating the restore Job {name}: {e}"))?;
        wait_job(&api, &name, timeout).await.map_err(|e| {
            format!(
                "{e}; {} stays paused at version {}: see `kubectl logs job/{name}`, then run the \
                 restore again or remove the annotation {} to resume",
                args.name,
                cr.spec.wandb.version,
                names::PAUSED_ANNOTATION
            )
        })?;
    }

    say(format!(
        "setting spec.wandb.version to {target}, acknowledging the restore ({}={target}) and \
         resuming",
        names::RESTORED_VERSION_ANNOTATION
    ));
    wb.patch(
        &args.name,
        &PatchParams::default(),
        &Patch::Merge(json!({
            "metadata": {"annotations": {
                names::RESTORED_VERSION_ANNOTATION: target,
                names::PAUSED_ANNOTATION: null,
            }},
            "spec": {"wandb": {"version": target}},
        })),
    )
    .await
    .map_err(|e| format!("updating {}: {e}", args.name))?;
    say(format!(
        "restored; {} rolls out {target} (watch it with `wandb-operator status {}`)",
        args.name, args.name
    ));
    Ok(())
}

async fn annotate(
    wb: &Api<WeightsAndBiases>,
    name: &str,
    annotations: serde_json::Value,
) -> Result<(), String> {
    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("annotating {name}: {e}"))
}

/// Waits until the controller says it paused (the `Paused` condition), so that no pass of the
/// newer version is still writing when the restore starts.
async fn wait_paused(
    wb: &Api<WeightsAndBiases>,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let cr = wb
            .get(name)
            .await
            .map_err(|e| format!("reading {name}: {e}"))?;
        let paused = cr.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Paused" && c.status == "True")
        });
        if paused {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{name} was annotated paused but the operator did not confirm it (condition \
                 Paused) within {}s: is the operator running?",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_job(api: &Api<Job>, name: &str, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let job = api
            .get_opt(name)
            .await
            .map_err(|e| format!("reading the restore Job {name}: {e}"))?;
        match job_state(job.as_ref()) {
            JobState::Complete => return Ok(()),
            JobState::Failed { reason, message } => {
                return Err(format!("restore Job {name} failed ({reason}): {message}"));
            }
            JobState::Missing => return Err(format!("restore Job {name} disappeared")),
            JobState::Running => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "restore Job {name} did not finish within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_its_service() {
        let r = BackupRecord {
            service: "mysql-default".into(),
            location: "w/mysql-default/x.sql.gz".into(),
            ..Default::default()
        };
        assert_eq!(
            service_of(&r).unwrap(),
            (ServiceKind::Mysql, "default".into())
        );
        let r = BackupRecord {
            service: "clickhouse-analytics-eu".into(),
            ..Default::default()
        };
        assert_eq!(
            service_of(&r).unwrap(),
            (ServiceKind::Clickhouse, "analytics-eu".into())
        );
        let r = BackupRecord {
            service: "external".into(),
            ..Default::default()
        };
        assert!(service_of(&r).is_err());
        assert_eq!(
            job_name("w", "mysql-default", "20261206t210000z"),
            "w-restore-mysql-default-20261206t210000z"
        );
    }
}
