//! Connection URLs exactly as W&B images read them, and the field map every connection Secret
//! publishes. Pure: the controller reads the user's Secret values (external) or the generated
//! credentials (managed), fills [`ConnInputs`] and writes [`connection_secret_data`]'s result.
//!
//! Encoding: credentials in the userinfo and every query value are percent-encoded with an
//! explicit set that keeps only RFC 3986 unreserved characters (`A-Za-z0-9-._~`) as they are;
//! non-ASCII text is encoded as its UTF-8 bytes. Query values also keep `/` (file paths such as
//! `ssl-ca=/etc/ssl/certs/mysql_ca.pem` read as written). Host names are validated, not encoded.
//!
//! Forms (see reference/wandb-helm-terraform.md §1.4 and wandb-operator.md §4):
//!
//! | kind | URL |
//! |---|---|
//! | MySQL | `mysql://user:pass@host:port/db[?tls=..][&ssl-ca=..][&ssl-cert=..][&ssl-key=..]` |
//! | Redis | `redis://[[user]:pass@]host:port?ttlInSeconds=604800[&tls=true][&caCertPath=..][&master=..][&<params>]` |
//! | S3-compatible | `s3://[ak:sk@]host[:port]/bucket[/path][?region=..][&tls=..]&forcePathStyle=..` |
//! | AWS S3 | `s3://[ak:sk@]bucket[/path][?region=..]` |
//! | GCS | `gs://bucket[/path]` |
//! | Azure | `az://[:key@]account/container[/path]` (account = access key) |
//! | ClickHouse | `clickhouse://user:pass@host:tcpport/db[?tls=..][&<params>]` |
//! | Kafka | `kafka://[user:pass@]host:port[?tls=true][&saslMechanism=..]` |
//!
//! Redis puts the password in the password slot (`:pass@`); the official operator puts it in the
//! user slot (§9.9). Kafka's `tls` and `saslMechanism` parameter names are this operator's choice
//! (no W&B document names them); the W&B images take the SASL user and password from the
//! userinfo.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::connection::ServiceKind;
// The protocols' well-known ports, which the managed services also listen on: one table.
use crate::backends::managed::{
    CLICKHOUSE_TCP_PORT, KAFKA_PORT, MYSQL_PORT, REDIS_PORT, REDIS_SENTINEL_PORT,
};

mod parse;
mod smtp;
pub use smtp::{SMTP_DEFAULT_PORT, smtp_url};

/// Everything except RFC 3986 unreserved characters is encoded.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Query values and path segments: unreserved characters and `/` stay as written.
const QUERY_VALUE: &AsciiSet = &UNRESERVED.remove(b'/');

/// Where CA, client certificate and client key files are mounted in app and migration pods.
pub const CERTS_DIR: &str = "/etc/ssl/certs";

/// Redis keys' time to live, as the chart sets it.
pub const REDIS_TTL_SECONDS: &str = "604800";

/// Endpoint domains of CoreWeave object storage (virtual-host addressing, no path style).
pub const COREWEAVE_DOMAINS: [&str; 3] = ["cwobject.com", "cwlota.com", "coreweave.com"];

/// Default CoreWeave endpoint when the provider is `coreweave` and no endpoint is given.
pub const COREWEAVE_ENDPOINT: &str = "cwobject.com";

/// Percent-encodes a credential (userinfo) or any text that must stay opaque.
pub fn encode(raw: &str) -> String {
    utf8_percent_encode(raw, UNRESERVED).to_string()
}

fn encode_value(raw: &str) -> String {
    utf8_percent_encode(raw, QUERY_VALUE).to_string()
}

/// A file a connection URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertRole {
    Ca,
    Cert,
    Key,
}

/// File name of a mounted certificate: `mysql_ca.pem`, `mysql_ssl_cert.pem`, `mysql_ssl_key.pem`,
/// `redis_ca.pem` for the `default` instance; other instances insert their name
/// (`mysql_runs_ca.pem`) so two instances never share a path.
pub fn cert_file(kind: ServiceKind, instance: &str, role: CertRole) -> String {
    let prefix = match kind {
        ServiceKind::Mysql => "mysql",
        ServiceKind::Redis => "redis",
        ServiceKind::ObjectStore => "objectstore",
        ServiceKind::Clickhouse => "clickhouse",
        ServiceKind::Kafka => "kafka",
    };
    let role = match role {
        CertRole::Ca => "ca",
        CertRole::Cert => "ssl_cert",
        CertRole::Key => "ssl_key",
    };
    if instance == "default" || instance.is_empty() {
        format!("{prefix}_{role}.pem")
    } else {
        let inst: String = instance
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{prefix}_{inst}_{role}.pem")
    }
}

/// Full path of a mounted certificate (`/etc/ssl/certs/<cert_file>`).
pub fn cert_path(kind: ServiceKind, instance: &str, role: CertRole) -> String {
    format!("{CERTS_DIR}/{}", cert_file(kind, instance, role))
}

/// Why a URL could not be composed. Messages name fields, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The values a connection is composed from, by field. Certificate fields hold only whether the
/// user gave one (the file is mounted, its path goes into the URL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnInputs {
    /// Instance name (`default`, `runs`, ...): selects certificate file names.
    pub instance: String,
    /// The kind these inputs are for: how a whole `url` is read (`None`: by its scheme).
    pub kind: Option<ServiceKind>,
    /// Why the user's `url` could not be read (reported as a `url` error when composing).
    pub url_problem: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    /// MySQL `tls` mode; Redis/Kafka/object store/ClickHouse `true`/`false`.
    pub tls: Option<String>,
    pub ssl_ca: bool,
    pub ssl_cert: bool,
    pub ssl_key: bool,
    /// Redis sentinel master name.
    pub sentinel_master: Option<String>,
    /// Extra Redis or ClickHouse URL parameters.
    pub params: BTreeMap<String, String>,
    /// Object store: `s3` (default), `gcs`, `azure`, `coreweave`.
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub bucket: Option<String>,
    pub path: Option<String>,
    pub region: Option<String>,
    pub kms_key: Option<String>,
    pub force_path_style: Option<String>,
    /// ClickHouse.
    pub http_port: Option<String>,
    pub tcp_port: Option<String>,
    pub replicated: Option<String>,
    pub cluster_name: Option<String>,
    /// Kafka: comma-separated `host[:port]` list.
    pub bootstrap_servers: Option<String>,
    pub sasl_mechanism: Option<String>,
}

impl ConnInputs {
    pub fn new(instance: &str) -> Self {
        ConnInputs {
            instance: instance.to_string(),
            ..Default::default()
        }
    }

    /// Inputs of one kind of connection: a `url` is read as that kind's URL.
    pub fn for_kind(kind: ServiceKind, instance: &str) -> Self {
        ConnInputs {
            kind: Some(kind),
            ..ConnInputs::new(instance)
        }
    }

    /// Sets a field by any spelling of its name (`sslCa`, `ssl-ca`, `tlsEnabled`, `username`,
    /// `bootstrapServers`, ...): what the controller calls for each user Secret value it read.
    /// Empty values count as unset. Returns false for an unknown field.
    pub fn set(&mut self, field: &str, value: &str) -> bool {
        let f = crate::connection::normalize_field(field);
        let v = (!value.is_empty()).then(|| value.to_string());
        let slot = match f.as_str() {
            "url" => {
                if let Some(u) = v {
                    self.set_from_url(&u);
                }
                return true;
            }
            "host" => &mut self.host,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "database" => &mut self.database,
            "tls" | "tlsenabled" => &mut self.tls,
            "sslca" | "cacert" => {
                self.ssl_ca = v.is_some();
                return true;
            }
            "sslcert" => {
                self.ssl_cert = v.is_some();
                return true;
            }
            "sslkey" => {
                self.ssl_key = v.is_some();
                return true;
            }
            "sentinelmaster" | "master" => &mut self.sentinel_master,
            "provider" => &mut self.provider,
            "endpoint" => &mut self.endpoint,
            "accesskey" => &mut self.access_key,
            "secretkey" => &mut self.secret_key,
            "bucket" => &mut self.bucket,
            "path" => &mut self.path,
            "region" => &mut self.region,
            "kmskey" => &mut self.kms_key,
            "forcepathstyle" => &mut self.force_path_style,
            "httpport" => &mut self.http_port,
            "tcpport" => &mut self.tcp_port,
            "replicated" => &mut self.replicated,
            "clustername" => &mut self.cluster_name,
            "bootstrapservers" => &mut self.bootstrap_servers,
            "saslmechanism" => &mut self.sasl_mechanism,
            _ => return false,
        };
        *slot = v;
        true
    }
}

/// The user's `url` could not be read: every composition fails, naming it.
fn url_readable(i: &ConnInputs) -> Result<(), UrlError> {
    match &i.url_problem {
        Some(reason) => Err(UrlError::Invalid {
            field: "url",
            reason: reason.clone(),
        }),
        None => Ok(()),
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn require<'a>(v: &'a Option<String>, field: &'static str) -> Result<&'a str, UrlError> {
    non_empty(v).ok_or(UrlError::Missing(field))
}

fn check_host(host: &str, field: &'static str) -> Result<(), UrlError> {
    if host
        .chars()
        .any(|c| c.is_whitespace() || "/@?#\\".contains(c))
    {
        return Err(UrlError::Invalid {
            field,
            reason: "must be a host name or address, without scheme, path or credentials".into(),
        });
    }
    Ok(())
}

fn check_port(port: &str, field: &'static str) -> Result<u16, UrlError> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(UrlError::Invalid {
            field,
            reason: "must be a port number between 1 and 65535".into(),
        }),
    }
}

fn host_port(
    i: &ConnInputs,
    port_field: &Option<String>,
    default_port: i32,
) -> Result<(String, u16), UrlError> {
    let host = require(&i.host, "host")?;
    check_host(host, "host")?;
    let port = match non_empty(port_field) {
        Some(p) => check_port(p, "port")?,
        None => u16::try_from(default_port).expect("the port table holds valid ports"),
    };
    Ok((host.to_string(), port))
}

fn truthy(v: &Option<String>) -> Option<bool> {
    non_empty(v).map(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// `user:pass@` (each percent-encoded); `:pass@` without a user; empty without either.
fn userinfo(user: Option<&str>, password: Option<&str>) -> String {
    match (user, password) {
        (None, None) => String::new(),
        (Some(u), None) => format!("{}@", encode(u)),
        (u, Some(p)) => format!("{}:{}@", encode(u.unwrap_or("")), encode(p)),
    }
}

fn query(params: &[(String, String)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", encode(k), encode_value(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `seg1/seg2` with each segment encoded; leading/trailing slashes dropped.
fn path_segments(raw: &str) -> String {
    raw.split('/')
        .filter(|s| !s.is_empty())
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// `mysql://user:pass@host:port/db?tls=..&ssl-ca=..&ssl-cert=..&ssl-key=..`.
pub fn mysql_url(i: &ConnInputs) -> Result<String, UrlError> {
    url_readable(i)?;
    let (host, port) = host_port(i, &i.port, MYSQL_PORT)?;
    let user = require(&i.user, "user")?;
    let database = require(&i.database, "database")?;
    let mut params = Vec::new();
    if let Some(tls) = non_empty(&i.tls) {
        params.push(("tls".to_string(), tls.to_string()));
    }
    for (set, key, role) in [
        (i.ssl_ca, "ssl-ca", CertRole::Ca),
        (i.ssl_cert, "ssl-cert", CertRole::Cert),
        (i.ssl_key, "ssl-key", CertRole::Key),
    ] {
        if set {
            params.push((
                key.to_string(),
                cert_path(ServiceKind::Mysql, &i.instance, role),
            ));
        }
    }
    Ok(format!(
        "mysql://{}{host}:{port}/{}{}",
        userinfo(Some(user), non_empty(&i.password)),
        encode(database),
        query(&params)
    ))
}

/// `redis://[:pass@]host:port?ttlInSeconds=604800[&tls=true][&caCertPath=..][&master=..][&..]`.
/// `tls=true` is added when asked for or when a CA is given; user `params` come last (sorted)
/// and may override `ttlInSeconds`; empty values are dropped.
pub fn redis_url(i: &ConnInputs) -> Result<String, UrlError> {
    url_readable(i)?;
    let default_port = if non_empty(&i.sentinel_master).is_some() {
        26379
    } else {
        6379
    };
    let (host, port) = host_port(i, &i.port, default_port)?;
    let mut params = vec![(
        "ttlInSeconds".to_string(),
        i.params
            .get("ttlInSeconds")
            .cloned()
            .unwrap_or_else(|| REDIS_TTL_SECONDS.into()),
    )];
    if truthy(&i.tls) == Some(true) || i.ssl_ca {
        params.push(("tls".into(), "true".into()));
    }
    if i.ssl_ca {
        params.push((
            "caCertPath".into(),
            cert_path(ServiceKind::Redis, &i.instance, CertRole::Ca),
        ));
    }
    if let Some(m) = non_empty(&i.sentinel_master) {
        params.push(("master".into(), m.to_string()));
    }
    for (k, v) in &i.params {
        if matches!(k.as_str(), "ttlInSeconds" | "tls" | "caCertPath" | "master") {
            if k != "ttlInSeconds" && !params.iter().any(|(pk, _)| pk == k) {
                params.push((k.clone(), v.clone()));
            }
            continue;
        }
        params.push((k.clone(), v.clone()));
    }
    // `:password@`; a user only when the user's URL names one (Redis 6 ACL users).
    let auth = userinfo(non_empty(&i.user), non_empty(&i.password));
    Ok(format!("redis://{auth}{host}:{port}{}", query(&params)))
}

/// Object-store providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    S3,
    Gcs,
    Azure,
    CoreWeave,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::S3 => "s3",
            Provider::Gcs => "gcs",
            Provider::Azure => "azure",
            Provider::CoreWeave => "coreweave",
        }
    }
}

/// An endpoint split into (tls from its scheme, host, port).
fn split_endpoint(raw: &str) -> (Option<bool>, String, Option<String>) {
    let raw = raw.trim().trim_end_matches('/');
    let (tls, rest) = if let Some(r) = raw.strip_prefix("https://") {
        (Some(true), r)
    } else if let Some(r) = raw.strip_prefix("http://") {
        (Some(false), r)
    } else {
        (None, raw)
    };
    match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            (tls, h.to_string(), Some(p.to_string()))
        }
        _ => (tls, rest.to_string(), None),
    }
}

fn is_coreweave(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    COREWEAVE_DOMAINS
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// The provider: explicit (`s3`, `gcs`/`gs`, `azure`/`az`, `coreweave`/`cw`), else CoreWeave
/// when the endpoint is a CoreWeave domain, else S3.
pub fn provider(i: &ConnInputs) -> Result<Provider, UrlError> {
    if let Some(p) = non_empty(&i.provider) {
        return match p.to_ascii_lowercase().as_str() {
            "s3" | "aws" | "minio" => Ok(Provider::S3),
            "gcs" | "gs" | "google" => Ok(Provider::Gcs),
            "azure" | "az" => Ok(Provider::Azure),
            "coreweave" | "cw" => Ok(Provider::CoreWeave),
            _ => Err(UrlError::Invalid {
                field: "provider",
                reason: "must be s3, gcs, azure or coreweave".into(),
            }),
        };
    }
    let coreweave = non_empty(&i.endpoint).is_some_and(|e| is_coreweave(&split_endpoint(e).1));
    Ok(if coreweave {
        Provider::CoreWeave
    } else {
        Provider::S3
    })
}

fn bucket_and_path(i: &ConnInputs) -> Result<String, UrlError> {
    let bucket = require(&i.bucket, "bucket")?;
    let mut out = path_segments(bucket);
    if out.is_empty() {
        return Err(UrlError::Missing("bucket"));
    }
    if let Some(p) = non_empty(&i.path) {
        let p = path_segments(p);
        if !p.is_empty() {
            out.push('/');
            out.push_str(&p);
        }
    }
    Ok(out)
}

/// The object store URL; see the module table. Access and secret key must be both set or both
/// unset (workload identity: no userinfo).
pub fn object_store_url(i: &ConnInputs) -> Result<String, UrlError> {
    url_readable(i)?;
    let ak = non_empty(&i.access_key);
    let sk = non_empty(&i.secret_key);
    let provider = provider(i)?;
    let path = bucket_and_path(i)?;
    match provider {
        Provider::Gcs => return Ok(format!("gs://{path}")),
        Provider::Azure => {
            let account = ak.ok_or(UrlError::Missing("accessKey (the storage account)"))?;
            check_host(account, "accessKey")?;
            let auth = sk.map_or(String::new(), |k| format!(":{}@", encode(k)));
            return Ok(format!("az://{auth}{}/{path}", encode(account)));
        }
        Provider::S3 | Provider::CoreWeave => {}
    }
    if ak.is_some() != sk.is_some() {
        return Err(UrlError::Invalid {
            field: "accessKey",
            reason: "accessKey and secretKey must be both set or both unset".into(),
        });
    }
    let auth = match (ak, sk) {
        (Some(a), Some(s)) => format!("{}:{}@", encode(a), encode(s)),
        _ => String::new(),
    };
    let endpoint = non_empty(&i.endpoint).or(if provider == Provider::CoreWeave {
        Some(COREWEAVE_ENDPOINT)
    } else {
        None
    });
    let mut params = Vec::new();
    if let Some(r) = non_empty(&i.region) {
        params.push(("region".to_string(), r.to_string()));
    }
    let Some(endpoint) = endpoint else {
        // AWS S3: the bucket is the host.
        return Ok(format!("s3://{auth}{path}{}", query(&params)));
    };
    let (scheme_tls, host, endpoint_port) = split_endpoint(endpoint);
    check_host(&host, "endpoint")?;
    if host.is_empty() {
        return Err(UrlError::Missing("endpoint"));
    }
    let port = match non_empty(&i.port).or(endpoint_port.as_deref()) {
        Some(p) => format!(":{}", check_port(p, "port")?),
        None => String::new(),
    };
    let tls = truthy(&i.tls)
        .or(scheme_tls)
        .or((provider == Provider::CoreWeave).then_some(true));
    if let Some(t) = tls {
        params.push(("tls".into(), t.to_string()));
    }
    let path_style = truthy(&i.force_path_style).unwrap_or(provider != Provider::CoreWeave);
    params.push(("forcePathStyle".into(), path_style.to_string()));
    Ok(format!("s3://{auth}{host}{port}/{path}{}", query(&params)))
}

/// `clickhouse://user:pass@host:tcpport/db[?tls=..][&<params>]` (native protocol, default port
/// 9000, database `default`).
pub fn clickhouse_url(i: &ConnInputs) -> Result<String, UrlError> {
    url_readable(i)?;
    let (host, port) = host_port(i, &i.tcp_port, CLICKHOUSE_TCP_PORT)?;
    let user = require(&i.user, "user")?;
    let database = non_empty(&i.database).unwrap_or("default");
    let mut params = Vec::new();
    if let Some(t) = truthy(&i.tls) {
        params.push(("tls".to_string(), t.to_string()));
    }
    // Parameters of the user's URL (`max_open_conns`, `dial_timeout`, ...), sorted.
    for (k, v) in &i.params {
        if !matches!(k.as_str(), "tls" | "secure") {
            params.push((k.clone(), v.clone()));
        }
    }
    Ok(format!(
        "clickhouse://{}{host}:{port}/{}{}",
        userinfo(Some(user), non_empty(&i.password)),
        encode(database),
        query(&params)
    ))
}

/// The first bootstrap server as (host, port), port 9092 when not given.
pub fn first_bootstrap(servers: &str) -> Result<(String, u16), UrlError> {
    let first = servers
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .ok_or(UrlError::Missing("bootstrapServers"))?;
    let first = first
        .strip_prefix("kafka://")
        .or_else(|| first.strip_prefix("PLAINTEXT://"))
        .or_else(|| first.strip_prefix("SASL_SSL://"))
        .or_else(|| first.strip_prefix("SSL://"))
        .unwrap_or(first);
    let (host, port) = match first.rsplit_once(':') {
        Some((h, p)) => (h, check_port(p, "bootstrapServers")?),
        None => (first, 9092),
    };
    check_host(host, "bootstrapServers")?;
    if host.is_empty() {
        return Err(UrlError::Missing("bootstrapServers"));
    }
    Ok((host.to_string(), port))
}

/// `kafka://[user:pass@]host:port[?tls=true][&caCertPath=..][&saslMechanism=..]` from the first bootstrap server
/// (or `host`/`port`).
pub fn kafka_url(i: &ConnInputs) -> Result<String, UrlError> {
    url_readable(i)?;
    let (host, port) = match non_empty(&i.bootstrap_servers) {
        Some(s) => first_bootstrap(s)?,
        None => host_port(i, &i.port, KAFKA_PORT)?,
    };
    let mut params = Vec::new();
    if truthy(&i.tls) == Some(true) || i.ssl_ca {
        params.push(("tls".to_string(), "true".to_string()));
    }
    if i.ssl_ca {
        // The CA the operator mounts from the user's Secret (see `certs`).
        params.push((
            "caCertPath".into(),
            cert_path(ServiceKind::Kafka, &i.instance, CertRole::Ca),
        ));
    }
    if let Some(m) = non_empty(&i.sasl_mechanism) {
        params.push(("saslMechanism".into(), m.to_string()));
    }
    let auth = match non_empty(&i.user) {
        Some(u) => userinfo(Some(u), non_empty(&i.password)),
        None => String::new(),
    };
    Ok(format!("kafka://{auth}{host}:{port}{}", query(&params)))
}

/// The URL of a connection of `kind`.
pub fn url(kind: ServiceKind, i: &ConnInputs) -> Result<String, UrlError> {
    match kind {
        ServiceKind::Mysql => mysql_url(i),
        ServiceKind::Redis => redis_url(i),
        ServiceKind::ObjectStore => object_store_url(i),
        ServiceKind::Clickhouse => clickhouse_url(i),
        ServiceKind::Kafka => kafka_url(i),
    }
}

/// Every key a connection Secret publishes, by the normalized field names env wiring reads
/// (`url`, `host`, `port`, `user`, `password`, `database`, `region`, `bucket`, `httpport`,
/// `tcpport`, `replicated`, `clustername`, ...). Every field of [`ServiceKind::fields`] is always
/// present (possibly empty) so that secretKeyRefs never miss a key; the optional fields of
/// [`ServiceKind::optional_fields`] and the other extra keys appear only when set.
pub fn connection_secret_data(
    kind: ServiceKind,
    i: &ConnInputs,
) -> Result<BTreeMap<String, String>, UrlError> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            out.insert(k.to_string(), v.to_string());
        }
    };
    let url = url(kind, i)?;
    put("url", Some(&url));
    match kind {
        ServiceKind::Mysql => {
            let (host, port) = host_port(i, &i.port, MYSQL_PORT)?;
            put("host", Some(&host));
            put("port", Some(&port.to_string()));
            put("database", non_empty(&i.database));
            put("user", non_empty(&i.user));
            put("password", Some(non_empty(&i.password).unwrap_or("")));
            put("tls", non_empty(&i.tls));
            if i.ssl_ca {
                put(
                    "cacertpath",
                    Some(&cert_path(ServiceKind::Mysql, &i.instance, CertRole::Ca)),
                );
            }
        }
        ServiceKind::Redis => {
            let default_port = if non_empty(&i.sentinel_master).is_some() {
                REDIS_SENTINEL_PORT
            } else {
                REDIS_PORT
            };
            let (host, port) = host_port(i, &i.port, default_port)?;
            put("host", Some(&host));
            put("port", Some(&port.to_string()));
            put("password", non_empty(&i.password));
            put("master", non_empty(&i.sentinel_master));
            if truthy(&i.tls) == Some(true) || i.ssl_ca {
                put("tls", Some("true"));
            }
        }
        ServiceKind::ObjectStore => {
            let p = provider(i)?;
            let (host, port) = object_store_host_port(i, p);
            put("provider", Some(p.as_str()));
            put("host", Some(&host));
            put("port", Some(&port));
            put("region", Some(non_empty(&i.region).unwrap_or("")));
            put("bucket", non_empty(&i.bucket));
            put("path", non_empty(&i.path));
            put("kmskey", non_empty(&i.kms_key));
            put("accesskey", non_empty(&i.access_key));
            put("secretkey", non_empty(&i.secret_key));
        }
        ServiceKind::Clickhouse => {
            let (host, tcp) = host_port(i, &i.tcp_port, CLICKHOUSE_TCP_PORT)?;
            let http = match non_empty(&i.http_port) {
                Some(p) => check_port(p, "httpPort")?,
                None => 8123,
            };
            put("host", Some(&host));
            // `port` is the HTTP port, as the managed connection's literal says.
            put("port", Some(&http.to_string()));
            put("tcpport", Some(&tcp.to_string()));
            put("httpport", Some(&http.to_string()));
            put(
                "database",
                Some(non_empty(&i.database).unwrap_or("default")),
            );
            put("user", non_empty(&i.user));
            put("password", Some(non_empty(&i.password).unwrap_or("")));
            put("replicated", non_empty(&i.replicated));
            put("clustername", non_empty(&i.cluster_name));
        }
        ServiceKind::Kafka => {
            let (host, port) = match non_empty(&i.bootstrap_servers) {
                Some(s) => first_bootstrap(s)?,
                None => host_port(i, &i.port, KAFKA_PORT)?,
            };
            put("host", Some(&host));
            put("port", Some(&port.to_string()));
            put("bootstrapservers", non_empty(&i.bootstrap_servers));
            put("user", non_empty(&i.user));
            put("password", non_empty(&i.password));
            put("saslmechanism", non_empty(&i.sasl_mechanism));
            if truthy(&i.tls) == Some(true) {
                put("tls", Some("true"));
            }
        }
    }
    for field in kind.fields() {
        out.entry((*field).to_string()).or_default();
    }
    Ok(out)
}

/// Host and port clients reach the store at (the provider's public endpoint without one).
fn object_store_host_port(i: &ConnInputs, p: Provider) -> (String, String) {
    if let Some(e) = non_empty(&i.endpoint) {
        let (tls, host, port) = split_endpoint(e);
        let port = non_empty(&i.port)
            .map(str::to_string)
            .or(port)
            .unwrap_or_else(|| if tls == Some(false) { "80" } else { "443" }.to_string());
        return (host, port);
    }
    let host = match p {
        Provider::S3 => match non_empty(&i.region) {
            Some(r) => format!("s3.{r}.amazonaws.com"),
            None => "s3.amazonaws.com".into(),
        },
        Provider::Gcs => "storage.googleapis.com".into(),
        Provider::Azure => format!(
            "{}.blob.core.windows.net",
            non_empty(&i.access_key).unwrap_or("")
        ),
        Provider::CoreWeave => COREWEAVE_ENDPOINT.into(),
    };
    (host, "443".into())
}

#[cfg(test)]
mod tests;
