//! Horizontal bar charts as inline SVG: a label, a bar scaled to the largest
//! value and the count, one row per category. Text stays text, so the chart
//! is readable by screen readers, searchable and printable.

use std::fmt::Write as _;

use super::html::escape;

const ROW: u32 = 22;
// Two charts side by side fit an A4 or Letter page (about 700 CSS pixels).
const LABEL_WIDTH: u32 = 150;
const BAR_WIDTH: u32 = 130;
/// Characters of a label that fit LABEL_WIDTH at 11 px.
const LABEL_CHARS: usize = 22;
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
        // Longer labels lose their middle, so "… Server 12" and "… Server 15"
        // stay apart; the bar's tooltip has them whole.
        let chars: Vec<char> = label.chars().collect();
        let shown: String = if chars.len() > LABEL_CHARS {
            let tail = (LABEL_CHARS - 1) / 2;
            let head = LABEL_CHARS - 1 - tail;
            chars[..head]
                .iter()
                .chain(['…'].iter())
                .chain(chars[chars.len() - tail..].iter())
                .collect()
        } else {
            label.clone()
        };
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#1d2733\">{}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{length}\" height=\"{}\" fill=\"{color}\"><title>{}: {n}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#1d2733\">{n}</text>",
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
