//! Registry credentials from a `kubernetes.io/dockerconfigjson` Secret (pure: bytes in,
//! credentials out). The `auths` keys come in several historic forms (`host`, `https://host`,
//! `host/v1/`, `https://index.docker.io/v1/`); an entry matches when its host equals the
//! registry's, Docker Hub's aliases counting as one host.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

/// A username and password for one registry. `Debug` hides the password, so the value can sit
/// in structs that are logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    username: Option<String>,
    password: Option<String>,
    /// base64 of `username:password`.
    auth: Option<String>,
}

/// The credentials for `registry` (a `host[:port]`) in a dockerconfigjson document; `Ok(None)`
/// when no entry matches. Errors never include secret material.
pub fn credentials_for(config_json: &[u8], registry: &str) -> Result<Option<Credentials>, String> {
    let config: DockerConfig = serde_json::from_slice(config_json)
        .map_err(|e| format!("not a dockerconfigjson document (line {})", e.line()))?;
    let want = canonical_host(registry);
    let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(key, _)| canonical_host(key) == want)
    else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    let bad = || format!("the auths entry {key:?} has neither username/password nor a valid auth");
    let auth = entry.auth.as_deref().ok_or_else(bad)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials {
        username: u.to_owned(),
        password: p.to_owned(),
    }))
}

/// `https://Host:5000/v1/` -> `host:5000`; Docker Hub's names -> `docker.io`.
pub fn canonical_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn entries_match_by_host_in_every_key_form() {
        for key in [
            "r.example.com:5000",
            "https://r.example.com:5000",
            "r.example.com:5000/v1/",
            "http://R.example.com:5000/v2/",
        ] {
            let json = format!(r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#, b64("u:p:w"));
            let c = credentials_for(json.as_bytes(), "r.example.com:5000")
                .unwrap()
                .unwrap_or_else(|| panic!("{key} should match"));
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        }
    }

    #[test]
    fn other_hosts_and_ports_do_not_match() {
        let json = br#"{"auths":{"r.example.com":{"username":"u","password":"p"},
            "r.example.com:5001":{"username":"u","password":"p"},
            "evil.com/r.example.com:5000":{"username":"u","password":"p"}}}"#;
        assert_eq!(credentials_for(json, "r.example.com:5000").unwrap(), None);
        assert!(credentials_for(json, "r.example.com").unwrap().is_some());
    }

    #[test]
    fn username_and_password_win_and_docker_hub_aliases_match() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"username":"a","password":"b","auth":"{}"}}}}}}"#,
            b64("x:y")
        );
        let c = credentials_for(json.as_bytes(), "registry-1.docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "a");
    }

    #[test]
    fn bad_entries_are_named_without_their_content() {
        let json = br#"{"auths":{"r.io":{"auth":"bm90LXNlY3JldA=="}}}"#; // "not-secret": no colon
        let err = credentials_for(json, "r.io").unwrap_err();
        assert!(
            err.contains("\"r.io\"") && !err.contains("not-secret"),
            "{err}"
        );
        assert!(credentials_for(b"{", "r.io").is_err());
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
