//! Preflight of external services: the endpoint a connection names must resolve, accept a TCP
//! connection and, where the connection asks for TLS, complete a TLS handshake that the same
//! trust would accept: the CA from the user's Secret (`sslCa`) or else the platform roots, with
//! the client certificate (`sslCert`/`sslKey`) presented when one is given. MySQL negotiates TLS
//! inside its protocol (server greeting, SSLRequest, then the handshake on the same stream); the
//! other services speak TLS from the first byte. Connect and handshake share one 3 s budget.
//!
//! Checked before the first rollout and again whenever the endpoint, its TLS mode or its
//! certificates change; the result is reported in `status.infra` (state `Degraded`) and a Warning
//! event. It does not gate the rollout: the operator may run where cluster DNS or egress differ
//! from the apps'. Messages name the endpoint and the cause, never a Secret value.

mod mysql;
#[cfg(test)]
mod testutil;
mod tls;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use wandb_engine::ServiceKind;
use wandb_engine::backends::url::{self, ConnInputs, Provider};
use wandb_engine::connection::normalize_field;

const TIMEOUT: Duration = Duration::from_secs(3);

/// What a W&B pod will connect to, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// The name the server certificate must carry (the host).
    pub server_name: String,
    pub tls: Tls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    None,
    /// TLS from the first byte (Redis, Kafka, ClickHouse, https object stores).
    Direct,
    /// TLS negotiated inside the MySQL protocol.
    Mysql(MysqlTls),
}

/// The MySQL `tls` modes, as the Go MySQL driver W&B uses reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MysqlTls {
    /// `true`, a custom config name, or only a CA: the certificate is verified.
    Verify,
    /// `skip-verify`: encrypted, any certificate accepted.
    SkipVerify,
    /// `preferred`: TLS without verification when the server offers it, plaintext otherwise.
    Preferred,
}

/// PEM text of the certificates in the user's Secret. [`ConnInputs`] keeps only whether they are
/// given (pods read them from mounted files); the preflight needs their content.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Certs {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("ca", &self.ca.is_some())
            .field("cert", &self.cert.is_some())
            .field("key", &self.key.is_some())
            .finish()
    }
}

impl Certs {
    /// Keeps `value` when `field` names a certificate (any spelling [`ConnInputs::set`] takes).
    pub fn capture(&mut self, field: &str, value: &str) {
        let slot = match normalize_field(field).as_str() {
            "sslca" | "cacert" => &mut self.ca,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            _ => return,
        };
        *slot = (!value.trim().is_empty()).then(|| value.to_string());
    }
}

fn truthy(v: Option<&str>) -> Option<bool> {
    let v = v.map(str::trim).filter(|s| !s.is_empty())?;
    Some(matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes"
    ))
}

fn with_port(host: &str, port: Option<&str>, default: u16) -> String {
    let port = port
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(default);
    format!("{host}:{port}")
}

fn mysql_tls(i: &ConnInputs) -> Tls {
    let mode = i.tls.as_deref().map(|t| t.trim().to_ascii_lowercase());
    match mode.as_deref() {
        None | Some("" | "false" | "0" | "disabled") if !i.ssl_ca => Tls::None,
        None | Some("" | "false" | "0" | "disabled") => Tls::Mysql(MysqlTls::Verify),
        Some("skip-verify") => Tls::Mysql(MysqlTls::SkipVerify),
        Some("preferred") => Tls::Mysql(MysqlTls::Preferred),
        Some(_) => Tls::Mysql(MysqlTls::Verify),
    }
}

/// What a W&B pod will connect to, when the inputs name an endpoint. Ports and TLS follow the
/// URLs of [`url`], so the check dials what the apps will dial.
pub fn target(kind: ServiceKind, i: &ConnInputs) -> Option<Target> {
    let direct = |on: bool| if on { Tls::Direct } else { Tls::None };
    let tls_on = truthy(i.tls.as_deref()) == Some(true);
    let (addr, tls) = match kind {
        ServiceKind::Mysql => (
            with_port(i.host.as_deref()?, i.port.as_deref(), 3306),
            mysql_tls(i),
        ),
        ServiceKind::Redis => {
            let default = if i.sentinel_master.is_some() {
                26379
            } else {
                6379
            };
            (
                with_port(i.host.as_deref()?, i.port.as_deref(), default),
                direct(tls_on || i.ssl_ca),
            )
        }
        // The URL keeps the native port 9000 with `tls=true` unless tcpPort says otherwise.
        ServiceKind::Clickhouse => (
            with_port(i.host.as_deref()?, i.tcp_port.as_deref(), 9000),
            direct(tls_on),
        ),
        ServiceKind::Kafka => {
            let (host, port) = url::first_bootstrap(i.bootstrap_servers.as_deref()?).ok()?;
            (format!("{host}:{port}"), direct(tls_on || i.ssl_ca))
        }
        ServiceKind::ObjectStore => {
            // Cloud stores without a custom endpoint are reached over the internet: not checked.
            let ep = i
                .endpoint
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())?;
            let (scheme_tls, rest) = match ep.split_once("://") {
                Some((scheme, rest)) => (Some(scheme.eq_ignore_ascii_case("https")), rest),
                None => (None, ep),
            };
            let coreweave = url::provider(i).ok() == Some(Provider::CoreWeave);
            let https = truthy(i.tls.as_deref()).or(scheme_tls).unwrap_or(coreweave);
            let hostport = rest.split('/').next()?;
            let (host, ep_port) = match hostport.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
                _ => (hostport, None),
            };
            let port = i
                .port
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .or(ep_port);
            (
                with_port(host, port, if https { 443 } else { 80 }),
                direct(https),
            )
        }
    };
    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
    Some(Target {
        server_name: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        addr,
        tls,
    })
}

impl Target {
    /// Identifies what was checked: a cached result is reused only while the endpoint, the TLS
    /// mode and the certificates are all unchanged. Certificates enter as a hash only.
    pub fn cache_key(&self, certs: &Certs) -> String {
        let mut h = DefaultHasher::new();
        certs.hash(&mut h);
        format!(
            "{} tls={:?} sni={} certs={:016x}",
            self.addr,
            self.tls,
            self.server_name,
            h.finish()
        )
    }
}

/// `Ok` when the target resolves, accepts a TCP connection and, when TLS is configured,
/// completes the TLS handshake, all within 3 s.
pub async fn check(t: &Target, certs: &Certs) -> Result<(), String> {
    let addr = &t.addr;
    let deadline = Instant::now() + TIMEOUT;
    let secs = TIMEOUT.as_secs();
    let config = match t.tls {
        Tls::None => None,
        Tls::Direct | Tls::Mysql(MysqlTls::Verify) => Some(tls::client_config(certs, true)),
        Tls::Mysql(MysqlTls::SkipVerify | MysqlTls::Preferred) => {
            Some(tls::client_config(certs, false))
        }
    }
    .transpose()
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("{addr} is not reachable: {e}")),
        Err(_) => {
            return Err(format!("{addr} did not accept a connection within {secs}s"));
        }
    };
    let Some(config) = config else {
        return Ok(());
    };
    if let Tls::Mysql(mode) = t.tls {
        match timeout_at(deadline, mysql::request_tls(&mut stream)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) if mode == MysqlTls::Preferred => return Ok(()),
            Ok(Ok(false)) => return Err(format!("{addr}: the MySQL server does not offer TLS")),
            Ok(Err(e)) => return Err(format!("{addr}: {e}")),
            Err(_) => {
                return Err(format!("{addr}: no MySQL server greeting within {secs}s"));
            }
        }
    }
    match timeout_at(deadline, tls::handshake(config, &t.server_name, stream)).await {
        Ok(r) => r.map_err(|e| format!("{addr}: {e}")),
        Err(_) => Err(format!(
            "{addr}: the TLS handshake did not complete within {secs}s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(f: impl FnOnce(&mut ConnInputs)) -> ConnInputs {
        let mut i = ConnInputs::new("default");
        f(&mut i);
        i
    }

    fn set(fields: &[(&str, &str)]) -> ConnInputs {
        inputs(|i| {
            for (k, v) in fields {
                i.set(k, v);
            }
        })
    }

    type Case<'a> = (ServiceKind, &'a [(&'a str, &'a str)], Option<(String, Tls)>);

    fn at(kind: ServiceKind, fields: &[(&str, &str)]) -> Option<(String, Tls)> {
        target(kind, &set(fields)).map(|t| (t.addr, t.tls))
    }

    #[test]
    fn targets_per_service() {
        use ServiceKind::*;
        let t = |a: &str, tls| Some((a.to_string(), tls));
        let verify = Tls::Mysql(MysqlTls::Verify);
        let cases: &[Case] = &[
            (Mysql, &[("host", "db")], t("db:3306", Tls::None)),
            (
                Mysql,
                &[("host", "db"), ("tls", "false")],
                t("db:3306", Tls::None),
            ),
            (
                Mysql,
                &[("host", "db"), ("tls", "true")],
                t("db:3306", verify),
            ),
            (
                Mysql,
                &[("host", "db"), ("tls", "custom")],
                t("db:3306", verify),
            ),
            (
                Mysql,
                &[("host", "db"), ("sslCa", "pem")],
                t("db:3306", verify),
            ),
            (
                Mysql,
                &[("host", "db"), ("tls", "skip-verify")],
                t("db:3306", Tls::Mysql(MysqlTls::SkipVerify)),
            ),
            (
                Mysql,
                &[("host", "db"), ("port", "3307"), ("tls", "preferred")],
                t("db:3307", Tls::Mysql(MysqlTls::Preferred)),
            ),
            (Redis, &[("host", "r")], t("r:6379", Tls::None)),
            (
                Redis,
                &[("host", "r"), ("tls", "true")],
                t("r:6379", Tls::Direct),
            ),
            (
                Redis,
                &[("host", "r"), ("sslCa", "pem")],
                t("r:6379", Tls::Direct),
            ),
            (Clickhouse, &[("host", "c")], t("c:9000", Tls::None)),
            (
                Clickhouse,
                &[("host", "c"), ("tls", "true")],
                t("c:9000", Tls::Direct),
            ),
            (
                Clickhouse,
                &[("host", "c"), ("tcpPort", "9440"), ("tls", "true")],
                t("c:9440", Tls::Direct),
            ),
            (
                Kafka,
                &[("bootstrapServers", "k1:9093, k2:9093")],
                t("k1:9093", Tls::None),
            ),
            (
                Kafka,
                &[("bootstrapServers", "SSL://k1:9093"), ("tls", "true")],
                t("k1:9093", Tls::Direct),
            ),
            (
                Kafka,
                &[("bootstrapServers", "k1"), ("sslCa", "pem")],
                t("k1:9092", Tls::Direct),
            ),
            (
                ObjectStore,
                &[("endpoint", "https://minio.local/x")],
                t("minio.local:443", Tls::Direct),
            ),
            (
                ObjectStore,
                &[("endpoint", "http://minio:9000")],
                t("minio:9000", Tls::None),
            ),
            (
                ObjectStore,
                &[("endpoint", "minio"), ("tlsEnabled", "true")],
                t("minio:443", Tls::Direct),
            ),
            (
                ObjectStore,
                &[("endpoint", "minio"), ("port", "9000")],
                t("minio:9000", Tls::None),
            ),
            (
                ObjectStore,
                &[("endpoint", "cwobject.com")],
                t("cwobject.com:443", Tls::Direct),
            ),
            (ObjectStore, &[("bucket", "b")], None),
        ];
        for (kind, fields, want) in cases {
            assert_eq!(&at(*kind, fields), want, "{kind:?} {fields:?}");
        }
        let sentinel = inputs(|i| {
            i.host = Some("r".into());
            i.sentinel_master = Some("m".into());
        });
        let t = target(Redis, &sentinel).unwrap();
        assert_eq!((t.addr.as_str(), t.server_name.as_str()), ("r:26379", "r"));
    }

    #[test]
    fn certs_are_captured_by_field_and_enter_the_cache_key() {
        let mut certs = Certs::default();
        for (f, v) in [
            ("ssl-ca", "CA"),
            ("sslCert", "C"),
            ("ssl_key", "K"),
            ("host", "h"),
        ] {
            certs.capture(f, v);
        }
        assert_eq!(
            (
                certs.ca.as_deref(),
                certs.cert.as_deref(),
                certs.key.as_deref()
            ),
            (Some("CA"), Some("C"), Some("K"))
        );
        assert!(!format!("{certs:?}").contains('K'), "keys never printed");
        let t = target(ServiceKind::Redis, &set(&[("host", "r"), ("tls", "true")])).unwrap();
        let plain = target(ServiceKind::Redis, &set(&[("host", "r")])).unwrap();
        let other_ca = Certs {
            ca: Some("CA2".into()),
            ..certs.clone()
        };
        assert_ne!(t.cache_key(&certs), plain.cache_key(&certs));
        assert_ne!(t.cache_key(&certs), t.cache_key(&other_ca));
        assert_eq!(t.cache_key(&certs), t.cache_key(&certs.clone()));
        assert!(t.cache_key(&certs).starts_with("r:6379 "));
    }

    #[tokio::test]
    async fn checks_reachability() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let plain = |addr: &str| Target {
            addr: addr.to_string(),
            server_name: "localhost".into(),
            tls: Tls::None,
        };
        let none = Certs::default();
        assert!(check(&plain(&addr), &none).await.is_ok());
        drop(l);
        assert!(check(&plain(&addr), &none).await.is_err());
        assert!(
            check(&plain("unresolvable.invalid:3306"), &none)
                .await
                .unwrap_err()
                .contains("unresolvable.invalid:3306")
        );
    }
}
