//! Reads the facts the gates and the status are computed from: migration Jobs, backing services'
//! StatefulSets and setup Jobs, and application Deployments, by name, through the applier (so
//! from the watch caches, and never twice in a pass).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use wandb_engine::backends::{self, InfraPlan, Observed};
use wandb_engine::{DesiredObject, Mode, Phase, names};

use wandb_api::InfraMode;

use crate::apply::Applier;
use crate::gates::{JobState, MigrationFact};
use crate::status::{DeploymentFact, InfraFact};

/// The state of a Job from its conditions.
pub fn job_state(job: Option<&Job>) -> JobState {
    let Some(job) = job else {
        return JobState::Missing;
    };
    let conds = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let is_true = |t: &str| conds.iter().find(|c| c.type_ == t && c.status == "True");
    if let Some(c) = is_true("Failed") {
        JobState::Failed {
            reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: c.message.clone().unwrap_or_default(),
        }
    } else if is_true("Complete").is_some() {
        JobState::Complete
    } else {
        JobState::Running
    }
}

/// The facts of a Deployment (`component` is the app name of the desired object).
pub fn deployment_fact(component: &str, name: &str, d: Option<&Deployment>) -> DeploymentFact {
    let Some(d) = d else {
        return DeploymentFact {
            component: component.into(),
            name: name.into(),
            exists: false,
            replicas: d_replicas(None),
            ready_replicas: 0,
            available: false,
            up_to_date: false,
        };
    };
    let status = d.status.clone().unwrap_or_default();
    DeploymentFact {
        component: component.into(),
        name: name.into(),
        exists: true,
        replicas: d_replicas(Some(d)),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        available: status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True"),
        up_to_date: status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0),
    }
}

fn d_replicas(d: Option<&Deployment>) -> i32 {
    d.and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

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

/// Backing services of the plan: their StatefulSet and setup Jobs, judged by the backend's
/// readiness rule. The connection Secret is left out here (reported as `missing_secrets`).
pub async fn infra(applier: &Applier, plans: &[InfraPlan]) -> Result<Vec<InfraFact>, kube::Error> {
    let mut out = Vec::new();
    for plan in plans {
        let mut observed = Observed {
            connection_secret: true,
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
            preflight: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conds: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "status": {"conditions": conds}
        }))
        .unwrap()
    }

    #[test]
    fn job_states() {
        assert_eq!(job_state(None), JobState::Missing);
        assert_eq!(
            job_state(Some(&job(serde_json::json!([])))),
            JobState::Running
        );
        let done = job(serde_json::json!([
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}
        ]));
        assert_eq!(job_state(Some(&done)), JobState::Complete);
        let failed = job(serde_json::json!([
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "m"}
        ]));
        assert_eq!(
            job_state(Some(&failed)),
            JobState::Failed {
                reason: "BackoffLimitExceeded".into(),
                message: "m".into()
            }
        );
    }

    #[test]
    fn deployment_facts() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w-api", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "readyReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True"}]}
        }))
        .unwrap();
        let f = deployment_fact("api", "w-api", Some(&d));
        assert!(f.ready());
        assert_eq!((f.ready_replicas, f.replicas), (2, 2));
        assert!(!deployment_fact("api", "w-api", None).ready());
    }
}
