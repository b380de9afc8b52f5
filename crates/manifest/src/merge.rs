//! Loading a manifest from one or more YAML files, merged deeply.
//!
//! A W&B Server version may ship several files (0.84.0: `manifest.yaml` + `sizing.yaml`). They
//! are merged in lexical file-name order into one YAML tree: mappings merge recursively, and for
//! scalars and lists the later file wins. A key whose value is `null` (`key:` with nothing) adds
//! nothing and never erases what an earlier file set.
//!
//! This replaces the official operator's merge, which merges per application only `ingress`,
//! `sizing` and `commonEnvs` and drops every other field a later file sets (§9.10), and takes
//! `generatedSecrets`/`kafka.topics` from the first file only: here a later file's list simply
//! replaces the earlier one, like any list.
//!
//! Each file is also deserialized on its own into the typed model, so that a type error names the
//! file, line and column (serde-saphyr) and the YAML path of the field (`serde_path_to_error`);
//! the model makes every field optional so fragments type-check.

use serde_json::{Map, Value};

use crate::ServerManifest;
use crate::error::ManifestError;

/// The YAML dialect: YAML 1.2 booleans only (`yes`/`on` stay strings, so an env value `on` is
/// not silently turned into `true`); everything else serde-saphyr's defaults.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    options
}

impl ServerManifest {
    /// Parses and merges the files of one manifest version. `docs` are `(file name, YAML text)`;
    /// the order given does not matter (files are sorted by name). A file may hold several YAML
    /// documents (`---`), merged in order. Empty files are skipped.
    pub fn from_documents(docs: &[(String, String)]) -> Result<Self, ManifestError> {
        let mut sorted: Vec<&(String, String)> = docs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));

        let mut merged: Option<Value> = None;
        let mut used = Vec::new();
        for (file, text) in sorted {
            let trees: Vec<Value> =
                serde_saphyr::from_str_multiple_with_options(text, yaml_options())
                    .map_err(|e| parse_error(file, &e))?;
            // Type-check alone for precise positions; the result itself is not used.
            check_types(file, text, trees.len())?;
            for tree in trees {
                if tree.is_null() {
                    continue;
                }
                if !tree.is_object() {
                    return Err(ManifestError::Parse {
                        file: file.clone(),
                        line: None,
                        column: None,
                        message: "the top level of a manifest document must be a mapping".into(),
                    });
                }
                match &mut merged {
                    Some(base) => deep_merge(base, tree),
                    None => merged = Some(tree),
                }
                if used.last() != Some(file) {
                    used.push(file.clone());
                }
            }
        }
        let merged = merged.ok_or(ManifestError::Empty)?;
        serde_path_to_error::deserialize(merged).map_err(|e| ManifestError::Merged {
            files: used.join(", "),
            message: format!("{}: {}", e.path(), e.inner()),
        })
    }

    /// Parses a single-file manifest (named `manifest.yaml` in error messages).
    pub fn from_yaml(text: &str) -> Result<Self, ManifestError> {
        Self::from_documents(&[("manifest.yaml".to_owned(), text.to_owned())])
    }
}

/// Merges `overlay` into `base`: maps recursively, anything else replaced, `null` ignored.
pub(crate) fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(overlay)) => merge_maps(base, overlay),
        (base, overlay) => *base = overlay,
    }
}

fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match base.get_mut(&key) {
            Some(existing) => deep_merge(existing, value),
            None if value.is_null() => {}
            None => {
                base.insert(key, value);
            }
        }
    }
}

/// Deserializes `text` into the model to report a type error with file, line, column and, for
/// single-document files, the YAML path of the field (serde-saphyr under `serde_path_to_error`,
/// so position and path come from the same traversal).
fn check_types(file: &str, text: &str, documents: usize) -> Result<(), ManifestError> {
    if documents > 1 {
        return serde_saphyr::from_str_multiple_with_options::<ServerManifest, Vec<_>>(
            text,
            yaml_options(),
        )
        .map(drop)
        .map_err(|e| parse_error(file, &e));
    }
    let mut path = None;
    let result =
        serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
            serde_path_to_error::deserialize::<_, ServerManifest>(de)
                .map(drop)
                .map_err(|e| {
                    path = Some(e.path().to_string());
                    e.into_inner()
                })
        });
    result.map_err(|e| {
        let mut err = parse_error(file, &e);
        if let (ManifestError::Parse { message, .. }, Some(path)) = (&mut err, path) {
            *message = format!("{path}: {message}");
        }
        err
    })
}

fn parse_error(file: &str, err: &serde_saphyr::Error) -> ManifestError {
    let location = err.location();
    ManifestError::Parse {
        file: file.to_owned(),
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_merge_merges_maps_and_replaces_leaves() {
        let mut base = json!({"a": {"x": 1, "y": [1, 2]}, "b": "keep", "n": 1});
        deep_merge(
            &mut base,
            json!({"a": {"y": [3], "z": true}, "c": null, "n": null}),
        );
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": [3], "z": true}, "b": "keep", "n": 1})
        );
    }
}
