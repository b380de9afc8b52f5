//! Helpers for integration tests against the local control plane (`scripts/cluster.sh`).
//!
//! Integration tests are `#[ignore]`d so that a plain `cargo test` needs no cluster; the README's
//! test command (`scripts/test.sh`) starts a cluster and runs them with `--include-ignored`:
//!
//! ```no_run
//! #[tokio::test]
//! #[ignore = "needs the local control plane (scripts/cluster.sh up)"]
//! async fn creates_a_configmap() {
//!     let ns = wandb_testkit::namespace("creates-a-configmap").await;
//!     ns.apply_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n").await;
//!     // ... assertions with ns.client() / ns.api::<ConfigMap>() ...
//! }
//! ```
//!
//! Where the cluster comes from: the kubeconfig in `WANDB_TEST_KUBECONFIG` (fallback:
//! `KUBECONFIG`). To run the ignored tests by hand:
//!
//! ```text
//! export WANDB_TEST_KUBECONFIG="$(scripts/cluster.sh up)"
//! cargo test --workspace -- --include-ignored
//! ```
//!
//! **Never a silent skip**: when the variable is unset, the kubeconfig is unreadable, or the API
//! server does not answer, [`cluster`] and [`namespace`] panic with the reason and the command to
//! fix it. As a guard against running tests on a real cluster, the API server must be on a loopback
//! address unless `WANDB_TEST_ALLOW_REMOTE=1`.
//!
//! **Cleanup**: a [`TestNamespace`] deletes its namespace when dropped (also when the test panics),
//! or earlier with [`TestNamespace::cleanup`]. The delete request is sent synchronously; the
//! namespace then terminates in the background. Set `WANDB_TEST_KEEP_NAMESPACES=1` to keep the
//! namespaces of failed tests for debugging. Cluster-scoped objects that a test creates are not
//! covered by the namespace: guard them with [`TestCluster::delete_on_drop`].

mod gateway_api;
mod private_cluster;
pub mod registry;
mod volumes;

pub use gateway_api::{GATEWAY_API_CRDS, install_gateway_api};
pub use private_cluster::{PrivateCluster, private_cluster};
pub use volumes::{PV_NAMESPACE_LABEL, VolumeProvisioner};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Scope};
use kube::{Client, Config, Resource};
use rand::Rng as _;
use serde_json::Value;

/// Environment variable naming the kubeconfig of the test cluster.
pub const KUBECONFIG_ENV: &str = "WANDB_TEST_KUBECONFIG";
/// Label put on every namespace this crate creates (`wandb-testkit=true`).
pub const NAMESPACE_LABEL: &str = "wandb-testkit";
/// The `#[ignore]` reason used by integration tests in this project.
pub const IGNORE_REASON: &str = "needs the local control plane (scripts/cluster.sh up)";
/// Field manager used by [`apply_yaml`].
pub const FIELD_MANAGER: &str = "wandb-testkit";

const HOW_TO_START: &str = "start it with `export WANDB_TEST_KUBECONFIG=\"$(scripts/cluster.sh up)\"` \
     (or run the whole suite with scripts/test.sh)";

/// A connection to the test cluster, checked to answer.
#[derive(Clone)]
pub struct TestCluster {
    client: Client,
    config: Config,
    kubeconfig: PathBuf,
    version: Info,
}

/// Connects to the test cluster, or panics with the reason when the control plane is not up.
pub async fn cluster() -> TestCluster {
    match try_cluster().await {
        Ok(c) => c,
        Err(e) => panic!("the local control plane is not up: {HOW_TO_START}. Error: {e:#}"),
    }
}

/// Like [`cluster`], returning the error instead of panicking.
pub async fn try_cluster() -> anyhow::Result<TestCluster> {
    let (var, path) = kubeconfig_from_env(|k| std::env::var_os(k))?;
    connect(path, &format!("${var}")).await
}

/// Connects to the cluster of the kubeconfig at `path` (`origin` says where the path came from).
pub(crate) async fn connect(path: PathBuf, origin: &str) -> anyhow::Result<TestCluster> {
    let kubeconfig = Kubeconfig::read_from(&path)
        .with_context(|| format!("reading the kubeconfig {} (from {origin})", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading the kubeconfig {} (from {origin})", path.display()))?;
    check_loopback(&config)?;
    let client = Client::try_from(config.clone()).context("building the client")?;
    let version = tokio::time::timeout(Duration::from_secs(15), client.apiserver_version())
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 15s"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("asking {} for its version", config.cluster_url))?;
    Ok(TestCluster {
        client,
        config,
        kubeconfig: path,
        version,
    })
}

/// Which variable names the kubeconfig, and its value: `WANDB_TEST_KUBECONFIG`, else `KUBECONFIG`
/// (a single path; the first one of a `:`-separated list).
fn kubeconfig_from_env(
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> anyhow::Result<(&'static str, PathBuf)> {
    for var in [KUBECONFIG_ENV, "KUBECONFIG"] {
        if let Some(v) = get(var).filter(|v| !v.is_empty()) {
            let first = std::env::split_paths(&v).next().unwrap_or_default();
            return Ok((var, first));
        }
    }
    bail!("neither {KUBECONFIG_ENV} nor KUBECONFIG is set")
}

fn check_loopback(config: &Config) -> anyhow::Result<()> {
    if std::env::var("WANDB_TEST_ALLOW_REMOTE").as_deref() == Ok("1") {
        return Ok(());
    }
    let host = config.cluster_url.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "the kubeconfig points at {}, which is not a loopback address; integration tests \
             create and delete objects, so they only run against the local control plane \
             (set WANDB_TEST_ALLOW_REMOTE=1 to override)",
            config.cluster_url
        );
    }
    Ok(())
}

impl TestCluster {
    /// A client for the cluster (cheap to clone; bound to the current tokio runtime).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The kube config the client was built from (for building more clients, e.g. for an
    /// operator under test).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Path of the kubeconfig file (to hand to a subprocess such as helm or kubectl).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's version, as reported when connecting.
    pub fn server_version(&self) -> &Info {
        &self.version
    }

    /// Creates a namespace `<prefix>-<random>` for one test (see [`TestNamespace`]) and waits
    /// until its `default` ServiceAccount exists (Pods can be created right away).
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        let name = format!("{}-{}", dns_label_prefix(prefix, 50), random_suffix(6));
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {NAMESPACE_LABEL: "true"}},
        }))
        .expect("a valid Namespace");
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating the test namespace {name}: {e}"));
        let tns = TestNamespace {
            cluster: self.clone(),
            name,
            cleaned_up: false,
        };
        let sa: Api<ServiceAccount> = tns.api();
        wait_for(
            &format!("the default ServiceAccount in namespace {}", tns.name),
            Duration::from_secs(60),
            || async { Ok(sa.get_opt("default").await?.map(|_| ())) },
        )
        .await;
        tns
    }

    /// Panics unless at least one Node is Ready (the fake nodes of kwok). Tests that need Pods to
    /// run call this first, so that a missing node fails fast instead of as a timeout.
    pub async fn require_ready_node(&self) {
        let nodes = Api::<Node>::all(self.client())
            .list(&Default::default())
            .await
            .unwrap_or_else(|e| panic!("listing nodes: {e}"));
        let ready = nodes.items.iter().any(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        assert!(
            ready,
            "the test cluster has no Ready node ({} node(s)): kwok is not running? \
             Restart it with scripts/cluster.sh down && scripts/cluster.sh up",
            nodes.items.len()
        );
    }

    /// Deletes the cluster-scoped object `K`/`name` when the returned guard is dropped.
    pub fn delete_on_drop<K>(&self, name: &str) -> DeleteOnDrop
    where
        K: Resource<DynamicType = ()>,
    {
        DeleteOnDrop {
            config: self.config.clone(),
            resource: ApiResource::erase::<K>(&()),
            name: name.to_string(),
        }
    }
}

/// Shortcut for `cluster().await.namespace(prefix).await`.
pub async fn namespace(prefix: &str) -> TestNamespace {
    cluster().await.namespace(prefix).await
}

/// A namespace owned by one test, labelled `wandb-testkit=true`. Deleted on drop, or by
/// [`TestNamespace::cleanup`].
pub struct TestNamespace {
    cluster: TestCluster,
    name: String,
    cleaned_up: bool,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client for the cluster.
    pub fn client(&self) -> Client {
        self.cluster.client()
    }

    /// The cluster this namespace lives in.
    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }

    /// An `Api` for namespaced resources of kind `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client(), &self.name)
    }

    /// Server-side applies every document of `yaml` (see [`apply_yaml`]), putting namespaced
    /// objects without a namespace into this one.
    pub async fn apply_yaml(&self, yaml: &str) -> Vec<DynamicObject> {
        apply_yaml(&self.client(), Some(&self.name), yaml)
            .await
            .unwrap_or_else(|e| panic!("applying YAML in namespace {}: {e:#}", self.name))
    }

    /// Deletes the namespace now (without waiting for it to terminate).
    pub async fn cleanup(mut self) {
        self.cleaned_up = true;
        delete_namespace(self.client(), &self.name)
            .await
            .unwrap_or_else(|e| panic!("deleting namespace {}: {e}", self.name));
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        if std::thread::panicking()
            && std::env::var("WANDB_TEST_KEEP_NAMESPACES").as_deref() == Ok("1")
        {
            eprintln!(
                "wandb-testkit: keeping namespace {} of a failed test",
                self.name
            );
            return;
        }
        let name = self.name.clone();
        if let Err(e) =
            block_on_fresh_runtime(self.cluster.config.clone(), move |client| async move {
                delete_namespace(client, &name)
                    .await
                    .map_err(anyhow::Error::from)
            })
        {
            eprintln!(
                "wandb-testkit: could not delete namespace {}: {e:#}",
                self.name
            );
        }
    }
}

async fn delete_namespace(client: Client, name: &str) -> Result<(), kube::Error> {
    match Api::<Namespace>::all(client)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes a cluster-scoped object when dropped; see [`TestCluster::delete_on_drop`].
pub struct DeleteOnDrop {
    config: Config,
    resource: ApiResource,
    name: String,
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let (ar, name) = (self.resource.clone(), self.name.clone());
        let res = block_on_fresh_runtime(self.config.clone(), move |client| async move {
            match Api::<DynamicObject>::all_with(client, &ar)
                .delete(&name, &DeleteParams::background())
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
        if let Err(e) = res {
            eprintln!(
                "wandb-testkit: could not delete {} {}: {e:#}",
                self.resource.kind, self.name
            );
        }
    }
}

/// Runs `f` on a new single-threaded runtime in a new thread, with a new client. Used from `Drop`,
/// where the test's runtime may be blocked (current-thread `#[tokio::test]`) or gone.
fn block_on_fresh_runtime<F, Fut>(config: Config, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let client = Client::try_from(config)?;
            tokio::time::timeout(Duration::from_secs(30), f(client))
                .await
                .map_err(|_| anyhow::anyhow!("timed out after 30s"))?
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("cleanup thread panicked"))?
}

/// Polls `check` every 250 ms until it returns `Ok(Some(value))`, and returns the value.
/// `Ok(None)` and errors mean "not yet". Panics after `timeout` with `what` and the last error.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        let last_err = match check().await {
            Ok(Some(v)) => return v,
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if start.elapsed() >= timeout {
            match last_err {
                Some(e) => {
                    panic!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => panic!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `status` of the condition `type_` in `.status.conditions` of any object serialized to JSON
/// (e.g. `condition_status(&serde_json::to_value(&deploy)?, "Available")`), if present.
pub fn condition_status(object: &Value, type_: &str) -> Option<String> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("status")?
        .as_str()
        .map(str::to_string)
}

/// Server-side applies (field manager [`FIELD_MANAGER`], forced) every YAML document in `yaml`,
/// in order. Namespaced objects without `metadata.namespace` go to `default_namespace` (an error
/// if `None`). Kinds are resolved by API discovery, so CRDs applied earlier work. Returns the
/// objects as the server stored them.
pub async fn apply_yaml(
    client: &Client,
    default_namespace: Option<&str>,
    yaml: &str,
) -> anyhow::Result<Vec<DynamicObject>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing YAML")?;
    let mut applied = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let obj: DynamicObject = serde_json::from_value(doc).context("not a Kubernetes object")?;
        let types = obj
            .types
            .clone()
            .context("object without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let name = obj
            .metadata
            .name
            .clone()
            .context("object without metadata.name")?;
        let (ar, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {}/{}", types.api_version, types.kind))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &ar),
            Scope::Namespaced => {
                let ns = obj
                    .metadata
                    .namespace
                    .as_deref()
                    .or(default_namespace)
                    .with_context(|| format!("{} {name} needs a namespace", types.kind))?;
                Api::namespaced_with(client.clone(), ns, &ar)
            }
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let out = api
            .patch(&name, &params, &Patch::Apply(&obj))
            .await
            .with_context(|| format!("applying {} {name}", types.kind))?;
        applied.push(out);
    }
    Ok(applied)
}

/// A random lowercase alphanumeric string of length `n` (for unique names).
pub fn random_suffix(n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Lowercases `s`, maps anything outside `[a-z0-9-]` to `-`, trims `-` and cuts it to `max`
/// characters, so that `<result>-<suffix>` is a valid DNS label.
fn dns_label_prefix(s: &str, max: usize) -> String {
    let mapped: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max)
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        "test".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_dns_labels() {
        assert_eq!(dns_label_prefix("My_Test::name", 50), "my-test--name");
        assert_eq!(dns_label_prefix("__", 50), "test");
        assert_eq!(dns_label_prefix(&"a".repeat(80), 50).len(), 50);
    }

    #[test]
    fn suffixes_are_random_and_lowercase() {
        let a = random_suffix(8);
        assert_eq!(a.len(), 8);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, random_suffix(8));
    }

    #[test]
    fn reads_conditions() {
        let v = serde_json::json!({"status": {"conditions": [
            {"type": "Progressing", "status": "True"},
            {"type": "Available", "status": "False"}
        ]}});
        assert_eq!(condition_status(&v, "Available").as_deref(), Some("False"));
        assert_eq!(condition_status(&v, "Complete"), None);
    }

    #[test]
    fn kubeconfig_comes_from_the_env_and_its_absence_is_an_error() {
        let none = |_: &str| None;
        let err = kubeconfig_from_env(none).unwrap_err();
        assert!(err.to_string().contains(KUBECONFIG_ENV), "{err}");

        let both = |k: &str| Some(format!("/{k}").into());
        assert_eq!(
            kubeconfig_from_env(both).unwrap(),
            (KUBECONFIG_ENV, PathBuf::from("/WANDB_TEST_KUBECONFIG"))
        );
        let fallback = |k: &str| (k == "KUBECONFIG").then(|| "/a:/b".into());
        assert_eq!(
            kubeconfig_from_env(fallback).unwrap(),
            ("KUBECONFIG", PathBuf::from("/a"))
        );
    }

    #[test]
    fn only_loopback_servers_are_accepted() {
        let cfg = |url: &str| Config::new(url.parse().unwrap());
        assert!(check_loopback(&cfg("https://127.0.0.1:6443")).is_ok());
        assert!(check_loopback(&cfg("https://localhost:6443")).is_ok());
        assert!(check_loopback(&cfg("https://[::1]:6443")).is_ok());
        if std::env::var("WANDB_TEST_ALLOW_REMOTE").as_deref() != Ok("1") {
            assert!(check_loopback(&cfg("https://10.1.2.3:6443")).is_err());
        }
    }
}
