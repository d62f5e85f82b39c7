//! The dashboard: the fleet at a glance, rendered on the server from the published weekly
//! statistics as HTML with inline SVG charts (no JavaScript, nothing loaded from elsewhere).

mod cache;
pub mod charts;
pub mod layout;
pub mod pages;
mod sessions;

pub use cache::{PageCache, PageKey};
pub use layout::{Audience, DEFAULT_WINDOW, ICON, ICON_PATH, STYLE, STYLESHEET, WINDOWS};
pub use sessions::Sessions;
