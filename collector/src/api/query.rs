//! What the read API's handlers share: query strings whose rejection is a JSON 400, page sizes
//! and the split of one page from the next.

use axum::extract::Query;
use axum_extra::extract::WithRejection;

use super::error::ApiError;

/// Most items on one page.
pub const MAX_PAGE: usize = 1000;

/// Query parameters whose rejection is a JSON 400 like every other error.
pub type ApiQuery<T> = WithRejection<Query<T>, ApiError>;

/// The page size asked for (default 100), within 1 to [`MAX_PAGE`].
pub fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(100) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}, not {n}"
        ))),
    }
}

/// Keeps the first `limit` items (one more was fetched to learn whether a next page exists).
pub fn split_page<T, C>(
    mut items: Vec<T>,
    limit: usize,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(cursor);
        (items, next)
    } else {
        (items, None)
    }
}
