//! Charts as inline SVG drawn from data, each in a figure with its title, axes, legend, a hover
//! value on every mark (SVG `<title>`), a data table and a CSV link. Colours are CSS classes of
//! the dashboard's stylesheet: nothing here writes a `style` attribute, which the page's
//! Content-Security-Policy would block.

use maud::{Markup, html};

use crate::stats::{NOT_REPORTED, OTHER};

/// Width of every chart's drawing in SVG units (the stylesheet scales it to the page).
const WIDTH: f64 = 720.0;
/// Height of the weekly charts' drawing.
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 32.0;
/// Colours of the palette (`s0` … `s9`); a chart shows at most this many series.
pub const COLOURS: usize = 10;
/// Week labels shown on a time axis at most.
const X_LABELS: usize = 7;

/// What a chart is, besides its data.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Anchor of the figure in the page, e.g. `active`.
    pub id: String,
    /// Title shown above it.
    pub title: String,
    /// A sentence on what it counts.
    pub note: String,
    /// The CSV of its data, from the statistics API.
    pub csv: String,
}

/// One series: a label and a value per week (or, for bars, one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Values, aligned with the chart's weeks.
    pub values: Vec<i64>,
}

impl Series {
    /// A series of `label`.
    pub fn new(label: impl Into<String>, values: Vec<i64>) -> Self {
        Series {
            label: label.into(),
            values,
        }
    }
}

/// One bar: a value and what its share is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// The value's label.
    pub label: String,
    /// Its count.
    pub count: i64,
}

/// The CSS class of the `index`th series labelled `label`: `other` and `(not reported)` grey.
fn colour(index: usize, label: &str) -> String {
    if label == OTHER || label == NOT_REPORTED {
        "s-rest".to_string()
    } else {
        format!("s{}", index % COLOURS)
    }
}

/// Round tick values from 0 to at least `max`: steps of 1, 2 or 5 times a power of ten.
pub fn ticks(max: i64) -> Vec<i64> {
    let max = max.max(1);
    let rough = max as f64 / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor()).max(1.0);
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| (m * magnitude) as i64)
        .find(|step| (*step as f64) >= rough)
        .unwrap_or(max)
        .max(1);
    let top = (max + step - 1) / step * step;
    (0..=top / step).map(|i| i * step).collect()
}

/// A count as people read it: `12,345`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as a percentage with one decimal.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".to_string();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// X of the middle of week `index` of `count`.
fn week_x(index: usize, count: usize) -> f64 {
    let band = (WIDTH - LEFT - RIGHT) / count.max(1) as f64;
    LEFT + band * (index as f64 + 0.5)
}

/// The weeks labelled on a time axis: about [`X_LABELS`] of them, always the last.
fn labelled(count: usize) -> impl Iterator<Item = usize> {
    let every = count.div_ceil(X_LABELS).max(1);
    (0..count).filter(move |i| (count - 1 - i).is_multiple_of(every))
}

fn time_axis(weeks: &[String]) -> Markup {
    let bottom = HEIGHT - BOTTOM;
    html! {
        g.axis.x {
            line x1=(LEFT) y1=(bottom) x2=(WIDTH - RIGHT) y2=(bottom) {}
            @for i in labelled(weeks.len()) {
                text x=(fmt(week_x(i, weeks.len()))) y=(bottom + 20.0) text-anchor="middle" { (weeks[i]) }
            }
        }
    }
}

/// A left axis from 0 to `top` with `labels` at each tick's height.
fn value_axis(ticks: &[(f64, String)]) -> Markup {
    html! {
        g.axis.y {
            @for (y, label) in ticks {
                line.grid x1=(LEFT) y1=(fmt(*y)) x2=(WIDTH - RIGHT) y2=(fmt(*y)) {}
                text x=(LEFT - 6.0) y=(fmt(*y + 4.0)) text-anchor="end" { (label) }
            }
        }
    }
}

/// Two decimals are plenty for SVG coordinates.
fn fmt(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded}")
}

fn legend(series: &[Series]) -> Markup {
    html! {
        ul.legend {
            @for (i, s) in series.iter().enumerate() {
                li { span class={ "swatch " (colour(i, &s.label)) } {} (s.label) }
            }
        }
    }
}

fn figure(chart: &Chart, drawing: Markup, legend: Markup, table: Markup) -> Markup {
    let title_id = format!("{}-title", chart.id);
    html! {
        figure.chart id=(chart.id) aria-labelledby=(title_id) {
            figcaption id=(title_id) { (chart.title) }
            p.note { (chart.note) }
            (drawing)
            (legend)
            details.data {
                summary { "Data table" }
                (table)
            }
            a.csv href=(chart.csv) { "CSV" }
        }
    }
}

fn weekly_table(weeks: &[String], series: &[Series], unit: &str) -> Markup {
    html! {
        table {
            caption { (unit) " per week" }
            thead { tr { th scope="col" { "Week" } @for s in series { th scope="col" { (s.label) } } } }
            tbody {
                @for (i, week) in weeks.iter().enumerate() {
                    tr {
                        th scope="row" { (week) }
                        @for s in series { td { (thousands(s.values[i])) } }
                    }
                }
            }
        }
    }
}

/// Lines over weeks: one per series, a point per week with its value on hover.
pub fn weekly_lines(chart: &Chart, weeks: &[String], series: &[Series], unit: &str) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let ticks = ticks(max);
    let top = *ticks.last().unwrap_or(&1) as f64;
    let plot = HEIGHT - TOP - BOTTOM;
    let y = |value: i64| HEIGHT - BOTTOM - plot * value as f64 / top;
    let axis: Vec<(f64, String)> = ticks.iter().map(|t| (y(*t), thousands(*t))).collect();
    let drawing = html! {
        svg.weekly viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(chart.title) {
            (value_axis(&axis))
            (time_axis(weeks))
            @for (i, s) in series.iter().enumerate() {
                @let points: Vec<String> = s.values.iter().enumerate()
                    .map(|(w, v)| format!("{},{}", fmt(week_x(w, weeks.len())), fmt(y(*v))))
                    .collect();
                @let class = colour(i, &s.label);
                g.series {
                    polyline class={ "line " (class) } points=(points.join(" ")) {}
                    @for (w, v) in s.values.iter().enumerate() {
                        circle class=(class) cx=(fmt(week_x(w, weeks.len()))) cy=(fmt(y(*v))) r="3" {
                            title { (weeks[w]) " · " (s.label) ": " (thousands(*v)) " " (unit) }
                        }
                    }
                }
            }
        }
    };
    figure(
        chart,
        drawing,
        legend(series),
        weekly_table(weeks, series, unit),
    )
}

/// One rectangle of a stacked column, with its hover text.
struct Segment {
    class: String,
    y: f64,
    height: f64,
    title: String,
}

/// Shares over weeks: a column per week, split by series in proportion to their values.
pub fn weekly_shares(chart: &Chart, weeks: &[String], series: &[Series], unit: &str) -> Markup {
    let plot = HEIGHT - TOP - BOTTOM;
    let band = (WIDTH - LEFT - RIGHT) / weeks.len().max(1) as f64;
    let width = (band * 0.8).max(1.0);
    let axis: Vec<(f64, String)> = (0..=4)
        .map(|q| {
            (
                HEIGHT - BOTTOM - plot * q as f64 / 4.0,
                format!("{}%", q * 25),
            )
        })
        .collect();
    let columns: Vec<(f64, Vec<Segment>)> = weeks
        .iter()
        .enumerate()
        .map(|(w, week)| {
            let total: i64 = series.iter().map(|s| s.values[w]).sum();
            let mut below = 0;
            let mut segments = Vec::new();
            for (i, s) in series.iter().enumerate() {
                let value = s.values[w];
                if value <= 0 || total <= 0 {
                    continue;
                }
                below += value;
                segments.push(Segment {
                    class: colour(i, &s.label),
                    y: HEIGHT - BOTTOM - plot * below as f64 / total as f64,
                    height: plot * value as f64 / total as f64,
                    title: format!(
                        "{week} · {}: {} of {} {unit} ({})",
                        s.label,
                        thousands(value),
                        thousands(total),
                        percent(value, total)
                    ),
                });
            }
            (week_x(w, weeks.len()) - width / 2.0, segments)
        })
        .collect();
    let drawing = html! {
        svg.weekly viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(chart.title) {
            (value_axis(&axis))
            (time_axis(weeks))
            @for (x, segments) in &columns {
                g.column {
                    @for segment in segments {
                        rect class=(segment.class) x=(fmt(*x)) y=(fmt(segment.y)) width=(fmt(width)) height=(fmt(segment.height)) {
                            title { (segment.title) }
                        }
                    }
                }
            }
        }
    };
    figure(
        chart,
        drawing,
        legend(series),
        weekly_table(weeks, series, unit),
    )
}

/// Horizontal bars of one week: each value's count and its share of `whole`.
pub fn bars(chart: &Chart, week: &str, bars: &[Bar], whole: i64, unit: &str) -> Markup {
    const ROW: f64 = 24.0;
    const LABEL: f64 = 180.0;
    const VALUE: f64 = 110.0;
    let height = TOP + ROW * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let span = WIDTH - LABEL - VALUE - RIGHT;
    let drawing = html! {
        svg.bars viewBox={ "0 0 " (WIDTH) " " (fmt(height)) } role="img" aria-label=(chart.title) {
            g.axis.y { line x1=(LABEL) y1=(TOP - 4.0) x2=(LABEL) y2=(fmt(height - 4.0)) {} }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = TOP + ROW * i as f64;
                @let length = span * bar.count as f64 / max as f64;
                g.bar {
                    title { (week) " · " (bar.label) ": " (thousands(bar.count)) " " (unit) " (" (percent(bar.count, whole)) " of " (thousands(whole)) ")" }
                    text.label x=(LABEL - 8.0) y=(fmt(y + 16.0)) text-anchor="end" { (shorten(&bar.label, 26)) }
                    rect class=(colour(i, &bar.label)) x=(LABEL) y=(fmt(y + 3.0)) width=(fmt(length.max(1.0))) height=(ROW - 6.0) {}
                    text.value x=(fmt(LABEL + length + 6.0)) y=(fmt(y + 16.0)) { (thousands(bar.count)) " · " (percent(bar.count, whole)) }
                }
            }
        }
    };
    let legend = html! {
        ul.legend { li { span.swatch.s0 {} (unit) " in " (week) ", and their share of " (thousands(whole)) } }
    };
    let table = html! {
        table {
            caption { (unit) " in " (week) }
            thead { tr { th scope="col" { "Value" } th scope="col" { (unit) } th scope="col" { "Share" } } }
            tbody {
                @for bar in bars {
                    tr { th scope="row" { (bar.label) } td { (thousands(bar.count)) } td { (percent(bar.count, whole)) } }
                }
            }
        }
    };
    figure(chart, drawing, legend, table)
}

/// `label` cut to `most` characters, with an ellipsis when cut.
fn shorten(label: &str, most: usize) -> String {
    if label.chars().count() <= most {
        label.to_string()
    } else {
        let mut cut: String = label.chars().take(most - 1).collect();
        cut.push('…');
        cut
    }
}

/// At most `most` series: the first ones as they are, the rest summed into one `other` (merged
/// with an `other` already among them), `(not reported)` kept last, so that a chart never runs
/// out of colours.
pub fn at_most(mut series: Vec<Series>, most: usize) -> Vec<Series> {
    if series.len() <= most {
        return series;
    }
    let weeks = series.first().map_or(0, |s| s.values.len());
    let mut rest = Series::new(OTHER, vec![0; weeks]);
    // Room for the values shown as they are: all but `other`, and `(not reported)` if present.
    let reported = series.iter().any(|s| s.label == NOT_REPORTED);
    let room = most.saturating_sub(1 + usize::from(reported));
    let mut kept = Vec::with_capacity(most);
    let mut not_reported = None;
    for s in series.drain(..) {
        if s.label == NOT_REPORTED {
            not_reported = Some(s);
        } else if kept.len() < room && s.label != OTHER {
            kept.push(s);
        } else {
            for (sum, value) in rest.values.iter_mut().zip(&s.values) {
                *sum += value;
            }
        }
    }
    kept.push(rest);
    kept.extend(not_reported);
    kept
}

#[cfg(test)]
#[path = "charts_tests.rs"]
mod tests;
