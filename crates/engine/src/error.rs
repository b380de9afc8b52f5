use std::fmt;

/// A problem the engine found. Every variant is something a user can fix in the CR or manifest;
/// the message names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineError {
    /// The CR or manifest field at fault, e.g. `spec.wandb.hostname` or
    /// `manifest.applications.api.volumeMounts[0].source.type`.
    pub field: String,
    pub message: String,
}

impl EngineError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for EngineError {}
