//! A stand-in for the storage provisioner the local control plane lacks: kwok runs no CSI driver,
//! so PVCs would stay Pending and StatefulSets with volume claim templates would never schedule.
//! [`TestNamespace::start_volume_provisioner`] binds each Pending claim of its namespace to a new
//! pre-bound `hostPath` PersistentVolume (no data is ever written: no container runs).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, Config};

use crate::{TestNamespace, block_on_fresh_runtime};

/// Label on every PersistentVolume the provisioner creates, naming the test namespace.
pub const PV_NAMESPACE_LABEL: &str = "wandb-testkit/namespace";

/// Runs until dropped; then deletes the PersistentVolumes it created (Kubernetes removes a bound
/// volume once its claim is gone, e.g. with the test namespace).
pub struct VolumeProvisioner {
    task: tokio::task::JoinHandle<()>,
    config: Config,
    namespace: String,
}

impl TestNamespace {
    /// Binds every Pending PVC of this namespace to a fresh PersistentVolume, every 300 ms.
    pub fn start_volume_provisioner(&self) -> VolumeProvisioner {
        let client = self.client();
        let namespace = self.name().to_string();
        let ns = namespace.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = bind_pending(&client, &ns).await {
                    eprintln!("wandb-testkit: volume provisioner in {ns}: {e}");
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        VolumeProvisioner {
            task,
            config: self.cluster().config().clone(),
            namespace,
        }
    }
}

async fn bind_pending(client: &Client, ns: &str) -> Result<(), kube::Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for pvc in claims.list(&ListParams::default()).await? {
        let spec = pvc.spec.clone().unwrap_or_default();
        if spec.volume_name.is_some() || pvc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pvc.metadata.name.clone().unwrap_or_default();
        let size = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage").cloned())
            .unwrap_or_else(|| Quantity("1Gi".into()));
        let pv_name = short_name(&format!("wtk-{ns}-{name}"), 253);
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(pv_name),
                labels: Some(BTreeMap::from([(
                    PV_NAMESPACE_LABEL.to_string(),
                    ns.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([("storage".to_string(), size)])),
                access_modes: spec
                    .access_modes
                    .clone()
                    .or_else(|| Some(vec!["ReadWriteOnce".into()])),
                storage_class_name: spec.storage_class_name.clone(),
                persistent_volume_reclaim_policy: Some("Retain".into()),
                host_path: Some(HostPathVolumeSource {
                    path: format!("/tmp/wandb-testkit/{ns}/{name}"),
                    type_: Some("DirectoryOrCreate".into()),
                }),
                claim_ref: Some(ObjectReference {
                    namespace: Some(ns.to_string()),
                    name: Some(name),
                    uid: pvc.metadata.uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        };
        match volumes.create(&PostParams::default(), &pv).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Drop for VolumeProvisioner {
    fn drop(&mut self) {
        self.task.abort();
        let selector = format!("{PV_NAMESPACE_LABEL}={}", self.namespace);
        let res = block_on_fresh_runtime(self.config.clone(), move |client| async move {
            Api::<PersistentVolume>::all(client)
                .delete_collection(
                    &DeleteParams::background(),
                    &ListParams::default().labels(&selector),
                )
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        });
        if let Err(e) = res {
            eprintln!("wandb-testkit: could not delete the test's PersistentVolumes: {e:#}");
        }
    }
}

/// `name`, cut to `max` characters with a stable hash of the whole in place of the tail.
fn short_name(name: &str, max: usize) -> String {
    use std::hash::{Hash, Hasher};
    if name.len() <= max {
        return name.to_string();
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let hash = format!("{:08x}", h.finish() as u32);
    format!("{}-{hash}", &name[..max - hash.len() - 1])
}
