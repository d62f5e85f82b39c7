//! The dashboard's pages drawn from the published statistics: the overview of the fleet and
//! one page per dimension. Everything comes from the thresholded snapshot, so the minimum group
//! size applies to every number shown.

use maud::{Markup, html};

use super::charts::{
    self, Bar, COLOURS, Chart, Series, at_most, bars, thousands, weekly_lines, weekly_shares,
};
use super::layout::{Audience, Frame, page};
use crate::published::Published;
use crate::published::views::{DimensionSeries, WeekView};
use crate::stats::{EXTENSION_PREFIX, Scope};

/// Cloud, OS and runtime: shown as bars of the last complete week.
const PLATFORM: [&str; 4] = [
    "cloud-provider",
    "os-image",
    "architecture",
    "container-runtime",
];
/// Bucketed sizes shown as bars; every `objects-*` dimension follows them.
const SIZES: [&str; 2] = ["cluster-size", "namespaces"];

/// The overview: headline figures, clusters over time, versions, platforms, sizes, extensions
/// and the list of every dimension.
pub fn overview(published: &Published, window: usize, audience: Audience) -> Markup {
    let weeks = published.last_weeks(window);
    let frame = Frame {
        title: "Overview",
        published,
        audience,
        path: "/dashboard",
        keep: String::new(),
        window,
    };
    let Some(totals) = published.weekly(None, &weeks) else {
        return page(&frame, html! {});
    };
    let Some(last) = totals.headline.clone() else {
        return page(&frame, empty());
    };
    let labels: Vec<String> = totals.weeks.iter().map(|w| w.week.clone()).collect();
    let active = Series::new("Active", totals.weeks.iter().map(|w| w.active).collect());
    let new = Series::new("New", totals.weeks.iter().map(|w| w.new).collect());
    let fleet = Chart {
        id: "clusters".into(),
        title: "Active and new clusters".into(),
        note:
            "Clusters that sent a report in the week, and those among them seen for the first time."
                .into(),
        csv: format!("/api/v1/stats/weekly?weeks={window}&format=csv"),
    };
    let dimensions = published.dimensions();
    let objects = dimensions
        .iter()
        .filter(|d| d.name.starts_with("objects-"))
        .map(|d| d.name.as_str());
    let extensions = dimensions
        .iter()
        .filter(|d| d.name.starts_with(EXTENSION_PREFIX))
        .map(|d| d.name.as_str());
    let body = html! {
        (headline(published, &last))
        section #fleet {
            h2 { "Clusters over time" }
            (weekly_lines(&fleet, &labels, &[active, new], "clusters"))
        }
        section #versions {
            h2 { "Versions" }
            div.grid {
                (over_time(published, "server-version-minor", &weeks, "Server version adoption"))
                (over_time(published, "version-skew", &weeks, "Version skew between the API server and its kubelets"))
            }
        }
        section #platforms {
            h2 { "Where and how they run" }
            div.grid { @for name in PLATFORM { (last_week(published, name, &last, window)) } }
        }
        section #sizes {
            h2 { "Sizes" }
            div.grid { @for name in SIZES.into_iter().chain(objects) { (last_week(published, name, &last, window)) } }
        }
        section #extensions {
            h2 { "Extensions" }
            @let shown: Vec<Markup> = extensions.map(|name| last_week(published, name, &last, window)).collect();
            @if shown.is_empty() {
                p { "No extension key is reported by enough clusters to be shown." }
            } @else {
                div.grid { @for chart in shown { (chart) } }
            }
        }
        (index(published, window))
    };
    page(&frame, body)
}

/// One dimension's page: its values over the window, and the last complete week.
pub fn dimension(
    published: &Published,
    name: &str,
    window: usize,
    audience: Audience,
) -> Option<Markup> {
    let info = published.dimensions().iter().find(|d| d.name == name)?;
    let weeks = published.last_weeks(window);
    let totals = published.weekly(None, &weeks)?;
    let keep = format!("name={}&", encode(name));
    let frame = Frame {
        title: &info.name,
        published,
        audience,
        path: "/dashboard/dimension",
        keep,
        window,
    };
    let body = match totals.headline {
        None => empty(),
        Some(last) => html! {
            section {
                h1 { (info.name) }
                p { (info.description) "." }
                @if info.scope == Scope::Node {
                    p.note { "A cluster counts under every value its nodes have; shares over time are shares of nodes." }
                }
                (over_time(published, name, &weeks, &info.name))
                (last_week(published, name, &last, window))
                p { a href={ "/dashboard?weeks=" (window) } { "← Overview" } }
            }
        },
    };
    Some(page(&frame, body))
}

fn empty() -> Markup {
    html! {
        section.empty {
            h1 { "No complete week yet" }
            p {
                "Figures appear once a whole ISO week (Monday 00:00 UTC to Sunday) has reports. "
                "History can be imported with " code { "POST /api/v1/import" } "."
            }
        }
    }
}

fn headline(published: &Published, last: &WeekView) -> Markup {
    // Four weeks before the last complete one, when that week is kept.
    let first_kept = published.kept_weeks().first().map(ToString::to_string);
    let before = published
        .weekly(None, &published.last_weeks(5))
        .and_then(|view| view.weeks.first().cloned())
        .filter(|week| first_kept.as_ref().is_some_and(|first| week.week >= *first));
    let change = before.as_ref().map(|before| last.active - before.active);
    html! {
        section.headline aria-label="Last complete week" {
            h1 { "Week " (last.week) span.dates { " from " (last.start) } }
            dl.cards {
                div.card #active { dt { "Active clusters" } dd { (thousands(last.active)) } }
                div.card #change {
                    dt { "Change vs 4 weeks before" }
                    @match (change, &before) {
                        (Some(change), Some(before)) => dd {
                            (signed(change))
                            small { " (" (charts::percent(change, before.active)) " of " (thousands(before.active)) " in " (before.week) ")" }
                        },
                        _ => dd { "–" small { " (no week 4 weeks before)" } },
                    }
                }
                div.card #nodes { dt { "Nodes" } dd { (thousands(last.nodes)) } }
                div.card #new { dt { "New clusters" } dd { (thousands(last.new)) } }
            }
        }
    }
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{}", thousands(n))
    } else {
        thousands(n)
    }
}

/// A dimension's values over `weeks`: stacked shares of clusters (of nodes, for node
/// dimensions, whose clusters count under several values).
fn over_time(
    published: &Published,
    name: &str,
    weeks: &[crate::stats::Week],
    title: &str,
) -> Markup {
    let Some(view) = published.weekly(Some(name), weeks) else {
        return html! {};
    };
    let Some(dimension) = view.dimension else {
        return html! {};
    };
    let labels: Vec<String> = view.weeks.iter().map(|w| w.week.clone()).collect();
    let (unit, series) = series_of(&dimension);
    let chart = Chart {
        id: format!("{name}-weekly"),
        title: title.to_string(),
        note: dimension.description.clone() + ", week by week.",
        csv: format!(
            "/api/v1/stats/weekly?dimension={}&weeks={}&format=csv",
            encode(name),
            weeks.len()
        ),
    };
    weekly_shares(&chart, &labels, &at_most(series, COLOURS), unit)
}

fn series_of(dimension: &DimensionSeries) -> (&'static str, Vec<Series>) {
    let by_nodes = dimension.scope == Scope::Node;
    let series = dimension
        .values
        .iter()
        .map(|v| {
            let values = if by_nodes { &v.nodes } else { &v.clusters };
            Series::new(v.value.clone(), values.clone())
        })
        .collect();
    (if by_nodes { "nodes" } else { "clusters" }, series)
}

/// A dimension's values in the last complete week, as bars of clusters; `window` is kept in the
/// link to its page.
fn last_week(published: &Published, name: &str, last: &WeekView, window: usize) -> Markup {
    let week = published.last_weeks(1);
    let Some(dimension) = published
        .weekly(Some(name), &week)
        .and_then(|view| view.dimension)
    else {
        return html! {};
    };
    let series: Vec<Series> = dimension
        .values
        .iter()
        .map(|v| Series::new(v.value.clone(), v.clusters.clone()))
        .collect();
    let bars_of: Vec<Bar> = at_most(series, 12)
        .into_iter()
        .filter(|s| s.values[0] > 0)
        .map(|s| Bar {
            label: s.label,
            count: s.values[0],
        })
        .collect();
    let chart = Chart {
        id: name.replace([':', '/', '.'], "-"),
        title: name
            .strip_prefix(EXTENSION_PREFIX)
            .unwrap_or(name)
            .to_string(),
        note: dimension.description.clone() + ".",
        csv: format!(
            "/api/v1/stats/weekly?dimension={}&weeks=1&format=csv",
            encode(name)
        ),
    };
    html! {
        div.cell {
            (bars(&chart, &last.week, &bars_of, last.active, "clusters"))
            a.more href={ "/dashboard/dimension?name=" (encode(name)) "&weeks=" (window) } { "Over time →" }
        }
    }
}

fn index(published: &Published, window: usize) -> Markup {
    html! {
        section #dimensions {
            h2 { "Every dimension" }
            div.wide { table.index {
                thead { tr { th scope="col" { "Dimension" } th scope="col" { "Counts" } th scope="col" { "What it counts" } } }
                tbody {
                    @for d in published.dimensions() {
                        tr {
                            th scope="row" { a href={ "/dashboard/dimension?name=" (encode(&d.name)) "&weeks=" (window) } { (d.name) } }
                            td { @match d.scope { Scope::Cluster => "clusters", Scope::Node => "nodes" } }
                            td { (d.description) }
                        }
                    }
                }
            } }
        }
    }
}

/// `value` encoded for a query string.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
