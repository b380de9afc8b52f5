//! Leader election with a `coordination.k8s.io/v1` Lease: one replica reconciles, the others
//! wait. The decision is a pure function of the Lease and the clock; writes use the Lease's
//! `resourceVersion`, so two candidates never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// Where the Lease lives and who this candidate is.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub duration: Duration,
    /// How often the holder renews, and a candidate retries.
    pub renew_every: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaseConfig {
            namespace: namespace.to_string(),
            name: "wandb-operator-leader".into(),
            identity: identity.to_string(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// What a candidate does with the Lease it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Held by nobody, or expired: take it over.
    TakeOver,
    /// Someone else holds a valid Lease.
    Wait,
}

/// Pure: the decision for `me` at `now`.
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::TakeOver;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    match &spec.renew_time {
        Some(MicroTime(renewed)) if *renewed + duration > now => Decision::Wait,
        _ => Decision::TakeOver,
    }
}

fn spec_for(cfg: &LeaseConfig, prev: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    let keep = prev.is_some_and(|p| p.holder_identity.as_deref() == Some(cfg.identity.as_str()));
    let transitions = prev.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.duration.as_secs().try_into().unwrap_or(15)),
        acquire_time: if keep {
            prev.and_then(|p| p.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if keep || prev.is_none() {
            transitions
        } else {
            transitions + 1
        }),
        ..Default::default()
    }
}

/// One attempt to acquire or renew. `Ok(true)` when this candidate holds the Lease afterwards.
pub async fn try_acquire(client: &Client, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let now = Timestamp::now();
    let current = api.get_opt(&cfg.name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &cfg.identity,
        now,
    );
    let result = match (decision, current) {
        (Decision::Wait, _) => return Ok(false),
        (Decision::Create, _) | (_, None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec_for(cfg, None, now)),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        (Decision::Renew | Decision::TakeOver, Some(mut lease)) => {
            lease.spec = Some(spec_for(cfg, lease.spec.as_ref(), now));
            // replace carries the resourceVersion we read: a concurrent writer makes this a 409.
            api.replace(&lease.name_any(), &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => {
            if decision != Decision::Renew {
                tracing::info!(identity = %cfg.identity, lease = %cfg.name, "became the leader");
            }
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this candidate holds the Lease.
pub async fn acquire(client: &Client, cfg: &LeaseConfig) {
    loop {
        match try_acquire(client, cfg).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "leader election: could not read or write the Lease")
            }
        }
        tokio::time::sleep(cfg.renew_every).await;
    }
}

/// Renews the Lease until it cannot be renewed for a whole Lease duration (or someone else
/// took it); then returns: leadership is lost.
pub async fn hold(client: &Client, cfg: &LeaseConfig) {
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.renew_every).await;
        match try_acquire(client, cfg).await {
            Ok(true) => last_ok = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::warn!(identity = %cfg.identity, "leader election: another replica holds the Lease");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "leader election: could not renew the Lease");
                // Stop before the Lease can expire, so that two leaders never overlap.
                if last_ok.elapsed() + cfg.renew_every >= cfg.duration {
                    return;
                }
            }
        }
    }
}

/// Gives the Lease up (on shutdown), so that another replica takes over at once.
pub async fn release(client: &Client, cfg: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let Ok(Some(mut lease)) = api.get_opt(&cfg.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    if let Err(e) = api.replace(&cfg.name, &PostParams::default(), &lease).await {
        tracing::warn!(error = %e, "leader election: could not release the Lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn held_by(holder: Option<&str>, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "a", at(100)), Decision::Create);
        assert_eq!(
            decide(Some(&held_by(Some("a"), 0)), "a", at(100)),
            Decision::Renew
        );
        assert_eq!(
            decide(Some(&held_by(Some("b"), 90)), "a", at(100)),
            Decision::Wait
        );
        assert_eq!(
            decide(Some(&held_by(Some("b"), 80)), "a", at(100)),
            Decision::TakeOver
        );
        assert_eq!(
            decide(Some(&held_by(None, 99)), "a", at(100)),
            Decision::TakeOver
        );
        let no_renew = LeaseSpec {
            holder_identity: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(decide(Some(&no_renew), "a", at(100)), Decision::TakeOver);
    }

    #[test]
    fn takeover_counts_a_transition_and_renewal_keeps_the_acquire_time() {
        let cfg = LeaseConfig::new("ns", "a");
        let mut prev = held_by(Some("b"), 0);
        prev.lease_transitions = Some(2);
        let taken = spec_for(&cfg, Some(&prev), at(50));
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(50))));
        let renewed = spec_for(&cfg, Some(&taken), at(55));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(50))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(55))));
    }
}
