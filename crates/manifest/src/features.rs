//! Feature flags: the manifest's `features` map, overridden by the CR's `spec.wandb.features`.
//!
//! An application or Kafka topic that lists features exists only when all of them are enabled;
//! a feature that appears in neither the manifest nor the CR is disabled.

use std::collections::BTreeMap;

use crate::model::{Application, KafkaTopic, ServerManifest};

impl ServerManifest {
    /// Manifest features with the CR's overrides applied (CR wins). Works on an empty or absent
    /// manifest `features` map (the official operator panics there, §9.3) and keeps CR keys the
    /// manifest does not know.
    pub fn effective_features(&self, overrides: &BTreeMap<String, bool>) -> BTreeMap<String, bool> {
        let mut out = self.features.clone();
        out.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        out
    }

    /// Applications enabled under `features` (from [`Self::effective_features`]), in name order.
    pub fn enabled_applications<'a>(
        &'a self,
        features: &'a BTreeMap<String, bool>,
    ) -> impl Iterator<Item = (&'a String, &'a Application)> + 'a {
        self.applications
            .iter()
            .filter(move |(_, app)| app_enabled(app, features))
    }

    /// Kafka topics enabled under `features`, in manifest order.
    pub fn enabled_topics<'a>(
        &'a self,
        features: &'a BTreeMap<String, bool>,
    ) -> impl Iterator<Item = &'a KafkaTopic> + 'a {
        self.kafka
            .topics
            .iter()
            .filter(move |t| topic_enabled(t, features))
    }
}

/// True when every feature the application requires is enabled.
pub fn app_enabled(app: &Application, features: &BTreeMap<String, bool>) -> bool {
    all_enabled(&app.features, features)
}

/// True when every feature the topic requires is enabled.
pub fn topic_enabled(topic: &KafkaTopic, features: &BTreeMap<String, bool>) -> bool {
    all_enabled(&topic.features, features)
}

fn all_enabled(required: &[String], features: &BTreeMap<String, bool>) -> bool {
    required
        .iter()
        .all(|f| features.get(f).copied().unwrap_or(false))
}
