//! The controller side of `wandb-operator` (`run`), as a library so that integration tests can
//! run it in-process.

pub mod admin;
pub mod api_requests;
pub mod apply;
pub mod backups;
pub mod cli;
pub mod connections;
pub mod controller;
pub mod convert;
pub mod email_sink;
pub mod issuer;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod observe;
pub mod owned_cache;
pub mod pod_checks;
pub mod pod_inputs;
pub mod preflight;
pub mod secret_versions;
pub mod secrets;
pub mod takeover;
pub mod telemetry;
pub mod user_secrets;
pub mod webhook;
