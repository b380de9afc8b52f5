//! State shared by every reconcile: the client, one event recorder (it aggregates repeats),
//! failure counts for backoff, write counters, and the `oci://` manifest cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

/// Shared controller state.
pub struct Context {
    pub client: Client,
    /// Prometheus metrics (served on /metrics).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub recorder: Recorder,
    /// Manifest location used when `spec.wandb.manifestRepository` is unset; when this is
    /// unset too, W&B's registry as the official operator uses it
    /// ([`crate::manifests::location_for`]).
    pub default_manifest: Option<String>,
    /// Fetches `oci://` manifests and caches them by digest (see [`crate::manifests::oci`]).
    pub oci: crate::manifests::OciLoader,
    /// Manifests already checked (see [`crate::manifests::CheckedManifests`]).
    pub checked_manifests: crate::manifests::CheckedManifests,
    /// How long a failed preflight stands before the endpoint is checked again.
    pub preflight_retry: Duration,
    /// How often a cluster without the Gateway API is asked whether it serves it now.
    pub gateway_api_recheck: Duration,
    /// The watch caches of the running controller (replaced when it restarts).
    owned: std::sync::RwLock<crate::owned_cache::OwnedCache>,
    /// Which instances read which of the user's Secrets (see [`super::secret_watch`]).
    pub secret_index: super::secret_watch::SecretIndex,
    /// Which user Secrets exist at which version, and the values last read (see
    /// [`crate::secret_versions`]).
    pub secret_versions: crate::secret_versions::SecretVersions,
    /// A client of the same API server without credentials, for the issuer check of internal
    /// service auth ([`crate::issuer`]); none: not checked (no `InternalServiceAuth` condition).
    pub anonymous: Option<Client>,
    /// Last issuer check: (issuer, result, when), repeated after `preflight_retry`.
    issuer: Mutex<Option<(String, crate::issuer::IssuerCheck, Instant)>>,
    failures: Mutex<HashMap<String, u32>>,
    /// Last preflight per external service (`ns/cr/kind/instance`): (what was checked: endpoint,
    /// TLS mode and a hash of the certificates; problem).
    preflight: Mutex<HashMap<String, PreflightResult>>,
    writes: Mutex<HashMap<String, Vec<usize>>>,
    /// Instances (uids) whose namespace held no predecessor when first looked at: an
    /// installation to take over exists before its resource, so it is not looked for again.
    no_predecessor: Mutex<std::collections::HashSet<String>>,
    total_writes: AtomicU64,
}

/// How many reconciles' write counts are kept per object.
const HISTORY: usize = 64;

/// What was checked (endpoint, TLS mode, certificate hash), the problem found, and when.
type PreflightResult = (String, Option<String>, Instant);

/// How long a reconcile waits for the watch caches' first listing.
const CACHE_SYNC: Duration = Duration::from_secs(30);

/// Default of [`Context::preflight_retry`].
pub const PREFLIGHT_RETRY: Duration = Duration::from_secs(60);

impl Context {
    /// Every request of `client` made through this context is counted in
    /// [`crate::metrics::Metrics::requests`] and carries the operator's User-Agent.
    pub fn new(client: Client) -> Self {
        let metrics = std::sync::Arc::<crate::metrics::Metrics>::default();
        let client = crate::api_requests::counted(client, metrics.requests.clone());
        let instance = std::env::var("POD_NAME").ok();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "wandb-operator".into(),
                instance,
            },
        );
        Context {
            client,
            metrics,
            recorder,
            default_manifest: None,
            oci: crate::manifests::OciLoader::default(),
            checked_manifests: Default::default(),
            preflight_retry: PREFLIGHT_RETRY,
            gateway_api_recheck: Duration::from_secs(60),
            owned: Default::default(),
            secret_index: Default::default(),
            secret_versions: Default::default(),
            anonymous: None,
            issuer: Mutex::default(),
            failures: Mutex::default(),
            preflight: Mutex::default(),
            writes: Mutex::default(),
            no_predecessor: Mutex::default(),
            total_writes: AtomicU64::new(0),
        }
    }

    /// Installs the caches of a (re)started controller.
    pub fn set_owned_cache(&self, cache: crate::owned_cache::OwnedCache) {
        *self.owned.write().expect("not poisoned") = cache;
    }

    /// The watch caches, once they hold their first listing (at most [`CACHE_SYNC`]; a kind
    /// still not listed then is read from the API server).
    pub async fn owned_cache(&self) -> crate::owned_cache::OwnedCache {
        let cache = self.owned.read().expect("not poisoned").clone();
        cache.wait_ready(CACHE_SYNC).await;
        cache
    }

    /// A client like `config`'s without its credentials (for [`Context::anonymous`]).
    pub fn anonymous_client(config: &kube::Config) -> Result<Client, kube::Error> {
        let mut config = config.clone();
        config.auth_info = kube::config::AuthInfo::default();
        Client::try_from(config)
    }

    /// The issuer check of the instance's internal service auth (cached for `preflight_retry`); `None`
    /// when it is disabled or there is no anonymous client.
    pub async fn issuer_check(
        &self,
        inst: &wandb_engine::Instance,
    ) -> Option<crate::issuer::IssuerCheck> {
        let anonymous = self.anonymous.as_ref()?;
        let issuer = inst.internal_auth.clone()?;
        if let Some((i, check, at)) = &*self.issuer.lock().expect("not poisoned")
            && *i == issuer
            && at.elapsed() < self.preflight_retry
        {
            return Some(check.clone());
        }
        let check = crate::issuer::check(anonymous, &self.client, &issuer).await;
        *self.issuer.lock().expect("not poisoned") = Some((issuer, check.clone(), Instant::now()));
        Some(check)
    }

    /// Drops everything kept in memory for a deleted instance: its failure count, preflight
    /// results, write history, readiness metric and the index of the Secrets it reads.
    pub fn forget(&self, cr: &wandb_api::WeightsAndBiases) {
        use kube::ResourceExt as _;
        let (ns, name) = (cr.namespace().unwrap_or_default(), cr.name_any());
        self.metrics.forget(&ns, &name);
        for orphan in self.secret_index.forget(cr) {
            self.secret_versions.remember(&ns, &orphan, None);
        }
        if let Some(uid) = cr.uid() {
            self.reset_failures(&uid);
            self.no_predecessor
                .lock()
                .expect("not poisoned")
                .remove(&uid);
        }
        let prefix = format!("{ns}/{name}/");
        self.preflight
            .lock()
            .expect("not poisoned")
            .retain(|key, _| !key.starts_with(&prefix));
        self.writes
            .lock()
            .expect("not poisoned")
            .remove(&format!("{ns}/{name}"));
    }

    /// Whether the namespace was looked at for a predecessor of `uid` and held none.
    pub fn without_predecessor(&self, uid: &str) -> bool {
        self.no_predecessor
            .lock()
            .expect("not poisoned")
            .contains(uid)
    }

    /// Records that the namespace holds no predecessor of `uid` (see [`Self::without_predecessor`]).
    pub fn found_no_predecessor(&self, uid: &str) {
        self.no_predecessor
            .lock()
            .expect("not poisoned")
            .insert(uid.to_string());
    }

    /// Counts a failure of the object with `uid`; returns the consecutive count.
    pub fn record_failure(&self, uid: &str) -> u32 {
        let mut f = self.failures.lock().expect("not poisoned");
        let n = f.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// The preflight result of `key` for `endpoint`, when that endpoint (with its TLS settings)
    /// was checked already. A success holds until the endpoint changes; a failure only for
    /// `preflight_retry`, so a service that comes back is seen as healthy again.
    pub fn preflight_cached(&self, key: &str, endpoint: &str) -> Option<Option<String>> {
        let p = self.preflight.lock().expect("not poisoned");
        p.get(key)
            .filter(|(e, problem, at)| {
                e == endpoint && (problem.is_none() || at.elapsed() < self.preflight_retry)
            })
            .map(|(_, r, _)| r.clone())
    }

    /// Records the preflight result of `key`; returns whether it is news (another endpoint, or
    /// another result than last time), so that a service that stays unreachable is announced
    /// once, not at every re-check (each announcement is a write).
    pub fn record_preflight(&self, key: &str, endpoint: &str, problem: Option<String>) -> bool {
        let mut p = self.preflight.lock().expect("not poisoned");
        let news = p
            .get(key)
            .is_none_or(|(e, before, _)| e != endpoint || *before != problem);
        p.insert(
            key.to_string(),
            (endpoint.to_string(), problem, Instant::now()),
        );
        news
    }

    /// Forgets the failures of the object with `uid` (after a successful reconcile).
    pub fn reset_failures(&self, uid: &str) {
        self.failures.lock().expect("not poisoned").remove(uid);
    }

    /// Records the API writes of one reconcile of `namespace/name`.
    pub fn record_writes(&self, namespace: &str, name: &str, writes: usize) {
        self.total_writes
            .fetch_add(writes as u64, Ordering::Relaxed);
        let mut w = self.writes.lock().expect("not poisoned");
        let h = w.entry(format!("{namespace}/{name}")).or_default();
        if h.len() == HISTORY {
            h.remove(0);
        }
        h.push(writes);
    }

    /// Write counts of the recent reconciles of `namespace/name`, oldest first.
    pub fn write_history(&self, namespace: &str, name: &str) -> Vec<usize> {
        self.writes
            .lock()
            .expect("not poisoned")
            .get(&format!("{namespace}/{name}"))
            .cloned()
            .unwrap_or_default()
    }

    /// API writes of every reconcile since start.
    pub fn total_writes(&self) -> u64 {
        self.total_writes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deleted_instance_leaves_nothing_in_memory() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let ctx = Context::new(Client::try_from(config).unwrap());
        let cr: wandb_api::WeightsAndBiases = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps.wandb.com/v2", "kind": "WeightsAndBiases",
            "metadata": {"name": "w", "namespace": "n", "uid": "u1"},
            "spec": {"wandb": {"hostname": "http://w", "version": "0.84.0"}}
        }))
        .unwrap();
        ctx.record_failure("u1");
        ctx.record_preflight("n/w/mysql/default", "db:3306", Some("refused".into()));
        ctx.record_preflight("n/other/mysql/default", "db:3306", None);
        ctx.record_writes("n", "w", 3);
        ctx.forget(&cr);
        assert_eq!(
            ctx.record_failure("u1"),
            1,
            "the failure count starts again"
        );
        assert!(
            ctx.preflight_cached("n/w/mysql/default", "db:3306")
                .is_none()
        );
        assert!(
            ctx.preflight_cached("n/other/mysql/default", "db:3306")
                .is_some(),
            "another instance's results stay"
        );
        assert!(ctx.write_history("n", "w").is_empty());
    }
}
