//! Where manifests come from: `file://DIR`, `builtin://`, `oci://REF`.
//!
//! This is the only module of the crate that does I/O. `file://DIR` reads `DIR/<version>.yaml`,
//! or else every `*.yaml`/`*.yml` file of `DIR/<version>/` (merged by
//! [`ServerManifest::from_documents`]). `builtin://` returns the compiled-in manifest for the
//! version. `oci://` is parsed but not fetched here: the operator owns registry access
//! (credentials, caching; `wandb_operator::manifests`) and turns the artifact into documents with
//! [`crate::artifact`]; this offline [`ManifestLocation::load`] returns
//! [`ManifestError::OciNotSupported`] for it.
//!
//! The version comes from the CR, so it is checked before it touches a path: it must be a valid
//! OCI tag (letters, digits, `_`, `.`, `-`; no `/`, no leading `.` or `-`) and not `latest`
//! (versions must be pinned).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::ServerManifest;
use crate::builtin;
use crate::error::ManifestError;

/// A parsed manifest location (the CR's `spec.wandb.manifestRepository`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestLocation {
    /// A directory of `<version>.yaml` files or `<version>/` directories.
    File(PathBuf),
    /// The manifest compiled into the operator ([`crate::builtin`]).
    Builtin,
    /// An OCI repository, without the `oci://` prefix (e.g.
    /// `us-docker.pkg.dev/wandb-production/public/wandb/server-manifest`).
    Oci(String),
}

impl ManifestLocation {
    /// Parses a location. A string without a scheme is an OCI repository (as in the official
    /// operator); `http(s)://` is refused with a hint.
    pub fn parse(s: &str) -> Result<Self, ManifestError> {
        let s = s.trim();
        let bad = |reason: &str| ManifestError::BadLocation {
            location: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.is_empty() {
            return Err(bad(
                "empty; expected file://DIR, builtin:// or oci://REPOSITORY",
            ));
        }
        if s == "builtin" || s == "builtin:" || s == "builtin://" {
            return Ok(Self::Builtin);
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(Self::Oci(s.to_owned()));
        };
        match scheme {
            "file" if rest.is_empty() => {
                Err(bad("file:// needs a directory, e.g. file:///manifests"))
            }
            "file" => Ok(Self::File(PathBuf::from(rest))),
            "builtin" if rest.is_empty() => Ok(Self::Builtin),
            "builtin" => Err(bad("builtin:// takes no path")),
            "oci" if rest.is_empty() => Err(bad("oci:// needs a repository")),
            "oci" => Ok(Self::Oci(rest.to_owned())),
            "http" | "https" => Err(bad(
                "http(s) is not supported; use oci://, file:// or builtin://",
            )),
            _ => Err(bad(
                "unknown scheme; expected file://, builtin:// or oci://",
            )),
        }
    }

    /// Loads the manifest of `version` from this location, offline (`oci://` is refused; see the
    /// module docs). Parse and merge only; callers run
    /// [`ServerManifest::check_compatible`] and [`ServerManifest::ensure_valid`].
    pub fn load(&self, version: &str) -> Result<ServerManifest, ManifestError> {
        check_version(version)?;
        match self {
            Self::Builtin => builtin::manifest(version),
            Self::Oci(reference) => Err(ManifestError::OciNotSupported {
                reference: format!("oci://{reference}:{version}"),
            }),
            Self::File(dir) => ServerManifest::from_documents(&read_version(dir, version)?),
        }
    }
}

impl FromStr for ManifestLocation {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ManifestLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(dir) => write!(f, "file://{}", dir.display()),
            Self::Builtin => f.write_str("builtin://"),
            Self::Oci(r) => write!(f, "oci://{r}"),
        }
    }
}

/// Checks that `version` can name a manifest (see module docs).
pub fn check_version(version: &str) -> Result<(), ManifestError> {
    let bad = |reason: &str| ManifestError::BadVersion {
        version: version.to_owned(),
        reason: reason.to_owned(),
    };
    if version.is_empty() {
        return Err(bad("it is empty"));
    }
    if version == "latest" {
        return Err(bad("versions must be pinned; `latest` is not allowed"));
    }
    if version.len() > 128 {
        return Err(bad("it is longer than 128 characters"));
    }
    if version.starts_with(['.', '-']) {
        return Err(bad("it must start with a letter, digit or `_`"));
    }
    if !version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(bad("only letters, digits, `.`, `_` and `-` are allowed"));
    }
    Ok(())
}

/// The `(file name, text)` documents of `version` under `dir`.
fn read_version(dir: &Path, version: &str) -> Result<Vec<(String, String)>, ManifestError> {
    let single = dir.join(format!("{version}.yaml"));
    if single.is_file() {
        return Ok(vec![(format!("{version}.yaml"), read(&single)?)]);
    }
    let sub = dir.join(version);
    let not_found = || ManifestError::NotFound {
        dir: dir.to_owned(),
        version: version.to_owned(),
    };
    if !sub.is_dir() {
        return Err(not_found());
    }
    let io = |source| ManifestError::Io {
        path: sub.clone(),
        source,
    };
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&sub).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if is_yaml && path.is_file() {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            docs.push((format!("{version}/{name}"), read(&path)?));
        }
    }
    if docs.is_empty() {
        return Err(not_found());
    }
    Ok(docs)
}

fn read(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            ManifestLocation::parse("file:///srv/manifests").unwrap(),
            ManifestLocation::File("/srv/manifests".into())
        );
        assert_eq!(
            ManifestLocation::parse("builtin://").unwrap(),
            ManifestLocation::Builtin
        );
        assert_eq!(
            ManifestLocation::parse("oci://r.io/wandb/server-manifest").unwrap(),
            ManifestLocation::Oci("r.io/wandb/server-manifest".into())
        );
        assert_eq!(
            ManifestLocation::parse("r.io/wandb/server-manifest").unwrap(),
            ManifestLocation::Oci("r.io/wandb/server-manifest".into())
        );
        for bad in [
            "",
            "https://x/y",
            "file://",
            "ftp://x",
            "builtin://x",
            "oci://",
        ] {
            assert!(
                ManifestLocation::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let loc = ManifestLocation::parse("file:///a/b").unwrap();
        assert_eq!(loc.to_string().parse::<ManifestLocation>().unwrap(), loc);
    }

    #[test]
    fn versions_are_checked_before_touching_paths() {
        for ok in ["0.79.0", "0.84.0-notifications-security-flags.0", "v1_2"] {
            check_version(ok).unwrap();
        }
        for bad in [
            "", "latest", "../etc", "a/b", ".hidden", "-x", "1 2", "a\\b",
        ] {
            assert!(check_version(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn oci_is_a_typed_not_supported_error() {
        let err = ManifestLocation::parse("oci://r.io/m")
            .unwrap()
            .load("0.79.0")
            .unwrap_err();
        assert!(
            matches!(err, ManifestError::OciNotSupported { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("oci://r.io/m:0.79.0"));
    }
}
