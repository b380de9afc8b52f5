//! A control plane of a test's own, for what a shared cluster cannot show: a cluster without
//! some CRD that another test installs. Started with `scripts/cluster.sh up` (seconds, once the
//! binaries are cached) and taken down when dropped.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{TestCluster, connect, random_suffix};

/// A private cluster; `scripts/cluster.sh down` runs on drop.
pub struct PrivateCluster {
    name: String,
    cluster: TestCluster,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster.sh")
}

/// Starts a cluster `<prefix>-<random>` with one fake node, or panics with the script's output.
pub async fn private_cluster(prefix: &str) -> PrivateCluster {
    let name = format!("{prefix}-{}", random_suffix(5));
    match start(&name).await {
        Ok(cluster) => PrivateCluster { name, cluster },
        Err(e) => {
            down(&name);
            panic!("starting the private cluster {name}: {e:#}")
        }
    }
}

async fn start(name: &str) -> anyhow::Result<TestCluster> {
    let out = Command::new("bash")
        .arg(script())
        .args(["up", "--name", name])
        .env("WANDB_CLUSTER_NODES", "1")
        .output()
        .context("running scripts/cluster.sh up")?;
    if !out.status.success() {
        bail!(
            "scripts/cluster.sh up failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .last()
        .context("scripts/cluster.sh up printed no kubeconfig path")?;
    connect(PathBuf::from(path.trim()), "scripts/cluster.sh up").await
}

fn down(name: &str) {
    let _ = Command::new("bash")
        .arg(script())
        .args(["down", "--name", name])
        .output();
}

impl PrivateCluster {
    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        down(&self.name);
    }
}
