//! Each chart's SVG from known data, read back as XML: its series, axis labels, hover values and
//! data table.

use roxmltree::{Document, Node};

use super::*;

fn chart() -> Chart {
    Chart {
        id: "c".into(),
        title: "A chart".into(),
        note: "What it counts.".into(),
        csv: "/api/v1/stats/weekly?dimension=x&format=csv".into(),
    }
}

fn weeks(n: usize) -> Vec<String> {
    (1..=n).map(|w| format!("2026-W{w:02}")).collect()
}

fn parse(markup: &Markup) -> Document<'_> {
    Document::parse(&markup.0).unwrap_or_else(|e| panic!("{e}: {}", markup.0))
}

fn all<'a>(doc: &'a Document<'a>, tag: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag)
        .collect()
}

fn texts(nodes: &[Node<'_, '_>]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .map(|d| d.text().unwrap())
                .collect()
        })
        .collect()
}

/// The data table's cells, row by row (the header row first).
fn table(doc: &Document<'_>) -> Vec<Vec<String>> {
    all(doc, "tr")
        .iter()
        .map(|row| {
            let cells: Vec<Node<'_, '_>> = row.children().filter(|c| c.is_element()).collect();
            texts(&cells)
        })
        .collect()
}

fn no_style_attribute(doc: &Document<'_>) {
    assert!(
        doc.descendants().all(|n| n.attribute("style").is_none()),
        "a style attribute, which the Content-Security-Policy blocks"
    );
}

#[test]
fn lines_have_a_series_per_label_a_point_per_week_and_round_ticks() {
    let series = [
        Series::new("Active", vec![100, 250, 1_200]),
        Series::new("New", vec![100, 150, 40]),
    ];
    let markup = weekly_lines(&chart(), &weeks(3), &series, "clusters");
    let doc = parse(&markup);
    no_style_attribute(&doc);
    assert_eq!(all(&doc, "polyline").len(), 2);
    assert_eq!(all(&doc, "circle").len(), 6);
    assert_eq!(texts(&all(&doc, "figcaption")), ["A chart"]);
    assert_eq!(texts(&all(&doc, "li")), ["Active", "New"]);
    let labels = texts(&all(&doc, "text"));
    assert_eq!(
        labels,
        [
            "0", "500", "1,000", "1,500", "2026-W01", "2026-W02", "2026-W03"
        ]
    );
    let hovers = texts(&all(&doc, "title"));
    assert!(hovers.contains(&"2026-W03 · Active: 1,200 clusters".to_string()));
    assert_eq!(
        table(&doc),
        [
            vec!["Week", "Active", "New"],
            vec!["2026-W01", "100", "100"],
            vec!["2026-W02", "250", "150"],
            vec!["2026-W03", "1,200", "40"],
        ]
    );
    let link = all(&doc, "a")[0];
    assert_eq!(link.attribute("href"), Some(chart().csv.as_str()));
}

#[test]
fn shares_stack_each_week_to_the_whole_height() {
    let series = [
        Series::new("v1.31", vec![30, 0]),
        Series::new("v1.30", vec![10, 20]),
        Series::new(OTHER, vec![0, 5]),
    ];
    let markup = weekly_shares(&chart(), &weeks(2), &series, "clusters");
    let doc = parse(&markup);
    no_style_attribute(&doc);
    let rects = all(&doc, "rect");
    // Only the non-zero values draw: two the first week, two the second.
    assert_eq!(rects.len(), 4);
    let plot = HEIGHT - TOP - BOTTOM;
    for column in all(&doc, "g")
        .iter()
        .filter(|g| g.attribute("class") == Some("column"))
    {
        let height: f64 = column
            .children()
            .filter_map(|r| r.attribute("height"))
            .map(|h| h.parse::<f64>().unwrap())
            .sum();
        assert!((height - plot).abs() < 0.05, "{height} of {plot}");
    }
    assert_eq!(rects[2].attribute("class"), Some("s1"));
    assert_eq!(rects[3].attribute("class"), Some("s-rest"));
    let hovers = texts(&all(&doc, "title"));
    assert_eq!(hovers[0], "2026-W01 · v1.31: 30 of 40 clusters (75.0%)");
    assert_eq!(hovers[3], "2026-W02 · other: 5 of 25 clusters (20.0%)");
    let labels = texts(&all(&doc, "text"));
    assert_eq!(labels[..5], ["0%", "25%", "50%", "75%", "100%"]);
    assert_eq!(table(&doc)[2], ["2026-W02", "0", "20", "5"]);
}

#[test]
fn bars_show_each_count_and_share() {
    let list = [
        Bar {
            label: "amd64".into(),
            count: 90,
        },
        Bar {
            label: "arm64".into(),
            count: 30,
        },
    ];
    let markup = bars(&chart(), "2026-W48", &list, 100, "clusters");
    let doc = parse(&markup);
    no_style_attribute(&doc);
    assert_eq!(all(&doc, "rect").len(), 2);
    let labels = texts(&all(&doc, "text"));
    assert_eq!(labels, ["amd64", "90 · 90.0%", "arm64", "30 · 30.0%"]);
    let widths: Vec<f64> = all(&doc, "rect")
        .iter()
        .map(|r| r.attribute("width").unwrap().parse().unwrap())
        .collect();
    assert!((widths[0] / widths[1] - 3.0).abs() < 0.01);
    assert_eq!(
        table(&doc),
        [
            vec!["Value", "clusters", "Share"],
            vec!["amd64", "90", "90.0%"],
            vec!["arm64", "30", "30.0%"],
        ]
    );
}

#[test]
fn labels_and_values_are_escaped() {
    let series = [Series::new("<script>alert(1)</script>", vec![1])];
    let markup = weekly_lines(&chart(), &weeks(1), &series, "clusters");
    assert!(!markup.0.contains("<script>"));
    assert_eq!(
        texts(&all(&parse(&markup), "li")),
        ["<script>alert(1)</script>"]
    );
}

#[test]
fn ticks_are_round_and_reach_the_maximum() {
    assert_eq!(ticks(0), [0, 1]);
    assert_eq!(ticks(3), [0, 1, 2, 3]);
    assert_eq!(ticks(10), [0, 5, 10]);
    assert_eq!(ticks(95), [0, 50, 100]);
    assert_eq!(ticks(1_200), [0, 500, 1_000, 1_500]);
    assert_eq!(ticks(100_000), [0, 50_000, 100_000]);
}

#[test]
fn numbers_read_as_people_write_them() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000), "1,000");
    assert_eq!(thousands(-1_234_567), "-1,234,567");
    assert_eq!(percent(1, 3), "33.3%");
    assert_eq!(percent(1, 0), "–");
}

#[test]
fn a_long_tail_is_summed_into_other() {
    let series: Vec<Series> = (0..12)
        .map(|i| Series::new(format!("v{i}"), vec![12 - i]))
        .chain([
            Series::new(OTHER, vec![1]),
            Series::new(NOT_REPORTED, vec![2]),
        ])
        .collect();
    let kept = at_most(series, COLOURS);
    assert_eq!(kept.len(), COLOURS);
    let labels: Vec<&str> = kept.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels[..8],
        ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7"]
    );
    assert_eq!(labels[8..], [OTHER, NOT_REPORTED]);
    // v8..v11 (4+3+2+1) and the former other (1).
    assert_eq!(kept[8].values, [11]);
    let total: i64 = kept.iter().map(|s| s.values[0]).sum();
    assert_eq!(total, (1..=12).sum::<i64>() + 3);

    // Without `(not reported)`, one more value keeps its own colour.
    let series: Vec<Series> = (0..12)
        .map(|i| Series::new(format!("v{i}"), vec![12 - i]))
        .collect();
    let kept = at_most(series, COLOURS);
    assert_eq!(kept.len(), COLOURS);
    assert_eq!(kept[8].label, "v8");
    assert_eq!(
        (kept[9].label.as_str(), kept[9].values[0]),
        (OTHER, 3 + 2 + 1)
    );
}

#[test]
fn a_long_time_axis_labels_about_seven_weeks_and_always_the_last() {
    let shown: Vec<usize> = labelled(52).collect();
    assert!(shown.len() <= X_LABELS, "{shown:?}");
    assert_eq!(shown.last(), Some(&51));
    assert_eq!(labelled(3).collect::<Vec<_>>(), [0, 1, 2]);
}
