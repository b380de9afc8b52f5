//! Facts from observed objects (pure): a Job's state, a Deployment's readiness.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;

use super::gates::JobState;
use super::status::DeploymentFact;

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

/// The facts of an upgrade's backup Job: the desired object names the service and versions; the
/// live Job (once created) holds the dump's location, stamped with the time it was created.
pub fn backup_fact(desired: &crate::DesiredObject, live: Option<&Job>) -> super::BackupFact {
    use crate::backends::managed::backup;
    let annotation = |k: &str| {
        live.and_then(|j| j.metadata.annotations.as_ref())
            .and_then(|a| a.get(k))
            .cloned()
            .or_else(|| {
                desired.object["metadata"]["annotations"][k]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    let completed = live
        .and_then(|j| j.status.as_ref())
        .and_then(|s| s.completion_time.as_ref())
        .map(|t| t.0.to_string());
    super::BackupFact {
        job: desired.name.clone(),
        service: desired.object["metadata"]["labels"][backup::BACKUP_LABEL]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        from: annotation(backup::FROM_ANNOTATION),
        to: annotation(backup::TO_ANNOTATION),
        location: annotation(backup::LOCATION_ANNOTATION),
        state: job_state(live),
        completed,
    }
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
