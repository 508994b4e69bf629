//! `intake import`: one run is one master flow with one discovery flow. This
//! module is the driver: it takes the writer lock, recovers what a killed run
//! left, resolves the tenant, probes every file in parallel and decides per
//! table whether to read, skip (content already imported into the engagement)
//! or fail it; `staging` then streams the tables into the single SQLite
//! writer, and the pipeline runs the later phases. `outcome` is what the run
//! reports per file.

mod error;
mod outcome;
mod staging;
mod staging_work;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::json;

use crate::db::{self, WriterLock};
use crate::flow::{self, Phase};
use crate::phase_cost::Meter;
use crate::read::layout::TableRole;
use crate::read::workbook::Container;
use crate::read::workbook_probe::container_label;
use crate::read::{self, FileProbe, InputFile, ReadError, ReadOptions, SheetStatus, TextProbe};
use crate::stage;
use crate::tenant;
pub use error::ImportError;
use outcome::totals;
pub use outcome::{FileOutcome, FileStatus, ImportOutcome, Totals, Yield};

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
    // Paths that do not exist are failed files of the run; when none
    // exists, nothing is created (no database, journal or lock).
    let (present, missing): (Vec<PathBuf>, Vec<PathBuf>) = request
        .paths
        .iter()
        .cloned()
        .partition(|p| p.as_os_str() == "-" || p.exists());
    if present.is_empty() {
        return Err(read::InputError::NotFound {
            path: missing[0].clone(),
        }
        .into());
    }
    let missing_outcomes: Vec<FileOutcome> = missing
        .iter()
        .map(|path| {
            let mut outcome = FileOutcome::new(&path.display().to_string(), FileStatus::Failed);
            outcome.error = Some(format!("{}: no such file or directory", path.display()));
            outcome.error_code = Some("not_found");
            outcome
        })
        .collect();
    // The lock first: two runs must not both create the schema of a new file.
    let _lock = WriterLock::acquire(&request.db_path)?;
    let conn = db::open(&request.db_path)?;
    let recovered = stage::recover_interrupted(&conn)?;
    let recovered_flows = flow::recover_interrupted(&conn)?;
    // One message per interruption: the flow with its files, else the file.
    let mut named_by_flow: Vec<String> = Vec::new();
    for ids in &recovered_flows {
        named_by_flow.extend(flow::file_names(&conn, &ids.master_flow_id)?);
        tracing::warn!(
            "recovered {}, which a run stopped before its files were staged: its partial rows were removed; import the files again to finish it",
            flow::describe(&conn, &ids.master_flow_id)?
        );
    }
    for filename in recovered.iter().filter(|f| !named_by_flow.contains(f)) {
        tracing::warn!(
            "recovered an interrupted import of {filename}: its partial rows were removed"
        );
    }
    let resumed = crate::pipeline::resume_unfinished(&conn, &request.phases)?;
    for master_flow_id in &resumed {
        tracing::warn!(
            "finished the phases of {}, which an earlier run left undone",
            flow::describe(&conn, master_flow_id)?
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
        archives: _archives,
        refused,
    } = read::expand_inputs(&present, &spool_dir, &spool_prefix)?;
    // An archive or entry that could not be inflated is a failed file of the run.
    let mut missing_outcomes = missing_outcomes;
    missing_outcomes.extend(refused.into_iter().map(|(display, reason)| {
        let mut outcome = FileOutcome::new(&display, FileStatus::Failed);
        let prefix = format!("{display}: ");
        outcome.error = Some(format!(
            "{display}: {}",
            reason.strip_prefix(&prefix).unwrap_or(&reason)
        ));
        outcome.error_code = Some("archive_refused");
        outcome
    }));
    if inputs.is_empty() {
        tracing::warn!("no supported files found in the given paths");
    }
    // The data_import phase's cost: from reading the files' heads to the last row staged.
    let staging_cost = Meter::start();
    let threads = effective_threads(request.threads, inputs.len());
    let probes = parallel_map(&inputs, threads, |input| read::probe(input, &request.read));

    let (mut outcomes, candidates, unreadable) = plan_tables(request, inputs, probes);
    let to_read = skip_seen(&conn, request, &tenant, candidates, &mut outcomes)?;
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
        recovered_flows: recovered_flows
            .into_iter()
            .map(|ids| ids.master_flow_id)
            .collect(),
        resumed_flows: resumed,
        totals: Totals::default(),
        mapping: None,
        cleansing: None,
        inventory: None,
        dependencies: None,
        tech_debt: None,
        phase_costs: Vec::new(),
        seconds: 0.0,
    };

    // Nothing new to import: no flow is created, so a re-run changes nothing.
    outcomes.extend(missing_outcomes);
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

    // Threads for the tables, not the files: a workbook's sheets may be read
    // side by side, and a large delimited file parsed on several threads.
    let readers = effective_threads(request.threads, usize::MAX);
    let mut staged = staging::stage_files(
        &conn,
        request,
        &tenant,
        &ids,
        to_read,
        unreadable,
        &mut outcomes,
        readers,
    );
    result.files = outcomes;
    result.totals = totals(&result.files);
    if let Ok(staging) = &mut staged {
        if let Some(assets) = &mut staging.assets {
            assets.staged();
        }
        crate::phase_cost::log_memory("staged, before the dropped indexes are rebuilt");
        // Indexes dropped for a bulk first build are built again with the
        // rows staged, as part of the phase (after a failure, the next open
        // builds them).
        db::ensure_indexes(&conn)?;
    }
    result
        .phase_costs
        .push(staging_cost.stop(Phase::DataImport.name()));
    match staged {
        Ok(staging) => {
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
                        staging,
                    )
                };
                match phases {
                    Ok(phases) => {
                        if let Some(cleansing) = &phases.cleansing {
                            outcome::fill_yields(
                                &conn,
                                &mut result.files,
                                cleansing,
                                phases.inventory.as_ref(),
                            )?;
                        }
                        result.mapping = phases.mapping;
                        result.cleansing = phases.cleansing;
                        if phases.tech_debt.is_some() {
                            result.flow_status = "completed".to_string();
                        }
                        result.inventory = phases.inventory;
                        result.dependencies = phases.dependencies;
                        result.tech_debt = phases.tech_debt;
                        result.phase_costs.extend(phases.costs);
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

/// Decides per table: read it, skip it (a hidden or empty sheet) or fail it
/// (the file or sheet cannot be opened). Returns the outcome of every table,
/// in input order, with the tables to read and those that failed.
fn plan_tables(
    request: &ImportRequest,
    inputs: Vec<InputFile>,
    probes: Vec<Result<FileProbe, ReadError>>,
) -> (Vec<FileOutcome>, Vec<Candidate>, Vec<Unreadable>) {
    let mut outcomes = Vec::with_capacity(inputs.len());
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut unreadable: Vec<Unreadable> = Vec::new();
    for (input, probe) in inputs.into_iter().zip(probes) {
        match probe {
            // Not a table: skipped with the reason, no import recorded, not a failure.
            Err(error @ ReadError::NotATable { .. }) => {
                let mut outcome = FileOutcome::new(&input.display, FileStatus::Skipped);
                let why = error.to_string();
                let prefix = format!("{}: ", input.display);
                outcome.skipped_because =
                    Some(why.strip_prefix(&prefix).unwrap_or(&why).to_string());
                outcome.error_code = Some(error.code());
                outcomes.push(outcome);
            }
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
            Ok(FileProbe::Text(whole)) => {
                // A file of several tables: one import per table, `file.csv#2` on.
                let parts: Vec<Option<read::delimiter::TextPart>> = if whole.parts.len() > 1 {
                    whole.parts.iter().copied().map(Some).collect()
                } else {
                    vec![None]
                };
                for (n, part) in parts.into_iter().enumerate() {
                    let mut probe = whole.clone();
                    probe.part = part;
                    let mut input = input.clone();
                    if n > 0 {
                        input.display = format!("{}#{}", input.display, n + 1);
                    }
                    let mut outcome = FileOutcome::new(&input.display, FileStatus::Completed);
                    outcome.describe_text(&probe);
                    candidates.push(Candidate {
                        outcome_index: outcomes.len(),
                        content_hash: match n {
                            0 => probe.scan.hash.clone(),
                            n => format!("{}#{}", probe.scan.hash, n + 1),
                        },
                        source_system: request.source_system.clone(),
                        role: None,
                        read_metadata: json!({
                            "encoding": probe.scan.encoding.name(),
                            "encoding_source": probe.scan.encoding_source,
                            "bom": probe.scan.has_bom,
                            "delimiter": (probe.dialect.delimiter as char).to_string(),
                            "delimiter_source": probe.delimiter_source,
                            "dialect": probe.dialect,
                            "dialect_runner_up": probe.runner_up,
                            "note": probe.note,
                        }),
                        source: SourceKind::Text(probe),
                        input,
                    });
                    outcomes.push(outcome);
                }
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
    (outcomes, candidates, unreadable)
}

/// Skips the tables whose content this run already reads or the engagement
/// already holds (unless `--force`); returns the ones to read.
fn skip_seen(
    conn: &rusqlite::Connection,
    request: &ImportRequest,
    tenant: &tenant::Tenant,
    candidates: Vec<Candidate>,
    outcomes: &mut [FileOutcome],
) -> Result<Vec<Candidate>, ImportError> {
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
            stage::find_completed_by_hash(conn, &tenant.engagement_id, &candidate.content_hash)?
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
    Ok(to_read)
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
