//! The public dashboard's pages, rendered once per published snapshot and kept until the next:
//! an anonymous caller reads bytes, it never makes the collector draw.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;

/// A page of the public dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PageKey {
    /// The overview over a window of weeks.
    Overview(usize),
    /// A dimension's page over a window of weeks.
    Dimension(String, usize),
}

/// Rendered pages of one snapshot generation. Keys are checked before they get here (a
/// published dimension, one of the offered windows), so the cache is bounded by what the
/// statistics publish.
#[derive(Debug, Default)]
pub struct PageCache {
    pages: Mutex<(u64, HashMap<PageKey, Bytes>)>,
}

impl PageCache {
    /// The page `key` of snapshot `generation`, rendered by `render` on its first request.
    pub fn get_or_render(
        &self,
        generation: u64,
        key: PageKey,
        render: impl FnOnce() -> Option<String>,
    ) -> Option<Bytes> {
        {
            let pages = self.pages.lock();
            if pages.0 == generation
                && let Some(page) = pages.1.get(&key)
            {
                return Some(page.clone());
            }
        }
        // Drawn outside the lock: two first requests may both draw, neither waits on the other.
        let page = Bytes::from(render()?);
        let mut pages = self.pages.lock();
        if pages.0 != generation {
            if pages.0 > generation {
                return Some(page);
            }
            *pages = (generation, HashMap::new());
        }
        pages.1.insert(key, page.clone());
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_drawn_once_per_generation() {
        let cache = PageCache::default();
        let mut draws = 0;
        for _ in 0..3 {
            let page = cache.get_or_render(1, PageKey::Overview(26), || {
                draws += 1;
                Some("one".into())
            });
            assert_eq!(page.as_deref(), Some(&b"one"[..]));
        }
        assert_eq!(draws, 1);
        let page = cache.get_or_render(2, PageKey::Overview(26), || Some("two".into()));
        assert_eq!(page.as_deref(), Some(&b"two"[..]));
        // A late request of an older snapshot is answered, and does not replace the newer one.
        let old = cache.get_or_render(1, PageKey::Overview(26), || Some("old".into()));
        assert_eq!(old.as_deref(), Some(&b"old"[..]));
        let page = cache.get_or_render(2, PageKey::Overview(26), || unreachable!());
        assert_eq!(page.as_deref(), Some(&b"two"[..]));
        assert_eq!(cache.get_or_render(2, PageKey::Overview(12), || None), None);
    }
}
