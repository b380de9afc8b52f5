//! `support-bundle` and `doctor` as a user runs them against the local control plane, on the
//! Day-2 fixture (`common::day2`) and on resources that need an ingress class, the Gateway API or
//! a StorageClass.

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use common::day2::*;

/// An operator Deployment (kwok's node makes its pod Ready, runs nothing and has no logs).
const FAKE_OPERATOR: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: wandb-operator, labels: {app.kubernetes.io/name: wandb-operator}}\nspec:\n  replicas: 1\n  \
         selector: {matchLabels: {app.kubernetes.io/name: wandb-operator}}\n  template:\n    \
         metadata: {labels: {app.kubernetes.io/name: wandb-operator}}\n    \
         spec: {containers: [{name: operator, image: wandb-operator:test}]}\n";

/// Every file of a `.tar.gz`.
fn untar(path: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut ar = tar::Archive::new(gz);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        out.insert(p, buf);
    }
    out
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn the_support_bundle_holds_everything_and_no_secret_value() {
    let ns = wandb_testkit::namespace("day2-bundle").await;
    let svc = services().await;
    let running = ready_instance(&ns, &svc).await;
    let out = tmp("bundle.tar.gz");
    let (code, stdout, err) = cli(
        &ns,
        &[
            "support-bundle",
            "w",
            "-o",
            out.to_str().unwrap(),
            &format!("--operator-namespace={}", ns.name()),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{err}");
    let files = untar(&out);
    let names: Vec<&String> = files.keys().collect();
    for expected in [
        "wandb-support-w/README.txt",
        "wandb-support-w/instance.yaml",
        "wandb-support-w/status.txt",
        "wandb-support-w/events.yaml",
        "wandb-support-w/manifest.txt",
        "wandb-support-w/preflight.txt",
        "wandb-support-w/cluster.yaml",
        "wandb-support-w/objects/Secret/w-mysql-connection.yaml",
    ] {
        assert!(files.contains_key(expected), "{expected} not in {names:#?}");
    }
    assert!(
        names.iter().any(|n| n.contains("/objects/Deployment/")),
        "{names:#?}"
    );
    let text = |p: &str| String::from_utf8(files[p].clone()).unwrap();
    eprintln!("{}", text("wandb-support-w/README.txt"));
    eprintln!("{}", text("wandb-support-w/preflight.txt"));
    // Keys are kept, values are not.
    let conn = text("wandb-support-w/objects/Secret/w-mysql-connection.yaml");
    assert!(conn.contains("password: REDACTED"), "{conn}");
    assert!(
        text("wandb-support-w/README.txt").contains("no operator logs or metrics"),
        "the bundle says what it could not collect"
    );
    assert!(text("wandb-support-w/preflight.txt").contains("mysql/default"));
    assert!(text("wandb-support-w/cluster.yaml").contains("gitVersion"));

    // Every value of every Secret of the namespace, raw and base64, in no file.
    let secrets: Api<Secret> = ns.api();
    let mut scanned = 0;
    for s in secrets.list(&Default::default()).await.unwrap() {
        for v in s.data.unwrap_or_default().into_values() {
            if v.0.len() < wandb_operator::cli::redact::MIN_SCANNED_LEN {
                continue;
            }
            scanned += 1;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&v.0);
            for (path, content) in &files {
                for needle in [v.0.as_slice(), b64.as_bytes()] {
                    assert!(
                        !content.windows(needle.len()).any(|w| w == needle),
                        "{path} holds a value of Secret {:?}",
                        s.metadata.name
                    );
                }
            }
        }
    }
    assert!(scanned >= 8, "only {scanned} values scanned");

    // Someone who may read everything but the Secrets: their values cannot be searched for, so
    // no bundle is written.
    ns.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: no-secrets}\nrules:\n\
         - {apiGroups: [\"*\"], resources: [weightsandbiases, events, pods, deployments, configmaps, services], verbs: [get, list]}\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: no-secrets}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: no-secrets}\n\
         subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bundle-tester}]\n"
    )
    .await;
    let refused = tmp("refused.tar.gz");
    let (code, _, err) = cli(
        &ns,
        &[
            "support-bundle",
            "w",
            "-o",
            refused.to_str().unwrap(),
            "--as",
            "bundle-tester",
        ],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refusing to write a bundle"), "{err}");
    assert!(!refused.exists());

    // With an operator pod in the cluster: its Deployment is in the bundle, and what could not
    // be read of it (kwok serves no logs, its pod no metrics) is said in the README.
    ns.apply_yaml(FAKE_OPERATOR).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    wandb_testkit::wait_for("the operator pod", common::TIMEOUT, || async {
        Ok(pods
            .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=wandb-operator"))
            .await?
            .items
            .pop())
    })
    .await;
    let (code, _, err) = cli(
        &ns,
        &[
            "support-bundle",
            "w",
            "-o",
            out.to_str().unwrap(),
            &format!("--operator-namespace={}", ns.name()),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let files = untar(&out);
    let op = format!(
        "wandb-support-w/operator/{}/deployment-wandb-operator.yaml",
        ns.name()
    );
    assert!(files.contains_key(&op), "{:#?}", files.keys());
    let readme = String::from_utf8(files["wandb-support-w/README.txt"].clone()).unwrap();
    eprintln!("{readme}");
    assert!(readme.contains("operator Lease"), "{readme}");
    assert!(readme.contains("metrics of operator pod"), "{readme}");
    assert!(
        readme.contains("logs of operator pod") || files.keys().any(|k| k.ends_with(".log")),
        "{readme}"
    );
    for secret in [MYSQL_PASSWORD, REDIS_PASSWORD, S3_SECRET, S3_ACCESS] {
        assert!(
            files
                .values()
                .all(|c| !String::from_utf8_lossy(c).contains(secret)),
            "{secret}"
        );
    }
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn doctor_passes_a_healthy_instance_and_names_each_problem_with_its_fix() {
    let ns = wandb_testkit::namespace("day2-doctor").await;
    let svc = services().await;
    let running = ready_instance(&ns, &svc).await;
    // An operator Deployment (kwok's node makes its pod Ready): what doctor looks for.
    ns.apply_yaml(FAKE_OPERATOR).await;
    let op_ns = format!("--operator-namespace={}", ns.name());
    let (code, out, err) = wandb_testkit::wait_for(
        "doctor to see the operator pod Ready",
        common::TIMEOUT,
        || async {
            let r = cli(&ns, &["doctor", "w", &op_ns]).await;
            Ok((r.0 == 0 || !r.1.contains("[ERROR] operator")).then_some(r))
        },
    )
    .await;
    eprintln!("{out}");
    assert_eq!(code, 0, "{out}{err}");
    for check in ["crd", "operator", "manifest", "spec", "secrets", "upgrade"] {
        assert!(out.contains(&format!("[ok] {check}: ")), "{check}:\n{out}");
    }
    assert!(
        out.contains(&format!(
            "[ok] service mysql/default: 127.0.0.1:{} answers",
            svc.ports[0]
        )),
        "{out}"
    );

    // Leader election: a Lease nobody renews is an error; one the operator pod renews is fine.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = ns.api();
    let lease = |holder: &str, renewed: k8s_openapi::jiff::Timestamp| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "wandb-operator-leader"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(renewed)}})
    };
    let hour_ago =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(3600);
    let apply = PatchParams::apply("test").force();
    leases
        .patch(
            "wandb-operator-leader",
            &apply,
            &Patch::Apply(lease("gone-pod", hour_ago)),
        )
        .await
        .unwrap();
    let (code, out, _) = cli(&ns, &["doctor", "w", &op_ns]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not being renewed: no replica leads"),
        "{out}"
    );
    let pods: Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    let pod = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=wandb-operator"))
        .await
        .unwrap()
        .items
        .remove(0)
        .metadata
        .name
        .unwrap();
    let now = k8s_openapi::jiff::Timestamp::now();
    leases
        .patch(
            "wandb-operator-leader",
            &apply,
            &Patch::Apply(lease(&pod, now)),
        )
        .await
        .unwrap();
    let (code, out, _) = cli(&ns, &["doctor", "w", &op_ns]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{pod} leads")), "{out}");

    // A file with a missing key, an unreachable Redis and a downgrade.
    let secrets: Api<Secret> = ns.api();
    secrets
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"redis-port": "1"}})),
        )
        .await
        .unwrap();
    let file = tmp("w.yaml");
    std::fs::write(
        &file,
        CR.replace("\"0.84.0\"", "\"0.79.0\"")
            .replace("key: s3-bucket", "key: s3-nosuchkey")
            .replace(
                "manifestRepository: \"builtin://\"}",
                "manifestRepository: \"builtin://\", licenseSecret: {name: nolicense, key: license}}",
            ),
    )
    .unwrap();
    let (code, out, _) = cli(&ns, &["doctor", "-f", file.to_str().unwrap(), &op_ns]).await;
    eprintln!("{out}");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[ERROR] upgrade: 0.84.0 -> 0.79.0 is a downgrade"),
        "{out}"
    );
    assert!(
        out.contains("[ERROR] service objectStore/default: Secret ext has no key s3-nosuchkey"),
        "{out}"
    );
    assert!(
        out.contains("[warning] service redis/default: 127.0.0.1:1 is not reachable"),
        "{out}"
    );
    assert!(
        out.contains("[ERROR] secrets: Secret nolicense not found"),
        "{out}"
    );
    assert!(out.contains("    fix: "), "{out}");

    let (code, out, _) = cli(
        &ns,
        &["doctor", "-o", "json", "-f", file.to_str().unwrap(), &op_ns],
    )
    .await;
    assert_eq!(code, 1);
    let findings: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["level"] == "error" && f["fix"].is_string())
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn doctor_checks_the_ingress_class_the_gateway_api_and_storage_a_resource_needs() {
    let ns = wandb_testkit::namespace("day2-doctor-net").await;
    common::install_crd(&ns.client()).await;
    wandb_testkit::install_gateway_api(&ns.client())
        .await
        .expect("installing the Gateway API CRDs");
    let suffix = wandb_testkit::random_suffix(6);
    let (class, storage) = (format!("doctor-{suffix}"), format!("doctor-{suffix}"));
    let cluster = ns.cluster();
    let _guards = (
        cluster.delete_on_drop::<k8s_openapi::api::networking::v1::IngressClass>(&class),
        cluster.delete_on_drop::<k8s_openapi::api::storage::v1::StorageClass>(&storage),
    );
    ns.apply_yaml(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: {class}}}\n\
         spec: {{controller: example.com/doctor}}\n---\n\
         apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {storage}\n  \
         annotations: {{storageclass.kubernetes.io/is-default-class: \"true\"}}\n\
         provisioner: example.com/doctor\n"
    ))
    .await;
    // Every service managed (volumes), on the built-in manifest.
    let cr = |networking: &str| {
        format!(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w}}\nspec:\n  \
             wandb: {{hostname: https://w.example.com, version: \"0.84.0\", manifestRepository: \"builtin://\"}}\n  \
             networking: {networking}\n"
        )
    };
    let doctor = |yaml: String| {
        let ns = &ns;
        async move {
            let file = tmp("w.yaml");
            std::fs::write(&file, yaml).unwrap();
            let op = format!("--operator-namespace={}", ns.name());
            let (code, out, _) = cli(ns, &["doctor", "-f", file.to_str().unwrap(), &op]).await;
            eprintln!("{out}");
            (code, out)
        }
    };

    let (code, out) = doctor(cr(&format!(
        "{{mode: ingress, ingress: {{ingressClassName: {class}}}}}"
    )))
    .await;
    assert_eq!(code, 1, "no operator runs in this namespace:\n{out}");
    assert!(out.contains("[ERROR] operator: no operator pod"), "{out}");
    assert!(
        out.contains(&format!("[ok] networking: IngressClass {class} exists")),
        "{out}"
    );
    assert!(
        out.contains("[ok] storage: managed services' volumes use the default StorageClass"),
        "{out}"
    );
    assert!(
        out.contains("[ok] upgrade: new installation of 0.84.0"),
        "{out}"
    );

    let (_, out) = doctor(cr(
        "{mode: ingress, ingress: {ingressClassName: nosuch-class}}",
    ))
    .await;
    assert!(
        out.contains(
            "[ERROR] networking: IngressClass nosuch-class (spec.networking) does not exist"
        ),
        "{out}"
    );

    let (_, out) = doctor(cr(
        &format!("{{mode: gateway, gatewayAPI: {{gateway: {{managed: true, gatewayClassName: doctor-none-{suffix}}}}}}}"),
    ))
    .await;
    assert!(
        out.contains("[ok] networking: the cluster serves the Gateway API"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "[ERROR] networking: GatewayClass doctor-none-{suffix} does not exist"
        )),
        "{out}"
    );
    ns.cleanup().await;
}
