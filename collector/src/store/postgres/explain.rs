//! Database errors told in full. tokio-postgres's own message names only the kind of failure
//! ("db error", "error connecting to server"); what the server said, or which I/O failed, is in
//! its source. Operators read these in logs, `/readyz` and startup errors, so they get both;
//! never the server's DETAIL, which can quote a row's values.

use crate::error::{BoxError, Error};

/// A database error with what the server or the connection said.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(super) struct Explained {
    message: String,
    #[source]
    source: BoxError,
}

/// `error`, told in full when it is (or wraps) a tokio-postgres error.
pub(super) fn explain(error: impl Into<BoxError>) -> BoxError {
    let error = error.into();
    let Some(database) = find::<tokio_postgres::Error>(error.as_ref()) else {
        return error;
    };
    let said = match database.as_db_error() {
        Some(server) => format!("{}: {}", server.severity(), server.message()),
        None => match std::error::Error::source(database) {
            Some(cause) => cause.to_string(),
            None => return error,
        },
    };
    let outer = error.to_string();
    let message = if outer == database.to_string() {
        format!("{database}: {said}")
    } else {
        format!("{outer}: {database}: {said}")
    };
    Box::new(Explained {
        message,
        source: error,
    })
}

/// A failed read as the store answers it: the database out of reach (the pool, the connection)
/// is unavailable, answered 503 like a failed write; a query the server refused is a query error.
pub(super) fn read_error(error: impl Into<BoxError>) -> Error {
    let error = error.into();
    let reachable = find::<tokio_postgres::Error>(error.as_ref())
        .is_some_and(|database| database.as_db_error().is_some());
    let explained = explain(error);
    if reachable {
        Error::Query(explained)
    } else {
        Error::Unavailable(explained.into())
    }
}

/// The first error of type `T` in `error`'s chain.
fn find<'a, T: std::error::Error + 'static>(
    mut error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    loop {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        error = error.source()?;
    }
}
