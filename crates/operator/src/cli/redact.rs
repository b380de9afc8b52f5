//! Redaction of what the CLI shows or writes: Secret values (keys kept), credentials inside URLs
//! (`scheme://user:password@host` keeps scheme and host), env values whose name says they are
//! credentials, and `last-applied-configuration` annotations (a Secret's holds its values).
//!
//! Structure first, then a backstop: [`Redactor`] knows every value of every Secret of the
//! namespace and replaces any that still shows up (raw or base64) in any string, and
//! [`Redactor::verify`] is the last check before anything is written.

use base64::Engine as _;
use serde_json::Value;

/// What replaces a value.
pub const REDACTED: &str = "REDACTED";

/// Secret values shorter than this are not searched for by the backstop (ports, flags, `true`
/// would match everywhere); structural redaction still removes them from Secrets and
/// credential-named env values.
pub const MIN_SCANNED_LEN: usize = 6;

/// Env names (upper-cased) containing one of these hold credentials.
const SENSITIVE: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "LICENSE",
    "PRIVATE",
    "APIKEY",
    "API_KEY",
    "ACCESS_KEY",
    "AUTH",
    "_KEY",
    "DSN",
    "SALT",
];

/// Whether a variable or key named `name` holds a credential.
pub fn is_sensitive_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace(['-', '.'], "_");
    SENSITIVE.iter().any(|s| upper.contains(s)) || upper.ends_with("KEY")
}

/// Removes the user information of every URL in `s` (`scheme://user:pw@host/...` becomes
/// `scheme://REDACTED@host/...`). Everything up to the last `@` of the URL's run of non-space
/// characters counts as user information: a password with a raw `/` or `@` is still covered, at
/// the price of hiding a path that contains `@`.
pub fn redact_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ',' | ';'))
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        match url.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Redacts one Kubernetes object in place: Secret `data`/`stringData` values, env values named
/// like credentials, `last-applied-configuration`, and URL credentials in every string.
pub fn object(v: &mut Value) {
    if v.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = v.get_mut(field) {
                for val in m.values_mut() {
                    *val = Value::String(REDACTED.into());
                }
            }
        }
    }
    if let Some(Value::Object(a)) = v.pointer_mut("/metadata/annotations")
        && let Some(val) = a.get_mut("kubectl.kubernetes.io/last-applied-configuration")
    {
        *val = Value::String(REDACTED.into());
    }
    walk(v);
}

fn walk(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // An env entry: `{name, value}` with a credential's name.
            let sensitive_env = m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_sensitive_name)
                && m.get("value").is_some_and(Value::is_string);
            if sensitive_env {
                m.insert("value".into(), Value::String(REDACTED.into()));
            }
            for child in m.values_mut() {
                walk(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        Value::String(s) if s.contains("://") => *s = redact_urls(s),
        _ => {}
    }
}

/// Every value of every Secret of a namespace, to find them wherever they leaked.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Each value and its base64, longest first so a value containing another is replaced whole.
    needles: Vec<String>,
}

impl Redactor {
    /// From the Secrets' values (raw bytes; non-UTF-8 values are searched as base64 only).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut needles = Vec::new();
        for v in values {
            if v.len() < MIN_SCANNED_LEN {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(v) {
                needles.push(s.to_string());
            }
            needles.push(base64::engine::general_purpose::STANDARD.encode(v));
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// Number of values searched for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with URL credentials and every known Secret value replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = redact_urls(text);
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacts an object ([`object`]) and then every known value in its strings and keys.
    pub fn value(&self, v: &mut Value) {
        object(v);
        self.strings(v);
    }

    fn strings(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    let clean = self.text(&k);
                    if clean != k
                        && let Some(child) = m.remove(&k)
                    {
                        m.insert(clean, child);
                    }
                }
                m.values_mut().for_each(|c| self.strings(c));
            }
            Value::Array(items) => items.iter_mut().for_each(|c| self.strings(c)),
            Value::String(s) => *s = self.text(s),
            _ => {}
        }
    }

    /// The first known value that `bytes` still contains (never the value itself: its length).
    pub fn verify(&self, bytes: &[u8]) -> Result<(), String> {
        for n in &self.needles {
            if contains(bytes, n.as_bytes()) {
                return Err(format!(
                    "a Secret value ({} characters) is still present after redaction",
                    n.len()
                ));
            }
        }
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_credentials_go_and_the_host_stays() {
        assert_eq!(
            redact_urls("url mysql://wandb:p%40ss@db:3306/wandb?tls=true and redis://r:6379"),
            "url mysql://REDACTED@db:3306/wandb?tls=true and redis://r:6379"
        );
        assert_eq!(
            redact_urls("s3://KEY:se/cr@t@bucket.example.com/x"),
            "s3://REDACTED@bucket.example.com/x"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }

    #[test]
    fn secrets_keep_their_keys_and_lose_their_values() {
        let mut s = json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"k\":\"c2VjcmV0\"}}"}},
            "data": {"password": "c2VjcmV0"}, "stringData": {"url": "x"}});
        object(&mut s);
        assert_eq!(s["data"]["password"], REDACTED);
        assert_eq!(s["stringData"]["url"], REDACTED);
        assert_eq!(
            s["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            REDACTED
        );
    }

    #[test]
    fn credential_env_values_are_redacted_and_others_kept() {
        let mut d = json!({"kind": "Deployment", "spec": {"containers": [{"env": [
            {"name": "MYSQL_PASSWORD", "value": "pw"},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "BUCKET", "value": "s3://AK:SK@minio:9000/b"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ]}]}});
        object(&mut d);
        let env = &d["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["value"], REDACTED);
        assert_eq!(env[1]["value"], "info");
        assert_eq!(env[2]["value"], "s3://REDACTED@minio:9000/b");
        assert_eq!(env[3]["valueFrom"]["secretKeyRef"]["key"], "k");
    }

    #[test]
    fn the_backstop_finds_raw_and_base64_values_and_skips_short_ones() {
        let r = Redactor::new([b"hunter2hunter2".as_slice(), b"3306".as_slice()]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2hunter2");
        let t = r.text(&format!("pw=hunter2hunter2 b={b64} port=3306"));
        assert_eq!(t, "pw=REDACTED b=REDACTED port=3306");
        assert!(r.verify(t.as_bytes()).is_ok());
        assert!(r.verify(b"..hunter2hunter2..").is_err());
        let mut v = json!({"message": "login hunter2hunter2 failed", "hunter2hunter2": 1});
        r.value(&mut v);
        assert_eq!(
            v,
            json!({"message": "login REDACTED failed", "REDACTED": 1})
        );
    }
}
