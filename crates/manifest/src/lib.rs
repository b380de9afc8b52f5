//! The W&B server manifest: model, loading, and the pure lookups the engine builds from.
//!
//! W&B publishes per server version a YAML "server manifest" listing applications, images, env
//! wiring, migrations, generated secrets, Kafka topics and sizing. This crate:
//!
//! * **parses** it leniently ([`model`]: unknown keys ignored, `key:` with no value is empty,
//!   quantities as numbers or strings, the `source:`/`sources:` typo accepted);
//! * **merges** multi-file versions deeply in file-name order
//!   ([`ServerManifest::from_documents`], [`merge`]);
//! * **checks** it: [`ServerManifest::check_compatible`] against [`MANIFEST_FORMAT_VERSION`], and
//!   [`ServerManifest::validate`] / [`ServerManifest::ensure_valid`] for structural problems;
//! * **answers** what the engine asks: effective features ([`ServerManifest::effective_features`],
//!   [`app_enabled`], [`topic_enabled`]), resolved sizing ([`Application::sizing_for`],
//!   [`ServerManifest::infra_sizing`], [`size_key`]), env and mounts with common groups expanded
//!   ([`ServerManifest::app_env`], [`ServerManifest::app_volume_mounts`]), containers with app
//!   fallbacks ([`Application::effective_containers`]), Service ports by number or name
//!   ([`Application::find_service_port`]), image references with registry retargeting
//!   ([`ImageRef::reference`]);
//! * **loads** manifests from `file://` or the built-in manifest ([`ManifestLocation`]; the only
//!   module with I/O); for `oci://` it turns an artifact's layers into documents ([`artifact`],
//!   pure) and the operator does the fetching.
//!
//! Everything except [`source`] is pure: values in, values out.
//!
//! ```
//! use std::collections::BTreeMap;
//! use wandb_manifest::{ManifestLocation, size_key};
//!
//! let m = ManifestLocation::parse("builtin://")?.load("0.79.0")?;
//! m.check_compatible()?;
//! m.ensure_valid()?;
//! let features = m.effective_features(&BTreeMap::new());
//! for (name, app) in m.enabled_applications(&features) {
//!     let sizing = app.sizing_for(size_key("small"), false);
//!     let image = app.image.as_ref().map(|i| i.reference(None));
//!     let env = m.app_env(name)?;
//!     assert!(!env.is_empty() && image.is_some() && sizing.resources.is_some());
//! }
//! # Ok::<(), wandb_manifest::ManifestError>(())
//! ```

pub mod artifact;
pub mod builtin;
pub mod compat;
pub mod compose;
mod error;
pub mod features;
pub mod image;
pub mod lenient;
pub mod merge;
pub mod model;
pub mod sizing;
pub mod source;
pub mod validate;

pub use compat::MANIFEST_FORMAT_VERSION;
pub use error::ManifestError;
pub use features::{app_enabled, topic_enabled};
pub use model::*;
pub use sizing::{InfraKind, resolve as resolve_sizing, size_key};
pub use source::ManifestLocation;
pub use validate::{Problem, Severity};
