//! What the commands print on a terminal: the per-file summary of an import,
//! the mapping table, the field list, what `sniff` found, the problems of a
//! schema check and the rows a sync wrote. `--json` output is the serde form
//! of the same structs, so both always say the same thing.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use crate::import::{FileOutcome, FileStatus, ImportOutcome};
use crate::read::header::HeaderShape;
use crate::read::layout::Role;
use crate::read::sniff::SniffReport;
use crate::read::workbook_probe::SheetStatus;
use crate::schema_check::SchemaReport;
use crate::sync::SyncOutcome;

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

/// The rows a sync wrote (or would write, for a dry run) per table.
pub fn sync_table(outcome: &SyncOutcome) -> String {
    let mut rows = table(&["table", "rows", "inserts", "updates", "deletes"]);
    for t in &outcome.tables {
        rows.add_row(vec![
            Cell::new(t.table),
            right(t.rows),
            right(t.inserts),
            right(t.updates),
            right(t.deletes),
        ]);
    }
    format!("{rows}\n")
}

fn right(value: impl ToString) -> Cell {
    Cell::new(value.to_string()).set_alignment(CellAlignment::Right)
}

/// The summary of an import run. Without `every_column`: one line per file
/// or sheet (its name as given, shortened in the middle to fit), at most
/// five lines of what needs attention, each naming the command that shows
/// or fixes it, and a `next:` line. With it (`-v`): everything, the
/// mapping of every column included.
pub fn import_summary(outcome: &ImportOutcome, every_column: bool) -> String {
    if every_column {
        full_summary(outcome, true)
    } else {
        compact_summary(outcome)
    }
}

/// The width to fit: `COLUMNS` when set (a pipeline or a log viewer of
/// known width), else the terminal's, else 100.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .or_else(|| Table::new().width().map(usize::from))
        .filter(|w| *w >= 40)
        .unwrap_or(100)
}

/// One line per file, what needs attention (at most five lines, grouped,
/// each with its command), and what to do next.
/// How many of a file's rows repeat its source's previous import.
fn unchanged_line(f: &FileOutcome) -> Option<String> {
    (f.unchanged_rows > 0).then(|| {
        format!(
            "{} of {} rows unchanged since the previous import of this source: recorded as seen, not stored again",
            f.unchanged_rows, f.rows
        )
    })
}

fn compact_summary(outcome: &ImportOutcome) -> String {
    let width = terminal_width();
    // The other columns (status, rows, became, to review, warnings) take
    // about 54 characters; the names get the rest, no more than they need.
    let longest = outcome
        .files
        .iter()
        .map(|f| {
            // "path [sheet]" as `short_label` writes it when it has room.
            crate::printable::relative_path(&f.path).chars().count()
                + f.sheet.as_ref().map_or(0, |s| s.chars().count() + 3)
        })
        .max()
        .unwrap_or(20);
    let name_width = width.saturating_sub(54).clamp(20, 80).min(longest.max(20));
    let mut files = Table::new();
    files
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec![
            "file",
            "status",
            "rows",
            "became",
            "to review",
            "warnings",
        ]);
    let review_of = |id: Option<&String>| -> usize {
        outcome
            .mapping
            .as_ref()
            .and_then(|m| m.imports.iter().find(|i| Some(&i.data_import_id) == id))
            .map_or(0, |import| {
                import
                    .suggestions
                    .iter()
                    .filter(|s| s.status == crate::map::Status::Suggested && s.target.is_some())
                    .count()
            })
    };
    for f in &outcome.files {
        let status = match f.status {
            FileStatus::Completed => "imported",
            FileStatus::Skipped => "skipped",
            FileStatus::Failed => "FAILED",
        };
        files.add_row(vec![
            Cell::new(crate::printable::short_label(
                &f.path,
                f.sheet.as_deref(),
                name_width,
            )),
            Cell::new(status),
            right(f.rows),
            Cell::new(match &f.yields {
                Some(y) if y.kind == "nothing" => "nothing".to_string(),
                Some(y) if y.kind == "edges" => "edges".to_string(),
                Some(y) => became(y),
                None => "-".to_string(),
            }),
            right(review_of(f.data_import_id.as_ref())),
            right(f.warnings),
        ]);
    }
    let mut out = format!("{files}\n");
    for f in &outcome.files {
        if let Some(line) = unchanged_line(f) {
            out.push_str(&format!(
                "{}: {line}\n",
                crate::printable::relative_path(&f.path)
            ));
        }
    }
    // What needs attention, grouped, each with the command for it.
    let mut attention: Vec<String> = Vec::new();
    let failed: Vec<&FileOutcome> = outcome
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Failed)
        .collect();
    if let Some(first) = failed.first() {
        attention.push(format!(
            "{} file(s) failed, first {}: {}",
            failed.len(),
            crate::printable::short_label(&first.path, first.sheet.as_deref(), name_width),
            first.error.as_deref().unwrap_or("see `intake import -v`")
        ));
    }
    let nothing: Vec<&FileOutcome> = outcome
        .files
        .iter()
        .filter(|f| f.yields.as_ref().is_some_and(|y| y.kind == "nothing"))
        .collect();
    if let Some(first) = nothing.first() {
        attention.push(format!(
            "{} file(s) yield no asset: `intake mappings --file {}` shows why",
            nothing.len(),
            crate::read::table_label(&first.path, None)
        ));
    }
    let prose: Vec<&FileOutcome> = outcome
        .files
        .iter()
        .filter(|f| f.error_code == Some("not_a_table"))
        .collect();
    if let Some(first) = prose.first() {
        attention.push(format!(
            "{} text file(s) skipped as prose (first {}): --delimiter imports one anyway",
            prose.len(),
            crate::printable::short_label(&first.path, first.sheet.as_deref(), name_width)
        ));
    }
    let empty: Vec<&FileOutcome> = outcome
        .files
        .iter()
        .filter(|f| f.notes.iter().any(|n| n == crate::read::EMPTY_FILE_NOTE))
        .collect();
    if let Some(first) = empty.first() {
        attention.push(format!(
            "{} empty file(s) imported as tables of no rows (first {}): export them again if rows were expected",
            empty.len(),
            crate::printable::short_label(&first.path, first.sheet.as_deref(), name_width)
        ));
    }
    let ambiguous: Vec<&FileOutcome> = outcome
        .files
        .iter()
        .filter(|f| f.dialect_runner_up.is_some())
        .collect();
    if let Some(first) = ambiguous.first() {
        attention.push(format!(
            "{} file(s) read as {} where {} reads nearly as well (first {}): check with `intake sniff`, --delimiter settles it",
            ambiguous.len(),
            first.delimiter.as_deref().unwrap_or("?"),
            first.dialect_runner_up.as_deref().unwrap_or("?"),
            crate::printable::short_label(&first.path, first.sheet.as_deref(), name_width)
        ));
    }
    let review: usize = outcome
        .files
        .iter()
        .map(|f| review_of(f.data_import_id.as_ref()))
        .sum();
    if review > 0 {
        attention.push(format!(
            "{review} column mapping(s) to review: `intake mappings --status review`"
        ));
    }
    let warned: Vec<&FileOutcome> = outcome.files.iter().filter(|f| f.warnings > 0).collect();
    if !warned.is_empty() {
        let total: u64 = warned.iter().map(|f| f.warnings).sum();
        attention.push(format!(
            "{total} row warning(s) in {} file(s): `intake import -v` lists the first ones",
            warned.len()
        ));
    }
    if let Some(c) = outcome.cleansing.as_ref().filter(|c| c.invalid > 0) {
        attention.push(format!(
            "{} of {} rows identify no machine: `intake report -o report.html` groups them",
            c.invalid, c.records
        ));
    }
    if let Some(d) = outcome.dependencies.as_ref().filter(|d| d.unresolved > 0) {
        attention.push(format!(
            "{} relationship end(s) name no known machine: the report lists them",
            d.unresolved
        ));
    }
    if !attention.is_empty() {
        out.push_str("needs attention:\n");
        for line in attention.iter().take(5) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(inventory) = &outcome.inventory {
        out.push_str(&format!(
            "inventory: {} machines{}\n",
            inventory.assets,
            by_kind(inventory)
        ));
    }
    let t = &outcome.totals;
    out.push_str(&format!(
        "{} file(s) and sheet(s): {} imported, {} skipped, {} failed; {} rows in {:.1}s\n",
        t.files, t.completed, t.skipped, t.failed, t.rows, outcome.seconds
    ));
    // The flow's short id (`--json` has it whole), so the line fits.
    match &outcome.master_flow_id {
        Some(id) => out.push_str(&format!(
            "tenant {}/{}; master flow {} ({}); database {}\n",
            outcome.client,
            outcome.engagement,
            id.get(..8).unwrap_or(id),
            outcome.flow_status,
            outcome.db
        )),
        None => out.push_str(&format!(
            "nothing new to import into {}/{}; no flow was created\n",
            outcome.client, outcome.engagement
        )),
    }
    let next = if review > 0 {
        "next: `intake mappings --status review`, then `intake report -o report.html`"
    } else if outcome.master_flow_id.is_some() {
        "next: `intake report -o report.html`, `intake assets -o assets.xlsx`, `intake sync`"
    } else {
        "next: `intake report -o report.html` (nothing new was imported)"
    };
    out.push_str(next);
    out.push('\n');
    out
}

/// Everything the run has to say (`-v`).
fn full_summary(outcome: &ImportOutcome, every_column: bool) -> String {
    let mut out = String::new();
    let mut files = table(&[
        "file",
        "status",
        "rows",
        "mapped",
        "to review",
        "became",
        "warnings",
        "read as",
        "layout",
        "seconds",
    ]);
    // Mapped and to-review columns by import.
    let mapped = |id: Option<&String>| -> (String, String) {
        let found = outcome
            .mapping
            .as_ref()
            .and_then(|m| m.imports.iter().find(|i| Some(&i.data_import_id) == id));
        match found {
            Some(import) => {
                let approved = import
                    .suggestions
                    .iter()
                    .filter(|s| s.status == crate::map::Status::Approved && s.target.is_some())
                    .count();
                let review = import
                    .suggestions
                    .iter()
                    .filter(|s| s.status == crate::map::Status::Suggested && s.target.is_some())
                    .count();
                (
                    format!("{approved}/{}", import.suggestions.len()),
                    review.to_string(),
                )
            }
            None => ("-".into(), "-".into()),
        }
    };
    for f in &outcome.files {
        let status = match f.status {
            FileStatus::Completed => "imported",
            FileStatus::Skipped => "skipped",
            FileStatus::Failed => "FAILED",
        };
        let read_as = match (f.format, &f.encoding) {
            (Some(format), _) => match f.header_row {
                Some(row) => format!("{format}, header row {row}"),
                None => format.to_string(),
            },
            (None, Some(encoding)) => {
                format!("{encoding}, {}", f.delimiter.as_deref().unwrap_or("?"))
            }
            (None, None) => "-".to_string(),
        };
        let layout = f.layout.as_ref().map_or_else(
            || "-".to_string(),
            |l| match l.role {
                Role::Primary => format!("{} (assets)", l.layout.label()),
                Role::Supplementary => format!("{} (supplementary)", l.layout.label()),
                Role::Reference => format!("{} (reference)", l.layout.label()),
                Role::Relationships => format!("{} (dependencies)", l.layout.label()),
            },
        );
        let (mapped, review) = mapped(f.data_import_id.as_ref());
        files.add_row(vec![
            Cell::new(file_label(f)),
            Cell::new(status),
            right(f.rows),
            right(mapped),
            right(review),
            Cell::new(match &f.yields {
                Some(y) if y.kind == "nothing" => "nothing (see below)".to_string(),
                Some(y) if y.kind == "edges" => "edges".to_string(),
                Some(y) => became(y),
                None => "-".to_string(),
            }),
            right(f.warnings),
            Cell::new(read_as),
            Cell::new(layout),
            right(format!("{:.2}", f.seconds)),
        ]);
    }
    out.push_str(&files.to_string());
    out.push('\n');
    for f in &outcome.files {
        let name = file_label(f);
        if let Some(error) = &f.error {
            out.push_str(&format!("error: {error}\n"));
        }
        if let Some(why) = &f.skipped_because {
            out.push_str(&format!("skipped {name}: {why}\n"));
        }
        if let (Some(layout), FileStatus::Completed) = (&f.layout, f.status) {
            out.push_str(&format!("layout: {name}: {}\n", layout.describe()));
        }
        for note in &f.notes {
            out.push_str(&format!("note: {name}: {note}\n"));
        }
        if let Some(line) = unchanged_line(f) {
            out.push_str(&format!("note: {name}: {line}\n"));
        }
        if let Some(why) = f.yields.as_ref().and_then(|y| y.why_nothing.as_ref()) {
            out.push_str(&format!("warning: {name}: yields no asset: {why}\n"));
        }
        for w in &f.header_warnings {
            out.push_str(&format!("warning: {name}: {w}\n"));
        }
        for w in &f.first_warnings {
            let column = w
                .column
                .as_deref()
                .map(|c| format!(" column '{c}'"))
                .unwrap_or_default();
            let place = if f.sheet.is_some() { "row" } else { "line" };
            out.push_str(&format!(
                "warning: {name}: {place} {}{column}: {}\n",
                w.line, w.message
            ));
        }
        let shown = f.first_warnings.len() as u64 + f.header_warnings.len() as u64;
        if f.warnings > shown {
            out.push_str(&format!(
                "warning: {name}: {} more row warnings (see data_imports.read_metadata or --json)\n",
                f.warnings - shown
            ));
        }
        if f.blank_rows > 0 {
            out.push_str(&format!(
                "note: {name}: {} blank rows skipped\n",
                f.blank_rows
            ));
        }
    }
    for ignored in &outcome.ignored_paths {
        out.push_str(&format!("ignored {}: {}\n", ignored.path, ignored.reason));
    }
    // Recoveries and resumed flows were said once, as they happened.
    if let Some(mapping) = &outcome.mapping {
        out.push_str(&mapping_summary(mapping, every_column));
    }
    if let Some(cleansing) = &outcome.cleansing {
        out.push_str(&format!(
            "cleansing: {} rows, {} valid, {} invalid (see raw_import_records.validation_errors)\n",
            cleansing.records, cleansing.valid, cleansing.invalid
        ));
    }
    if let Some(inventory) = &outcome.inventory {
        out.push_str(&format!(
            "inventory: {} machines{} ({} created, {} updated, {} unchanged) from {} rows; {} rows merged into existing machines; {} assets with conflicting values kept in custom_attributes\n",
            inventory.assets,
            by_kind(inventory),
            inventory.created,
            inventory.updated,
            inventory.unchanged,
            inventory.records,
            inventory.merged_records,
            inventory.conflicts
        ));
    }
    if let Some(found) = &outcome.dependencies {
        out.push_str(&dependencies_summary(found));
    }
    if let Some(debt) = &outcome.tech_debt {
        let count = |s: &str| debt.by_status.get(s).copied().unwrap_or(0);
        out.push_str(&format!(
            "tech debt (as of {}) of {} assets (machines and applications): {} end of life, {} extended support, {} supported, {} unknown; {} of {} 6R candidates ready for assessment{}\n",
            debt.as_of,
            debt.assets,
            count("end_of_life"),
            count("extended_support"),
            count("supported"),
            count("unknown"),
            debt.sixr_ready,
            debt.sixr_ready + debt.sixr_not_ready,
            if debt.sixr_not_applicable > 0 {
                format!(
                    " ({} end-user device(s) are not candidates)",
                    debt.sixr_not_applicable
                )
            } else {
                String::new()
            }
        ));
        for worst in debt.worst.iter().take(5) {
            out.push_str(&format!(
                "  {} {}: {} ({}{})\n",
                worst.asset_type,
                worst.name,
                worst.status.name().replace('_', " "),
                worst.based_on,
                worst
                    .support_ends
                    .as_ref()
                    .map_or_else(String::new, |d| format!(", support ends {d}"))
            ));
        }
    }
    let t = &outcome.totals;
    out.push_str(&format!(
        "{} file(s) and sheet(s): {} imported, {} skipped, {} failed; {} rows, {} warnings in {:.2}s\n",
        t.files, t.completed, t.skipped, t.failed, t.rows, t.warnings, outcome.seconds
    ));
    if every_column && !outcome.phase_costs.is_empty() {
        let costs: Vec<String> = outcome
            .phase_costs
            .iter()
            .map(|c| match c.peak_rss_bytes {
                Some(bytes) => format!("{} {:.2}s ({} MB)", c.phase, c.seconds, bytes >> 20),
                None => format!("{} {:.2}s", c.phase, c.seconds),
            })
            .collect();
        out.push_str(&format!("phases (time, peak RSS): {}\n", costs.join(", ")));
    }
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

fn dependencies_summary(found: &crate::dependencies::DependenciesOutcome) -> String {
    let mut out = format!(
        "dependencies: {} ({} new, {} updated, {} removed, {} unchanged); {} host(s) and {} application(s) added as assets",
        found.edges,
        found.created,
        found.updated,
        found.removed,
        found.unchanged,
        found.hosts_created,
        found.applications_created
    );
    if found.relationship_rows > 0 {
        out.push_str(&format!(
            "; {} relationship row(s), {} end(s) unresolved",
            found.relationship_rows, found.unresolved
        ));
    }
    out.push('\n');
    for p in found.problems.iter().take(10) {
        let sheet = p
            .sheet
            .as_ref()
            .map_or_else(String::new, |s| format!(" [{s}]"));
        out.push_str(&format!(
            "warning: {}{sheet} row {} column {}: {}\n",
            p.file, p.row, p.column, p.message
        ));
    }
    if found.problems.len() > 10 || found.unresolved as usize > found.problems.len() {
        out.push_str(&format!(
            "  … {} unresolved end(s) in all: see raw_import_records.validation_errors or `intake report`\n",
            found.unresolved
        ));
    }
    out
}

/// "servers.csv" or "inventory.xlsx [vInfo]".
fn file_label(f: &FileOutcome) -> String {
    match &f.sheet {
        Some(sheet) => format!("{} [{sheet}]", f.path),
        None => f.path.clone(),
    }
}

/// The result of `intake sniff`.
pub fn sniff_report(reports: &[SniffReport]) -> String {
    let mut out = String::new();
    for report in reports {
        out.push_str(&format!("{} ({} bytes)\n", report.path, report.bytes));
        if let Some(error) = &report.error {
            out.push_str(&format!("  error: {error}\n"));
        }
        if let Some(text) = &report.text {
            let bom = if text.bom { " with BOM" } else { "" };
            out.push_str(&format!(
                "  text: encoding {}{bom} ({:?}), delimiter {} ({:?})\n",
                text.encoding, text.encoding_source, text.delimiter, text.delimiter_source
            ));
            if let Some(note) = &text.note {
                out.push_str(&format!("  note: {note}\n"));
            }
            let header = match text.header_shape {
                HeaderShape::Named => format!("line {}", text.header_line),
                HeaderShape::Absent => {
                    "none: the first line reads like the lines below it, so every line is data and the columns are numbered".to_string()
                }
                HeaderShape::TwoRows => format!(
                    "lines {}..{} (group labels above the names, combined)",
                    text.header_line.saturating_sub(1),
                    text.header_line
                ),
            };
            out.push_str(&format!(
                "  header: {header}; {} columns: {}\n",
                text.columns.len(),
                text.columns.join(", ")
            ));
            for p in &text.preamble {
                out.push_str(&format!("  title row (line {}): {}\n", p.line, p.text));
            }
            if let Some(layout) = &text.layout {
                out.push_str(&format!("  layout: {}\n", layout.describe()));
            }
        }
        if let Some(book) = &report.workbook {
            let dates = if book.uses_1904_dates {
                ", 1904 date system"
            } else {
                ""
            };
            let layout = book
                .layout
                .map(|l| format!(", layout {}", l.label()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  workbook: {}{dates}{layout}, {} sheet(s)\n",
                crate::read::workbook_probe::container_label(book.container),
                book.sheets.len()
            ));
            let mut t = table(&[
                "#",
                "sheet",
                "visibility",
                "size",
                "header row",
                "columns",
                "import",
                "layout",
            ]);
            for sheet in &book.sheets {
                let size = match (sheet.declared_rows, sheet.declared_columns) {
                    (Some(r), Some(c)) => format!("{r} × {c}"),
                    _ => "-".to_string(),
                };
                let header_row = sheet.header.as_ref().map_or_else(
                    || "-".to_string(),
                    |h| match (h.row, h.shape) {
                        (None, _) => "none found".to_string(),
                        (Some(r), HeaderShape::TwoRows) => format!("{}..{r} combined", r - 1),
                        (Some(r), _) => r.to_string(),
                    },
                );
                let import = match &sheet.status {
                    SheetStatus::Import => "yes".to_string(),
                    SheetStatus::Failed(why) => format!("FAILED: {why}"),
                    other => format!("no: {}", other.skip_reason().unwrap_or("")),
                };
                t.add_row(vec![
                    Cell::new(sheet.position),
                    Cell::new(&sheet.name),
                    Cell::new(format!("{:?}", sheet.visibility).to_lowercase()),
                    Cell::new(size),
                    Cell::new(header_row),
                    right(sheet.header.as_ref().map_or(0, |h| h.columns.len())),
                    Cell::new(import),
                    Cell::new(
                        sheet
                            .role
                            .as_ref()
                            .map_or_else(|| "-".to_string(), |r| r.describe()),
                    ),
                ]);
            }
            out.push_str(&t.to_string());
            out.push('\n');
        }
    }
    out
}

/// The mapping table of a flow (`intake mappings`).
pub fn mapping_table(master_flow_id: &str, rows: &[crate::map::review::MappingRow]) -> String {
    let mut t = table(&[
        "file",
        "source column",
        "target field",
        "confidence",
        "match",
        "state",
        "sample values",
    ]);
    for r in rows {
        let file = crate::read::table_label(&r.file, r.sheet.as_deref());
        t.add_row(vec![
            Cell::new(file),
            Cell::new(&r.source_field),
            Cell::new(r.target_field.as_deref().unwrap_or("-")),
            right(format!("{:.2}", r.confidence_score)),
            Cell::new(&r.match_type),
            Cell::new(r.state),
            Cell::new(r.sample_values.join(" | ")),
        ]);
    }
    let count = |state: &str| rows.iter().filter(|r| r.state == state).count();
    format!(
        "{t}
flow {master_flow_id}: {} column(s), {} approved, {} to review, {} unmapped (kept in custom_attributes), {} ignored, {} rejected
",
        rows.len(),
        count("approved"),
        count("review"),
        count("unmapped"),
        count("ignored"),
        count("rejected")
    )
}

/// The field catalogue (`intake mappings fields`).
pub fn fields_table() -> String {
    let mut t = table(&["field", "kind", "unit", "allowed values", "description"]);
    for f in crate::catalogue::FIELDS {
        t.add_row(vec![
            Cell::new(f.name),
            Cell::new(format!("{:?}", f.kind).to_lowercase()),
            Cell::new(f.unit.unwrap_or("")),
            Cell::new(f.allowed.join(", ")),
            Cell::new(f.description),
        ]);
    }
    format!(
        "{t}
"
    )
}

/// The mapping part of an import summary: every column's decision, then the counts.
fn mapping_summary(mapping: &crate::map::MappingOutcome, every_column: bool) -> String {
    let mut out = String::new();
    if !every_column {
        out.push_str(&format!(
            "mapping: {} approved (confidence >= {:.2}), {} to review, {} unmapped, {} ignored; `intake mappings` (or -v) lists every column\n",
            mapping.approved, mapping.auto_approve_threshold, mapping.suggested, mapping.unmapped, mapping.ignored
        ));
        return out;
    }
    let mut t = table(&[
        "file",
        "source column",
        "target field",
        "confidence",
        "match",
        "status",
    ]);
    for import in &mapping.imports {
        let file = crate::read::table_label(&import.file, import.sheet.as_deref());
        for s in &import.suggestions {
            t.add_row(vec![
                Cell::new(&file),
                Cell::new(&s.source),
                Cell::new(s.target.unwrap_or("-")),
                right(format!("{:.2}", s.confidence)),
                Cell::new(s.match_type.as_str()),
                Cell::new(s.status.as_str()),
            ]);
        }
    }
    out.push_str(&t.to_string());
    out.push('\n');
    out.push_str(&format!(
        "mapping: {} approved (confidence >= {:.2}), {} to review, {} unmapped, {} ignored; review with `intake mappings`\n",
        mapping.approved, mapping.auto_approve_threshold, mapping.suggested, mapping.unmapped, mapping.ignored
    ));
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

/// ": 8 servers, 2 end-user devices", or nothing when no machine was stored.
fn by_kind(inventory: &crate::inventory::InventoryOutcome) -> String {
    let kinds: Vec<String> = inventory
        .by_type
        .iter()
        .map(|(kind, n)| format!("{n} {}", crate::catalogue::kind_words(kind, *n)))
        .collect();
    if kinds.is_empty() {
        String::new()
    } else {
        format!(": {}", kinds.join(", "))
    }
}

/// What a table became, in words: "10 storage devices", "3 servers (5 rows)",
/// "12 machines: 8 network devices, 4 storage devices".
fn became(y: &crate::import::Yield) -> String {
    if y.rows == 0 {
        return "no rows".to_string();
    }
    let plural = crate::catalogue::kind_words;
    let kind = match y.by_type.len() {
        1 => y
            .by_type
            .keys()
            .next()
            .map(String::as_str)
            .unwrap_or(y.kind),
        _ => y.kind,
    };
    let count = y.assets.unwrap_or(y.rows);
    let mut text = format!("{count} {}", plural(kind, count));
    if y.assets.is_some_and(|a| a != y.rows) {
        text.push_str(&format!(" ({} rows)", y.rows));
    }
    if y.by_type.len() > 1 {
        let parts: Vec<String> = y
            .by_type
            .iter()
            .map(|(t, n)| format!("{n} {}", plural(t, *n)))
            .collect();
        let unit = if y.assets.is_some() { "" } else { " rows" };
        text.push_str(&format!(": {}{unit}", parts.join(", ")));
    }
    text
}
