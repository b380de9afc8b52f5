//! A whole connection URL given by the user (`externalMysql.url`, `externalRedis.url`,
//! `externalObjectStore.url`, `externalClickhouse.url`) split into the [`ConnInputs`] fields the
//! URLs and connection Secrets are composed from, so that a `url`-only connection works exactly
//! as the separate fields would.
//!
//! Parts only fill fields that are still unset: fields given beside the URL (and the CR's
//! literal fields such as `sentinelMaster` or `params`) override its parts, whatever order they
//! are set in. Credentials, database names and query values are percent-decoded. What cannot be
//! read is recorded in [`ConnInputs::url_problem`] and reported when the URL is composed, naming
//! the field (`url`) and never the value.

use std::collections::BTreeMap;

use super::ConnInputs;
use crate::connection::ServiceKind;

/// The pieces of `scheme://[userinfo@]authority[/path][?query]`.
struct Parts {
    scheme: String,
    userinfo: Option<String>,
    authority: String,
    path: String,
    query: Vec<(String, String)>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn split(url: &str) -> Parts {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => (String::new(), url),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, authority) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, authority.to_string()),
    };
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    Parts {
        scheme,
        userinfo,
        authority,
        path: path.trim_end_matches('/').to_string(),
        query,
    }
}

/// `host[:port]` (IPv6 literals in brackets keep their colons).
fn host_port(authority: &str) -> (String, Option<String>) {
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            if h.starts_with('[') && !h.ends_with(']') {
                (authority.to_string(), None)
            } else {
                (h.to_string(), Some(p.to_string()))
            }
        }
        _ => (authority.to_string(), None),
    }
}

/// `(user, password)` of a userinfo, each decoded; empty parts are `None`.
fn credentials(userinfo: &str) -> (Option<String>, Option<String>) {
    let some = |s: String| (!s.is_empty()).then_some(s);
    match userinfo.split_once(':') {
        Some((u, p)) => (some(decode(u)), some(decode(p))),
        None => (some(decode(userinfo)), None),
    }
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value.filter(|v| !v.is_empty());
    }
}

fn take(query: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let pos = query
        .iter()
        .position(|(k, _)| k.eq_ignore_ascii_case(key))?;
    Some(query.remove(pos).1)
}

fn fill_params(params: &mut BTreeMap<String, String>, rest: Vec<(String, String)>) {
    for (k, v) in rest {
        params.entry(k).or_insert(v);
    }
}

/// The kind a URL scheme names, for inputs that were not made for one kind.
fn kind_of_scheme(scheme: &str) -> Option<ServiceKind> {
    match scheme {
        "mysql" => Some(ServiceKind::Mysql),
        "redis" | "rediss" => Some(ServiceKind::Redis),
        "s3" | "gs" | "gcs" | "az" | "azure" => Some(ServiceKind::ObjectStore),
        "clickhouse" | "tcp" | "http" | "https" => Some(ServiceKind::Clickhouse),
        _ => None,
    }
}

impl ConnInputs {
    /// Fills the unset fields from a whole URL of this connection's kind (or of the kind its
    /// scheme names when the inputs were not made for one).
    pub(super) fn set_from_url(&mut self, url: &str) {
        let p = split(url);
        let kind = self
            .kind
            .or_else(|| kind_of_scheme(&p.scheme))
            .unwrap_or(ServiceKind::Mysql);
        let result = match kind {
            ServiceKind::Mysql => self.mysql(p),
            ServiceKind::Redis => self.redis(p),
            ServiceKind::ObjectStore => self.object_store(p),
            ServiceKind::Clickhouse => self.clickhouse(p),
            ServiceKind::Kafka => {
                Err("a Kafka connection takes bootstrapServers, not a url".into())
            }
        };
        if let Err(problem) = result {
            self.url_problem = Some(problem);
        }
    }

    fn mysql(&mut self, mut p: Parts) -> Result<(), String> {
        if !matches!(p.scheme.as_str(), "" | "mysql") {
            return Err("must be a mysql:// URL".into());
        }
        if let Some(u) = &p.userinfo {
            let (user, password) = credentials(u);
            fill(&mut self.user, user);
            fill(&mut self.password, password);
        }
        let (host, port) = host_port(&p.authority);
        fill(&mut self.host, Some(host));
        fill(&mut self.port, port);
        fill(&mut self.database, Some(decode(&p.path)));
        fill(&mut self.tls, take(&mut p.query, "tls"));
        Ok(())
    }

    fn redis(&mut self, mut p: Parts) -> Result<(), String> {
        let tls_scheme = match p.scheme.as_str() {
            "" | "redis" => None,
            "rediss" => Some("true".to_string()),
            _ => return Err("must be a redis:// or rediss:// URL".into()),
        };
        if let Some(u) = &p.userinfo {
            let (user, password) = match credentials(u) {
                // `password:` is the official operator's form (the password in the user slot).
                (Some(u), None) if p.userinfo.as_deref().is_some_and(|s| s.ends_with(':')) => {
                    (None, Some(u))
                }
                other => other,
            };
            fill(&mut self.user, user);
            fill(&mut self.password, password);
        }
        let (host, port) = host_port(&p.authority);
        fill(&mut self.host, Some(host));
        fill(&mut self.port, port);
        fill(&mut self.tls, take(&mut p.query, "tls").or(tls_scheme));
        fill(&mut self.sentinel_master, take(&mut p.query, "master"));
        fill_params(&mut self.params, p.query);
        Ok(())
    }

    fn object_store(&mut self, mut p: Parts) -> Result<(), String> {
        let (user, password) = p.userinfo.as_deref().map_or((None, None), credentials);
        let segments = |path: &str| -> Vec<String> {
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(decode)
                .collect()
        };
        match p.scheme.as_str() {
            "gs" | "gcs" => {
                fill(&mut self.provider, Some("gcs".into()));
                fill(&mut self.bucket, Some(decode(&p.authority)));
                fill(&mut self.path, Some(segments(&p.path).join("/")));
            }
            "az" | "azure" => {
                // az://[:key@]account/container[/path]
                fill(&mut self.provider, Some("azure".into()));
                fill(&mut self.access_key, Some(decode(&p.authority)));
                fill(&mut self.secret_key, password.or(user));
                let mut segs = segments(&p.path).into_iter();
                fill(&mut self.bucket, segs.next());
                fill(&mut self.path, Some(segs.collect::<Vec<_>>().join("/")));
            }
            "s3" => {
                fill(&mut self.access_key, user);
                fill(&mut self.secret_key, password);
                fill(&mut self.region, take(&mut p.query, "region"));
                let tls = take(&mut p.query, "tls");
                let path_style = take(&mut p.query, "forcePathStyle");
                let (host, port) = host_port(&p.authority);
                // An endpoint is told apart from an AWS bucket by what only endpoints carry: a
                // port, or the tls / forcePathStyle parameters this operator writes for them.
                if port.is_some() || tls.is_some() || path_style.is_some() {
                    fill(&mut self.provider, Some("s3".into()));
                    fill(&mut self.endpoint, Some(host));
                    fill(&mut self.port, port);
                    fill(&mut self.tls, tls);
                    fill(&mut self.force_path_style, path_style);
                    let mut segs = segments(&p.path).into_iter();
                    fill(&mut self.bucket, segs.next());
                    fill(&mut self.path, Some(segs.collect::<Vec<_>>().join("/")));
                } else {
                    fill(&mut self.bucket, Some(decode(&p.authority)));
                    fill(&mut self.path, Some(segments(&p.path).join("/")));
                }
            }
            _ => return Err("must be an s3://, gs:// or az:// URL".into()),
        }
        if let Some((k, _)) = p.query.first() {
            return Err(format!(
                "parameter {k} is not read; the URL takes region, tls and forcePathStyle"
            ));
        }
        Ok(())
    }

    fn clickhouse(&mut self, mut p: Parts) -> Result<(), String> {
        let (http, scheme_tls) = match p.scheme.as_str() {
            "" | "clickhouse" | "tcp" => (false, None),
            "http" => (true, Some("false".to_string())),
            "https" => (true, Some("true".to_string())),
            _ => return Err("must be a clickhouse://, tcp://, http:// or https:// URL".into()),
        };
        if let Some(u) = &p.userinfo {
            let (user, password) = credentials(u);
            fill(&mut self.user, user);
            fill(&mut self.password, password);
        }
        let (host, port) = host_port(&p.authority);
        fill(&mut self.host, Some(host));
        if http {
            fill(&mut self.http_port, port);
        } else {
            fill(&mut self.tcp_port, port);
        }
        fill(&mut self.database, Some(decode(&p.path)));
        let tls = take(&mut p.query, "tls")
            .or_else(|| take(&mut p.query, "secure"))
            .or(scheme_tls);
        fill(&mut self.tls, tls);
        fill_params(&mut self.params, p.query);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        UrlError, clickhouse_url, connection_secret_data, object_store_url, redis_url,
    };
    use super::*;

    fn from(kind: ServiceKind, pairs: &[(&str, &str)]) -> ConnInputs {
        let mut i = ConnInputs::for_kind(kind, "default");
        for (k, v) in pairs {
            assert!(i.set(k, v), "unknown field {k}");
        }
        i
    }

    #[test]
    fn redis_url_only_and_fields_beside_it() {
        let url = "redis://:p%40ss@redis.example.com:6380?tls=true&master=gorilla&poolSize=10";
        let i = from(ServiceKind::Redis, &[("url", url)]);
        assert_eq!(i.password.as_deref(), Some("p@ss"));
        assert_eq!(
            redis_url(&i).unwrap(),
            "redis://:p%40ss@redis.example.com:6380?ttlInSeconds=604800&tls=true&master=gorilla&poolSize=10"
        );
        let d = connection_secret_data(ServiceKind::Redis, &i).unwrap();
        assert_eq!(
            (
                d["host"].as_str(),
                d["port"].as_str(),
                d["password"].as_str()
            ),
            ("redis.example.com", "6380", "p@ss")
        );
        assert_eq!(d["master"], "gorilla");
        // Fields beside the URL win, in either order; so do the CR's literal fields.
        let mut i = from(ServiceKind::Redis, &[("host", "other"), ("url", url)]);
        i.set("port", "7000");
        assert!(
            redis_url(&i)
                .unwrap()
                .starts_with("redis://:p%40ss@other:7000?")
        );
        let mut i = ConnInputs::for_kind(ServiceKind::Redis, "default");
        i.sentinel_master = Some("mymaster".into());
        i.params.insert("poolSize".into(), "20".into());
        i.set("url", url);
        let u = redis_url(&i).unwrap();
        assert!(
            u.contains("master=mymaster") && u.contains("poolSize=20"),
            "{u}"
        );
        // The official operator's form puts the password in the user slot; rediss means TLS.
        let i = from(
            ServiceKind::Redis,
            &[("url", "rediss://s3cret:@r.example.com")],
        );
        assert_eq!(
            redis_url(&i).unwrap(),
            "redis://:s3cret@r.example.com:6379?ttlInSeconds=604800&tls=true"
        );
        // An ACL user is kept.
        let i = from(ServiceKind::Redis, &[("url", "redis://app:pw@r:6379")]);
        assert!(redis_url(&i).unwrap().starts_with("redis://app:pw@r:6379?"));
        let i = from(ServiceKind::Redis, &[("url", "http://r:6379")]);
        assert!(matches!(
            redis_url(&i),
            Err(UrlError::Invalid { field: "url", .. })
        ));
    }

    #[test]
    fn clickhouse_url_only_and_fields_beside_it() {
        let url = "clickhouse://wandb:p%20w@ch.example.com:9440/weave?secure=true&dial_timeout=10s";
        let i = from(ServiceKind::Clickhouse, &[("url", url)]);
        assert_eq!(
            clickhouse_url(&i).unwrap(),
            "clickhouse://wandb:p%20w@ch.example.com:9440/weave?tls=true&dial_timeout=10s"
        );
        let d = connection_secret_data(ServiceKind::Clickhouse, &i).unwrap();
        assert_eq!(d["host"], "ch.example.com");
        assert_eq!(
            (d["tcpport"].as_str(), d["httpport"].as_str()),
            ("9440", "8123")
        );
        assert_eq!(
            (d["user"].as_str(), d["password"].as_str()),
            ("wandb", "p w")
        );
        assert_eq!(d["database"], "weave");
        // An HTTP(S) URL names the HTTP port; fields beside it win.
        let i = from(
            ServiceKind::Clickhouse,
            &[("url", "https://u:p@ch:8443/db"), ("password", "other")],
        );
        let d = connection_secret_data(ServiceKind::Clickhouse, &i).unwrap();
        assert_eq!(
            (d["httpport"].as_str(), d["tcpport"].as_str()),
            ("8443", "9000")
        );
        assert_eq!(d["url"], "clickhouse://u:other@ch:9000/db?tls=true");
        // The user is required, from the URL or beside it.
        let i = from(
            ServiceKind::Clickhouse,
            &[("url", "clickhouse://ch:9000/db")],
        );
        assert_eq!(clickhouse_url(&i), Err(UrlError::Missing("user")));
    }

    #[test]
    fn object_store_url_only_for_each_provider() {
        let same = |url: &str| {
            let i = from(ServiceKind::ObjectStore, &[("url", url)]);
            assert_eq!(object_store_url(&i).unwrap(), url, "recomposed identically");
            i
        };
        let aws = same("s3://AK:S%2Fk@my-bucket/prefix/a?region=us-east-1");
        assert_eq!(aws.secret_key.as_deref(), Some("S/k"));
        assert_eq!(aws.bucket.as_deref(), Some("my-bucket"));
        assert_eq!(aws.endpoint, None);
        let minio = same("s3://ak:sk@minio.local:9000/bucket/p?tls=false&forcePathStyle=true");
        assert_eq!(minio.endpoint.as_deref(), Some("minio.local"));
        assert_eq!(minio.path.as_deref(), Some("p"));
        same("gs://gb/a/b");
        let az = same("az://:key@acct/cont/pre");
        assert_eq!(
            (az.access_key.as_deref(), az.bucket.as_deref()),
            (Some("acct"), Some("cont"))
        );
        // The official operator's managed-store URL: an endpoint with a port.
        let i = from(
            ServiceKind::ObjectStore,
            &[(
                "url",
                "s3://ak:sk@w-s3.ns.svc.cluster.local:8333/bucket?tls=false",
            )],
        );
        let d = connection_secret_data(ServiceKind::ObjectStore, &i).unwrap();
        assert_eq!(
            d["url"],
            "s3://ak:sk@w-s3.ns.svc.cluster.local:8333/bucket?tls=false&forcePathStyle=true"
        );
        assert_eq!(
            (d["host"].as_str(), d["port"].as_str()),
            ("w-s3.ns.svc.cluster.local", "8333")
        );
        // A field beside the URL wins.
        let i = from(
            ServiceKind::ObjectStore,
            &[
                ("url", "s3://my-bucket/x"),
                ("bucket", "other"),
                ("region", "eu-west-1"),
            ],
        );
        assert_eq!(
            object_store_url(&i).unwrap(),
            "s3://other/x?region=eu-west-1"
        );
        // What cannot be read is an error naming the url, never its value.
        for bad in ["ftp://b", "s3://b?sse=kms", "cw://b"] {
            let i = from(ServiceKind::ObjectStore, &[("url", bad)]);
            match object_store_url(&i) {
                Err(UrlError::Invalid {
                    field: "url",
                    reason,
                }) => {
                    assert!(
                        !reason.contains("kms") || reason.contains("sse"),
                        "{reason}"
                    )
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn scheme_picks_the_kind_when_the_inputs_have_none() {
        let mut i = ConnInputs::new("default");
        i.set("url", "redis://r.example.com:6380");
        assert_eq!(
            (i.host.as_deref(), i.port.as_deref()),
            (Some("r.example.com"), Some("6380"))
        );
        let mut k = ConnInputs::for_kind(ServiceKind::Kafka, "default");
        k.set("url", "kafka://k:9092");
        assert!(k.url_problem.is_some());
    }
}
