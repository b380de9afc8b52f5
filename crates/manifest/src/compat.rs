//! Compatibility between a manifest and this operator.
//!
//! A manifest states `requiredOperatorVersion: ^2.0.0`. The official operator parses it and never
//! checks it (§9.11). We check it against [`MANIFEST_FORMAT_VERSION`]: the level of the manifest
//! format this operator implements, which is a property of this crate's model, not the operator's
//! release number. Bump the minor when the model learns a backwards-compatible addition of the
//! official format (2.1.0 for a manifest that needs it), the major for a breaking format.

use semver::{Version, VersionReq};

use crate::error::ManifestError;
use crate::model::ServerManifest;

/// The manifest-format level implemented here: the official operator v2 format (`^2.x`).
pub const MANIFEST_FORMAT_VERSION: Version = Version::new(2, 0, 0);

impl ServerManifest {
    /// Refuses manifests whose `requiredOperatorVersion` excludes [`MANIFEST_FORMAT_VERSION`].
    /// A manifest without the field is accepted.
    pub fn check_compatible(&self) -> Result<(), ManifestError> {
        let Some(raw) = self
            .required_operator_version
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(());
        };
        let req = VersionReq::parse(raw).map_err(|e| ManifestError::BadRequirement {
            value: raw.to_owned(),
            reason: e.to_string(),
        })?;
        if req.matches(&MANIFEST_FORMAT_VERSION) {
            Ok(())
        } else {
            Err(ManifestError::Incompatible {
                required: raw.to_owned(),
                implemented: MANIFEST_FORMAT_VERSION,
            })
        }
    }
}
