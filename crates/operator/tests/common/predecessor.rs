//! Objects shaped like the official operator's installations (from the reference: the
//! operator-wandb chart's names and labels, the official v2 operator's Applications), for the
//! takeover tests.

use kube::{Api, ResourceExt};
use wandb_testkit::{TestNamespace, wait_for};

use super::TIMEOUT;

/// The resource's (and Helm release's) name.
pub const CR: &str = "w";
/// The chart's generated session key.
pub const SESSION_KEY: &str = "chart-generated-session-key-0123";
/// The official v2 operator's generated session key.
pub const V2_KEY: &str = "official-v2-generated-key-456789";

pub fn chart_labels(component: &str) -> String {
    format!(
        "{{app.kubernetes.io/managed-by: Helm, app.kubernetes.io/instance: {CR}, \
         app.kubernetes.io/name: {component}, helm.sh/chart: wandb-base-0.12.4}}"
    )
}

/// A Deployment of the chart (wandb-base): selector name + instance, as the chart renders it.
pub fn chart_deployment(name: &str, component: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {labels}\n  \
         annotations: {{meta.helm.sh/release-name: {CR}}}\nspec:\n  replicas: 1\n  selector:\n    \
         matchLabels: {{app.kubernetes.io/name: {component}, app.kubernetes.io/instance: {CR}}}\n  \
         template:\n    metadata:\n      labels: {labels}\n    spec:\n      containers:\n      - \
         name: {component}\n        image: {image}\n        env:\n        - name: GORILLA_SESSION_KEY\n          \
         valueFrom: {{secretKeyRef: {{name: {CR}-gorilla-session-key, key: GORILLA_SESSION_KEY}}}}\n",
        labels = chart_labels(component),
    )
}

pub fn chart_objects() -> Vec<String> {
    let release = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sh.helm.release.v1.w.v1\n  \
         labels: {owner: helm, name: w, status: deployed, version: \"1\"}\ntype: helm.sh/release.v1\n\
         stringData: {release: opaque}\n"
        .to_string();
    let session = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {CR}-gorilla-session-key\n  labels: {}\n  \
         annotations: {{helm.sh/resource-policy: keep}}\nstringData:\n  GORILLA_SESSION_KEY: {SESSION_KEY}\n  \
         GORILLA_AUTH_JWK_URL: http://{CR}-app:8083/api/jwks.json\n",
        chart_labels("wandb")
    );
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {CR}-app\n  labels: {}\nspec:\n  \
         selector: {{app.kubernetes.io/name: app, app.kubernetes.io/instance: {CR}}}\n  ports:\n  \
         - {{name: http, port: 8080, targetPort: 8080}}\n  - {{name: prometheus, port: 8181, targetPort: 8181}}\n",
        chart_labels("app")
    );
    let redis = format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {CR}-redis-master\n  labels: {l}\nspec:\n  \
         serviceName: {CR}-redis-headless\n  replicas: 1\n  selector:\n    matchLabels: {{app.kubernetes.io/name: redis, \
         app.kubernetes.io/instance: {CR}}}\n  template:\n    metadata:\n      labels: {l}\n    spec:\n      \
         containers: [{{name: redis, image: bitnamilegacy/redis:7.2}}]\n",
        l = chart_labels("redis")
    );
    let pvc = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: redis-data-{CR}-redis-master-0\n  \
         labels: {}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 8Gi}}}}\n",
        chart_labels("redis")
    );
    vec![
        release,
        session,
        service,
        redis,
        pvc,
        chart_deployment(&format!("{CR}-app-bc"), "app", "wandb/local:0.60.0"),
        chart_deployment(
            &format!("{CR}-parquet-bc"),
            "parquet",
            "wandb/megabinary:0.60.0",
        ),
        chart_deployment(
            &format!("{CR}-console-bc"),
            "console",
            "wandb/console:2.12.0",
        ),
        // A chart from before the `-bc` rename: the name of our weave Deployment.
        chart_deployment(&format!("{CR}-weave"), "weave", "wandb/weave-python:0.60.0"),
    ]
}

/// The official v2 operator's `Application` kind (just enough of its CRD to own Deployments).
pub async fn install_application_crd(ns: &TestNamespace) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(ns.client());
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "applications.apps.wandb.com"},
        "spec": {"group": "apps.wandb.com", "scope": "Namespaced",
            "names": {"plural": "applications", "singular": "application", "kind": "Application"},
            "versions": [{"name": "v2", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.patch(
        "applications.apps.wandb.com",
        &kube::api::PatchParams::apply("takeover-test").force(),
        &kube::api::Patch::Apply(&crd),
    )
    .await
    .unwrap();
    wait_for("the Application CRD to be Established", TIMEOUT, || async {
        let v = serde_json::to_value(crds.get("applications.apps.wandb.com").await?)?;
        Ok(
            (wandb_testkit::condition_status(&v, "Established").as_deref() == Some("True"))
                .then_some(()),
        )
    })
    .await;
}

/// An official v2 install: Application `app` controlling Deployment `app` (labelled
/// managed-by=wandb-operator as that operator does; selector on the namespace), and the
/// generated session key under the name ours has.
pub async fn official_v2_objects(ns: &TestNamespace) {
    let applied = ns
        .apply_yaml("apiVersion: apps.wandb.com/v2\nkind: Application\nmetadata: {name: app}\nspec: {kind: Deployment}\n")
        .await;
    let uid = applied[0].uid().unwrap();
    let n = ns.name();
    ns.apply_yaml(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  labels: {{app.kubernetes.io/name: app, \
         app.kubernetes.io/instance: {CR}, app.kubernetes.io/managed-by: wandb-operator}}\n  ownerReferences:\n  \
         - {{apiVersion: apps.wandb.com/v2, kind: Application, name: app, uid: {uid}, controller: true}}\n\
         spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app.kubernetes.io/name: app, app.kubernetes.io/instance: {n}}}\n  \
         template:\n    metadata:\n      labels: {{app.kubernetes.io/name: app, app.kubernetes.io/instance: {n}}}\n    \
         spec:\n      containers: [{{name: app, image: wandb/local:0.84.0}}]\n"
    ))
    .await;
    ns.apply_yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {CR}-session-key\n  labels: {{app.kubernetes.io/instance: {CR}, \
         app.kubernetes.io/managed-by: wandb-operator}}\nstringData: {{key: {V2_KEY}}}\n"
    ))
    .await;
}
