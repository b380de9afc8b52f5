//! The one error type of this crate. Every message names what to fix: the file and YAML
//! position for parse errors, the app and field for validation problems.

use std::fmt;
use std::path::PathBuf;

use crate::validate::Problem;

/// Anything that can go wrong loading or checking a server manifest.
///
/// All variants except [`ManifestError::Io`] are user-fixable (wrong manifest, wrong location or
/// version in the CR); `Io` may be transient.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// No document was given, or all were empty.
    #[error("server manifest is empty: no YAML documents were given")]
    Empty,

    /// A file is not valid YAML or does not have the manifest's shape.
    #[error("server manifest file {file}: {message}")]
    Parse {
        file: String,
        /// 1-based position in `file`, when the parser knows it.
        line: Option<u64>,
        column: Option<u64>,
        message: String,
    },

    /// The files are individually valid but their merge is not (should not happen: a deep merge
    /// of well-typed files is well-typed; kept as a safety net).
    #[error("server manifest (merged from {files}): {message}")]
    Merged { files: String, message: String },

    /// `requiredOperatorVersion` excludes this operator's manifest-format level.
    #[error(
        "server manifest requires operator manifest format {required}, this operator implements \
         {implemented}: use an operator release that supports it, or a manifest for an older W&B \
         Server version"
    )]
    Incompatible {
        required: String,
        implemented: semver::Version,
    },

    /// `requiredOperatorVersion` is not a semver requirement.
    #[error(
        "server manifest requiredOperatorVersion {value:?} is not a semver requirement: {reason}"
    )]
    BadRequirement { value: String, reason: String },

    /// Structural problems found by [`crate::ServerManifest::ensure_valid`]; all of them.
    #[error("server manifest is invalid:\n{}", ProblemList(.0))]
    Invalid(Vec<Problem>),

    /// A `commonEnvs`/`commonVolumeMounts` entry names a group that does not exist.
    #[error(
        "{owner}: {field} names group {group:?}, which is not defined in the manifest's {section}"
    )]
    UnknownGroup {
        owner: String,
        field: &'static str,
        group: String,
        section: &'static str,
    },

    /// A name given by the caller is not in the manifest.
    #[error("server manifest has no {kind} named {name:?}")]
    NotInManifest { kind: &'static str, name: String },

    /// The manifest location string is not understood.
    #[error("manifest location {location:?}: {reason}")]
    BadLocation { location: String, reason: String },

    /// The location is an OCI reference: the offline [`crate::ManifestLocation::load`] does not
    /// fetch from registries (the operator's async loader does).
    #[error(
        "manifest location {reference:?}: OCI registries are fetched by the operator's loader, \
         not by this offline loader; use file://DIR or builtin:// here"
    )]
    OciNotSupported { reference: String },

    /// The registry could not be reached, refused the credentials, or has no such tag.
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },

    /// The registry answered, but the artifact does not hold a usable manifest (no YAML, bad
    /// digest, unknown layout).
    #[error("{reference}: {message}")]
    Artifact { reference: String, message: String },

    /// The version string cannot name a manifest (empty, `latest`, path separators, ...).
    #[error("server version {version:?} cannot select a manifest: {reason}")]
    BadVersion { version: String, reason: String },

    /// Neither `DIR/<version>.yaml` nor `DIR/<version>/*.yaml` exists.
    #[error(
        "no server manifest for version {version} in {dir}: expected {dir}/{version}.yaml or \
         YAML files in {dir}/{version}/"
    )]
    NotFound { dir: PathBuf, version: String },

    /// Reading a manifest file failed.
    #[error("reading server manifest {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}
