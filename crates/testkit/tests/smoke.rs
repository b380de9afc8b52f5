//! Smoke tests of the local control plane (scripts/cluster.sh): what the operator's integration
//! tests rely on. Each test has its own namespace. Run with scripts/test.sh, or by hand:
//! `WANDB_TEST_KUBECONFIG="$(scripts/cluster.sh up)" cargo test -p wandb-testkit -- --include-ignored`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use wandb_testkit::{condition_status, random_suffix, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn control_plane_is_the_pinned_version() {
    let cluster = wandb_testkit::cluster().await;
    let v = cluster.server_version();
    assert_eq!(v.git_version, "v1.36.3", "server version: {v:?}");
    cluster.require_ready_node().await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn deployment_becomes_available() {
    let ns = wandb_testkit::namespace("smoke-deployment").await;
    ns.cluster().require_ready_node().await;
    ns.apply_yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.invalid/web:1"}]
"#,
    )
    .await;
    let deployments: Api<Deployment> = ns.api();
    let ready = wait_for(
        "Deployment web to be Available with 2 ready replicas",
        TIMEOUT,
        || async {
            let d = deployments.get("web").await?;
            let available = condition_status(&serde_json::to_value(&d)?, "Available");
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            Ok((available.as_deref() == Some("True") && ready == 2).then_some(ready))
        },
    )
    .await;
    assert_eq!(ready, 2);
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn job_completes() {
    let ns = wandb_testkit::namespace("smoke-job").await;
    ns.cluster().require_ready_node().await;
    ns.apply_yaml(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "registry.invalid/migrate:1"}]
"#,
    )
    .await;
    let jobs: Api<Job> = ns.api();
    let succeeded = wait_for("Job migrate to be Complete", TIMEOUT, || async {
        let j = jobs.get("migrate").await?;
        let v = serde_json::to_value(&j)?;
        if condition_status(&v, "Failed").as_deref() == Some("True") {
            anyhow::bail!("the Job failed: {:?}", j.status);
        }
        let complete = condition_status(&v, "Complete").as_deref() == Some("True");
        Ok(complete.then(|| j.status.and_then(|s| s.succeeded).unwrap_or(0)))
    })
    .await;
    assert_eq!(succeeded, 1);
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn crd_cel_rule_rejects_invalid_object_with_its_message() {
    let ns = wandb_testkit::namespace("smoke-cel").await;
    let cluster = ns.cluster().clone();
    let group = format!("{}.wandb.test", random_suffix(8));
    let crd_name = format!("smoketests.{group}");
    const MESSAGE: &str = "minReplicas must not exceed replicas";
    let _crd_guard = cluster.delete_on_drop::<CustomResourceDefinition>(&crd_name);

    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name, "labels": {"wandb-testkit": "true"}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "smoketests", "singular": "smoketest", "kind": "SmokeTest"},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["replicas", "minReplicas"],
                        "properties": {
                            "replicas": {"type": "integer"},
                            "minReplicas": {"type": "integer"}
                        },
                        "x-kubernetes-validations": [
                            {"rule": "self.minReplicas <= self.replicas", "message": MESSAGE}
                        ]
                    }}
                }}
            }]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("creating the CRD");
    wait_for("the CRD to be Established", TIMEOUT, || async {
        let c = crds.get(&crd_name).await?;
        Ok(
            (condition_status(&serde_json::to_value(&c)?, "Established").as_deref()
                == Some("True"))
            .then_some(()),
        )
    })
    .await;

    let ar = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "SmokeTest".into(),
        plural: "smoketests".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ns.client(), ns.name(), &ar);
    let object = |name: &str, replicas: i64, min: i64| {
        let mut o = DynamicObject::new(name, &ar);
        o.data = json!({"spec": {"replicas": replicas, "minReplicas": min}});
        o
    };

    // A valid object is accepted (retried: the new resource can take a moment to be served).
    let valid = object("valid", 3, 1);
    wait_for("a valid SmokeTest to be accepted", TIMEOUT, || async {
        match api.create(&PostParams::default(), &valid).await {
            Ok(_) => Ok(Some(())),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Err(anyhow::anyhow!("not served yet: {}", s.message))
            }
            Err(e) => panic!("the valid SmokeTest was rejected: {e}"),
        }
    })
    .await;

    // An invalid one is rejected by the CEL rule, with the rule's message.
    let err = api
        .create(&PostParams::default(), &object("invalid", 1, 3))
        .await
        .expect_err("the CEL rule must reject minReplicas > replicas");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert_eq!(status.reason, "Invalid", "{status:?}");
    assert!(
        status.message.contains(MESSAGE),
        "message: {}",
        status.message
    );
    assert!(api.get_opt("invalid").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn deleting_an_owner_garbage_collects_its_child() {
    let ns = wandb_testkit::namespace("smoke-gc").await;
    let cms: Api<ConfigMap> = ns.api();
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = cms.create(&PostParams::default(), &owner).await.unwrap();
    let child: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": "child",
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": owner.metadata.uid.clone().unwrap(),
            }]
        },
        "data": {"k": "v"}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &child).await.unwrap();

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    wait_for(
        "the garbage collector to delete ConfigMap child",
        TIMEOUT,
        || async { Ok(cms.get_opt("child").await?.is_none().then_some(())) },
    )
    .await;
    assert!(cms.get_opt("owner").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn server_side_apply_conflict_between_managers_is_reported() {
    let ns = wandb_testkit::namespace("smoke-ssa").await;
    let cms: Api<ConfigMap> = ns.api();
    let apply = |value: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shared"},
            "data": {"key": value}
        })
    };

    cms.patch(
        "shared",
        &PatchParams::apply("manager-a"),
        &Patch::Apply(apply("from-a")),
    )
    .await
    .expect("manager-a's first apply");

    let err = cms
        .patch(
            "shared",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(apply("from-b")),
        )
        .await
        .expect_err("manager-b must conflict with manager-a on .data.key");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err}");
    };
    assert_eq!(status.code, 409, "{status:?}");
    assert_eq!(status.reason, "Conflict", "{status:?}");
    assert!(
        status.message.contains("manager-a"),
        "message: {}",
        status.message
    );
    assert!(
        status.message.contains(".data.key"),
        "message: {}",
        status.message
    );

    // Nothing changed; with force, manager-b takes the field over.
    let cm = cms.get("shared").await.unwrap();
    assert_eq!(cm.data.unwrap()["key"], "from-a");
    let cm = cms
        .patch(
            "shared",
            &PatchParams::apply("manager-b").force(),
            &Patch::Apply(apply("from-b")),
        )
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["key"], "from-b");
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn statefulset_with_volume_claims_becomes_ready_with_the_test_provisioner() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let ns = wandb_testkit::namespace("smoke-sts").await;
    ns.cluster().require_ready_node().await;
    let provisioner = ns.start_volume_provisioner();
    ns.apply_yaml(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: example.invalid/db:1}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 2Gi}}}
"#,
    )
    .await;
    let sts: Api<StatefulSet> = ns.api();
    wait_for(
        "the StatefulSet to have a ready replica",
        TIMEOUT,
        || async {
            let s = sts.get("db").await?;
            Ok(s.status
                .and_then(|st| st.ready_replicas)
                .filter(|r| *r >= 1))
        },
    )
    .await;
    let pvc = ns
        .api::<PersistentVolumeClaim>()
        .get("data-db-0")
        .await
        .unwrap();
    assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    let selector = format!("{}={}", wandb_testkit::PV_NAMESPACE_LABEL, ns.name());
    let pvs: Api<PersistentVolume> = Api::all(ns.client());
    let lp = kube::api::ListParams::default().labels(&selector);
    assert_eq!(pvs.list(&lp).await.unwrap().items.len(), 1);
    // pv-protection keeps a bound volume until its claim is gone.
    sts.delete("db", &DeleteParams::background()).await.unwrap();
    ns.api::<PersistentVolumeClaim>()
        .delete("data-db-0", &DeleteParams::background())
        .await
        .unwrap();
    drop(provisioner);
    wait_for(
        "the test's PersistentVolumes to be deleted",
        TIMEOUT,
        || async { Ok(pvs.list(&lp).await?.items.is_empty().then_some(())) },
    )
    .await;
}
