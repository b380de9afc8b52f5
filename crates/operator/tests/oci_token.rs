//! `oci://` against a token-auth registry (the `WWW-Authenticate: Bearer` challenge that public
//! registries such as Artifact Registry and Docker Hub use), which the Distribution registry of
//! the other tests cannot play without a token server: a small in-process stand-in serving the
//! distribution API for one artifact. Also: request counts of a cached load, and a blob whose
//! content does not match its digest.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use common::oci::{REPO, fixture_files};
use serde_json::json;
use wandb_manifest::artifact::{TITLE_ANNOTATION, sha256_digest};
use wandb_manifest::{ManifestError, ManifestLocation};
use wandb_operator::manifests::{self, Credentials, OciLoader};

const TOKEN: &str = "test-token-123";

#[derive(Default)]
struct Fake {
    host: String,
    /// `Some((user, password))`: the token service needs basic auth; `None`: anonymous tokens.
    login: Option<(String, String)>,
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
    /// Requests to /v2/ and below (not the token service).
    registry_requests: AtomicUsize,
    token_requests: AtomicUsize,
    /// Bytes served instead of the named blob (a corrupt mirror).
    tamper: Mutex<bool>,
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    if path == "/token" {
        fake.token_requests.fetch_add(1, Ordering::SeqCst);
        if let Some((u, p)) = &fake.login {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            );
            if headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                != Some(&want)
            {
                return (StatusCode::UNAUTHORIZED, "bad login").into_response();
            }
        }
        let q = uri.query().unwrap_or_default();
        assert!(
            q.contains(&format!(
                "scope=repository%3A{}%3Apull",
                REPO.replace('/', "%2F")
            )) || q.contains(&format!("scope=repository:{REPO}:pull")),
            "token scope: {q}"
        );
        return json_body(StatusCode::OK, json!({"token": TOKEN, "expires_in": 300}));
    }
    fake.registry_requests.fetch_add(1, Ordering::SeqCst);
    let bearer = format!("Bearer {TOKEN}");
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&bearer)
    {
        let challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"fake\",scope=\"repository:{REPO}:pull\"",
            fake.host
        );
        let body =
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]});
        let mut r = json_body(StatusCode::UNAUTHORIZED, body);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge.parse().unwrap());
        return r;
    }
    if path == "/v2/" {
        return StatusCode::OK.into_response();
    }
    let rest = path
        .strip_prefix(&format!("/v2/{REPO}/"))
        .unwrap_or_default();
    let digest = sha256_digest(&fake.manifest);
    let body = match rest.split_once('/') {
        Some(("manifests", r)) if r == "0.84.0" || r == digest => fake.manifest.clone(),
        Some(("blobs", d)) if fake.blobs.contains_key(d) => {
            if *fake.tamper.lock().unwrap() {
                b"tampered: 1\n".to_vec()
            } else {
                fake.blobs[d].clone()
            }
        }
        _ => {
            let body =
                json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]});
            return json_body(StatusCode::NOT_FOUND, body);
        }
    };
    let ct = if rest.starts_with("manifests") {
        "application/vnd.oci.image.manifest.v1+json"
    } else {
        "application/octet-stream"
    };
    let mut h = vec![(header::CONTENT_TYPE.as_str().to_string(), ct.to_string())];
    if rest.starts_with("manifests") {
        h.push(("docker-content-digest".into(), digest));
    }
    let mut resp = if method == Method::HEAD {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut().insert(
            header::CONTENT_LENGTH,
            body.len().to_string().parse().unwrap(),
        );
        r
    } else {
        body.into_response()
    };
    for (k, v) in h {
        resp.headers_mut().insert(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

/// axum is built without its `json` feature here.
fn json_body(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Serves the 0.84.0 fixtures as ORAS-style layers behind a token service.
async fn start(login: Option<(&str, &str)>) -> Arc<Fake> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let mut blobs = HashMap::new();
    let mut layers = Vec::new();
    for (name, text) in fixture_files() {
        let d = sha256_digest(text.as_bytes());
        layers.push(
            json!({"mediaType": "application/yaml", "digest": d, "size": text.len(),
            "annotations": {TITLE_ANNOTATION: name}}),
        );
        blobs.insert(d, text.into_bytes());
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}"), "size": 2},
        "layers": layers,
    }))
    .unwrap();
    let fake = Arc::new(Fake {
        host,
        login: login.map(|(u, p)| (u.to_string(), p.to_string())),
        manifest,
        blobs,
        ..Default::default()
    });
    let app = Router::new().fallback(handle).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    fake
}

fn location(fake: &Fake) -> ManifestLocation {
    ManifestLocation::Oci(format!("{}/{REPO}", fake.host))
}

fn from_file() -> wandb_manifest::ServerManifest {
    ManifestLocation::parse(&common::fixtures())
        .unwrap()
        .load("0.84.0")
        .unwrap()
}

#[tokio::test]
async fn anonymous_tokens_are_fetched_and_a_cached_tag_costs_one_request() {
    let fake = start(None).await;
    let loader = OciLoader::new(vec![fake.host.clone()]);
    let m = manifests::load(&loader, &location(&fake), "0.84.0", None)
        .await
        .unwrap();
    assert_eq!(*m, from_file());
    assert!(fake.token_requests.load(Ordering::SeqCst) >= 1);

    let before = fake.registry_requests.load(Ordering::SeqCst);
    let again = manifests::load(&loader, &location(&fake), "0.84.0", None)
        .await
        .unwrap();
    assert_eq!(again, m);
    assert_eq!(
        fake.registry_requests.load(Ordering::SeqCst) - before,
        1,
        "an unchanged tag costs one manifest HEAD (token reused, no blob)"
    );
}

#[tokio::test]
async fn a_token_service_that_needs_a_login_gets_the_credentials() {
    let fake = start(Some(("puller", "tok-pw"))).await;
    let loader = OciLoader::new(vec![fake.host.clone()]);
    let err = manifests::load(&loader, &location(&fake), "0.84.0", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ManifestError::Registry { .. }), "{err:?}");
    assert!(err.to_string().contains("401"), "{err}");

    let creds = Credentials {
        username: "puller".into(),
        password: "tok-pw".into(),
    };
    let m = manifests::load(&loader, &location(&fake), "0.84.0", Some(&creds))
        .await
        .unwrap();
    assert_eq!(*m, from_file());
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_rejected() {
    let fake = start(None).await;
    *fake.tamper.lock().unwrap() = true;
    let loader = OciLoader::new(vec![fake.host.clone()]);
    let err = manifests::load(&loader, &location(&fake), "0.84.0", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ManifestError::Artifact { .. }), "{err:?}");
    assert!(err.to_string().contains("digest"), "{err}");
}
