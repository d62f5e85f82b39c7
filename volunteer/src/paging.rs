//! Paged lists from the API server (`limit` and `continue`, started again when a continue token
//! expires), and the count of requests they make.

use std::sync::atomic::{AtomicU64, Ordering};

use kube::api::{ListParams, ObjectList};

/// How often a list whose continue token expired (410) is started again before the section is
/// reported as skipped.
pub const MAX_LIST_RESTARTS: u32 = 2;

/// Counts requests made to the API server.
#[derive(Debug, Default)]
pub struct ApiCalls(AtomicU64);

impl ApiCalls {
    pub(crate) fn count(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests made so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a paged list hands its consumer.
pub enum Page<'a, T> {
    /// The next page's items.
    Items(&'a [T]),
    /// The continue token expired: forget what was consumed, the list starts again.
    Restart,
}

/// Lists page by page (`limit` + `continue`), handing each page to `consume`. When a continue
/// token has expired (410), the consumer is told to restart and the list starts again, at most
/// [`MAX_LIST_RESTARTS`] times.
pub async fn each_page<T, F, Fut>(
    page_size: u32,
    calls: &ApiCalls,
    fetch: F,
    mut consume: impl FnMut(Page<'_, T>),
) -> kube::Result<()>
where
    T: Clone,
    F: Fn(ListParams) -> Fut,
    Fut: Future<Output = kube::Result<ObjectList<T>>>,
{
    let mut restarts = 0;
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(page_size);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        calls.count();
        match fetch(params).await {
            Ok(page) => {
                consume(Page::Items(&page.items));
                match page.metadata.continue_.filter(|t| !t.is_empty()) {
                    Some(next) => token = Some(next),
                    None => return Ok(()),
                }
            }
            Err(kube::Error::Api(status))
                if status.code == 410 && token.is_some() && restarts < MAX_LIST_RESTARTS =>
            {
                restarts += 1;
                tracing::info!(
                    restarts,
                    "list continue token expired; listing again from the start"
                );
                consume(Page::Restart);
                token = None;
            }
            Err(error) => return Err(error),
        }
    }
}
