//! The `run` process as deployed: health and metrics endpoints, and leader election between two
//! real operator processes (one reconciles; a standby takes over when the leader dies).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use wandb_testkit::{TestNamespace, wait_for};

mod common;

use common::install_crd;

const TIMEOUT: Duration = Duration::from_secs(60);
const LEASE: &str = "wandb-operator-leader";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port: (status code, body), or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

struct Operator {
    child: Child,
    health: u16,
    metrics: u16,
}

impl Operator {
    fn start(ns: &TestNamespace, identity: &str) -> Self {
        let (health, metrics) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
            .args(["run", "--leader-elect", "--namespaces", ns.name()])
            .args(["--leader-election-namespace", ns.name()])
            .arg(format!("--health-probe-bind-address=127.0.0.1:{health}"))
            .arg(format!("--metrics-bind-address=127.0.0.1:{metrics}"))
            .env("KUBECONFIG", ns.cluster().kubeconfig_path())
            .env("POD_NAME", identity)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wandb-operator run");
        Operator {
            child,
            health,
            metrics,
        }
    }

    fn metric(&self, name: &str) -> Option<String> {
        let (_, body) = get(self.metrics, "/metrics")?;
        body.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn lease_renew_time(leases: &Api<Lease>) -> Option<String> {
    let t = leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()?
        .spec?
        .renew_time?;
    Some(format!("{t:?}"))
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn health_metrics_and_leader_failover_between_two_processes() {
    let ns = wandb_testkit::namespace("runtime").await;
    install_crd(&ns.client()).await;
    let leases: Api<Lease> = ns.api();

    let mut a = Operator::start(&ns, "op-a");
    wait_for("op-a to hold the lease", TIMEOUT, || async {
        Ok((holder(&leases).await.as_deref() == Some("op-a")).then_some(()))
    })
    .await;
    let b = Operator::start(&ns, "op-b");

    // Both serve health; only the leader says so in its metrics.
    for op in [&a, &b] {
        wait_for("/readyz to answer 200", TIMEOUT, || async {
            Ok(get(op.health, "/readyz").filter(|(c, _)| *c == 200))
        })
        .await;
        assert_eq!(get(op.health, "/livez").map(|r| r.0), Some(200));
    }
    wait_for("op-b to run as a standby", TIMEOUT, || async {
        Ok((b.metric("wandb_operator_leader").as_deref() == Some("0")).then_some(()))
    })
    .await;
    assert_eq!(a.metric("wandb_operator_leader").as_deref(), Some("1"));
    assert!(
        get(a.metrics, "/metrics")
            .unwrap()
            .1
            .contains("wandb_operator_api_writes_total")
    );
    assert!(
        get(a.metrics, "/metrics")
            .unwrap()
            .1
            .contains("wandb_operator_api_requests_total{verb=\"get\",resource=\"leases\"}"),
        "every request is counted by verb and resource"
    );
    // Two renewals by the leader while the standby runs: the standby has tried in between.
    for _ in 0..2 {
        let renewed = lease_renew_time(&leases).await;
        wait_for("op-a to renew the lease", TIMEOUT, || async {
            Ok((lease_renew_time(&leases).await != renewed).then_some(()))
        })
        .await;
    }
    assert_eq!(
        holder(&leases).await.as_deref(),
        Some("op-a"),
        "the standby must not steal a live lease"
    );

    // The leader dies without releasing: the standby takes over when the lease expires.
    a.child.kill().unwrap();
    let died = Instant::now();
    wait_for("op-b to take over", Duration::from_secs(40), || async {
        Ok((holder(&leases).await.as_deref() == Some("op-b")).then_some(()))
    })
    .await;
    let takeover = died.elapsed();
    eprintln!("leader failover took {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(wandb_operator::leader::LEASE_SECONDS + 10),
        "took {takeover:?}"
    );
    wait_for("op-b to report leadership", TIMEOUT, || async {
        Ok((b.metric("wandb_operator_leader").as_deref() == Some("1")).then_some(()))
    })
    .await;

    // A graceful stop releases the lease at once.
    let mut b = b;
    let pid = b.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let s = b.child.wait();
        (b, s)
    })
    .await
    .unwrap();
    assert!(status.1.unwrap().success(), "SIGTERM is a clean exit");
    wait_for("the lease to be released", TIMEOUT, || async {
        Ok(holder(&leases).await.is_none().then_some(()))
    })
    .await;
}

/// Accepts HTTP requests on 127.0.0.1 and reports each request line; answers 200.
fn otlp_receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = vec![0u8; 65536];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx.send(head).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn exports_traces_over_otlp_http() {
    let ns = wandb_testkit::namespace("runtime-otlp").await;
    install_crd(&ns.client()).await;
    let (port, requests) = otlp_receiver();
    let health = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
        .args([
            "run",
            "--namespaces",
            ns.name(),
            "--metrics-bind-address",
            "0",
        ])
        .arg(format!("--health-probe-bind-address=127.0.0.1:{health}"))
        .arg(format!("--otlp-endpoint=http://127.0.0.1:{port}"))
        .env("KUBECONFIG", ns.cluster().kubeconfig_path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Ready once the startup span (waiting for the CRD) has ended, so there is a span to export.
    wait_for("/readyz to answer 200", TIMEOUT, || async {
        Ok(get(health, "/readyz").filter(|(c, _)| *c == 200))
    })
    .await;
    // A graceful stop flushes the batch exporter.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let got: Vec<String> = requests.try_iter().collect();
    assert!(
        got.iter().any(|l| l.starts_with("POST /v1/traces")),
        "no OTLP export received: {got:?}"
    );
}
