//! The report format shared by the volunteer and the collector, with its validation, privacy
//! sanitizer, anonymisation and ids. No I/O.

pub mod admit;
pub mod anonymize;
pub mod decode;
pub mod extensions;
pub mod id;
pub mod report;
pub mod sanitize;
pub mod time;
pub mod validate;

pub use admit::{Admitted, admit, canonical_cluster_id};
pub use report::Report;
pub use validate::{ClusterIdRule, Problem, Problems};

/// Why a report was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The body is not JSON of the report format (a syntax or type error).
    #[error("the body is not a valid report: {}: {}", .0.field, .0.message)]
    Decode(Problem),
    /// The report breaks the format's rules.
    #[error("the report is invalid ({} problems)", .0.0.len())]
    Invalid(Problems),
}

impl Error {
    /// Every problem found, each with its field path.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Decode(problem) => std::slice::from_ref(problem),
            Error::Invalid(problems) => &problems.0,
        }
    }
}
