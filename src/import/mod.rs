//! `intake import`: one run is one master flow with one discovery flow. This module
//! walks the data_import phase end to end: it takes the writer lock, recovers
//! what a killed run left, resolves the tenant, probes every file in parallel,
//! skips content already imported into the engagement, then streams the files
//! through reader threads into the single SQLite writer.

mod on_stage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;
use serde_json::json;

use crate::cleanse;
use crate::db::{self, WriterLock};
use crate::error::{ImportError, ReadError};
use crate::flow::{self, FlowIds, Phase};
use crate::map::{MapError, Mapper};
use crate::pipeline::PipelineError;
use crate::progress::ProgressBars;
use crate::progress::{Tracked, Unit};
use crate::read::layout::TableRole;
use crate::read::workbook::cells::cell_ref;
use crate::read::workbook::table::SheetTable;
use crate::read::workbook::{Book, Container, Visit};
use crate::read::workbook_probe::container_label;
use crate::read::{
    self, delimiter::delimiter_name, CsvSource, FileProbe, InputFile, ReadOptions, Row, RowWarning,
    SheetProbe, SheetStatus, TextProbe,
};
use crate::stage::{self, HeaderInfo, ImportCounts, NewImport, PriorImport, Stager};
use crate::tenant::{self, Tenant};
use on_stage::OnStage;

/// Rows per message from a reader to the writer.
const BATCH_ROWS: usize = 500;
/// Messages in flight between the readers and the writer (bounds memory).
const CHANNEL_DEPTH: usize = 4;

/// What to import and where.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub paths: Vec<PathBuf>,
    pub db_path: PathBuf,
    pub client: Option<String>,
    pub engagement: Option<String>,
    pub user: Option<String>,
    pub source_system: Option<String>,
    pub read: ReadOptions,
    /// Import files even when the same content was imported before.
    pub force: bool,
    /// Show progress bars on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Reader threads; 0 means one per core.
    pub threads: usize,
    /// Rules and threshold of the attribute_mapping phase, and the day of the tech_debt phase.
    pub phases: crate::pipeline::PhaseOptions,
    /// The last phase to run (data_import stages only); the default is inventory.
    pub stop_after: Phase,
}

/// What became of one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Completed,
    Skipped,
    Failed,
}

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
    pub content_hash: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<&'static str>,
    pub skipped_because: Option<String>,
    pub previous_import: Option<PriorImport>,
    pub seconds: f64,
}

impl FileOutcome {
    fn new(path: &str, status: FileStatus) -> FileOutcome {
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
            content_hash: None,
            error: None,
            error_code: None,
            skipped_because: None,
            previous_import: None,
            seconds: 0.0,
        }
    }

    fn describe_text(&mut self, probe: &TextProbe) {
        self.bytes = probe.scan.size;
        let bom = if probe.scan.has_bom { " BOM" } else { "" };
        self.encoding = Some(format!("{}{bom}", probe.scan.encoding.name()));
        self.encoding_source = Some(probe.scan.encoding_source);
        self.delimiter = Some(delimiter_name(probe.delimiter));
        self.delimiter_source = Some(probe.delimiter_source);
        self.content_hash = Some(probe.scan.hash.clone());
        self.notes.extend(probe.note.clone());
        self.layout = None;
    }

    fn describe_sheet(&mut self, container: Container, file_size: u64, sheet: &SheetProbe) {
        self.bytes = file_size;
        self.sheet = Some(sheet.name.clone());
        self.format = Some(container_label(container));
        self.layout = sheet.role.clone();
        self.header_row = sheet.header.as_ref().and_then(|h| h.row.map(u64::from));
        self.content_hash = Some(sheet.content_hash.clone());
    }

    fn fail(&mut self, error: &ReadError) {
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
    pub recovered_imports: Vec<String>,
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

/// Messages from reader threads to the writer.
enum ReaderMessage {
    Started {
        file: usize,
        header: Box<HeaderInfo>,
    },
    Rows {
        file: usize,
        rows: Vec<Row>,
        /// One per row when the reader cleansed them, else empty.
        cleansed: on_stage::Cleansed,
        warnings: Vec<RowWarning>,
    },
    Finished {
        file: usize,
        blank_rows: u64,
        result: Result<(), ReadError>,
    },
}

/// A table that will be staged: a delimited file, or one sheet of a workbook.
#[derive(Clone)]
struct Candidate {
    outcome_index: usize,
    input: InputFile,
    source: SourceKind,
    content_hash: String,
    source_system: Option<String>,
    role: Option<TableRole>,
    read_metadata: serde_json::Value,
}

#[derive(Clone)]
enum SourceKind {
    Text(TextProbe),
    Sheet {
        container: Container,
        sheet: String,
        declared_rows: Option<u64>,
        has_merged_cells: bool,
    },
}

/// A table whose data_imports row exists; a reader streams it to the writer.
struct Planned {
    candidate: Candidate,
    data_import_id: String,
    /// Bytes of a text file, rows of a sheet (0: unknown).
    total: u64,
    done: Arc<AtomicU64>,
    rows_read: Arc<AtomicU64>,
    /// Set by the writer once the table is mapped; readers cleanse (and make
    /// machines) with it.
    work: on_stage::SharedWork,
    /// True while the writer waits for a batch (one flag for the whole run):
    /// a reader then sends its batch as read, for the writer to cleanse.
    writer_idle: Arc<AtomicBool>,
}

impl Planned {
    /// About how many rows the table has, from what has been read so far: a
    /// text file's size over the bytes per row read, a sheet's declared rows.
    fn expected_rows(&self) -> usize {
        let read = self.rows_read.load(Ordering::Relaxed);
        let estimate = match self.candidate.source {
            SourceKind::Text(_) => {
                let bytes = self.done.load(Ordering::Relaxed).max(1);
                (self.total as f64 * read as f64 / bytes as f64 * 1.02) as u64
            }
            SourceKind::Sheet { .. } => self.total,
        };
        usize::try_from(estimate.max(read)).unwrap_or(usize::MAX)
    }
}

/// A table that failed before reading: the file or sheet could not be opened.
struct Unreadable {
    outcome_index: usize,
    input: InputFile,
    sheet: Option<String>,
    error: ReadError,
}

/// Runs an import. Errors are returned only when the run as a whole cannot go on;
/// a file that cannot be read is reported in its outcome and the others continue.
pub fn run(request: &ImportRequest) -> Result<ImportOutcome, ImportError> {
    let started = Instant::now();
    if request.paths.is_empty() {
        return Err(ImportError::InvalidOption(
            "give at least one file, directory or -".into(),
        ));
    }
    // The lock first: two runs must not both create the schema of a new file.
    let _lock = WriterLock::acquire(&request.db_path)?;
    let conn = db::open(&request.db_path)?;
    let mut recovered = stage::recover_interrupted(&conn)?;
    recovered.extend(flow::recover_interrupted(&conn)?);
    for filename in &recovered {
        tracing::warn!(
            "recovered an interrupted import of {filename}: its partial rows were removed"
        );
    }
    let resumed = crate::pipeline::resume_unfinished(&conn, &request.phases)?;
    for flow in &resumed {
        tracing::warn!("finished the phases of flow {flow}, which an earlier run left undone");
    }
    let tenant = tenant::resolve(
        &conn,
        request.client.as_deref(),
        request.engagement.as_deref(),
        request.user.as_deref(),
    )?;

    let spool_dir = request
        .db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    // Named after the database, so only a run holding its lock removes them.
    let spool_prefix = format!(
        ".{}.stdin-",
        request
            .db_path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );
    read::remove_stale_spools(&spool_dir, &spool_prefix);
    let read::Inputs {
        files: inputs,
        ignored,
        stdin_spools: _spools,
    } = read::expand_inputs(&request.paths, &spool_dir, &spool_prefix)?;
    if inputs.is_empty() {
        tracing::warn!("no supported files found in the given paths");
    }
    let threads = effective_threads(request.threads, inputs.len());
    let probes = parallel_map(&inputs, threads, |input| read::probe(input, &request.read));

    // Decide per table: import, skip (same content seen, hidden or empty sheet),
    // or fail (unreadable).
    let mut outcomes = Vec::with_capacity(inputs.len());
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut unreadable: Vec<Unreadable> = Vec::new();
    for (input, probe) in inputs.into_iter().zip(probes) {
        match probe {
            Err(error) => {
                let mut outcome = FileOutcome::new(&input.display, FileStatus::Failed);
                outcome.fail(&error);
                unreadable.push(Unreadable {
                    outcome_index: outcomes.len(),
                    input,
                    sheet: None,
                    error,
                });
                outcomes.push(outcome);
            }
            Ok(FileProbe::Text(probe)) => {
                let mut outcome = FileOutcome::new(&input.display, FileStatus::Completed);
                outcome.describe_text(&probe);
                candidates.push(Candidate {
                    outcome_index: outcomes.len(),
                    content_hash: probe.scan.hash.clone(),
                    source_system: request.source_system.clone(),
                    role: None,
                    read_metadata: json!({
                        "encoding": probe.scan.encoding.name(),
                        "encoding_source": probe.scan.encoding_source,
                        "bom": probe.scan.has_bom,
                        "delimiter": (probe.delimiter as char).to_string(),
                        "delimiter_source": probe.delimiter_source,
                        "note": probe.note,
                    }),
                    source: SourceKind::Text(probe),
                    input,
                });
                outcomes.push(outcome);
            }
            Ok(FileProbe::Workbook(book)) => {
                for sheet in &book.sheets {
                    let mut outcome = FileOutcome::new(&input.display, FileStatus::Completed);
                    outcome.describe_sheet(book.container, book.size, sheet);
                    if let Some(reason) = sheet.status.skip_reason() {
                        outcome.status = FileStatus::Skipped;
                        outcome.skipped_because = Some(reason.to_string());
                        outcomes.push(outcome);
                        continue;
                    }
                    if let SheetStatus::Failed(message) = &sheet.status {
                        let error = ReadError::Sheet {
                            file: input.display.clone(),
                            sheet: sheet.name.clone(),
                            message: message.clone(),
                        };
                        outcome.fail(&error);
                        unreadable.push(Unreadable {
                            outcome_index: outcomes.len(),
                            input: input.clone(),
                            sheet: Some(sheet.name.clone()),
                            error,
                        });
                        outcomes.push(outcome);
                        continue;
                    }
                    let source_system = request.source_system.clone().or_else(|| {
                        sheet
                            .role
                            .as_ref()
                            .map(|r| r.layout.source_system().to_string())
                    });
                    candidates.push(Candidate {
                        outcome_index: outcomes.len(),
                        input: input.clone(),
                        source: SourceKind::Sheet {
                            container: book.container,
                            sheet: sheet.name.clone(),
                            declared_rows: sheet.declared_rows,
                            has_merged_cells: book.has_merged_cells,
                        },
                        content_hash: sheet.content_hash.clone(),
                        source_system,
                        role: sheet.role.clone(),
                        read_metadata: json!({
                            "format": container_label(book.container),
                            "file_hash": book.hash,
                            "sheet": sheet.name,
                            "sheet_position": sheet.position,
                            "visibility": sheet.visibility,
                            "declared_rows": sheet.declared_rows,
                            "declared_columns": sheet.declared_columns,
                            "uses_1904_dates": book.uses_1904_dates,
                            "workbook_layout": book.layout,
                            "layout": sheet.role,
                        }),
                    });
                    outcomes.push(outcome);
                }
            }
        }
    }
    let mut to_read: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        let outcome = &mut outcomes[candidate.outcome_index];
        let same_run = to_read
            .iter()
            .find(|c| c.content_hash == candidate.content_hash)
            .map(|c| label(&c.input, sheet_of(c)));
        let earlier = if request.force {
            None
        } else {
            stage::find_completed_by_hash(&conn, &tenant.engagement_id, &candidate.content_hash)?
        };
        if let Some(other) = same_run {
            outcome.status = FileStatus::Skipped;
            outcome.skipped_because = Some(format!("same content as {other} in this run"));
        } else if let Some(prior) = earlier {
            outcome.status = FileStatus::Skipped;
            outcome.skipped_because = Some(format!(
                "already imported into {}/{} on {} (data import {}); use --force to import it again",
                tenant.client_name, tenant.engagement_name, prior.completed_at, prior.data_import_id
            ));
            outcome.previous_import = Some(prior);
        } else {
            to_read.push(candidate);
        }
    }
    for outcome in outcomes.iter().filter(|o| o.status == FileStatus::Skipped) {
        tracing::info!(
            "skipped {}{}: {}",
            outcome.path,
            outcome
                .sheet
                .as_ref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default(),
            outcome.skipped_because.as_deref().unwrap_or("")
        );
    }

    let mut result = ImportOutcome {
        db: request.db_path.display().to_string(),
        master_flow_id: None,
        discovery_flow_id: None,
        client: tenant.client_name.clone(),
        engagement: tenant.engagement_name.clone(),
        user: tenant.user_name.clone(),
        flow_status: "none".to_string(),
        files: Vec::new(),
        ignored_paths: ignored,
        recovered_imports: recovered,
        resumed_flows: resumed,
        totals: Totals::default(),
        mapping: None,
        cleansing: None,
        inventory: None,
        dependencies: None,
        tech_debt: None,
        seconds: 0.0,
    };

    // Nothing new to import: no flow is created, so a re-run changes nothing.
    if to_read.is_empty() && unreadable.is_empty() {
        result.files = outcomes;
        result.totals = totals(&result.files);
        result.seconds = started.elapsed().as_secs_f64();
        return Ok(result);
    }

    let flow_name = flow_name(&to_read, &unreadable);
    let ids = flow::start_discovery(&conn, &tenant, &flow_name)?;
    result.master_flow_id = Some(ids.master_flow_id.clone());
    result.discovery_flow_id = Some(ids.discovery_flow_id.clone());

    let staged = stage_files(
        &conn,
        request,
        &tenant,
        &ids,
        to_read,
        unreadable,
        &mut outcomes,
        threads,
    );
    result.files = outcomes;
    result.totals = totals(&result.files);
    match staged {
        Ok(on_stage) => {
            let summary = json!({
                "files": result.totals.files,
                "completed": result.totals.completed,
                "skipped": result.totals.skipped,
                "failed": result.totals.failed,
                "records": result.totals.rows,
                "warnings": result.totals.warnings,
                "imports": result.files.iter().filter_map(|f| f.data_import_id.clone()).collect::<Vec<_>>(),
            });
            if result.totals.completed > 0 {
                flow::complete_phase(&conn, &ids, Phase::DataImport, &summary)?;
                result.flow_status = "running".to_string();
                let phases = if request.stop_after == Phase::DataImport {
                    Ok(Default::default())
                } else {
                    crate::pipeline::run_between(
                        &conn,
                        &ids,
                        Phase::AttributeMapping,
                        request.stop_after,
                        &request.phases,
                        on_stage,
                    )
                };
                match phases {
                    Ok(phases) => {
                        result.mapping = phases.mapping;
                        result.cleansing = phases.cleansing;
                        if phases.tech_debt.is_some() {
                            result.flow_status = "completed".to_string();
                        }
                        result.inventory = phases.inventory;
                        result.dependencies = phases.dependencies;
                        result.tech_debt = phases.tech_debt;
                    }
                    Err(error) => return Err(error.into()),
                }
            } else {
                flow::fail(
                    &conn,
                    &ids,
                    Phase::DataImport,
                    "no file could be imported",
                    &summary,
                )?;
                result.flow_status = "failed".to_string();
            }
        }
        Err(error) => {
            let message = error.to_string();
            // Best effort: the database itself may be what failed.
            let _ = flow::fail(
                &conn,
                &ids,
                Phase::DataImport,
                &message,
                &json!({ "type": "run_failed" }),
            );
            return Err(error);
        }
    }
    result.seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

fn flow_name(to_read: &[Candidate], unreadable: &[Unreadable]) -> String {
    let mut names: Vec<&str> = to_read
        .iter()
        .map(|c| c.input.display.as_str())
        .chain(unreadable.iter().map(|u| u.input.display.as_str()))
        .collect();
    names.dedup();
    match names.as_slice() {
        [one] => format!("import {one}"),
        [first, rest @ ..] => format!("import {first} and {} more", rest.len()),
        [] => "import".to_string(),
    }
}

fn sheet_of(candidate: &Candidate) -> Option<&str> {
    match &candidate.source {
        SourceKind::Sheet { sheet, .. } => Some(sheet),
        SourceKind::Text(_) => None,
    }
}

/// "servers.csv" or "inventory.xlsx [vInfo]".
fn label(input: &InputFile, sheet: Option<&str>) -> String {
    match sheet {
        Some(sheet) => format!("{} [{sheet}]", input.display),
        None => input.display.clone(),
    }
}

fn totals(files: &[FileOutcome]) -> Totals {
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

fn effective_threads(requested: usize, files: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let wanted = if requested == 0 { cores } else { requested };
    wanted.clamp(1, files.max(1))
}

/// Maps `f` over `items` on `threads` threads, keeping the order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a probe thread panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Creates the data_imports rows, then streams every readable table into SQLite.
#[allow(clippy::too_many_arguments)]
fn stage_files<'c>(
    conn: &'c rusqlite::Connection,
    request: &'c ImportRequest,
    tenant: &Tenant,
    ids: &FlowIds,
    to_read: Vec<Candidate>,
    unreadable: Vec<Unreadable>,
    outcomes: &mut [FileOutcome],
    threads: usize,
) -> Result<crate::pipeline::OnStage<'c>, ImportError> {
    let mut planned = Vec::with_capacity(to_read.len());
    {
        let tx = conn.unchecked_transaction()?;
        for failed in &unreadable {
            let id = stage::create_import(
                &tx,
                tenant,
                ids,
                &NewImport {
                    filename: &failed.input.display,
                    sheet: failed.sheet.as_deref(),
                    description: None,
                    file_size: std::fs::metadata(&failed.input.path).ok().map(|m| m.len()),
                    mime_type: failed.input.mime_type(),
                    import_type: if failed.sheet.is_some() {
                        "workbook"
                    } else {
                        import_type(&failed.input)
                    },
                    source_system: request.source_system.as_deref(),
                    content_hash: None,
                    read_metadata: json!({}),
                },
            )?;
            stage::fail_unread(&tx, &id, &failed.error)?;
            outcomes[failed.outcome_index].data_import_id = Some(id);
        }
        let writer_idle = Arc::new(AtomicBool::new(false));
        for candidate in to_read {
            let (import_type, total) = match &candidate.source {
                SourceKind::Text(probe) => ("csv", probe.scan.size),
                SourceKind::Sheet { declared_rows, .. } => ("workbook", declared_rows.unwrap_or(0)),
            };
            let id = stage::create_import(
                &tx,
                tenant,
                ids,
                &NewImport {
                    filename: &candidate.input.display,
                    sheet: sheet_of(&candidate),
                    description: candidate.role.as_ref().map(TableRole::describe),
                    file_size: std::fs::metadata(&candidate.input.path)
                        .ok()
                        .map(|m| m.len()),
                    mime_type: candidate.input.mime_type(),
                    import_type,
                    source_system: candidate.source_system.as_deref(),
                    content_hash: Some(&candidate.content_hash),
                    read_metadata: candidate.read_metadata.clone(),
                },
            )?;
            outcomes[candidate.outcome_index].data_import_id = Some(id.clone());
            planned.push(Planned {
                candidate,
                data_import_id: id,
                total,
                done: Arc::new(AtomicU64::new(0)),
                rows_read: Arc::new(AtomicU64::new(0)),
                work: Default::default(),
                writer_idle: writer_idle.clone(),
            });
        }
        tx.commit()?;
    }
    if let Some(first) = outcomes.iter().find_map(|o| o.data_import_id.clone()) {
        flow::link_first_import(conn, ids, &first)?;
    }
    if planned.is_empty() {
        return Ok(Default::default());
    }
    // Mapping (and cleansing) happen as the rows are staged unless the run stops first.
    let order = |p: Phase| Phase::ALL.iter().position(|x| *x == p);
    let mut on_stage = if request.stop_after == Phase::DataImport {
        None
    } else {
        let mapper = Mapper::new(
            conn,
            &tenant.client_account_id,
            &ids.master_flow_id,
            &request.phases.mapping,
        )?;
        Some(OnStage::new(
            mapper,
            ids,
            (&tenant.client_account_id, &tenant.engagement_id),
            (
                order(request.stop_after) >= order(Phase::DataCleansing),
                order(request.stop_after) >= order(Phase::Inventory),
            ),
            planned.len(),
        ))
    };

    let bars = ProgressBars::new(
        request.progress,
        planned
            .iter()
            .map(|p| Tracked {
                label: label(&p.candidate.input, sheet_of(&p.candidate)),
                total: p.total,
                done: p.done.clone(),
                rows: p.rows_read.clone(),
                unit: match p.candidate.source {
                    SourceKind::Text(_) => Unit::Bytes,
                    SourceKind::Sheet { .. } => Unit::Rows,
                },
            })
            .collect(),
    );
    // A reader job is a text file, or all the sheets of one workbook (opened once).
    let mut jobs: Vec<Vec<usize>> = Vec::new();
    for (i, plan) in planned.iter().enumerate() {
        let joins_previous = i > 0
            && matches!(plan.candidate.source, SourceKind::Sheet { .. })
            && matches!(planned[i - 1].candidate.source, SourceKind::Sheet { .. })
            && planned[i - 1].candidate.input.path == plan.candidate.input.path;
        match jobs.last_mut() {
            Some(job) if joins_previous => job.push(i),
            _ => jobs.push(vec![i]),
        }
    }
    let (tx, rx) = bounded::<ReaderMessage>(CHANNEL_DEPTH);
    let queue = AtomicUsize::new(0);
    let read_options = &request.read;
    let planned_ref = &planned;
    let jobs_ref = &jobs;
    let written = std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs_ref.len()) {
            let tx = tx.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                let i = queue.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs_ref.get(i) else {
                    break;
                };
                let sent = match &planned_ref[job[0]].candidate.source {
                    SourceKind::Text(probe) => {
                        read_text(job[0], &planned_ref[job[0]], probe, read_options, &tx)
                    }
                    SourceKind::Sheet { container, .. } => {
                        read_sheets(job, planned_ref, *container, &tx)
                    }
                };
                if sent.is_err() {
                    break; // the writer has stopped
                }
            });
        }
        drop(tx);
        write_all(
            conn,
            &ids.master_flow_id,
            planned_ref,
            rx,
            outcomes,
            on_stage.as_mut(),
        )
    });
    bars.finish();
    written?;
    Ok(on_stage.map(OnStage::into_done).unwrap_or_default())
}

fn import_type(input: &InputFile) -> &'static str {
    match input.extension().as_str() {
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => "workbook",
        _ => "csv",
    }
}

type Sent = Result<(), crossbeam_channel::SendError<ReaderMessage>>;

/// A reader thread's work on one text file. Returns Err only when the writer is gone.
fn read_text(
    file: usize,
    plan: &Planned,
    probe: &TextProbe,
    options: &ReadOptions,
    tx: &Sender<ReaderMessage>,
) -> Sent {
    let input = &plan.candidate.input;
    let send_failure = |error, blank_rows| {
        tx.send(ReaderMessage::Finished {
            file,
            blank_rows,
            result: Err(error),
        })
    };
    let mut source = match CsvSource::open(
        &input.path,
        &input.display,
        probe.scan.encoding,
        probe.scan.encoding_source,
        probe.delimiter,
        options.max_record_bytes,
        plan.done.clone(),
    ) {
        Ok(source) => source,
        Err(error) => return send_failure(error, 0),
    };
    if source.columns().is_empty() {
        let error = ReadError::Empty {
            file: input.display.clone(),
        };
        return send_failure(error, source.blank_rows());
    }
    tx.send(ReaderMessage::Started {
        file,
        header: Box::new(HeaderInfo {
            columns: source.columns().to_vec(),
            header_line: source.header_line(),
            header_warnings: source.header_warnings().to_vec(),
            preamble: source.preamble().to_vec(),
            merged_ranges: Vec::new(),
            layout: read::layout::recognise_table(source.columns())
                .map(read::layout::single_table_role),
        }),
    })?;
    let mut rows = Vec::with_capacity(BATCH_ROWS);
    let mut warnings = Vec::new();
    loop {
        match source.next_row(&mut warnings) {
            Ok(Some(row)) => {
                rows.push(row);
                if rows.len() == BATCH_ROWS {
                    let batch = std::mem::replace(&mut rows, Vec::with_capacity(BATCH_ROWS));
                    let batch_warnings = std::mem::take(&mut warnings);
                    send_rows(tx, file, plan, batch, batch_warnings, Unit::Bytes)?;
                }
            }
            Ok(None) => break,
            Err(error) => return send_failure(error, source.blank_rows()),
        }
    }
    let blank_rows = source.blank_rows();
    finish_ok(tx, file, plan, rows, warnings, blank_rows, Unit::Bytes)
}

/// Sends a table's last rows and its successful end.
fn finish_ok(
    tx: &Sender<ReaderMessage>,
    file: usize,
    plan: &Planned,
    rows: Vec<Row>,
    warnings: Vec<RowWarning>,
    blank_rows: u64,
    unit: Unit,
) -> Sent {
    if !rows.is_empty() || !warnings.is_empty() {
        send_rows(tx, file, plan, rows, warnings, unit)?;
    }
    tx.send(ReaderMessage::Finished {
        file,
        blank_rows,
        result: Ok(()),
    })
}

/// Sends a batch of rows and counts them for the progress bar; a sheet's bar
/// (`Unit::Rows`) advances by rows, a text file's by the bytes its reader reports.
fn send_rows(
    tx: &Sender<ReaderMessage>,
    file: usize,
    plan: &Planned,
    rows: Vec<Row>,
    warnings: Vec<RowWarning>,
    unit: Unit,
) -> Sent {
    plan.rows_read
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    if unit == Unit::Rows {
        plan.done.fetch_add(rows.len() as u64, Ordering::Relaxed);
    }
    // Cleansing is shared with the writer: while it waits for work, the batch
    // goes as read and the writer cleanses it (a single CSV has one reader,
    // which otherwise did all the cleansing). A queue that is merely empty
    // is not enough: a writer busy writing a batch out would get more work.
    let cleansed = if plan.writer_idle.load(Ordering::Relaxed) {
        on_stage::Cleansed::default()
    } else {
        on_stage::cleanse_batch(&plan.work, &rows)
    };
    tx.send(ReaderMessage::Rows {
        file,
        rows,
        cleansed,
        warnings,
    })
}

/// A reader thread's work on the sheets of one workbook, opened once and read
/// sheet by sheet. Returns Err only when the writer is gone.
fn read_sheets(
    job: &[usize],
    planned: &[Planned],
    container: Container,
    tx: &Sender<ReaderMessage>,
) -> Sent {
    let input = &planned[job[0]].candidate.input;
    let mut book = match Book::open(&input.path, container) {
        Ok(book) => book,
        Err(message) => {
            for &file in job {
                tx.send(ReaderMessage::Finished {
                    file,
                    blank_rows: 0,
                    result: Err(ReadError::Workbook {
                        file: input.display.clone(),
                        message: message.clone(),
                    }),
                })?;
            }
            return Ok(());
        }
    };
    for &file in job {
        let plan = &planned[file];
        let SourceKind::Sheet {
            sheet,
            has_merged_cells,
            ..
        } = &plan.candidate.source
        else {
            continue;
        };
        read_sheet(file, plan, &mut book, sheet, *has_merged_cells, tx)?;
    }
    Ok(())
}

fn read_sheet(
    file: usize,
    plan: &Planned,
    book: &mut Book,
    sheet: &str,
    has_merged_cells: bool,
    tx: &Sender<ReaderMessage>,
) -> Sent {
    let file_name = &plan.candidate.input.display;
    let sheet_error = |message: String| ReadError::Sheet {
        file: file_name.clone(),
        sheet: sheet.to_string(),
        message,
    };
    let merged = if !has_merged_cells {
        Vec::new()
    } else {
        book.merged(sheet).unwrap_or_else(|message| {
            tracing::warn!("{file_name} [{sheet}]: merged ranges cannot be read ({message}); cells are read as stored");
            Vec::new()
        })
    };
    let merged_ranges: Vec<String> = merged
        .iter()
        .map(|&(r0, c0, r1, c1)| format!("{}:{}", cell_ref(r0, c0), cell_ref(r1, c1)))
        .collect();
    let mut table = SheetTable::new(merged);
    let mut started = false;
    let mut send_result: Sent = Ok(());
    let role = plan.candidate.role.clone();
    let start = |table: &SheetTable, started: &mut bool| -> Sent {
        let Some(header) = table.header() else {
            return Ok(());
        };
        *started = true;
        let mut header_warnings = header.warnings.clone();
        if !merged_ranges.is_empty() {
            header_warnings.push(crate::read::header::HeaderWarning {
                column: 0,
                written: String::new(),
                named: String::new(),
                message: format!(
                    "{} merged range(s) ({}{}): below the header, each range's value is copied into the cells it covers",
                    merged_ranges.len(),
                    merged_ranges.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                    if merged_ranges.len() > 5 { ", ..." } else { "" }
                ),
            });
        }
        tx.send(ReaderMessage::Started {
            file,
            header: Box::new(HeaderInfo {
                columns: header.columns.clone(),
                header_line: header.row.map_or(0, u64::from),
                header_warnings,
                preamble: header.preamble.clone(),
                merged_ranges: merged_ranges.clone(),
                layout: role.clone(),
            }),
        })
    };
    let visited = book.visit(sheet, &mut |row| {
        table.push(row);
        if !started {
            if let Err(e) = start(&table, &mut started) {
                send_result = Err(e);
                return Visit::Stop;
            }
        }
        if table.pending() >= BATCH_ROWS {
            let (rows, warnings) = table.take_rows();
            if let Err(e) = send_rows(tx, file, plan, rows, warnings, Unit::Rows) {
                send_result = Err(e);
                return Visit::Stop;
            }
        }
        Visit::Continue
    });
    send_result?;
    if let Err(message) = visited {
        return tx.send(ReaderMessage::Finished {
            file,
            blank_rows: table.blank_rows(),
            result: Err(sheet_error(message)),
        });
    }
    table.finish();
    if !started {
        start(&table, &mut started)?;
    }
    if !started || table.header().is_some_and(|h| h.columns.is_empty()) {
        return tx.send(ReaderMessage::Finished {
            file,
            blank_rows: 0,
            result: Err(sheet_error("the sheet is empty".into())),
        });
    }
    let (rows, warnings) = table.take_rows();
    finish_ok(
        tx,
        file,
        plan,
        rows,
        warnings,
        table.blank_rows(),
        Unit::Rows,
    )
}

/// The single writer: drains the readers' messages into SQLite.
fn write_all<'c>(
    conn: &'c rusqlite::Connection,
    master_flow_id: &str,
    planned: &[Planned],
    rx: Receiver<ReaderMessage>,
    outcomes: &mut [FileOutcome],
    mut on_stage: Option<&mut OnStage<'c>>,
) -> Result<(), ImportError> {
    let mapping_failed = |e: MapError| ImportError::Pipeline(PipelineError::Mapping(e));
    let mut stager = Stager::new(conn, master_flow_id);
    let mut counts: Vec<ImportCounts> = planned.iter().map(|_| ImportCounts::default()).collect();
    let mut started: Vec<Option<Instant>> = vec![None; planned.len()];
    let mut uncommitted = vec![false; planned.len()];
    loop {
        let received = rx.try_recv().or_else(|_| {
            let idle = planned.first().map(|p| &p.writer_idle);
            idle.inspect(|idle| idle.store(true, Ordering::Relaxed));
            let received = rx.recv_timeout(Duration::from_millis(500));
            idle.inspect(|idle| idle.store(false, Ordering::Relaxed));
            received
        });
        let message = match received {
            Ok(message) => Some(message),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match message {
            None => {}
            Some(ReaderMessage::Started { file, header }) => {
                started[file] = Some(Instant::now());
                stager.start(&planned[file].data_import_id, &header)?;
                counts[file].header = Some(*header);
            }
            Some(ReaderMessage::Rows {
                file,
                rows,
                cleansed,
                warnings,
            }) => {
                counts[file].rows += rows.len() as u64;
                match on_stage.as_deref_mut() {
                    Some(on_stage) => on_stage
                        .rows(
                            &mut stager,
                            file,
                            &planned[file],
                            counts[file].header.as_ref(),
                            rows,
                            cleansed,
                        )
                        .map_err(mapping_failed)?,
                    None => {
                        stager.insert_rows(&planned[file].data_import_id, &rows, &[])?;
                    }
                }
                counts[file].add_warnings(warnings);
                uncommitted[file] = true;
            }
            Some(ReaderMessage::Finished {
                file,
                blank_rows,
                result,
            }) => {
                let plan = &planned[file];
                counts[file].blank_rows = blank_rows;
                let outcome = &mut outcomes[plan.candidate.outcome_index];
                match result {
                    Ok(()) => {
                        if counts[file].rows == 0 {
                            let line = counts[file].header.as_ref().map_or(0, |h| h.header_line);
                            counts[file].add_warnings(vec![RowWarning {
                                record_index: 0,
                                line,
                                column: None,
                                code: "no_data_rows",
                                message: "the file has a header but no data rows".to_string(),
                            }]);
                        }
                        let cleansing = match on_stage.as_deref_mut() {
                            Some(on_stage) => on_stage
                                .finish(&mut stager, file, plan, counts[file].header.as_ref())
                                .map_err(mapping_failed)?,
                            None => None,
                        };
                        stager.complete(&plan.data_import_id, &counts[file])?;
                        // A kill before this line only means the cleansing phase redoes it.
                        if let Some((work, tally)) = cleansing {
                            cleanse::record_cleansing(
                                conn,
                                &plan.data_import_id,
                                work.cleanser(),
                                &tally,
                            )?;
                        }
                        tracing::debug!(
                            "{}: {} rows committed",
                            plan.candidate.input.display,
                            counts[file].rows
                        );
                    }
                    Err(error) => {
                        tracing::error!("{error}");
                        if let Some(on_stage) = on_stage.as_deref_mut() {
                            on_stage.abandon(&mut stager, file, plan)?;
                        }
                        stager.fail(&plan.data_import_id, &error, &counts[file])?;
                        outcome.fail(&error);
                    }
                }
                uncommitted[file] = false;
                fill_outcome(outcome, &counts[file], started[file]);
                // Free the kept warnings of a finished file.
                counts[file] = ImportCounts::default();
            }
        }
        if stager.commit_due() {
            for (file, dirty) in uncommitted.iter_mut().enumerate() {
                if *dirty {
                    let plan = &planned[file];
                    let done = plan.done.load(Ordering::Relaxed) as f64;
                    let percent = 100.0 * done / (plan.total.max(1) as f64);
                    stager.record_progress(
                        &plan.data_import_id,
                        counts[file].rows,
                        percent.min(99.0),
                    )?;
                    *dirty = false;
                }
            }
            stager.commit()?;
        }
    }
    stager.commit()?;
    Ok(())
}

fn fill_outcome(outcome: &mut FileOutcome, counts: &ImportCounts, started: Option<Instant>) {
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
