//! The frame every dashboard page shares (head, header with the window selector, footer), the
//! login page and the page shown while the statistics are computed.

use maud::{DOCTYPE, Markup, html};

use super::charts::thousands;
use crate::published::Published;

/// Path of the dashboard's stylesheet.
pub const STYLESHEET: &str = "/dashboard/style.css";
/// Path of the dashboard's icon (so that browsers do not ask for `/favicon.ico`).
pub const ICON_PATH: &str = "/dashboard/icon.svg";
/// The dashboard's icon: three bars.
pub const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="1" y="9" width="4" height="6" fill="#4e79a7"/><rect x="6" y="5" width="4" height="10" fill="#f28e2b"/><rect x="11" y="1" width="4" height="14" fill="#59a14f"/></svg>"##;
/// The dashboard's stylesheet, served at [`STYLESHEET`].
pub const STYLE: &str = include_str!("style.css");
/// The windows the selector offers, in weeks.
pub const WINDOWS: [usize; 3] = [12, 26, 52];
/// The window shown unless another is asked for.
pub const DEFAULT_WINDOW: usize = 26;

/// Who a page is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// The admin listener; `logout` when the viewer came in through the login form.
    Admin {
        /// Whether to offer the logout button.
        logout: bool,
    },
    /// The public listener (`--public-stats`): read-only, no login.
    Public,
}

/// One page in the frame: `keep` is the query the window selector keeps (e.g.
/// `name=architecture&`), `window` the weeks shown.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// The statistics it draws.
    pub published: &'a Published,
    /// Who it is for.
    pub audience: Audience,
    /// Path of the page, for the window selector's links.
    pub path: &'a str,
    /// Query parameters to keep in the selector's links, each ending with `&`.
    pub keep: String,
    /// Weeks shown.
    pub window: usize,
}

/// A whole page: `body` inside the frame.
pub fn page(frame: &Frame<'_>, body: Markup) -> Markup {
    let published = frame.published;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(frame.title))
            body {
                header.top {
                    div.brand { a href="/dashboard" { "Fleet" } " · " (frame.title) }
                    nav.window aria-label="Window" {
                        @for weeks in WINDOWS {
                            @let href = format!("{}?{}weeks={weeks}", frame.path, frame.keep);
                            @if weeks == frame.window {
                                a.current href=(href) aria-current="page" { (weeks) " weeks" }
                            } @else {
                                a href=(href) { (weeks) " weeks" }
                            }
                        }
                    }
                    @if frame.audience == (Audience::Admin { logout: true }) {
                        form.logout method="post" action="/dashboard/logout" {
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                footer {
                    p {
                        "Complete ISO weeks (UTC) only: the running week is never shown. Every group of fewer than "
                        (thousands(published.min_group_clusters))
                        " clusters is folded into “other”. Rolled up at "
                        (common::time::rfc3339(published.built_at)) "."
                    }
                    p {
                        "Open data: "
                        a href="/api/v1/stats/export" { "JSON" } ", "
                        a href="/api/v1/stats/export?format=csv" { "CSV" }
                    }
                }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Fleet" }
            link rel="stylesheet" href=(STYLESHEET);
            link rel="icon" type="image/svg+xml" href=(ICON_PATH);
        }
    }
}

/// The login form of the admin listener; `failed` after a wrong token.
pub fn login(failed: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in"))
            body.login {
                main {
                    form.login method="post" action="/dashboard/login" {
                        h1 { "Fleet dashboard" }
                        p { "Enter the collector's admin token (the content of " code { "--admin-token-file" } ")." }
                        @if failed {
                            p.error role="alert" { "That is not the admin token." }
                        }
                        label for="token" { "Admin token" }
                        input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// Shown until the first rollup after startup has finished.
pub fn not_ready() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Starting"))
            body {
                main {
                    h1 { "The statistics are being computed" }
                    p { "The collector has just started and is folding its stored reports into the weekly statistics. Reload in a few seconds." }
                }
            }
        }
    }
}
