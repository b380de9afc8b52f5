//! Backing services: one [`Backend`] per service kind and mode.
//!
//! A backend declares what an instance of a service needs (objects in [`Phase::Infra`], Secrets
//! the controller fills), how to tell it is ready from observed facts, and the [`Connection`] it
//! publishes. Env wiring reads connections only, so apps never know which mode a service is in.
//!
//! - **Managed** (built-in, [`managed`]): a single-node StatefulSet per service with generated
//!   credentials, for dev and small installs, needing no other operator.
//! - **External** ([`external`]): the user's service. No objects; the controller reads the user's
//!   Secret keys ([`external::selectors`]) and writes the connection Secret from
//!   [`url::connection_secret_data`].
//!
//! The connection Secret `<service>-connection` is composed by the controller in both modes:
//! managed from the generated credentials ([`managed::connection_inputs`]), external from the
//! user's values. [`url`] builds the URLs with correct percent-encoding.

pub mod certs;
pub mod external;
pub mod managed;
pub mod retention;
pub mod url;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetStatus;
use k8s_openapi::api::batch::v1::JobStatus;
use serde::Serialize;
use wandb_api::{RetentionPolicy, WeightsAndBiases};
use wandb_manifest::ServerManifest;

use crate::connection::{Connection, ServiceKind};
use crate::desired::{DesiredObject, SecretSource, SecretSpec};
use crate::instance::{Instance, Mode};

/// What a backend reads.
pub struct InfraContext<'a> {
    pub cr: &'a WeightsAndBiases,
    pub inst: &'a Instance,
    pub manifest: &'a ServerManifest,
    pub features: &'a BTreeMap<String, bool>,
}

/// Names the controller needs to gate on a service without re-deriving them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfraPlan {
    pub kind: ServiceKind,
    pub instance: String,
    #[serde(serialize_with = "mode_str")]
    pub mode: Mode,
    /// `<cr>[-<instance>]-<kind>`: the Service clients connect to (managed).
    pub service_name: String,
    /// The StatefulSet whose readiness gates the service (managed only).
    pub statefulset_name: Option<String>,
    /// Jobs that must complete before the service is ready (bucket creation, Kafka topics).
    pub setup_jobs: Vec<String>,
    /// The Secret that publishes the connection (`<service>-connection`).
    pub connection_secret: String,
    /// Generated credentials the managed connection is composed from (managed, when any).
    pub credentials_secret: Option<String>,
    /// What happens to this service's retained data (PVCs, credentials) on delete: the
    /// service's `retentionPolicy` (managed), else `spec.retentionPolicy`.
    pub retention: RetentionPolicy,
}

fn mode_str<S: serde::Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match m {
        Mode::Managed => "managed",
        Mode::External => "external",
    })
}

/// Observed facts about one service instance, read by the controller.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Status of the StatefulSet named by [`InfraPlan::statefulset_name`]; `None` if absent.
    pub statefulset: Option<StatefulSetStatus>,
    /// `metadata.generation` of that StatefulSet, to ignore a status older than the spec.
    pub statefulset_generation: Option<i64>,
    /// Status of each setup Job by name; a missing entry means the Job does not exist.
    pub jobs: BTreeMap<String, JobStatus>,
    /// Whether the connection Secret exists.
    pub connection_secret: bool,
}

/// Readiness of one service instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not ready yet; the message says what is awaited.
    Progressing(String),
    /// Will not become ready without a change (a setup Job failed).
    Failed(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// One backing service instance in one mode.
pub trait Backend {
    fn kind(&self) -> ServiceKind;
    fn instance(&self) -> &str;
    fn mode(&self) -> Mode;
    /// Objects to apply in `Phase::Infra`.
    fn desired(&self, ctx: &InfraContext) -> Vec<DesiredObject>;
    /// Secrets the controller fills (credentials, the connection Secret).
    fn secrets(&self, ctx: &InfraContext) -> Vec<SecretSpec>;
    /// Names for the controller.
    fn plan(&self, ctx: &InfraContext) -> InfraPlan;
    /// The connection env wiring reads.
    fn connection(&self, ctx: &InfraContext) -> Connection {
        ctx.inst
            .default_connections()
            .map
            .remove(&(self.kind(), self.instance().to_string()))
            .unwrap_or_default()
    }
    /// Readiness from observed facts (pure).
    fn readiness(&self, plan: &InfraPlan, observed: &Observed) -> Readiness {
        readiness(plan, observed)
    }
}

/// The backend of one declared service instance.
pub fn backend(kind: ServiceKind, instance: &str, mode: Mode) -> Box<dyn Backend> {
    match mode {
        Mode::Managed => managed::backend(kind, instance),
        Mode::External => Box::new(external::External::new(kind, instance)),
    }
}

/// The connection Secret declaration every backend publishes (unchanged from before backends:
/// managed ones are retained data, external ones are copies).
pub fn connection_spec(
    inst: &Instance,
    kind: ServiceKind,
    instance: &str,
    mode: Mode,
    on_delete: RetentionPolicy,
) -> SecretSpec {
    let service = kind.key().to_string();
    let instance_s = instance.to_string();
    let (source, retain) = match mode {
        Mode::Managed => (
            SecretSource::ManagedConnection {
                service,
                instance: instance_s,
            },
            true,
        ),
        Mode::External => (
            SecretSource::ExternalConnection {
                service,
                instance: instance_s,
            },
            false,
        ),
    };
    SecretSpec {
        name: inst.connection_secret(kind, instance),
        keys: kind
            .fields()
            .iter()
            .copied()
            .chain(inst.configured_optional_keys(kind, instance))
            .map(str::to_string)
            .collect(),
        source,
        retain,
        shared: false,
        manifest_name: None,
        on_delete,
    }
}

/// Everything the backends of an instance contribute.
#[derive(Clone, Debug, Default)]
pub struct InfraBuild {
    pub objects: Vec<DesiredObject>,
    pub secrets: Vec<SecretSpec>,
    pub plans: Vec<InfraPlan>,
}

/// Runs every declared (and needed) service instance's backend, in (kind, instance) order.
pub fn build(ctx: &InfraContext) -> InfraBuild {
    let mut out = InfraBuild::default();
    for ((kind, instance), mode) in &ctx.inst.services {
        let b = backend(*kind, instance, *mode);
        out.objects.extend(b.desired(ctx));
        out.secrets.extend(b.secrets(ctx));
        out.plans.push(b.plan(ctx));
    }
    out
}

/// Shared readiness rule: the StatefulSet (if any) has every replica ready at its current
/// generation, every setup Job completed, and the connection Secret exists.
pub fn readiness(plan: &InfraPlan, observed: &Observed) -> Readiness {
    if let Some(sts) = &plan.statefulset_name {
        let Some(status) = &observed.statefulset else {
            return Readiness::Progressing(format!("StatefulSet {sts} does not exist yet"));
        };
        if let (Some(gen_), Some(seen)) =
            (observed.statefulset_generation, status.observed_generation)
            && seen < gen_
        {
            return Readiness::Progressing(format!("StatefulSet {sts} has not observed its spec"));
        }
        let want = status.replicas.max(1);
        let ready = status.ready_replicas.unwrap_or(0);
        if ready < want {
            return Readiness::Progressing(format!(
                "StatefulSet {sts}: {ready}/{want} replicas ready"
            ));
        }
    }
    for job in &plan.setup_jobs {
        match observed.jobs.get(job) {
            None => return Readiness::Progressing(format!("Job {job} has not run yet")),
            Some(s) => {
                if let Some(reason) = job_failed(s) {
                    return Readiness::Failed(format!("Job {job} failed: {reason}"));
                }
                if !job_complete(s) {
                    return Readiness::Progressing(format!("Job {job} has not completed"));
                }
            }
        }
    }
    if !observed.connection_secret {
        return Readiness::Progressing(format!(
            "connection Secret {} is not written yet",
            plan.connection_secret
        ));
    }
    Readiness::Ready
}

fn condition_true<'a>(
    s: &'a JobStatus,
    type_: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
}

fn job_complete(s: &JobStatus) -> bool {
    condition_true(s, "Complete").is_some() || s.succeeded.unwrap_or(0) >= 1
}

fn job_failed(s: &JobStatus) -> Option<String> {
    condition_true(s, "Failed").map(|c| {
        c.reason
            .clone()
            .or_else(|| c.message.clone())
            .unwrap_or_else(|| "Failed".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobCondition;

    fn plan() -> InfraPlan {
        InfraPlan {
            kind: ServiceKind::ObjectStore,
            instance: "default".into(),
            mode: Mode::Managed,
            service_name: "w-objectstore".into(),
            statefulset_name: Some("w-objectstore".into()),
            setup_jobs: vec!["w-objectstore-bucket-1".into()],
            connection_secret: "w-objectstore-connection".into(),
            credentials_secret: Some("w-objectstore-credentials".into()),
            retention: RetentionPolicy::Detach,
        }
    }

    fn sts(replicas: i32, ready: i32) -> StatefulSetStatus {
        StatefulSetStatus {
            replicas,
            ready_replicas: Some(ready),
            observed_generation: Some(2),
            ..Default::default()
        }
    }

    fn job(cond: Option<(&str, &str)>) -> JobStatus {
        JobStatus {
            conditions: cond.map(|(t, r)| {
                vec![JobCondition {
                    type_: t.into(),
                    status: "True".into(),
                    reason: Some(r.into()),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn readiness_walks_statefulset_jobs_then_secret() {
        let p = plan();
        let mut o = Observed::default();
        assert!(
            matches!(readiness(&p, &o), Readiness::Progressing(m) if m.contains("does not exist"))
        );
        o.statefulset = Some(sts(1, 0));
        assert!(matches!(readiness(&p, &o), Readiness::Progressing(m) if m.contains("0/1")));
        o.statefulset = Some(sts(1, 1));
        o.statefulset_generation = Some(3);
        assert!(matches!(readiness(&p, &o), Readiness::Progressing(m) if m.contains("observed")));
        o.statefulset_generation = Some(2);
        assert!(matches!(readiness(&p, &o), Readiness::Progressing(m) if m.contains("not run")));
        o.jobs.insert("w-objectstore-bucket-1".into(), job(None));
        assert!(
            matches!(readiness(&p, &o), Readiness::Progressing(m) if m.contains("not completed"))
        );
        o.jobs.insert(
            "w-objectstore-bucket-1".into(),
            job(Some(("Failed", "BackoffLimitExceeded"))),
        );
        assert_eq!(
            readiness(&p, &o),
            Readiness::Failed("Job w-objectstore-bucket-1 failed: BackoffLimitExceeded".into())
        );
        o.jobs
            .insert("w-objectstore-bucket-1".into(), job(Some(("Complete", ""))));
        assert!(
            matches!(readiness(&p, &o), Readiness::Progressing(m) if m.contains("connection Secret"))
        );
        o.connection_secret = true;
        assert!(readiness(&p, &o).is_ready());
    }

    #[test]
    fn external_readiness_is_the_connection_secret() {
        let p = InfraPlan {
            mode: Mode::External,
            statefulset_name: None,
            setup_jobs: vec![],
            credentials_secret: None,
            ..plan()
        };
        let mut o = Observed::default();
        assert!(!readiness(&p, &o).is_ready());
        o.connection_secret = true;
        assert!(readiness(&p, &o).is_ready());
    }
}
