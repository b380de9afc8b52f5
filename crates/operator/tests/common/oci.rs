//! Pushing server-manifest artifacts to a test registry (per the distribution spec, with the
//! same client the operator pulls with).

use std::io::Write as _;
use std::path::PathBuf;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::json;
use wandb_manifest::artifact::{TITLE_ANNOTATION, sha256_digest};

pub const REPO: &str = "wandb/server-manifest";

/// One layer: bytes, media type, optional file-name annotation.
pub struct Layer {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub title: Option<String>,
}

/// The shared 0.84.0 fixture files, `(file name, text)`.
pub fn fixture_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/server-manifest/0.84.0");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixture files in {}", dir.display());
    files
}

/// The files as one `tar+gzip` layer (the official artifact's layout).
pub fn tar_gz_layer(files: &[(String, String)]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for (name, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("0.84.0/{name}"), text.as_bytes())
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    Layer {
        bytes: gz.finish().unwrap(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        title: None,
    }
}

/// The files as ORAS-style layers: one plain YAML file each, named by the title annotation.
pub fn yaml_layers(files: &[(String, String)]) -> Vec<Layer> {
    files
        .iter()
        .map(|(name, text)| Layer {
            bytes: text.clone().into_bytes(),
            media_type: "application/yaml",
            title: Some(name.clone()),
        })
        .collect()
}

/// A client for `host` (plain HTTP) and the auth to use.
pub async fn client(host: &str, creds: Option<(&str, &str)>) -> (Client, RegistryAuth, Reference) {
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![host.to_string()]),
        ..Default::default()
    });
    let auth = creds.map_or(RegistryAuth::Anonymous, |(u, p)| {
        RegistryAuth::Basic(u.into(), p.into())
    });
    let base: Reference = format!("{host}/{REPO}:unused").parse().unwrap();
    client
        .auth(&base, &auth, RegistryOperation::Push)
        .await
        .expect("registry auth for push");
    (client, auth, base)
}

/// A pushed manifest.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub digest: String,
    pub size: usize,
}

/// Pushes an image manifest with `layers` under `tag` (or untagged when `None`).
pub async fn push(
    host: &str,
    tag: Option<&str>,
    layers: &[Layer],
    creds: Option<(&str, &str)>,
) -> Pushed {
    let (client, _, base) = client(host, creds).await;
    let config = b"{}".to_vec();
    let config_digest = sha256_digest(&config);
    client
        .push_blob(&base, config, &config_digest)
        .await
        .expect("push config");
    let mut descriptors = Vec::new();
    for l in layers {
        let digest = sha256_digest(&l.bytes);
        client
            .push_blob(&base, l.bytes.clone(), &digest)
            .await
            .expect("push layer");
        let mut d = json!({"mediaType": l.media_type, "digest": digest, "size": l.bytes.len()});
        if let Some(t) = &l.title {
            d["annotations"] = json!({ TITLE_ANNOTATION: t });
        }
        descriptors.push(d);
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "artifactType": "application/vnd.wandb.server-manifest.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": descriptors,
    });
    put_manifest(&client, &base, tag, manifest, OCI_IMAGE_MEDIA_TYPE).await
}

/// Tags an index whose manifests are `pushed` (image manifests pushed before), in order.
pub async fn push_index(host: &str, tag: &str, pushed: &[Pushed]) -> Pushed {
    let (client, _, base) = client(host, None).await;
    let manifests: Vec<_> = pushed
        .iter()
        .map(|p| json!({"mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": p.digest, "size": p.size}))
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE, "manifests": manifests});
    put_manifest(&client, &base, Some(tag), index, OCI_IMAGE_INDEX_MEDIA_TYPE).await
}

async fn put_manifest(
    client: &Client,
    base: &Reference,
    tag: Option<&str>,
    body: serde_json::Value,
    media_type: &str,
) -> Pushed {
    let bytes = serde_json::to_vec(&body).unwrap();
    let size = bytes.len();
    let digest = sha256_digest(&bytes);
    let target = match tag {
        Some(t) => Reference::with_tag(base.registry().into(), base.repository().into(), t.into()),
        None => base.clone_with_digest(digest.clone()),
    };
    client
        .push_manifest_raw(&target, bytes, media_type.parse().unwrap())
        .await
        .expect("push manifest");
    Pushed { digest, size }
}
