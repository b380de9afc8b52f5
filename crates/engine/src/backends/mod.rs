//! Backing services. [`url`] composes connection URLs exactly as W&B images read them, with
//! correct percent-encoding, and the field map every connection Secret publishes.

pub mod url;
