//! Human-readable output: the per-file summary table of an import and the list
//! of problems of a schema check. `--json` output is the serde form of the same
//! structs, so both always say the same thing.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use crate::import::{FileStatus, ImportOutcome};
use crate::schema_check::SchemaReport;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    // Wrap to the terminal only when its width is known and usable; a pseudo
    // terminal that reports 0 columns would squeeze every cell to nothing.
    if table.width().is_some_and(|w| w >= 60) {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    }
    table
}

fn right(value: impl ToString) -> Cell {
    Cell::new(value.to_string()).set_alignment(CellAlignment::Right)
}

/// The summary of an import run.
pub fn import_summary(outcome: &ImportOutcome) -> String {
    let mut out = String::new();
    let mut files = table(&[
        "file",
        "status",
        "rows",
        "warnings",
        "encoding",
        "delimiter",
        "columns",
        "seconds",
    ]);
    for f in &outcome.files {
        let status = match f.status {
            FileStatus::Completed => "imported",
            FileStatus::Skipped => "skipped",
            FileStatus::Failed => "FAILED",
        };
        files.add_row(vec![
            Cell::new(&f.path),
            Cell::new(status),
            right(f.rows),
            right(f.warnings),
            Cell::new(f.encoding.as_deref().unwrap_or("-")),
            Cell::new(f.delimiter.as_deref().unwrap_or("-")),
            right(f.columns),
            right(format!("{:.2}", f.seconds)),
        ]);
    }
    out.push_str(&files.to_string());
    out.push('\n');
    for f in &outcome.files {
        if let Some(error) = &f.error {
            out.push_str(&format!("error: {error}\n"));
        }
        if let Some(why) = &f.skipped_because {
            out.push_str(&format!("skipped {}: {why}\n", f.path));
        }
        for w in &f.header_warnings {
            out.push_str(&format!("warning: {}: {w}\n", f.path));
        }
        for w in &f.first_warnings {
            let column = w
                .column
                .as_deref()
                .map(|c| format!(" column '{c}'"))
                .unwrap_or_default();
            out.push_str(&format!(
                "warning: {}: line {}{column}: {}\n",
                f.path, w.line, w.message
            ));
        }
        let shown = f.first_warnings.len() as u64 + f.header_warnings.len() as u64;
        if f.warnings > shown {
            out.push_str(&format!(
                "warning: {}: {} more row warnings (see data_imports.read_metadata or --json)\n",
                f.path,
                f.warnings - shown
            ));
        }
        if f.blank_rows > 0 {
            out.push_str(&format!(
                "note: {}: {} blank rows skipped\n",
                f.path, f.blank_rows
            ));
        }
    }
    for ignored in &outcome.ignored_paths {
        out.push_str(&format!("ignored {}: {}\n", ignored.path, ignored.reason));
    }
    for recovered in &outcome.recovered_imports {
        out.push_str(&format!(
            "recovered: an interrupted earlier import ({recovered}) was cleaned up\n"
        ));
    }
    let t = &outcome.totals;
    out.push_str(&format!(
        "{} file(s): {} imported, {} skipped, {} failed; {} rows, {} warnings in {:.2}s\n",
        t.files, t.completed, t.skipped, t.failed, t.rows, t.warnings, outcome.seconds
    ));
    match &outcome.master_flow_id {
        Some(id) => out.push_str(&format!(
            "tenant {}/{}; master flow {id} ({}); database {}\n",
            outcome.client, outcome.engagement, outcome.flow_status, outcome.db
        )),
        None => out.push_str(&format!(
            "nothing new to import into {}/{}; no flow was created\n",
            outcome.client, outcome.engagement
        )),
    }
    out
}

/// The result of `intake schema check`.
pub fn schema_report(report: &SchemaReport) -> String {
    if report.is_valid() {
        return format!(
            "schema ok: {} tables, version {}\n",
            report.tables_checked, report.schema_version
        );
    }
    let mut t = table(&["problem", "table", "column", "message"]);
    for p in &report.problems {
        t.add_row(vec![
            p.kind,
            p.table.as_str(),
            p.column.as_deref().unwrap_or(""),
            p.message.as_str(),
        ]);
    }
    format!("{t}\n{} problem(s) found\n", report.problems.len())
}
