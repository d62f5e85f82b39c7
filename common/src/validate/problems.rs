//! What is wrong with a report: each problem with the path of its field.

use serde::Serialize;

/// One thing wrong with a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// Path of the offending field, e.g. `nodes[3].kubeletVersion`; empty for the whole document.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one report (at most [`super::MAX_PROBLEMS`] + 1 entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub(super) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(field, message));
    }

    /// Records `problem`, naming the field only when there is one (paths are built lazily).
    pub(super) fn check(&mut self, problem: Option<String>, field: impl FnOnce() -> String) {
        if let Some(message) = problem {
            self.push(field(), message);
        }
    }
}
