//! `intake import`: one run is one master flow with one discovery flow. This module
//! walks the data_import phase end to end: it takes the writer lock, recovers
//! what a killed run left, resolves the tenant, probes every file in parallel,
//! skips content already imported into the engagement, then streams the files
//! through reader threads into the single SQLite writer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;
use serde_json::json;

use crate::db::{self, WriterLock};
use crate::error::{ImportError, ReadError};
use crate::flow::{self, FlowIds, Phase};
use crate::progress::ProgressBars;
use crate::read::{
    self, delimiter::delimiter_name, CsvSource, InputFile, Probe, ReadOptions, Row, RowWarning,
};
use crate::stage::{self, HeaderInfo, ImportCounts, NewImport, PriorImport, Stager};
use crate::tenant::{self, Tenant};

/// Rows per message from a reader to the writer.
const BATCH_ROWS: usize = 2_000;
/// Messages in flight between the readers and the writer (bounds memory).
const CHANNEL_DEPTH: usize = 8;

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

    fn describe_probe(&mut self, probe: &Probe) {
        self.bytes = probe.scan.size;
        let bom = if probe.scan.has_bom { " BOM" } else { "" };
        self.encoding = Some(format!("{}{bom}", probe.scan.encoding.name()));
        self.encoding_source = Some(probe.scan.encoding_source);
        self.delimiter = Some(delimiter_name(probe.delimiter));
        self.delimiter_source = Some(probe.delimiter_source);
        self.content_hash = Some(probe.scan.hash.clone());
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
    pub totals: Totals,
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

/// Documented exit codes of `intake import`.
pub mod exit_code {
    /// Every file was imported or skipped as already imported.
    pub const OK: i32 = 0;
    /// The run could not start or the database failed (nothing or only complete imports written).
    pub const RUN_FAILED: i32 = 1;
    /// The command line was wrong (clap's code).
    pub const USAGE: i32 = 2;
    /// At least one file could not be imported; the others were.
    pub const FILE_FAILED: i32 = 3;
    /// --strict: files were imported but rows had warnings.
    pub const STRICT_WARNINGS: i32 = 4;
}

impl ImportOutcome {
    /// The exit code for this outcome; `strict` makes row-level warnings a failure.
    pub fn exit_code(&self, strict: bool) -> i32 {
        if self.totals.failed > 0 {
            exit_code::FILE_FAILED
        } else if strict && self.totals.warnings > 0 {
            exit_code::STRICT_WARNINGS
        } else {
            exit_code::OK
        }
    }
}

/// Messages from reader threads to the writer.
enum ReaderMessage {
    Started {
        file: usize,
        header: HeaderInfo,
    },
    Rows {
        file: usize,
        rows: Vec<Row>,
        warnings: Vec<RowWarning>,
    },
    Finished {
        file: usize,
        blank_rows: u64,
        result: Result<(), ReadError>,
    },
}

/// A file that will be read, with what the probe decided.
struct Planned {
    outcome_index: usize,
    input: InputFile,
    probe: Probe,
    data_import_id: String,
    bytes_read: Arc<AtomicU64>,
    rows_read: Arc<AtomicU64>,
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
    let read::Inputs {
        files: inputs,
        ignored,
        stdin_spools: _spools,
    } = read::expand_inputs(&request.paths, &spool_dir)?;
    if inputs.is_empty() {
        tracing::warn!("no supported files found in the given paths");
    }
    let threads = effective_threads(request.threads, inputs.len());
    let probes = parallel_map(&inputs, threads, |input| read::probe(input, &request.read));

    // Decide per file: import, skip (same content seen), or fail (unreadable).
    let mut outcomes = Vec::with_capacity(inputs.len());
    let mut to_read: Vec<(usize, InputFile, Probe)> = Vec::new();
    let mut unreadable: Vec<(usize, InputFile, ReadError)> = Vec::new();
    for (input, probe) in inputs.into_iter().zip(probes) {
        let index = outcomes.len();
        let mut outcome = FileOutcome::new(&input.display, FileStatus::Completed);
        match probe {
            Err(error) => {
                outcome.fail(&error);
                unreadable.push((index, input, error));
            }
            Ok(probe) => {
                outcome.describe_probe(&probe);
                let same_run = to_read
                    .iter()
                    .find(|(_, _, p)| p.scan.hash == probe.scan.hash)
                    .map(|(_, f, _)| f.display.clone());
                let earlier = if request.force {
                    None
                } else {
                    stage::find_completed_by_hash(&conn, &tenant.engagement_id, &probe.scan.hash)?
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
                    to_read.push((index, input, probe));
                }
            }
        }
        outcomes.push(outcome);
    }
    for outcome in outcomes.iter().filter(|o| o.status == FileStatus::Skipped) {
        tracing::info!(
            "skipped {}: {}",
            outcome.path,
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
        totals: Totals::default(),
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

    let run = stage_files(
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
    match run {
        Ok(()) => {
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

fn flow_name(
    to_read: &[(usize, InputFile, Probe)],
    unreadable: &[(usize, InputFile, ReadError)],
) -> String {
    let names: Vec<&str> = to_read
        .iter()
        .map(|(_, f, _)| f.display.as_str())
        .chain(unreadable.iter().map(|(_, f, _)| f.display.as_str()))
        .collect();
    match names.as_slice() {
        [one] => format!("import {one}"),
        [first, rest @ ..] => format!("import {first} and {} more", rest.len()),
        [] => "import".to_string(),
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

/// Creates the data_imports rows, then streams every readable file into SQLite.
#[allow(clippy::too_many_arguments)]
fn stage_files(
    conn: &rusqlite::Connection,
    request: &ImportRequest,
    tenant: &Tenant,
    ids: &FlowIds,
    to_read: Vec<(usize, InputFile, Probe)>,
    unreadable: Vec<(usize, InputFile, ReadError)>,
    outcomes: &mut [FileOutcome],
    threads: usize,
) -> Result<(), ImportError> {
    let mut planned = Vec::with_capacity(to_read.len());
    {
        let tx = conn.unchecked_transaction()?;
        for (index, input, error) in &unreadable {
            let id = stage::create_import(
                &tx,
                tenant,
                ids,
                &NewImport {
                    filename: &input.display,
                    file_size: std::fs::metadata(&input.path).ok().map(|m| m.len()),
                    mime_type: input.mime_type(),
                    import_type: import_type(input),
                    source_system: request.source_system.as_deref(),
                    content_hash: None,
                    read_metadata: json!({}),
                },
            )?;
            stage::fail_unread(&tx, &id, error)?;
            outcomes[*index].data_import_id = Some(id);
        }
        for (index, input, probe) in to_read {
            let id = stage::create_import(
                &tx,
                tenant,
                ids,
                &NewImport {
                    filename: &input.display,
                    file_size: Some(probe.scan.size),
                    mime_type: input.mime_type(),
                    import_type: import_type(&input),
                    source_system: request.source_system.as_deref(),
                    content_hash: Some(&probe.scan.hash),
                    read_metadata: json!({
                        "encoding": probe.scan.encoding.name(),
                        "encoding_source": probe.scan.encoding_source,
                        "bom": probe.scan.has_bom,
                        "delimiter": (probe.delimiter as char).to_string(),
                        "delimiter_source": probe.delimiter_source,
                    }),
                },
            )?;
            outcomes[index].data_import_id = Some(id.clone());
            planned.push(Planned {
                outcome_index: index,
                input,
                probe,
                data_import_id: id,
                bytes_read: Arc::new(AtomicU64::new(0)),
                rows_read: Arc::new(AtomicU64::new(0)),
            });
        }
        tx.commit()?;
    }
    if let Some(first) = outcomes.iter().find_map(|o| o.data_import_id.clone()) {
        flow::link_first_import(conn, ids, &first)?;
    }
    if planned.is_empty() {
        return Ok(());
    }

    let bars = ProgressBars::new(
        request.progress,
        planned
            .iter()
            .map(|p| {
                (
                    p.input.display.clone(),
                    p.probe.scan.size,
                    p.bytes_read.clone(),
                    p.rows_read.clone(),
                )
            })
            .collect(),
    );
    let (tx, rx) = bounded::<ReaderMessage>(CHANNEL_DEPTH);
    let queue = AtomicUsize::new(0);
    let read_options = &request.read;
    let planned_ref = &planned;
    let written = std::thread::scope(|scope| {
        for _ in 0..threads.min(planned_ref.len()) {
            let tx = tx.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                let i = queue.fetch_add(1, Ordering::Relaxed);
                let Some(plan) = planned_ref.get(i) else {
                    break;
                };
                if read_file(i, plan, read_options, &tx).is_err() {
                    break; // the writer has stopped
                }
            });
        }
        drop(tx);
        write_all(conn, &ids.master_flow_id, planned_ref, rx, outcomes)
    });
    bars.finish();
    written
}

fn import_type(input: &InputFile) -> &'static str {
    match input.extension().as_str() {
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => "workbook",
        _ => "csv",
    }
}

/// A reader thread's work on one file. Returns Err only when the writer is gone.
fn read_file(
    file: usize,
    plan: &Planned,
    options: &ReadOptions,
    tx: &Sender<ReaderMessage>,
) -> Result<(), crossbeam_channel::SendError<ReaderMessage>> {
    let send_failure = |error, blank_rows| {
        tx.send(ReaderMessage::Finished {
            file,
            blank_rows,
            result: Err(error),
        })
    };
    let mut source = match CsvSource::open(
        &plan.input.path,
        &plan.input.display,
        plan.probe.scan.encoding,
        plan.probe.scan.encoding_source,
        plan.probe.delimiter,
        options.max_record_bytes,
        plan.bytes_read.clone(),
    ) {
        Ok(source) => source,
        Err(error) => return send_failure(error, 0),
    };
    if source.columns().is_empty() {
        let error = ReadError::Empty {
            file: plan.input.display.clone(),
        };
        return send_failure(error, source.blank_rows());
    }
    tx.send(ReaderMessage::Started {
        file,
        header: HeaderInfo {
            columns: source.columns().to_vec(),
            header_line: source.header_line(),
            header_warnings: source.header_warnings().to_vec(),
            preamble: source.preamble().to_vec(),
        },
    })?;
    let mut rows = Vec::with_capacity(BATCH_ROWS);
    let mut warnings = Vec::new();
    loop {
        match source.next_row(&mut warnings) {
            Ok(Some(row)) => {
                rows.push(row);
                if rows.len() == BATCH_ROWS {
                    plan.rows_read
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    tx.send(ReaderMessage::Rows {
                        file,
                        rows: std::mem::replace(&mut rows, Vec::with_capacity(BATCH_ROWS)),
                        warnings: std::mem::take(&mut warnings),
                    })?;
                }
            }
            Ok(None) => break,
            Err(error) => return send_failure(error, source.blank_rows()),
        }
    }
    plan.rows_read
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    if !rows.is_empty() || !warnings.is_empty() {
        tx.send(ReaderMessage::Rows {
            file,
            rows,
            warnings,
        })?;
    }
    tx.send(ReaderMessage::Finished {
        file,
        blank_rows: source.blank_rows(),
        result: Ok(()),
    })
}

/// The single writer: drains the readers' messages into SQLite.
fn write_all(
    conn: &rusqlite::Connection,
    master_flow_id: &str,
    planned: &[Planned],
    rx: Receiver<ReaderMessage>,
    outcomes: &mut [FileOutcome],
) -> Result<(), ImportError> {
    let mut stager = Stager::new(conn, master_flow_id);
    let mut counts: Vec<ImportCounts> = planned.iter().map(|_| ImportCounts::default()).collect();
    let mut started: Vec<Option<Instant>> = vec![None; planned.len()];
    let mut uncommitted = vec![false; planned.len()];
    loop {
        let message = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(message) => Some(message),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match message {
            None => {}
            Some(ReaderMessage::Started { file, header }) => {
                started[file] = Some(Instant::now());
                stager.start(&planned[file].data_import_id, &header)?;
                counts[file].header = Some(header);
            }
            Some(ReaderMessage::Rows {
                file,
                rows,
                warnings,
            }) => {
                stager.insert_rows(&planned[file].data_import_id, &rows)?;
                counts[file].rows += rows.len() as u64;
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
                let outcome = &mut outcomes[plan.outcome_index];
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
                        stager.complete(&plan.data_import_id, &counts[file])?;
                        tracing::debug!(
                            "{}: {} rows committed",
                            plan.input.display,
                            counts[file].rows
                        );
                    }
                    Err(error) => {
                        tracing::error!("{error}");
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
                    let read = plan.bytes_read.load(Ordering::Relaxed) as f64;
                    let percent = 100.0 * read / (plan.probe.scan.size.max(1) as f64);
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
        outcome.header_warnings = header
            .header_warnings
            .iter()
            .map(|w| w.message.clone())
            .collect();
    }
    outcome.seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
}
