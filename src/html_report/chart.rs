//! Horizontal bar charts as inline SVG: a label, a bar scaled to the largest
//! value and the count, one row per category. Text stays text, so the chart
//! is readable by screen readers, searchable and printable.

use std::fmt::Write as _;

use super::escape;

const ROW: u32 = 22;
const LABEL_WIDTH: u32 = 200;
const BAR_WIDTH: u32 = 220;
const PALETTE: &[&str] = &[
    "#3b7dd8", "#2f9e6e", "#d88b3b", "#8e5bd8", "#d84b6a", "#4bb5c9",
];

/// The chart of `data` (label, count); `title` names it for assistive technology.
pub fn bars(title: &str, data: &[(String, i64)]) -> String {
    if data.is_empty() {
        return "<p class=\"note\">No assets.</p>".to_string();
    }
    let max = data.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let height = ROW * data.len() as u32 + 4;
    let width = LABEL_WIDTH + BAR_WIDTH + 60;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\"><title>{}</title>",
        escape(title)
    );
    for (i, (label, n)) in data.iter().enumerate() {
        let y = i as u32 * ROW + 2;
        let length = ((*n as f64 / max as f64) * BAR_WIDTH as f64)
            .round()
            .max(1.0) as u32;
        let color = PALETTE[i % PALETTE.len()];
        // About 6.5 px a character at 12 px: longer labels are cut, the bar's tooltip has them whole.
        let shown: String = if label.chars().count() > 28 {
            label.chars().take(27).chain(['…']).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1d2733\">{}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{length}\" height=\"{}\" fill=\"{color}\"><title>{}: {n}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#1d2733\">{n}</text>",
            LABEL_WIDTH - 8,
            y + 14,
            escape(&shown.replace('_', " ")),
            ROW - 6,
            escape(label),
            LABEL_WIDTH + length + 6,
            y + 14,
        );
    }
    svg.push_str("</svg>");
    svg
}
