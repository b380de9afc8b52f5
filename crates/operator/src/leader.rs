//! Leader election on a `coordination.k8s.io` Lease: with several replicas exactly one
//! reconciles; when it dies a standby takes over once the lease expires (`LEASE_SECONDS`).

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Seconds a lease stays valid without renewal; a standby takes over at most this long after
/// the leader stops renewing.
pub const LEASE_SECONDS: u64 = 15;
/// The holder renews this long before expiry.
const GRACE_SECONDS: u64 = 5;

/// A seat in the election; [`Election::release`] gives the lease up for a fast hand-over.
pub struct Election {
    rx: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Election {
    /// Joins the election for Lease `name` in `namespace` as `identity`.
    pub async fn join(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<Self, String> {
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_parameters(LeaseParams::new(identity, LEASE_SECONDS, GRACE_SECONDS))
            .with_field_manager("wandb-operator")
            .build()
            .await
            .map_err(|e| format!("leader election on Lease {namespace}/{name}: {e}"))?;
        let (rx, task) = manager.watch().await;
        Ok(Election { rx, task })
    }

    /// Waits until this process leads.
    pub async fn acquired(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                // The lease task ended without leading; wait for shutdown instead.
                std::future::pending::<()>().await;
            }
        }
    }

    /// A future that resolves when leadership, once held, is lost.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            while *rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Releases the lease (when held) and ends the election task. Futures from [`Self::lost`]
    /// must be dropped first, or the task keeps the lease until the process exits.
    pub async fn release(self) {
        drop(self.rx);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("leader lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease"),
            Err(e) => tracing::warn!(error = %e, "the leader election task failed"),
        }
    }
}
