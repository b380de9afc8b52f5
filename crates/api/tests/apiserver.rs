//! The same case files as `validation.rs`, against a real API server: the committed CRD must be
//! accepted (CEL cost budget, structural schema), valid cases must be admitted without any field
//! being pruned or changed, and invalid cases must be rejected with every `# expect:` fragment.
//!
//! Needs a cluster and kubectl, so it is ignored by default:
//!
//! ```text
//! KUBECONFIG=$(scripts/cluster.sh up --name api-crd | tail -n1) \
//!     cargo test -p wandb-api --test apiserver -- --ignored --nocapture
//! ```
//!
//! It applies the CRD (server-side, field manager `wandb-api-tests`) and works in namespace
//! `wandb-api-cases`: creates are server-side dry runs; an update case creates its old object
//! for real, dry-runs the update, then deletes it. `KUBECTL` overrides the kubectl binary.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Case, load_cases};
use serde_json::Value;

const NAMESPACE: &str = "wandb-api-cases";
const CRD: &str = "weightsandbiases.apps.wandb.com";

fn kubectl(args: &[&str], stdin: Option<&Value>) -> Result<String, String> {
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.to_string().as_bytes())
            .expect("write kubectl stdin");
    }
    let out = child.wait_with_output().expect("wait for kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stderr}{stdout}"))
    }
}

fn in_test_namespace(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]["namespace"] = Value::String(NAMESPACE.into());
    object
}

fn setup() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "set KUBECONFIG to a disposable cluster (scripts/cluster.sh up)"
    );
    let crd = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/crds/apps.wandb.com_weightsandbiases.yaml");
    let crd = crd.to_string_lossy().into_owned();
    // A conversion webhook pointed at a URL (the operator's conversion test, `run --webhook-url`)
    // cannot be merged with the shipped Service form (exactly one of url or service): drop it
    // first; the shipped CRD sets it again.
    let _ = kubectl(
        &[
            "patch",
            "crd",
            CRD,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/conversion/webhook"},{"op":"replace","path":"/spec/conversion/strategy","value":"None"}]"#,
        ],
        None,
    );
    kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=wandb-api-tests",
            "-f",
            &crd,
        ],
        None,
    )
    .unwrap_or_else(|e| panic!("the API server refuses the CRD:\n{e}"));
    // `kubectl wait` fails outright while the new CRD has no status yet, so poll instead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let established = kubectl(
            &[
                "get",
                &format!("crd/{CRD}"),
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
            ],
            None,
        );
        match established {
            Ok(s) if s.trim() == "True" => break,
            other if std::time::Instant::now() > deadline => {
                panic!("the CRD is not established after 60 s: {other:?}")
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    let namespace = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}
    });
    kubectl(&["apply", "-f", "-"], Some(&namespace)).expect("create the test namespace");
}

/// Admits the case on the server; `Ok` is the object the server would store.
fn submit(case: &Case) -> Result<Value, String> {
    let object = in_test_namespace(&case.object);
    let result = match &case.old {
        None => kubectl(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&object),
        ),
        Some(old) => {
            let old = in_test_namespace(old);
            kubectl(&["create", "-o", "json", "-f", "-"], Some(&old))
                .map_err(|e| format!("the old object (first document) is refused:\n{e}"))?;
            let result = kubectl(
                &["replace", "--dry-run=server", "-o", "json", "-f", "-"],
                Some(&object),
            );
            kubectl(&["delete", "--wait=false", "-f", "-"], Some(&old))
                .expect("delete the old object");
            result
        }
    };
    result.map(|json| serde_json::from_str(&json).expect("kubectl prints JSON"))
}

#[test]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test -p wandb-api --test apiserver -- --ignored"]
fn cases_against_the_api_server() {
    setup();
    let mut failures = Vec::new();

    for case in load_cases("valid") {
        match submit(&case) {
            Ok(stored) => {
                let mut diff = Vec::new();
                common::json_diff(&case.object["spec"], &stored["spec"], "spec", &mut diff);
                if diff.is_empty() {
                    println!("ok    valid/{}", case.name);
                } else {
                    println!("FAIL  valid/{}: the server changed the spec:", case.name);
                    for d in &diff {
                        println!("        {d}");
                    }
                    failures.push(format!(
                        "valid/{}: spec pruned or defaulted: {diff:?}",
                        case.name
                    ));
                }
            }
            Err(e) => {
                println!("FAIL  valid/{}: refused:\n{e}", case.name);
                failures.push(format!("valid/{}: refused: {e}", case.name));
            }
        }
    }

    for case in load_cases("invalid") {
        match submit(&case) {
            Ok(_) => {
                println!("FAIL  invalid/{}: admitted", case.name);
                failures.push(format!("invalid/{}: admitted", case.name));
            }
            Err(message) => {
                let missing: Vec<&String> = case
                    .expect
                    .iter()
                    .filter(|f| !message.contains(f.as_str()))
                    .collect();
                if missing.is_empty() {
                    println!("ok    invalid/{}", case.name);
                } else {
                    println!("FAIL  invalid/{}: without {missing:?}", case.name);
                    failures.push(format!("invalid/{}: without {missing:?}", case.name));
                }
                for line in message.lines().filter(|l| !l.trim().is_empty()) {
                    println!("        {line}");
                }
            }
        }
    }

    assert!(
        failures.is_empty(),
        "{} cases behave differently on the API server:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
