//! `oci://` manifests against a real registry (CNCF Distribution on 127.0.0.1, see
//! `wandb_testkit::registry`): pull by tag, re-pushed tags, the digest cache, registry outages,
//! indexes, bad artifacts, basic auth, and `render --manifest oci://`.

mod common;

use common::oci::{self, REPO};
use wandb_manifest::{ManifestError, ManifestLocation, ServerManifest};
use wandb_operator::manifests::{self, Credentials, OciLoader};
use wandb_testkit::registry::Registry;

fn location(reg: &Registry) -> ManifestLocation {
    ManifestLocation::Oci(format!("{}/{REPO}", reg.host()))
}

fn from_file() -> ServerManifest {
    ManifestLocation::parse(&common::fixtures())
        .unwrap()
        .load("0.84.0")
        .unwrap()
}

async fn load(
    loader: &OciLoader,
    reg: &Registry,
    version: &str,
    creds: Option<&Credentials>,
) -> Result<ServerManifest, ManifestError> {
    manifests::load(loader, &location(reg), version, creds)
        .await
        .map(|m| (*m).clone())
}

/// Sends a DELETE over plain HTTP (the registry allows deletes): to prove a cache hit downloads
/// no blob.
fn delete(host: &str, path: &str) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "DELETE {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 202"),
        "DELETE {path}: {answer}"
    );
}

#[tokio::test]
#[ignore = "needs the registry binary (scripts/build-k8s-bins.sh registry)"]
async fn a_tag_pulls_like_file_and_a_repushed_tag_is_seen() {
    let reg = Registry::start();
    let files = oci::fixture_files();
    let layer = oci::tar_gz_layer(&files);
    oci::push(
        reg.host(),
        Some("0.84.0"),
        std::slice::from_ref(&layer),
        None,
    )
    .await;
    let loader = OciLoader::new(vec![reg.host().to_string()]);

    let pulled = load(&loader, &reg, "0.84.0", None).await.unwrap();
    assert_eq!(
        pulled,
        from_file(),
        "oci:// and file:// give the same manifest"
    );
    assert!(!pulled.features["filestreamQueue"]);

    // Unchanged tag: served from the cache by digest, no blob download (the blob is gone).
    let layer_digest = wandb_manifest::artifact::sha256_digest(&layer.bytes);
    delete(reg.host(), &format!("/v2/{REPO}/blobs/{layer_digest}"));
    let again = load(&loader, &reg, "0.84.0", None).await.unwrap();
    assert_eq!(again, pulled);

    // Re-pushed tag (ORAS-style plain YAML layers this time) with a changed file: seen.
    let mut changed = files.clone();
    for (name, text) in &mut changed {
        if name == "manifest.yaml" {
            *text = text.replacen("filestreamQueue: false", "filestreamQueue: true", 1);
        }
    }
    oci::push(
        reg.host(),
        Some("0.84.0"),
        &oci::yaml_layers(&changed),
        None,
    )
    .await;
    let repushed = load(&loader, &reg, "0.84.0", None).await.unwrap();
    assert!(
        repushed.features["filestreamQueue"],
        "the re-pushed tag's content is used"
    );

    // The registry goes away: the tag loaded before is served from the cache...
    let host = reg.host().to_string();
    drop(reg);
    let cached = manifests::load(
        &loader,
        &ManifestLocation::Oci(format!("{host}/{REPO}")),
        "0.84.0",
        None,
    )
    .await
    .unwrap();
    assert_eq!(*cached, repushed);
    // ...but a process that never loaded it says the registry is unreachable.
    let fresh = OciLoader::new(vec![host.clone()]);
    let err = manifests::load(
        &fresh,
        &ManifestLocation::Oci(format!("{host}/{REPO}")),
        "0.84.0",
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ManifestError::Registry { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("oci://{host}/{REPO}:0.84.0")) && msg.contains("cannot reach"),
        "{msg}"
    );
}

#[tokio::test]
#[ignore = "needs the registry binary (scripts/build-k8s-bins.sh registry)"]
async fn a_missing_tag_names_the_reference_and_the_registry_answer() {
    let reg = Registry::start();
    let loader = OciLoader::new(vec![reg.host().to_string()]);
    // An empty repository, then a repository without that tag.
    for _ in 0..2 {
        let err = load(&loader, &reg, "0.99.0", None).await.unwrap_err();
        assert!(matches!(err, ManifestError::Registry { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("oci://{}/{REPO}:0.99.0", reg.host())),
            "{msg}"
        );
        assert!(
            msg.contains("MANIFEST_UNKNOWN") || msg.contains("NAME_UNKNOWN"),
            "{msg}"
        );
        oci::push(
            reg.host(),
            Some("0.84.0"),
            &oci::yaml_layers(&oci::fixture_files()),
            None,
        )
        .await;
    }
}

#[tokio::test]
#[ignore = "needs the registry binary (scripts/build-k8s-bins.sh registry)"]
async fn an_index_is_followed_to_its_first_manifest() {
    let reg = Registry::start();
    let files = oci::fixture_files();
    let good = oci::push(reg.host(), None, &oci::yaml_layers(&files), None).await;
    let other = oci::push(
        reg.host(),
        None,
        &oci::yaml_layers(&[("x.yaml".into(), "features: {}\n".into())]),
        None,
    )
    .await;
    oci::push_index(reg.host(), "0.84.0", &[good, other]).await;
    let loader = OciLoader::new(vec![reg.host().to_string()]);
    assert_eq!(
        load(&loader, &reg, "0.84.0", None).await.unwrap(),
        from_file()
    );
}

#[tokio::test]
#[ignore = "needs the registry binary (scripts/build-k8s-bins.sh registry)"]
async fn an_artifact_without_yaml_is_invalid() {
    let reg = Registry::start();
    let notes = oci::Layer {
        bytes: b"not a manifest".to_vec(),
        media_type: "text/plain",
        title: Some("README.txt".into()),
    };
    oci::push(reg.host(), Some("0.84.0"), &[notes], None).await;
    let loader = OciLoader::new(vec![reg.host().to_string()]);
    let err = load(&loader, &reg, "0.84.0", None).await.unwrap_err();
    assert!(matches!(err, ManifestError::Artifact { .. }), "{err:?}");
    assert!(err.to_string().contains("no *.yaml"), "{err}");
}

#[tokio::test]
#[ignore = "needs the registry binary (scripts/build-k8s-bins.sh registry)"]
async fn an_auth_registry_needs_the_credentials() {
    let reg = Registry::start_with_auth("puller", "s3cret-pw");
    oci::push(
        reg.host(),
        Some("0.84.0"),
        &oci::yaml_layers(&oci::fixture_files()),
        Some(("puller", "s3cret-pw")),
    )
    .await;
    let loader = OciLoader::new(vec![reg.host().to_string()]);

    let err = load(&loader, &reg, "0.84.0", None).await.unwrap_err();
    assert!(matches!(err, ManifestError::Registry { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("401") && msg.contains(&format!("oci://{}/{REPO}:0.84.0", reg.host())),
        "{msg}"
    );

    let wrong = Credentials {
        username: "puller".into(),
        password: "wrong".into(),
    };
    let msg = load(&loader, &reg, "0.84.0", Some(&wrong))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("401") && !msg.contains("wrong"), "{msg}");

    let right = Credentials {
        username: "puller".into(),
        password: "s3cret-pw".into(),
    };
    assert_eq!(
        load(&loader, &reg, "0.84.0", Some(&right)).await.unwrap(),
        from_file()
    );
}

#[tokio::test]
#[ignore = "needs the registry binary (scripts/build-k8s-bins.sh registry)"]
async fn render_pulls_an_oci_manifest_from_an_insecure_registry() {
    let reg = Registry::start();
    oci::push(
        reg.host(),
        Some("0.84.0"),
        &[oci::tar_gz_layer(&oci::fixture_files())],
        None,
    )
    .await;
    let dir = std::env::temp_dir().join(format!("wandb-oci-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cr = dir.join("cr.yaml");
    std::fs::write(
        &cr,
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: wandb}\n\
         spec:\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"0.84.0\"\n",
    )
    .unwrap();
    let location = format!("oci://{}/{REPO}", reg.host());
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
            .args(["render", "-f"])
            .arg(&cr)
            .args(["--manifest", &location])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--insecure-registry", reg.host()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("kind: Deployment"));
    // Without the flag the client speaks HTTPS to a plain-HTTP registry and fails clearly.
    let https = run(&[]);
    assert_eq!(https.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&https.stderr).contains("cannot reach the registry"),
        "{}",
        String::from_utf8_lossy(&https.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
