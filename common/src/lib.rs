//! The report format shared by the volunteer and the collector, with its validation, privacy
//! sanitizer, anonymisation, ids and the `/api/v1` wire contract. No I/O, but for what the
//! binaries share behind the non-default `cli` feature.

pub mod admit;
pub mod anonymize;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cost;
pub mod decode;
pub mod extensions;
pub mod id;
pub mod report;
pub mod sanitize;
pub mod secret;
pub mod time;
pub mod validate;
pub mod wire;
pub mod words;

pub use admit::{Admitted, admit, admit_body, canonical_cluster_id};
pub use report::Report;
pub use validate::{ClusterIdRule, Problem, Problems};

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is larger than allowed once decompressed.
    #[error("the report is larger than {limit} bytes after decompression")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is declared gzip but is not.
    #[error("the body is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// The body is not JSON of the report format (a syntax or type error).
    #[error("the body is not a valid report: {}: {}", .0.field, .0.message)]
    Decode(Problem),
    /// The report breaks the format's rules.
    #[error("the report is invalid ({} problems)", .0.0.len())]
    Invalid(Problems),
}

/// An error with its causes, outermost first (`error sending request for url (…): client error
/// (Connect): tcp connect error: Connection refused (os error 111)`), each cause said once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let said = current.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = current.source();
    }
    text
}

impl Error {
    /// Every problem found, each with its field path.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Decode(problem) => std::slice::from_ref(problem),
            Error::Invalid(problems) => &problems.0,
            Error::TooLarge { .. } | Error::Gzip(_) => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot deliver")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot deliver: {0}")]
    struct SaysItsCause(#[source] std::io::Error);

    #[test]
    fn chains_name_every_cause_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(error_chain(&Outer(refused())), "cannot deliver: refused");
        assert_eq!(
            error_chain(&SaysItsCause(refused())),
            "cannot deliver: refused"
        );
        assert_eq!(error_chain(&refused()), "refused");
    }
}
