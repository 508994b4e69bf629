//! The report as Markdown (GitHub-flavoured tables), for consultants who
//! paste it into their own documents: the same sections as the HTML page,
//! charts as tables of their bars.

use std::fmt::Write as _;

use super::document::{thousands, Block, Document, Table};

/// A table cell's text: pipes escaped, line breaks as spaces.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// Text outside tables: characters Markdown would read as markup escaped.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.replace(['\r', '\n'], " ").chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn render(document: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n\n{}\n",
        prose(&document.title),
        prose(&document.subtitle)
    );
    if let Some(alert) = &document.alert {
        let _ = writeln!(out, "> **{}**\n", prose(alert));
    }
    out.push_str("## Contents\n\n");
    for (i, section) in document.sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. [{}](#{})",
            i + 1,
            prose(&section.title),
            section.id
        );
    }
    out.push('\n');
    for section in &document.sections {
        let _ = writeln!(
            out,
            "<a id=\"{}\"></a>\n\n## {}\n",
            section.id,
            prose(&section.title)
        );
        for block in &section.blocks {
            block_markdown(&mut out, block);
        }
    }
    out
}

fn block_markdown(out: &mut String, block: &Block) {
    match block {
        Block::Text(text) => {
            let _ = writeln!(out, "{}\n", prose(text));
        }
        Block::Note(text) => {
            let _ = writeln!(out, "*{}*\n", prose(text));
        }
        Block::Findings(items) => {
            for (label, text) in items {
                let _ = writeln!(out, "- **{}:** {}", prose(label), prose(text));
            }
            out.push('\n');
        }
        Block::Tiles(tiles) => {
            let line: Vec<String> = tiles
                .iter()
                .map(|(label, n)| format!("**{}** {}", thousands(*n), prose(label)))
                .collect();
            let _ = writeln!(out, "{}\n", line.join(" · "));
        }
        Block::Charts(charts) => {
            for c in charts {
                let _ = writeln!(out, "### {}\n", prose(&c.heading));
                if !c.bars.is_empty() {
                    let total: i64 = c.bars.iter().map(|(_, n)| n).sum();
                    out.push_str("| value | count | share |\n|---|---:|---:|\n");
                    for (label, n) in &c.bars {
                        let _ = writeln!(
                            out,
                            "| {} | {} | {:.0} % |",
                            cell(&label.replace('_', " ")),
                            thousands(*n),
                            *n as f64 * 100.0 / total.max(1) as f64
                        );
                    }
                    out.push('\n');
                }
                if let Some(unknown) = &c.unknown {
                    let _ = writeln!(out, "*{}*\n", prose(unknown));
                }
            }
        }
        Block::Subheading(text) => {
            let _ = writeln!(out, "### {}\n", prose(text));
        }
        Block::Table(table) => table_markdown(out, table),
    }
}

fn table_markdown(out: &mut String, table: &Table) {
    let _ = writeln!(out, "| {} |", table.header.join(" | "));
    let rule: Vec<&str> = table
        .rows
        .first()
        .map(|row| {
            row.iter()
                .map(|c| match c {
                    super::document::Cell::Text(_) => "---",
                    _ => "---:",
                })
                .collect()
        })
        .unwrap_or_else(|| table.header.iter().map(|_| "---").collect());
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(&c.text())).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}
