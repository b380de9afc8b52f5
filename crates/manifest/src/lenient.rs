//! Serde helpers that make the manifest model tolerant of how real manifests are written.
//!
//! Server manifests are hand-written YAML. Two habits would break a strict model:
//!
//! * `key:` with nothing after it is YAML `null`. The official manifests write `args:` or
//!   `commonEnvs:` this way to mean "empty", so every collection field treats `null` as empty
//!   ([`nullable`]), and so does every map value ([`nullable_values`]: `small:` with nothing
//!   under it is an empty sizing entry).
//! * Scalars are typed by YAML, not by the field: `cpu: 2` is an integer, `memory: 2Gi` a string,
//!   `value: true` a boolean. Fields that are strings in Kubernetes (quantities, env values, image
//!   tags) accept any scalar and keep its text ([`string`], [`opt_string`], [`string_map`]).
//!
//! The same helpers work for both input paths used by [`crate::ServerManifest::from_documents`]:
//! directly from YAML text (per-file type check, with line/column) and from the merged
//! `serde_json::Value` tree.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// Deserializes `T`, mapping YAML `null` (an empty `key:`) to `T::default()`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Deserializes a map whose values may be `null` (`small:` with nothing under it): `null` values
/// become `V::default()`, and a `null` map is empty.
pub fn nullable_values<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de> + Default,
{
    let map: Option<BTreeMap<String, Option<V>>> = Option::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A scalar of any YAML type, kept as the text it denotes (`2` -> `"2"`, `true` -> `"true"`).
///
/// Floats use Rust's shortest round-trip form, so an unquoted `4.10` becomes `"4.1"`: quote
/// versions in manifests (the official operator, which goes through JSON, has the same limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
}

/// Any scalar as a `String`; `null` becomes the empty string.
pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<Scalar>::deserialize(deserializer)?
        .map(|s| s.0)
        .unwrap_or_default())
}

/// Any scalar as an optional `String`; `null` and a missing key are `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(deserializer)?.map(|s| s.0))
}

/// A map of scalars (e.g. resource quantities) as strings; `null` is an empty map and entries
/// whose value is `null` are dropped.
pub fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct MapVisitor;
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of scalar values")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, Option<Scalar>>()? {
                if let Some(v) = v {
                    out.insert(k, v.0);
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(MapVisitor)
}

/// A list of scalars as strings (e.g. `args: [--port, 8080]`); `null` is an empty list.
pub fn string_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<Scalar>> = Option::deserialize(deserializer)?;
    Ok(v.unwrap_or_default().into_iter().map(|s| s.0).collect())
}

/// Like [`string_vec`] but keeps the difference between "absent/null" (`None`: inherit from the
/// application) and "present" (`Some`, possibly empty).
pub fn opt_string_vec<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let v: Option<Vec<Scalar>> = Option::deserialize(deserializer)?;
    Ok(v.map(|v| v.into_iter().map(|s| s.0).collect()))
}

/// Declares a string-valued enum with known variants and an `Unknown(String)` catch-all, so a
/// manifest that uses a newer value still parses and the problem is reported by validation.
macro_rules! open_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this operator does not know; kept verbatim for error messages.
            Unknown(String),
        }

        impl $name {
            /// The manifest spelling of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(s) => s,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Unknown(String::new())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($text => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = $crate::lenient::string(d)?;
                Ok(s.parse().unwrap_or_else(|never| match never {}))
            }
        }
    };
}
pub(crate) use open_enum;
