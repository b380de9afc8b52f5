//! `file://` loading: single files, directories of files, and what is refused.

mod common;

use std::path::PathBuf;

use wandb_manifest::{ManifestError, ManifestLocation};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("wandb-manifest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn write(&self, rel: &str, text: &str) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    fn location(&self) -> ManifestLocation {
        ManifestLocation::parse(&format!("file://{}", self.0.display())).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loads_fixture_directories() {
    let m = common::fixture("0.84.0");
    // Both files were read: applications from manifest.yaml, their sizing from sizing.yaml.
    assert!(m.applications["api"].image.is_some());
    assert!(!m.applications["api"].sizing.is_empty());
}

#[test]
fn loads_a_single_file_version_and_prefers_it() {
    let dir = TempDir::new("single");
    dir.write(
        "1.2.3.yaml",
        "applications:\n  a: {image: {repository: one}}\n",
    );
    dir.write(
        "1.2.3/manifest.yaml",
        "applications:\n  a: {image: {repository: dir}}\n",
    );
    let m = dir.location().load("1.2.3").unwrap();
    assert_eq!(
        m.applications["a"].image.as_ref().unwrap().repository,
        "one"
    );
}

#[test]
fn directory_versions_merge_yaml_files_in_name_order_and_skip_others() {
    let dir = TempDir::new("dir");
    dir.write("2.0.0/b.yml", "applications:\n  a: {args: [from-b]}\n");
    dir.write(
        "2.0.0/a.yaml",
        "applications:\n  a: {image: {repository: r}, args: [from-a]}\n",
    );
    dir.write("2.0.0/README.md", "not yaml: [\n");
    let m = dir.location().load("2.0.0").unwrap();
    assert_eq!(m.applications["a"].args, ["from-b"]);
    assert_eq!(m.applications["a"].image.as_ref().unwrap().repository, "r");
}

#[test]
fn missing_versions_and_bad_files_are_clear_errors() {
    let dir = TempDir::new("errors");
    let err = dir.location().load("9.9.9").unwrap_err();
    assert!(matches!(err, ManifestError::NotFound { .. }));
    assert!(
        err.to_string()
            .contains("no server manifest for version 9.9.9"),
        "{err}"
    );

    dir.write(
        "3.0.0/manifest.yaml",
        "applications:\n  a:\n    containers: 5\n",
    );
    let err = dir.location().load("3.0.0").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("3.0.0/manifest.yaml") && text.contains("applications.a.containers"),
        "{text}"
    );

    let err = dir.location().load("../errors").unwrap_err();
    assert!(matches!(err, ManifestError::BadVersion { .. }), "{err}");
}
