//! Charts drawn on the server as SVG, so pages need no charting script. Every label is escaped;
//! everything else is numbers.

use std::fmt::Write;

/// One bar: its label and value.
pub struct Bar {
    pub label: String,
    pub value: i64,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const AXIS: f64 = 24.0;

/// A bar chart with a `<title>` per bar (hover text) and an accessible name.
pub fn bars(title: &str, bars: &[Bar], class: &str) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let slot = WIDTH / n;
    let width = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart {class}" viewBox="0 0 {WIDTH} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        h = HEIGHT + AXIS,
        t = escape(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let height = if bar.value > 0 { (bar.value as f64 / max * HEIGHT).max(2.0) } else { 0.0 };
        let x = i as f64 * slot + (slot - width) / 2.0;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}"><title>{label}: {value}</title></rect>"#,
            y = HEIGHT - height,
            label = escape(&bar.label),
            value = bar.value
        );
    }
    // A few labels along the axis, not one per bar, so they never overlap.
    let step = (bars.len() / 6).max(1);
    for (i, bar) in bars.iter().enumerate().step_by(step) {
        // The first label is centred on its bar but kept inside the picture.
        let x = (i as f64 * slot + slot / 2.0).max(18.0);
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{label}</text>"#,
            y = HEIGHT + AXIS - 6.0,
            label = escape(&bar.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Two series as stacked bars (e.g. completed and failed jobs per day).
pub fn stacked(title: &str, labels: &[String], ok: &[i64], bad: &[i64]) -> String {
    let max = ok.iter().zip(bad).map(|(a, b)| a + b).max().unwrap_or(0).max(1) as f64;
    let n = labels.len().max(1) as f64;
    let slot = WIDTH / n;
    let width = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart stacked" viewBox="0 0 {WIDTH} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        h = HEIGHT + AXIS,
        t = escape(title)
    );
    for (i, label) in labels.iter().enumerate() {
        let (a, b) = (ok.get(i).copied().unwrap_or(0), bad.get(i).copied().unwrap_or(0));
        let x = i as f64 * slot + (slot - width) / 2.0;
        let ha = a as f64 / max * HEIGHT;
        let hb = b as f64 / max * HEIGHT;
        let label = escape(label);
        let _ = write!(
            svg,
            r#"<rect class="ok" x="{x:.1}" y="{ya:.1}" width="{width:.1}" height="{ha:.1}"><title>{label}: {a} completed</title></rect><rect class="bad" x="{x:.1}" y="{yb:.1}" width="{width:.1}" height="{hb:.1}"><title>{label}: {b} failed</title></rect>"#,
            ya = HEIGHT - ha,
            yb = HEIGHT - ha - hb,
        );
    }
    let step = (labels.len() / 6).max(1);
    for (i, label) in labels.iter().enumerate().step_by(step) {
        // The first label is centred on its bar but kept inside the picture.
        let x = (i as f64 * slot + slot / 2.0).max(18.0);
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{label}</text>"#,
            y = HEIGHT + AXIS - 6.0,
            label = escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let svg =
            bars("t<1>", &[Bar { label: "<b>".into(), value: 10 }, Bar { label: "x".into(), value: 5 }], "status");
        assert!(svg.contains("aria-label=\"t&lt;1&gt;\""));
        assert!(svg.contains("&lt;b&gt;: 10"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains(r#"height="180.0""#), "{svg}");
        assert!(svg.contains(r#"height="90.0""#), "{svg}");
    }

    #[test]
    fn empty_series_draw_an_empty_chart() {
        let svg = stacked("jobs", &[], &[], &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<rect"));
    }
}
