//! The built-in manifest: classic W&B Server (`wandb/local` and its side services), compiled in
//! so the operator works without any registry.
//!
//! Written by us, in the normal manifest format, from the documented deployment contract of the
//! `operator-wandb` chart (reference `wandb-helm-terraform.md` §1.3-1.4, §6a). It needs only
//! MySQL, Redis and an object store: no ClickHouse, no Kafka.
//!
//! One file serves every version: images whose tag is [`VERSION_PLACEHOLDER`] get the requested
//! version as their tag when loaded (the W&B images of one release share its version tag:
//! `wandb/local`, `wandb/megabinary`, `wandb/weave-python`). The substitution is done on the
//! parsed model, never on the YAML text, so a version string cannot change the document.
//!
//! No migrations: `wandb/local` migrates its MySQL schema itself at start (§1.8), which is why its
//! startup probe allows about ten minutes.

use crate::ServerManifest;
use crate::error::ManifestError;
use crate::source::check_version;

/// The YAML of the built-in manifest.
pub const MANIFEST_YAML: &str = include_str!("../builtin/manifest.yaml");

/// Image tag in [`MANIFEST_YAML`] replaced by the requested version.
pub const VERSION_PLACEHOLDER: &str = "${VERSION}";

/// The built-in manifest for `version` (checked like any CR version).
pub fn manifest(version: &str) -> Result<ServerManifest, ManifestError> {
    check_version(version)?;
    let mut m = ServerManifest::from_documents(&[(
        "builtin/manifest.yaml".to_owned(),
        MANIFEST_YAML.to_owned(),
    )])?;
    m.for_each_image_mut(|image| {
        if image.tag.as_deref() == Some(VERSION_PLACEHOLDER) {
            image.tag = Some(version.to_owned());
        }
    });
    Ok(m)
}
