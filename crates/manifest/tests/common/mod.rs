//! Shared helpers: the real manifests live outside the repo, in the shared fixtures.

#![allow(dead_code)]

use std::path::PathBuf;

use wandb_manifest::{ManifestLocation, ServerManifest};

/// `shared/fixtures/server-manifest`, next to the repository.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/server-manifest")
}

/// Loads a fixture version through the `file://` loader (the path users take).
pub fn fixture(version: &str) -> ServerManifest {
    let location = ManifestLocation::File(fixtures_dir());
    location
        .load(version)
        .unwrap_or_else(|e| panic!("loading fixture {version}: {e}"))
}
