//! A throw-away OCI registry (CNCF Distribution) on `127.0.0.1:<free port>` for `oci://` tests.
//!
//! The binary is built from Go modules by `scripts/build-k8s-bins.sh registry` (cached; built on
//! first use, like the control plane). Storage is a temp directory; the process is killed and
//! the directory removed when the [`Registry`] is dropped (also when the test panics).
//!
//! ```no_run
//! # async fn f() {
//! let open = wandb_testkit::registry::Registry::start();
//! let locked = wandb_testkit::registry::Registry::start_with_auth("user", "secret");
//! println!("{}", open.host()); // 127.0.0.1:PORT, plain HTTP
//! # }
//! ```

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng as _;

/// Environment variable that points at a registry binary, overriding the built one.
pub const REGISTRY_BIN_ENV: &str = "WANDB_TEST_REGISTRY_BIN";

/// A running registry; stopped on drop.
pub struct Registry {
    host: String,
    dir: PathBuf,
    child: Child,
}

impl Registry {
    /// A registry that accepts anonymous pulls and pushes.
    pub fn start() -> Registry {
        Self::spawn(None)
    }

    /// A registry that requires HTTP basic auth (htpasswd) for every request.
    pub fn start_with_auth(username: &str, password: &str) -> Registry {
        Self::spawn(Some((username, password)))
    }

    /// `127.0.0.1:PORT`, the registry host of its references (plain HTTP).
    pub fn host(&self) -> &str {
        &self.host
    }

    fn spawn(auth: Option<(&str, &str)>) -> Registry {
        let bin = binary();
        let dir = std::env::temp_dir().join(format!(
            "wandb-registry-{}",
            rand::rng().random_range(0..u64::MAX)
        ));
        std::fs::create_dir_all(dir.join("data")).expect("registry temp dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  \
             delete: {{enabled: true}}\nhttp:\n  addr: {host}\n",
            dir.join("data").display()
        );
        if let Some((user, password)) = auth {
            let salt: [u8; 16] = rand::rng().random();
            // Cost 4 (the minimum): the test registry checks it on every request.
            let hash = bcrypt::hash_with_salt(password, 4, salt)
                .expect("bcrypt")
                .format_for_version(bcrypt::Version::TwoY);
            std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: wandb-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), config).expect("registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new(&bin)
            .arg("serve")
            .arg(dir.join("config.yml"))
            // No telemetry exporters: nothing listens for them here.
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none")
            .env("OTEL_LOGS_EXPORTER", "none")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut registry = Registry { host, dir, child };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the registry exited ({status}); its log:\n{}",
                    std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
                );
            }
            if answers_v2(&self.host) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the registry on {} did not answer within 30s",
                self.host
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True when `GET /v2/` gets an HTTP answer (200, or 401 with auth).
fn answers_v2(host: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ")
}

fn free_port() -> u16 {
    // Bound and released: the registry takes it a moment later (a tiny race, fine for tests).
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The registry binary: `WANDB_TEST_REGISTRY_BIN`, else the cached build (built on demand).
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os(REGISTRY_BIN_ENV) {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-k8s-bins.sh");
    let run = |args: &[&str]| {
        let out = Command::new(&script)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} {args:?} failed; the registry binary is needed for oci:// tests",
            script.display()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let bin = PathBuf::from(run(&["--print-dir", "registry"])).join("registry");
    if !bin.is_file() {
        run(&["registry"]);
    }
    bin
}
