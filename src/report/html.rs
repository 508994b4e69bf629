//! The report as one self-contained HTML page: inline styles, charts as
//! inline SVG, no scripts, fonts, images or links to fetch, so it opens
//! offline in any browser and prints. The print styles keep a heading with
//! what follows it, a chart whole, a table's header on every page and wide
//! tables inside an A4 or Letter page (text wraps between words, a word
//! longer than its column inside it; headers never break a word).

use std::fmt::Write as _;

use super::chart;
use super::document::{Block, Cell, Document, Table};

/// HTML text with &, <, >, " and ' escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #d6dde6;padding-bottom:.3rem;margin-top:2.2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#5a6b7d;font-size:.9rem}.tiles{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.tile{border:1px solid #d6dde6;border-radius:6px;padding:.6rem 1rem;min-width:8rem}.tile b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.6rem 0}th,td{border:1px solid #d6dde6;padding:.25rem .45rem;text-align:left;vertical-align:top}td{overflow-wrap:break-word}th{overflow-wrap:normal;hyphens:none}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
.chart h3{font-size:.95rem;margin:.4rem 0}.bad{color:#a61b1b;font-weight:600}.warn{color:#8a5a00}.ok{color:#1f6f3a}
.note{color:#5a6b7d;font-size:.85rem}.findings li{margin:.25rem 0}.bar{display:inline-block;height:.6rem;background:#3b7dd8;vertical-align:middle;margin-right:.3rem}
.toc ol{columns:2;padding-left:1.4rem}.toc a{color:#1d2733;text-decoration:none}
.chart{break-inside:avoid;page-break-inside:avoid}.keep{break-inside:avoid;page-break-inside:avoid}
@media print{body{margin:0;max-width:none;padding:0}h2,h3{break-after:avoid;page-break-after:avoid}
table{break-inside:auto;width:100%;font-size:.75rem}thead{display:table-header-group}tr{break-inside:avoid;page-break-inside:avoid}
.chart svg{max-width:100%;height:auto}h2+p,h3+p{break-after:avoid;page-break-after:avoid}.appendix-start{break-before:page;page-break-before:always}}
@page{margin:14mm 12mm}
";

/// The page of `document`. `page_size` adds an `@page` size (`A4`,
/// `Letter`) for printing to PDF; None leaves it to the reader's printer.
pub fn render(document: &Document, page_size: Option<&str>) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"meta\">{}</p>",
        escape(&document.title),
        escape(&document.subtitle)
    );
    if let Some(alert) = &document.alert {
        let _ = write!(body, "<p class=\"bad\">{}</p>", escape(alert));
    }
    // The table of contents: the body's sections, then the appendix.
    body.push_str("<nav class=\"toc\"><h2 id=\"contents\">Contents</h2><ol>");
    for section in &document.sections {
        let _ = write!(
            body,
            "<li><a href=\"#{}\">{}</a></li>",
            section.id,
            escape(&section.title)
        );
    }
    body.push_str("</ol></nav>");
    let mut in_appendix = false;
    for section in &document.sections {
        let class = if section.appendix && !in_appendix {
            in_appendix = true;
            " class=\"appendix-start\""
        } else {
            ""
        };
        // A heading and the first block after it print together.
        let _ = write!(
            body,
            "<section id=\"{}\"{class}><h2>{}</h2>",
            section.id,
            escape(&section.title)
        );
        for block in &section.blocks {
            block_html(&mut body, block);
        }
        body.push_str("</section>");
    }
    let page = page_size
        .map(|size| format!("@page{{size:{size}}}"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"intake {}\"><title>{}</title><style>{STYLE}{page}</style></head>\
         <body>{body}</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&document.title),
    )
}

fn block_html(out: &mut String, block: &Block) {
    match block {
        Block::Text(text) => {
            let _ = write!(out, "<p>{}</p>", escape(text));
        }
        Block::Note(text) => {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(text));
        }
        Block::Findings(items) => {
            out.push_str("<ul class=\"findings\">");
            for (label, text) in items {
                let _ = write!(out, "<li><b>{}:</b> {}</li>", escape(label), escape(text));
            }
            out.push_str("</ul>");
        }
        Block::Tiles(tiles) => {
            out.push_str("<div class=\"tiles\">");
            for (label, n) in tiles {
                let _ = write!(
                    out,
                    "<div class=\"tile\"><b>{}</b>{}</div>",
                    super::document::thousands(*n),
                    escape(label)
                );
            }
            out.push_str("</div>");
        }
        Block::Charts(charts) => {
            out.push_str("<div class=\"charts\">");
            for c in charts {
                let _ = write!(out, "<div class=\"chart\"><h3>{}</h3>", escape(&c.heading));
                if !c.bars.is_empty() {
                    out.push_str(&chart::bars(&c.heading, &c.bars));
                }
                if let Some(unknown) = &c.unknown {
                    let _ = write!(out, "<p class=\"note\">{}</p>", escape(unknown));
                }
                if c.bars.is_empty() && c.unknown.is_none() {
                    out.push_str("<p class=\"note\">No assets.</p>");
                }
                out.push_str("</div>");
            }
            out.push_str("</div>");
        }
        Block::Subheading(text) => {
            let _ = write!(out, "<h3>{}</h3>", escape(text));
        }
        Block::Table(table) => table_html(out, table),
    }
}

fn table_html(out: &mut String, table: &Table) {
    out.push_str("<table>");
    out.push_str("<thead><tr>");
    for h in &table.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Text(t) => {
                    let _ = write!(out, "<td>{}</td>", escape(t));
                }
                Cell::Count(_) => {
                    let _ = write!(out, "<td class=\"num\">{}</td>", cell.text());
                }
                Cell::Share(s) => {
                    let width = (s * 60.0).round() as i64;
                    let _ = write!(
                        out,
                        "<td class=\"num\"><span class=\"bar\" style=\"width:{width}px\"></span>{:.0}%</td>",
                        s * 100.0
                    );
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}
