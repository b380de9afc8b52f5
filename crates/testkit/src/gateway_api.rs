//! The Gateway API CRDs (standard channel: gatewayclasses, gateways, httproutes,
//! referencegrants) in the test cluster, for tests of `spec.networking.mode: gateway`. They come
//! from the Go module `sigs.k8s.io/gateway-api` through `scripts/build-k8s-bins.sh gatewayapi`
//! (cached; `scripts/cluster.sh up` fetches them too), so the API server validates routes and
//! Gateways with the real schemas and CEL rules.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::{apply_yaml, condition_status, wait_for};

/// The CRDs installed, as `<plural>.gateway.networking.k8s.io`.
pub const GATEWAY_API_CRDS: [&str; 4] = [
    "gatewayclasses.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "referencegrants.gateway.networking.k8s.io",
];

/// One installation per cluster (by API server URL) and test process: a test on a private
/// cluster must not be told "done" because the shared one has them.
static INSTALLED: Mutex<Option<HashMap<String, Arc<OnceCell<()>>>>> = Mutex::new(None);

/// Installs the Gateway API CRDs into the client's cluster and waits until they are
/// Established. Once per cluster and test process; the server-side apply is idempotent, so
/// concurrent test processes and clusters that already have them are fine. CRDs are
/// cluster-wide and are left installed.
pub async fn install_gateway_api(client: &Client) -> anyhow::Result<()> {
    let key = cluster_id(client).await?;
    let cell = {
        let mut all = INSTALLED.lock().expect("not poisoned");
        all.get_or_insert_with(HashMap::new)
            .entry(key)
            .or_default()
            .clone()
    };
    cell.get_or_try_init(|| async {
        let dir = tokio::task::spawn_blocking(crd_dir).await??;
        for crd in GATEWAY_API_CRDS {
            let plural = crd.split('.').next().unwrap_or_default();
            let file = dir.join(format!("gateway.networking.k8s.io_{plural}.yaml"));
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            apply_yaml(client, None, &yaml).await?;
        }
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in GATEWAY_API_CRDS {
            wait_for(
                &format!("CRD {crd} to be Established"),
                Duration::from_secs(60),
                || async {
                    let v = serde_json::to_value(api.get(crd).await?)?;
                    Ok(
                        (condition_status(&v, "Established").as_deref() == Some("True"))
                            .then_some(()),
                    )
                },
            )
            .await;
        }
        anyhow::Ok(())
    })
    .await?;
    Ok(())
}

/// Which cluster a client talks to: the uid of its `kube-system` namespace, unique per cluster.
async fn cluster_id(client: &Client) -> anyhow::Result<String> {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let uid = ns
        .get("kube-system")
        .await
        .context("reading namespace kube-system")?
        .metadata
        .uid;
    uid.context("namespace kube-system has no uid")
}

/// The folder holding the CRD files, fetched on demand (a cached run prints only "cached").
fn crd_dir() -> anyhow::Result<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-k8s-bins.sh");
    let status = Command::new(&script)
        .arg("gatewayapi")
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} gatewayapi failed ({status})", script.display());
    }
    let out = Command::new(&script)
        .args(["--print-dir", "gatewayapi"])
        .output()
        .with_context(|| format!("running {} --print-dir", script.display()))?;
    if !out.status.success() {
        bail!("{} --print-dir gatewayapi failed", script.display());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}
