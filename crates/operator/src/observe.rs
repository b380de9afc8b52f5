//! Reads the facts the gates and the status are computed from: migration Jobs, backing services'
//! StatefulSets and setup Jobs, and application Deployments, by name, through the applier (so
//! from the watch caches, and never twice in a pass). Judging them is pure and lives in
//! [`wandb_engine::decide`].

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use wandb_api::InfraMode;
use wandb_engine::backends::{self, InfraPlan, Observed};
use wandb_engine::decide::observed::{backup_fact, deployment_fact, job_state};
use wandb_engine::decide::{BackupFact, DeploymentFact, InfraFact, MigrationFact, MissingSecret};
use wandb_engine::{DesiredObject, Mode, Phase, names};

use crate::apply::Applier;

fn component_of(o: &DesiredObject) -> String {
    o.object["metadata"]["labels"][names::COMPONENT_LABEL]
        .as_str()
        .unwrap_or(&o.name)
        .to_string()
}

/// Migration Jobs of the plan, observed by name.
pub async fn migrations(
    applier: &Applier,
    objects: &[DesiredObject],
) -> Result<Vec<MigrationFact>, kube::Error> {
    let mut out = Vec::new();
    for o in objects
        .iter()
        .filter(|o| o.phase == Phase::Migrations && o.kind == "Job")
    {
        let job: Option<Job> = applier.live_as("batch/v1", "Job", &o.name).await?;
        out.push(MigrationFact {
            job: o.name.clone(),
            state: job_state(job.as_ref()),
        });
    }
    Ok(out)
}

/// Backup Jobs of the plan (an upgrade's), observed by name.
pub async fn backups(
    applier: &Applier,
    objects: &[DesiredObject],
) -> Result<Vec<BackupFact>, kube::Error> {
    let mut out = Vec::new();
    for o in objects
        .iter()
        .filter(|o| o.phase == Phase::Backups && o.kind == "Job")
    {
        let job: Option<Job> = applier.live_as("batch/v1", "Job", &o.name).await?;
        out.push(backup_fact(o, job.as_ref()));
    }
    Ok(out)
}

/// Backing services of the plan: their StatefulSet and setup Jobs, judged by the backend's
/// readiness rule. The connection Secret is left out here (reported as `missing_secrets`).
/// `missing` are the connection Secrets not published in this pass; `unreachable` the external
/// endpoints that failed the preflight, as `(kind key, instance, problem)`.
pub async fn infra(
    applier: &Applier,
    plans: &[InfraPlan],
    missing: &[MissingSecret],
    unreachable: &[(String, String, String)],
) -> Result<Vec<InfraFact>, kube::Error> {
    let mut out = Vec::new();
    for plan in plans {
        let mut observed = Observed {
            connection_secret: !missing.iter().any(|m| m.name == plan.connection_secret),
            ..Default::default()
        };
        if let Some(name) = &plan.statefulset_name
            && let Some(sts) = applier
                .live_as::<StatefulSet>("apps/v1", "StatefulSet", name)
                .await?
        {
            observed.statefulset_generation = sts.metadata.generation;
            observed.statefulset = Some(sts.status.unwrap_or_default());
        }
        for job in &plan.setup_jobs {
            if let Some(j) = applier.live_as::<Job>("batch/v1", "Job", job).await? {
                observed
                    .jobs
                    .insert(job.clone(), j.status.unwrap_or_default());
            }
        }
        out.push(InfraFact {
            kind: plan.kind.key().to_string(),
            instance: plan.instance.clone(),
            mode: match plan.mode {
                Mode::Managed => InfraMode::Managed,
                Mode::External => InfraMode::External,
            },
            connection_secret: plan.connection_secret.clone(),
            readiness: backends::readiness(plan, &observed),
            preflight: unreachable
                .iter()
                .find(|(k, i, _)| k == plan.kind.key() && *i == plan.instance)
                .map(|(_, _, p)| p.clone()),
        });
    }
    Ok(out)
}

/// Application Deployments of the plan, observed by name.
pub async fn deployments(
    applier: &Applier,
    objects: &[DesiredObject],
) -> Result<Vec<DeploymentFact>, kube::Error> {
    let mut out = Vec::new();
    for o in objects
        .iter()
        .filter(|o| o.phase == Phase::Applications && o.kind == "Deployment")
    {
        let d: Option<Deployment> = applier.live_as("apps/v1", "Deployment", &o.name).await?;
        out.push(deployment_fact(&component_of(o), &o.name, d.as_ref()));
    }
    Ok(out)
}
