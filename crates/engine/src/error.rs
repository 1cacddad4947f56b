use std::path::PathBuf;

use ptft_store::StoreError;

/// Errors of planning and running a workflow.
///
/// [`EngineError::Input`] is always the user's to fix (the binary exits 2);
/// everything else is an environment or computation failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad workflow or parameters: names the file, where in it, and what is
    /// valid.
    #[error("{}{}: {message}", file.display(), if location.is_empty() { String::new() } else { format!(", {location}") })]
    Input {
        file: PathBuf,
        location: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A reference (`ptft show X`, `ptft export X`) that matches nothing.
    #[error("{0}")]
    NotFound(String),
}

impl EngineError {
    /// True when the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, EngineError::Input { .. } | EngineError::NotFound(_))
    }
}
