//! The Day-2 commands (`status`, `diff`, `support-bundle`, `doctor`) as a user runs them, against
//! the local control plane, on a Ready instance (built-in manifest, external MySQL, Redis and
//! object store answering on loopback) run by the controller in-process.

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wandb_api::WeightsAndBiases;
use wandb_testkit::TestNamespace;

use common::{Running, create_secret, settle, start, wait_ready};

/// Credentials of the fixture: long and distinctive, so that finding one anywhere is a leak.
const MYSQL_PASSWORD: &str = "mysql-pw-Zq8vT3kLw9";
const REDIS_PASSWORD: &str = "redis-pw-Hn4xR7cPs2";
const S3_SECRET: &str = "s3-secret-Bv6mJ1yQe5";
const S3_ACCESS: &str = "s3-access-Gt2wK8nUa4";

/// Listeners standing in for the external services (the preflight only connects).
struct Services {
    _listeners: Vec<TcpListener>,
    ports: Vec<String>,
}

async fn services() -> Services {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(l.local_addr().unwrap().port().to_string());
        listeners.push(l);
    }
    Services {
        _listeners: listeners,
        ports,
    }
}

const CR: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n  \
wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n  \
mysql: {default: {externalMysql: {host: {name: ext, key: mysql-host}, port: {name: ext, key: mysql-port}, database: {name: ext, key: mysql-db}, username: {name: ext, key: mysql-user}, password: {name: ext, key: mysql-password}}}}\n  \
redis: {default: {externalRedis: {host: {name: ext, key: redis-host}, port: {name: ext, key: redis-port}, password: {name: ext, key: redis-password}}}}\n  \
objectStore: {default: {externalObjectStore: {provider: {name: ext, key: s3-provider}, endpoint: {name: ext, key: s3-host}, port: {name: ext, key: s3-port}, accessKey: {name: ext, key: s3-access}, secretKey: {name: ext, key: s3-secret}, bucket: {name: ext, key: s3-bucket}, tlsEnabled: {name: ext, key: s3-tls}}}}\n";

/// A Ready instance `w` with every service external; returns the running controller.
async fn ready_instance(ns: &TestNamespace, svc: &Services) -> Running {
    let running = start(ns).await;
    let secrets: Api<Secret> = ns.api();
    let p = &svc.ports;
    create_secret(
        &secrets,
        "ext",
        &[
            ("mysql-host", "127.0.0.1"),
            ("mysql-port", &p[0]),
            ("mysql-db", "wandbdb"),
            ("mysql-user", "wandbuser"),
            ("mysql-password", MYSQL_PASSWORD),
            ("redis-host", "127.0.0.1"),
            ("redis-port", &p[1]),
            ("redis-password", REDIS_PASSWORD),
            ("s3-provider", "s3"),
            ("s3-host", "127.0.0.1"),
            ("s3-port", &p[2]),
            ("s3-access", S3_ACCESS),
            ("s3-secret", S3_SECRET),
            ("s3-bucket", "wandb-bucket"),
            ("s3-tls", "false"),
        ],
    )
    .await;
    ns.apply_yaml(CR).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, "w").await;
    running
}

/// Runs the CLI against the test cluster in `ns`: (exit code, stdout, stderr).
async fn cli(ns: &TestNamespace, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
        .args(args)
        .arg("--kubeconfig")
        .arg(ns.cluster().kubeconfig_path())
        .args(["-n", ns.name()])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wandb-day2-{}-{}",
        std::process::id(),
        wandb_testkit::random_suffix(8)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn status_shows_a_ready_instance_and_why_another_is_not() {
    let ns = wandb_testkit::namespace("day2-status").await;
    let svc = services().await;
    let running = ready_instance(&ns, &svc).await;

    let (code, out, err) = cli(&ns, &["status", "w", "-o", "json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["ready"], true);
    assert_eq!(r["desiredVersion"], "0.84.0");
    assert_eq!(r["runningVersion"], "0.84.0");
    assert_eq!(r["url"], "http://w.local");
    let components = r["components"].as_array().unwrap();
    assert!(!components.is_empty());
    for c in components {
        assert_eq!(c["ready"], true, "{c}");
        assert!(c["images"][0].as_str().unwrap().contains('/'), "{c}");
    }
    assert!(
        components
            .iter()
            .any(|c| c["images"][0] == "docker.io/wandb/local:0.84.0"),
        "{components:#?}"
    );
    let mysql = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "mysql")
        .unwrap();
    assert_eq!(mysql["mode"], "external");
    assert_eq!(mysql["state"], "Healthy");
    assert_eq!(mysql["preflight"], "ok");
    assert_eq!(
        mysql["endpoint"],
        format!("mysql://127.0.0.1:{}/wandbdb", svc.ports[0])
    );
    assert!(!out.contains(MYSQL_PASSWORD) && !out.contains("wandbuser"));

    let (code, text, _) = cli(&ns, &["status", "w"]).await;
    eprintln!("{text}");
    assert_eq!(code, 0);
    assert!(
        text.starts_with(&format!("{}/w: Ready", ns.name())),
        "{text}"
    );

    // An instance whose external MySQL Secret does not exist: not Ready, and status says why.
    ns.apply_yaml(
        &CR.replace("{name: w}", "{name: broken}")
            .replace("name: ext, key: mysql", "name: nosuch, key: mysql"),
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wandb_testkit::wait_for("broken to report", common::TIMEOUT, || async {
        Ok(common::condition(&wb, "broken", "Ready")
            .await
            .filter(|(s, _)| s == "False"))
    })
    .await;
    let (code, text, _) = cli(&ns, &["status", "broken"]).await;
    eprintln!("{text}");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("NOT READY"), "{text}");
    assert!(text.contains("Secret nosuch not found"), "{text}");

    // As a kubectl plugin: kubectl finds `kubectl-wandb` on PATH and passes the arguments on.
    let dir = tmp("plugin");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_wandb-operator"),
        dir.join("kubectl-wandb"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("kubectl")
        .env("PATH", path)
        .args(["wandb", "status", "w", "--kubeconfig"])
        .arg(ns.cluster().kubeconfig_path())
        .args(["-n", ns.name()])
        .output()
        .await
        .expect("kubectl on PATH (scripts/test.sh puts the pinned one there)");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/w: Ready"));

    let (code, _, err) = cli(&ns, &["status", "nothere"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn diff_is_empty_when_settled_and_shows_drift_and_spec_changes() {
    let ns = wandb_testkit::namespace("day2-diff").await;
    let svc = services().await;
    let running = ready_instance(&ns, &svc).await;
    settle(&running, &ns, "w").await;

    let (code, out, err) = cli(&ns, &["diff", "w"]).await;
    assert_eq!(code, 0, "a settled instance diffs empty:\n{out}{err}");
    assert!(out.is_empty(), "{out}");

    // Stop the controller, then drift a Deployment: the next reconcile would set it back.
    running.stop().await;
    let deployments: Api<Deployment> = ns.api();
    let d = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/instance=w"))
        .await
        .unwrap()
        .items
        .remove(0);
    let name = d.metadata.name.clone().unwrap();
    let c0 = d.spec.unwrap().template.spec.unwrap().containers.remove(0);
    let (container, image) = (c0.name, c0.image.unwrap());
    deployments
        .patch(
            &name,
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {"template": {"spec": {"containers": [
                    {"name": container, "image": "busybox:drifted"}]}}}
            })),
        )
        .await
        .unwrap();
    let (code, out, err) = cli(&ns, &["diff", "w"]).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("--- live/Deployment/{name}")),
        "{out}"
    );
    assert!(changed(&out, '-', "image: busybox:drifted"), "{out}");
    assert!(changed(&out, '+', &format!("image: {image}")), "{out}");
    assert_eq!(
        out.matches("--- live/").count(),
        1,
        "only the drifted object:\n{out}"
    );

    // A rotated MySQL password: the connection Secret would change (values not shown) and so
    // would the inputs hash of the pods that read it.
    let secrets: Api<Secret> = ns.api();
    secrets
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"mysql-password": "rotated-pw-Xc5nB8"}})),
        )
        .await
        .unwrap();
    let (code, out, err) = cli(&ns, &["diff", "w"]).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("--- live/Secret/w-mysql-connection"), "{out}");
    assert!(changed(&out, '+', "password: REDACTED (changed)"), "{out}");
    assert!(changed(&out, '+', "url: REDACTED (changed)"), "{out}");
    assert!(changed(&out, ' ', "host: REDACTED"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with('+') && l.contains("apps.wandb.com/inputs-hash")),
        "{out}"
    );
    assert!(!out.contains("rotated-pw-Xc5nB8") && !out.contains(MYSQL_PASSWORD));

    // A changed resource file: the resource itself and the objects it changes.
    let file = tmp("w.yaml");
    std::fs::write(&file, CR.replace("http://w.local", "http://w2.local")).unwrap();
    let (code, out, err) = cli(&ns, &["diff", "-f", file.to_str().unwrap()]).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("--- live/WeightsAndBiases/w"), "{out}");
    assert!(changed(&out, '+', "hostname: http://w2.local"), "{out}");
    assert!(
        out.matches("--- live/").count() > 1,
        "the objects the new hostname changes are shown too:\n{out}"
    );
    for secret in [MYSQL_PASSWORD, REDIS_PASSWORD, S3_SECRET, S3_ACCESS] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    // A resource that does not exist yet: itself and every object it would create.
    let fresh = tmp("fresh.yaml");
    std::fs::write(&fresh, CR.replace("{name: w}", "{name: fresh}")).unwrap();
    let (code, out, err) = cli(&ns, &["diff", "-f", fresh.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("--- live/WeightsAndBiases/fresh (absent)"),
        "{out}"
    );
    assert!(
        out.contains("--- live/Deployment/fresh-app (absent)"),
        "{out}"
    );
    assert!(
        out.contains("# Secret/fresh-mysql-connection: would be created"),
        "{out}"
    );
    assert!(err.contains("without owner references"), "{err}");

    // The drift is not the controller's to fix while it is stopped; restart it to clean up.
    let running = start(&ns).await;
    running.finish(ns).await;
}

/// Whether a unified diff has a `sign` line (`-` or `+`) whose content is `text`.
fn changed(diff: &str, sign: char, text: &str) -> bool {
    diff.lines()
        .any(|l| l.starts_with(sign) && l[1..].trim() == text)
}

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
    ns.apply_yaml(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: wandb-operator}\nspec:\n  replicas: 1\n  \
         selector: {matchLabels: {app.kubernetes.io/name: wandb-operator}}\n  template:\n    \
         metadata: {labels: {app.kubernetes.io/name: wandb-operator}}\n    \
         spec: {containers: [{name: operator, image: wandb-operator:test}]}\n",
    )
    .await;
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
        "{mode: gateway, gatewayAPI: {gateway: {managed: true, gatewayClassName: eg}}}",
    ))
    .await;
    assert!(
        out.contains("[ok] networking: the cluster serves the Gateway API"),
        "{out}"
    );
    ns.cleanup().await;
}
