//! Helpers the engine's integration tests share.

use std::path::PathBuf;

use wandb_manifest::{ManifestLocation, ServerManifest};

/// The real server manifests, beside the repository.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/server-manifest")
}

/// A manifest from `fixture` (the real ones) or `builtin`, checked compatible.
pub fn manifest(source: &str, version: &str) -> ServerManifest {
    let loc = if source == "builtin" {
        ManifestLocation::parse("builtin://").unwrap()
    } else {
        let dir = fixtures();
        assert!(
            dir.is_dir(),
            "fixtures missing at {} (shared/ must sit beside the repo)",
            dir.display()
        );
        ManifestLocation::parse(&format!("file://{}", dir.display())).unwrap()
    };
    let m = loc
        .load(version)
        .unwrap_or_else(|e| panic!("load {source} {version}: {e}"));
    m.check_compatible().unwrap();
    m
}
