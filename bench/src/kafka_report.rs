//! How a load-generator run is shown: the table at the end of a run, the JSON file
//! (`--json`), and a self-contained HTML latency-percentile chart (`--plot`).

use crate::kafka_run::{FlowReport, KafkaBenchReport};
use crate::open_loop::LatencySummary;
use std::fmt::Write;

/// The end-of-run table: one row per measured flow.
pub fn summary_table(report: &KafkaBenchReport) -> String {
    let mut rows: Vec<(&str, &FlowReport, &str)> = Vec::new();
    if let Some(fill) = &report.fill {
        rows.push(("fill (produce)", fill, "intended send → ack"));
    }
    if let Some(produce) = &report.produce {
        rows.push(("produce", produce, "intended send → ack"));
    }
    if let Some(consume) = &report.consume {
        let latency = if report.e2e_latency.is_some() { "send stamp → consumer" } else { "fetch round trip" };
        rows.push(("consume", consume, latency));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| flow | msgs/s | MB/s | messages | failed | latency | p50 ms | p90 ms | p99 ms | p99.9 ms | p99.99 ms | max ms |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for (name, flow, latency) in rows {
        let l = &flow.latency;
        let _ = writeln!(
            out,
            "| {name} | {:.0} | {:.1} | {} | {} | {latency} | {} |",
            flow.msgs_per_s,
            flow.mb_per_s,
            flow.messages,
            flow.failed,
            latency_cells(l)
        );
    }
    for flow in [&report.fill, &report.produce, &report.consume].into_iter().flatten() {
        if let Some(failure) = &flow.first_failure {
            let _ = writeln!(out, "\nfirst failure: {failure}");
        }
    }
    out
}

/// p50 … max as Markdown cells, in milliseconds.
pub fn latency_cells(l: &LatencySummary) -> String {
    [l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.p9999_us, l.max_us]
        .iter()
        .map(|us| format!("{:.2}", *us as f64 / 1e3))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One curve of the chart: a label and its (percentile, µs) points.
pub struct Curve<'a> {
    /// Legend text.
    pub label: String,
    /// Points from [`crate::open_loop::LatencyRecorder::percentile_curve`].
    pub points: &'a [(f64, u64)],
}

/// The curves a report holds: produce acknowledgement, and end-to-end when measured.
pub fn report_curves<'a>(name: &str, report: &'a KafkaBenchReport) -> Vec<Curve<'a>> {
    let mut curves = Vec::new();
    if let Some(produce) = &report.produce {
        curves.push(Curve { label: format!("{name} produce ack"), points: &produce.latency_curve });
    }
    if !report.e2e_latency_curve.is_empty() {
        curves.push(Curve { label: format!("{name} end-to-end"), points: &report.e2e_latency_curve });
    } else if let (None, Some(consume)) = (&report.produce, &report.consume) {
        curves.push(Curve { label: format!("{name} fetch"), points: &consume.latency_curve });
    }
    curves
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 500.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_BOTTOM: f64 = 50.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_RIGHT: f64 = 20.0;
/// The x axis runs from the median to 99.9999% ("nines" 0.3 to 6).
const NINES_MAX: f64 = 6.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/// A self-contained HTML page with an SVG latency-percentile chart: percentile on a
/// "nines" axis (50%, 90%, 99%, ...), latency on a log axis.
pub fn percentile_chart_html(title: &str, curves: &[Curve<'_>]) -> String {
    let nines = |percentile: f64| (-(1.0 - percentile / 100.0).max(1e-6).log10()).min(NINES_MAX);
    let all_us = curves.iter().flat_map(|c| c.points.iter().map(|(_, us)| *us as f64));
    let (min_us, max_us) = all_us.fold((f64::MAX, 1.0f64), |(lo, hi), us| (lo.min(us), hi.max(us)));
    let (log_lo, log_hi) = ((min_us.max(1.0)).log10().floor(), max_us.log10().ceil().max(1.0));
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let x = |percentile: f64| MARGIN_LEFT + nines(percentile) / NINES_MAX * plot_w;
    let y = |us: f64| {
        let span = (log_hi - log_lo).max(1.0);
        MARGIN_TOP + plot_h - ((us.max(1.0).log10() - log_lo) / span) * plot_h
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<text x="{}" y="24" font-size="15">{}</text>"#, MARGIN_LEFT, escape(title));
    for (label, percentile) in
        [("50%", 50.0), ("90%", 90.0), ("99%", 99.0), ("99.9%", 99.9), ("99.99%", 99.99), ("99.999%", 99.999)]
    {
        let px = x(percentile);
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" y1="{MARGIN_TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            MARGIN_TOP + plot_h,
            MARGIN_TOP + plot_h + 18.0
        );
    }
    let mut decade = log_lo;
    while decade <= log_hi {
        let us = 10f64.powf(decade);
        let py = y(us);
        let label = if us >= 1e3 { format!("{} ms", us / 1e3) } else { format!("{us} µs") };
        let _ = write!(
            svg,
            r##"<line x1="{MARGIN_LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 6.0,
            py + 4.0
        );
        decade += 1.0;
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    for (index, curve) in curves.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<String> = curve
            .points
            .iter()
            .filter(|(p, _)| *p >= 50.0)
            .map(|(p, us)| format!("{:.1},{:.1}", x(*p), y(*us as f64)))
            .collect();
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, points.join(" "));
        let legend_y = MARGIN_TOP + 16.0 * index as f64 + 10.0;
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="14" height="3" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            MARGIN_LEFT + 12.0,
            legend_y - 4.0,
            MARGIN_LEFT + 32.0,
            legend_y,
            escape(&curve.label)
        );
    }
    svg.push_str("</svg>");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n{svg}\n</body></html>\n",
        escape(title)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open_loop::LatencyRecorder;

    #[test]
    fn the_chart_draws_every_curve_and_escapes_labels() {
        let mut recorder = LatencyRecorder::default();
        for us in 1..=10_000u64 {
            recorder.record_us(us);
        }
        let points = recorder.percentile_curve();
        assert!(points.len() > 100 && points.last().unwrap().1 >= 10_000);
        let html = percentile_chart_html(
            "a <b> run",
            &[Curve { label: "x & y".into(), points: &points }, Curve { label: "z".into(), points: &points }],
        );
        assert_eq!(html.matches("<polyline").count(), 2);
        assert!(html.contains("a &lt;b&gt; run") && html.contains("x &amp; y"));
        assert!(html.contains("99.9%") && html.contains("10 ms"));
    }
}
