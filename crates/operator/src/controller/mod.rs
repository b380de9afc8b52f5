//! Controller wiring: watches, bounded concurrency, per-object exponential backoff, graceful
//! shutdown. The reconcile itself lives in [`reconcile`].

mod cleanup;
mod context;
mod phases;
mod reconcile;
mod secret_watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::{FutureExt as _, Shared};
use k8s_openapi::NamespaceResourceScope;
use kube::core::GroupVersion;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource, ResourceExt as _};
use wandb_api::WeightsAndBiases;

use crate::apply::{KINDS, is_not_served};
use crate::owned_cache::OwnedCacheBuilder;

pub use cleanup::owner_for;

pub use context::Context;
pub use reconcile::FINALIZER;

/// How long in-flight reconciles may run after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A shutdown trigger that several controllers can wait on.
pub type Shutdown = Shared<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>;

/// Makes a [`Shutdown`] from any future.
pub fn shutdown_on(f: impl Future<Output = ()> + Send + Sync + 'static) -> Shutdown {
    let boxed: Pin<Box<dyn Future<Output = ()> + Send + Sync>> = Box::pin(f);
    boxed.shared()
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c().map(|_| ());
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                let term = async move {
                    term.recv().await;
                };
                futures::future::select(Box::pin(ctrl_c), Box::pin(term)).await;
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", wandb_engine::decide::failure::describe(.0))]
    Kube(#[from] kube::Error),
    /// A pass that stopped, as a value (its conditions are already written).
    #[error("{}", .0.message)]
    Failed(wandb_engine::decide::Failure),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0}")]
    Internal(String),
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A controller of the WeightsAndBiases in `ns` (every namespace when `None`), whose cache keeps
/// no managedFields and no `kubectl.kubernetes.io/last-applied-configuration`: nothing reads
/// them, and they were most of a cached instance's memory (the second is a copy of the spec).
fn instances(client: &Client, ns: Option<&str>) -> Controller<WeightsAndBiases> {
    let writer = kube::runtime::reflector::store::Writer::<WeightsAndBiases>::default();
    let reader = writer.as_reader();
    let stream = watcher(
        api::<WeightsAndBiases>(client, ns),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .modify(|cr| {
        cr.managed_fields_mut().clear();
        cr.annotations_mut().remove(LAST_APPLIED);
    })
    .reflect(writer)
    .applied_objects();
    Controller::for_stream(stream, reader)
}

/// Where `kubectl apply` keeps its last applied copy of an object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The Gateway API group version of the objects that `networking.mode: gateway` renders.
const GATEWAY_API: &str = wandb_engine::GATEWAY_API_VERSION;

/// The Gateway API kinds of [`KINDS`]: watched only when the cluster serves them.
fn gateway_kinds() -> impl Iterator<Item = &'static str> {
    KINDS
        .iter()
        .filter(|(v, _, _)| *v == GATEWAY_API)
        .map(|(_, k, _)| *k)
}

/// Whether the API server serves every kind of [`gateway_kinds`] (the Gateway API CRDs are
/// installed), asked once through discovery, which needs no RBAC on the resources themselves.
/// Any failure counts as not served: a watch on a kind the cluster does not serve would fail
/// forever, while a missing watch only leaves repairs to the periodic pass.
pub async fn gateway_api_served(client: &Client) -> bool {
    let gv: GroupVersion = match GATEWAY_API.parse() {
        Ok(gv) => gv,
        Err(_) => return false,
    };
    match kube::discovery::pinned_group(client, &gv).await {
        Ok(group) => {
            let kinds: Vec<String> = group
                .versioned_resources(&gv.version)
                .into_iter()
                .map(|(r, _)| r.kind)
                .collect();
            gateway_kinds().all(|k| kinds.iter().any(|served| served == k))
        }
        Err(e) if is_not_served(&e) => false,
        Err(e) => {
            tracing::warn!(error = %e, group_version = GATEWAY_API, "Gateway API discovery failed");
            false
        }
    }
}

/// Runs the controller for `namespaces` (all namespaces when empty) until `shutdown` resolves;
/// in-flight reconciles are drained first.
///
/// Watches on the Gateway API kinds need the cluster to serve them. When it does not, it is
/// asked again every `ctx.gateway_api_recheck`; once the CRDs appear, the controller restarts
/// (draining in-flight reconciles) with those watches, and its initial listing reconciles every
/// instance at once, so nobody has to restart the operator after installing the Gateway API.
pub async fn run(ctx: Arc<Context>, namespaces: &[String], concurrency: u16, shutdown: Shutdown) {
    loop {
        let watch_gateway_api = gateway_api_served(&ctx.client).await;
        let (appeared_tx, appeared_rx) = tokio::sync::oneshot::channel::<()>();
        let poller = if watch_gateway_api {
            tracing::info!(
                group_version = GATEWAY_API,
                "the cluster serves the Gateway API; watching owned Gateways and HTTPRoutes"
            );
            None
        } else {
            tracing::info!(
                group_version = GATEWAY_API,
                every = ?ctx.gateway_api_recheck,
                "the cluster does not serve the Gateway API (Gateway, HTTPRoute): gateway-mode \
                 objects are repaired on the periodic pass until it does"
            );
            let client = ctx.client.clone();
            let every = ctx.gateway_api_recheck;
            Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if gateway_api_served(&client).await {
                        let _ = appeared_tx.send(());
                        return;
                    }
                }
            }))
        };
        let appeared = async move {
            // A dropped sender (the poller aborted) is not an appearance.
            if appeared_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let outer = shutdown.clone();
        let stop = shutdown_on(async move {
            futures::pin_mut!(appeared);
            futures::future::select(outer, appeared).await;
        });
        run_once(
            ctx.clone(),
            namespaces,
            concurrency,
            watch_gateway_api,
            stop,
        )
        .await;
        if let Some(p) = poller {
            p.abort();
        }
        if shutdown.clone().now_or_never().is_some() {
            break;
        }
        tracing::info!(
            group_version = GATEWAY_API,
            "the cluster now serves the Gateway API; restarting the controller to watch it"
        );
    }
    tracing::info!("controller stopped");
}

/// One run of the controllers (one per namespace scope) until `shutdown` resolves.
async fn run_once(
    ctx: Arc<Context>,
    namespaces: &[String],
    concurrency: u16,
    watch_gateway_api: bool,
    shutdown: Shutdown,
) {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    // Every kind the operator applies is watched (one table: apply::KINDS); the same watches
    // fill the caches that reconciles read owned objects from.
    let mut caches = OwnedCacheBuilder::default();
    let mut secret_stores = Vec::new();
    let mut controllers = Vec::new();
    for ns in scopes {
        let client = ctx.client.clone();
        let mut c = instances(&client, ns);
        for (api_version, kind, _) in KINDS {
            if *api_version == GATEWAY_API && !watch_gateway_api {
                caches.not_served(api_version, kind);
                continue;
            }
            let (stream, resource) = caches.watch(&client, ns, api_version, kind);
            c = c.owns_stream_with(stream, resource);
        }
        c = secret_watch::watch(c, &client, ns, ctx.clone(), &mut secret_stores);
        tracing::info!(
            namespace = ns.unwrap_or("<all>"),
            concurrency,
            "controller starting"
        );
        controllers.push(c);
    }
    ctx.set_owned_cache(caches.build());
    ctx.secret_versions.set_stores(secret_stores);
    let runs = controllers.into_iter().map(|c| {
        c.with_config(
            controller::Config::default()
                .concurrency(concurrency)
                .debounce(Duration::from_millis(200)),
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile::reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            match res {
                Ok((obj, action)) => tracing::debug!(%obj, ?action, "reconciled"),
                Err(controller::Error::ObjectNotFound(obj)) => {
                    tracing::debug!(%obj, "object gone before its reconcile")
                }
                Err(e) => tracing::warn!(error = %e, "reconcile failed"),
            }
        })
    });
    // Graceful: in-flight reconciles finish; but a controller whose watches never started
    // (e.g. an API error loop) must not outlive the shutdown by more than a grace period.
    let all = futures::future::join_all(runs);
    let deadline = shutdown
        .clone()
        .then(|()| tokio::time::sleep(SHUTDOWN_GRACE));
    futures::pin_mut!(all, deadline);
    if let futures::future::Either::Right(_) = futures::future::select(all, deadline).await {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "controller did not stop in time; exiting anyway");
    }
}

/// Per-object exponential backoff: 1 s doubling to 5 min, reset by a successful reconcile.
fn error_policy(cr: Arc<WeightsAndBiases>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = cr.metadata.uid.clone().unwrap_or_default();
    let failures = ctx.record_failure(&key);
    let delay = backoff(failures);
    tracing::warn!(
        name = cr.metadata.name.as_deref().unwrap_or_default(),
        namespace = cr.metadata.namespace.as_deref().unwrap_or_default(),
        error = %err,
        failures,
        retry_in = ?delay,
        "reconcile error"
    );
    // A failed pass already said why in its conditions (and their events).
    if !is_conflict(err) && !matches!(err, Error::Failed(_)) {
        // Explain a stuck object in `kubectl describe` (repeats aggregate into one series).
        let recorder = ctx.recorder.clone();
        let reference = cr.object_ref(&());
        let note = truncate(&format!("{err}; retrying in {}s", delay.as_secs()), 1000);
        tokio::spawn(async move {
            let event = Event {
                type_: EventType::Warning,
                reason: "ReconcileFailed".into(),
                note: Some(note),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %e, "could not publish an event");
            }
        });
    }
    Action::requeue(delay)
}

/// An optimistic-concurrency conflict: retried without telling anyone.
fn is_conflict(err: &Error) -> bool {
    let kube_err = match err {
        Error::Kube(e) => Some(e),
        Error::Finalizer(f) => match f.as_ref() {
            kube::runtime::finalizer::Error::ApplyFailed(Error::Kube(e))
            | kube::runtime::finalizer::Error::CleanupFailed(Error::Kube(e))
            | kube::runtime::finalizer::Error::AddFinalizer(e)
            | kube::runtime::finalizer::Error::RemoveFinalizer(e) => Some(e),
            _ => None,
        },
        Error::Internal(_) | Error::Failed(_) => None,
    };
    matches!(kube_err, Some(kube::Error::Api(s)) if s.code == 409)
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_string()
}

/// The delay after `failures` consecutive failures (>= 1).
pub fn backoff(failures: u32) -> Duration {
    let secs = 1u64
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u64::MAX)
        .min(300);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let secs: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(100).as_secs(), 300);
    }

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
