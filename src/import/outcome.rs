//! What an import reports: per file or sheet (`FileOutcome`: its status,
//! what the reader found, rows, warnings, the error that failed it) and for
//! the run (`ImportOutcome`: the flow, the files, the totals and what each
//! later phase did). The console summary and `--json` are both made from it.

use std::time::Instant;

use serde::Serialize;

use crate::read::layout::TableRole;
use crate::read::workbook::Container;
use crate::read::workbook_probe::container_label;
use crate::read::{self, ReadError, RowWarning, SheetProbe, TextProbe};
use crate::stage::{ImportCounts, PriorImport};

/// What became of one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Completed,
    Skipped,
    Failed,
}

/// What became of one file or sheet.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub path: String,
    /// The sheet, for a workbook (each sheet is its own import).
    pub sheet: Option<String>,
    /// xlsx, xlsb, xls, ods for a workbook; None for delimited text.
    pub format: Option<&'static str>,
    /// The recognised layout and what this table is in it.
    pub layout: Option<TableRole>,
    pub header_row: Option<u64>,
    /// Things the reader decided that the user should know (a .xls that was CSV, ...).
    pub notes: Vec<String>,
    pub status: FileStatus,
    pub data_import_id: Option<String>,
    pub bytes: u64,
    pub rows: u64,
    pub blank_rows: u64,
    pub columns: usize,
    pub warnings: u64,
    pub warnings_by_code: std::collections::BTreeMap<&'static str, u64>,
    pub first_warnings: Vec<RowWarning>,
    pub header_warnings: Vec<String>,
    pub encoding: Option<String>,
    pub encoding_source: Option<read::EncodingSource>,
    pub delimiter: Option<String>,
    pub delimiter_source: Option<read::DelimiterSource>,
    /// Another dialect that read the file nearly as consistently (said in
    /// the summary; `--delimiter` settles it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect_runner_up: Option<String>,
    pub content_hash: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<&'static str>,
    pub skipped_because: Option<String>,
    pub previous_import: Option<PriorImport>,
    /// Rows identical to rows of the previous import of the same source
    /// (`unchanged_since`), recorded as seen rather than stored again.
    pub unchanged_rows: u64,
    /// That import's data_import_id, when rows were seen again.
    pub unchanged_since: Option<String>,
    /// What the table became once cleansed: machine rows, applications or
    /// edges, or nothing and why (set when the data_cleansing phase ran).
    pub yields: Option<Yield>,
    pub seconds: f64,
}

/// What one table became.
#[derive(Debug, Clone, Serialize)]
pub struct Yield {
    /// machines, applications, edges or nothing.
    pub kind: &'static str,
    /// Valid rows (machines), or application rows.
    pub rows: u64,
    /// The distinct assets those rows describe: machines (several rows of
    /// one machine count once) or applications by name. None for edges, or
    /// when the inventory phase did not run.
    pub assets: Option<u64>,
    /// What the table became by kind: server, database, network, storage,
    /// end_user_device or application. Once the inventory phase ran, the
    /// distinct machines by the kind they were stored with (a machine three
    /// sheets describe counts once in each sheet, under one kind); before,
    /// the valid rows by what their own values say.
    pub by_type: std::collections::BTreeMap<String, u64>,
    /// Why nothing, and the command that fixes it.
    pub why_nothing: Option<String>,
}

impl FileOutcome {
    pub(super) fn new(path: &str, status: FileStatus) -> FileOutcome {
        FileOutcome {
            path: path.to_string(),
            sheet: None,
            format: None,
            layout: None,
            header_row: None,
            notes: Vec::new(),
            status,
            data_import_id: None,
            bytes: 0,
            rows: 0,
            blank_rows: 0,
            columns: 0,
            warnings: 0,
            warnings_by_code: Default::default(),
            first_warnings: Vec::new(),
            header_warnings: Vec::new(),
            encoding: None,
            encoding_source: None,
            delimiter: None,
            delimiter_source: None,
            dialect_runner_up: None,
            content_hash: None,
            error: None,
            error_code: None,
            skipped_because: None,
            previous_import: None,
            unchanged_rows: 0,
            unchanged_since: None,
            yields: None,
            seconds: 0.0,
        }
    }

    pub(super) fn describe_text(&mut self, probe: &TextProbe) {
        self.bytes = probe.scan.size;
        let bom = if probe.scan.has_bom { " BOM" } else { "" };
        self.encoding = Some(format!("{}{bom}", probe.scan.encoding.name()));
        self.encoding_source = Some(probe.scan.encoding_source);
        self.delimiter = Some(probe.dialect.describe());
        self.delimiter_source = Some(probe.delimiter_source);
        self.content_hash = Some(probe.scan.hash.clone());
        self.notes.extend(probe.note.clone());
        if let Some(other) = probe.runner_up {
            self.dialect_runner_up = Some(other.describe());
            self.notes.push(format!(
                "read as {}; {} reads it nearly as well: give --delimiter if the columns look wrong",
                probe.dialect.describe(),
                other.describe()
            ));
        }
        self.layout = None;
    }

    pub(super) fn describe_sheet(
        &mut self,
        container: Container,
        file_size: u64,
        sheet: &SheetProbe,
    ) {
        self.bytes = file_size;
        self.sheet = Some(sheet.name.clone());
        self.format = Some(container_label(container));
        self.layout = sheet.role.clone();
        self.header_row = sheet.header.as_ref().and_then(|h| h.row.map(u64::from));
        self.content_hash = Some(sheet.content_hash.clone());
    }

    pub(super) fn fail(&mut self, error: &ReadError) {
        self.status = FileStatus::Failed;
        self.error = Some(error.to_string());
        self.error_code = Some(error.code());
    }
}

/// The result of a run, printed as the summary table or as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ImportOutcome {
    pub db: String,
    pub master_flow_id: Option<String>,
    pub discovery_flow_id: Option<String>,
    pub client: String,
    pub engagement: String,
    pub user: String,
    pub flow_status: String,
    pub files: Vec<FileOutcome>,
    pub ignored_paths: Vec<read::IgnoredPath>,
    /// Files whose import a killed run left half done: their rows were removed.
    pub recovered_imports: Vec<String>,
    /// Flows a killed run left before their files were staged, marked failed.
    pub recovered_flows: Vec<String>,
    /// Flows a killed run left after their import whose mapping this run finished.
    pub resumed_flows: Vec<String>,
    pub totals: Totals,
    /// The attribute_mapping phase of this run's flow.
    pub mapping: Option<crate::map::MappingOutcome>,
    /// The data_cleansing phase.
    pub cleansing: Option<crate::cleanse::CleanseOutcome>,
    /// The inventory phase: assets created, updated, unchanged.
    pub inventory: Option<crate::inventory::InventoryOutcome>,
    /// The dependencies phase: edges, hosts and applications found, unresolved ends.
    pub dependencies: Option<crate::dependencies::DependenciesOutcome>,
    /// The tech_debt phase: support status counts, 6R readiness, worst offenders.
    pub tech_debt: Option<crate::tech_debt::TechDebtOutcome>,
    /// What each phase run cost (time, peak RSS), staging first.
    pub phase_costs: Vec<crate::phase_cost::PhaseCost>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub files: usize,
    pub completed: usize,
    pub skipped: usize,
    pub failed: usize,
    pub rows: u64,
    pub warnings: u64,
}

/// The counts of a run over its files.
pub(super) fn totals(files: &[FileOutcome]) -> Totals {
    let count = |s| files.iter().filter(|f| f.status == s).count();
    Totals {
        files: files.len(),
        completed: count(FileStatus::Completed),
        skipped: count(FileStatus::Skipped),
        failed: count(FileStatus::Failed),
        rows: files
            .iter()
            .filter(|f| f.status == FileStatus::Completed)
            .map(|f| f.rows)
            .sum(),
        warnings: files.iter().map(|f| f.warnings).sum(),
    }
}

/// Fills a table's outcome from what the writer counted.
pub(super) fn fill_outcome(
    outcome: &mut FileOutcome,
    counts: &ImportCounts,
    started: Option<Instant>,
) {
    outcome.rows = if outcome.status == FileStatus::Failed {
        0
    } else {
        counts.rows
    };
    outcome.blank_rows = counts.blank_rows;
    outcome.warnings = counts.warning_count
        + counts
            .header
            .as_ref()
            .map_or(0, |h| h.header_warnings.len() as u64);
    outcome.warnings_by_code = counts.warnings_by_code.clone();
    outcome.first_warnings = counts.warnings.iter().take(20).cloned().collect();
    if let Some(header) = &counts.header {
        outcome.columns = header.columns.len();
        if outcome.layout.is_none() {
            outcome.layout = header.layout.clone();
        }
        if outcome.sheet.is_some() {
            outcome.header_row = (header.header_line > 0).then_some(header.header_line);
        }
        outcome.header_warnings = header
            .header_warnings
            .iter()
            .map(|w| w.message.clone())
            .collect();
    }
    outcome.seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
}

/// What each completed table became, from its cleansing and what its mapped
/// fields describe.
pub(super) fn fill_yields(
    conn: &rusqlite::Connection,
    files: &mut [FileOutcome],
    cleansing: &crate::cleanse::CleanseOutcome,
    inventory: Option<&crate::inventory::InventoryOutcome>,
) -> rusqlite::Result<()> {
    use crate::catalogue::{self, Describes};
    use crate::read::layout::Role;
    for file in files
        .iter_mut()
        .filter(|f| f.status == FileStatus::Completed)
    {
        let Some(id) = &file.data_import_id else {
            continue;
        };
        let role = file.layout.as_ref().map(|l| l.role);
        if role == Some(Role::Relationships) {
            file.yields = Some(Yield {
                kind: "edges",
                rows: file.rows,
                assets: None,
                by_type: Default::default(),
                why_nothing: None,
            });
            continue;
        }
        if matches!(role, Some(Role::Supplementary | Role::Reference)) {
            continue; // detail for another table's machines, by design no asset
        }
        let Some(tally) = cleansing.imports.iter().find(|i| &i.data_import_id == id) else {
            continue;
        };
        let mapped = crate::cleanse::approved_mappings(conn, id)?;
        let describes = catalogue::describes(mapped.iter().map(|m| m.field.name));
        let kind = match describes {
            Describes::Machines => "machines",
            Describes::Applications => "applications",
        };
        let why_nothing = (tally.tally.valid == 0 && file.rows > 0).then(|| match describes {
            _ if mapped.is_empty() => "no column is mapped to an asset field; `intake mappings` shows the suggestions, `intake mappings approve COLUMN FIELD` accepts one".to_string(),
            Describes::Applications => "no row has an application name; check the column mapped to application_name with `intake mappings`".to_string(),
            Describes::Machines => "no row names a machine: no column is mapped to a name, host name, address or id, or their values are empty; `intake mappings` shows the suggestions, `intake mappings set COLUMN name` maps one".to_string(),
        });
        let assets = match describes {
            // Applications are made by the dependencies phase, one per name.
            Describes::Applications => Some(conn.query_row(
                &format!(
                    "SELECT count(DISTINCT lower(trim(json_extract({}, '$.application_name'))))
                     FROM {} r WHERE is_valid = 1",
                    crate::record_store::WHOLE_CLEANSED,
                    crate::record_store::records_of("?1")
                ),
                [id],
                |r| r.get::<_, i64>(0),
            )? as u64),
            Describes::Machines => inventory.and_then(|i| i.machines_by_import.get(id).copied()),
        };
        let stored_kinds = match describes {
            Describes::Machines => inventory.and_then(|i| i.kinds_by_import.get(id)),
            Describes::Applications => None,
        };
        file.yields = Some(Yield {
            assets,
            by_type: stored_kinds
                .cloned()
                .unwrap_or_else(|| tally.tally.valid_by_type.clone()),
            kind: if why_nothing.is_some() {
                "nothing"
            } else {
                kind
            },
            rows: tally.tally.valid,
            why_nothing,
        });
    }
    Ok(())
}
