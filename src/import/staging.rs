//! The data_import phase's streaming: the data_imports rows of a run are
//! created, then reader threads read the tables (`read::stream`) and send
//! their rows in batches to the single writer, which stages them (`Stager`)
//! with the phases' work done while staging (`staging_work`), and fills
//! each table's outcome.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, SendError, Sender};
use serde_json::json;

use super::outcome::{fill_outcome, FileOutcome, FileStatus};
use super::staging_work::{self, StagingWork};
use super::{sheet_of, Candidate, ImportError, ImportRequest, SourceKind, Unreadable};
use crate::cleanse;
use crate::flow::{self, FlowIds, Phase};
use crate::map::{MapError, Mapper};
use crate::pipeline::PipelineError;
use crate::progress::{ProgressBars, Tracked, Unit};
use crate::read::csv_parallel::Parallelism;
use crate::read::layout::TableRole;
use crate::read::stream::SheetToRead;
use crate::read::{
    self, InputFile, ReadError, ReadOptions, Row, RowWarning, TableHeader, TableSink,
};
use crate::stage::{self, ImportCounts, NewImport, Stager};
use crate::tenant::Tenant;

/// Rows per message from a reader to the writer.
pub(super) const BATCH_ROWS: usize = 500;
/// Messages in flight between the readers and the writer (bounds memory).
const CHANNEL_DEPTH: usize = 4;

/// Messages from reader threads to the writer.
enum ReaderMessage {
    Started {
        file: usize,
        header: Box<TableHeader>,
    },
    Rows {
        file: usize,
        rows: Vec<Row>,
        /// One per row when the reader cleansed them, else empty (boxed: a
        /// message is moved through the channel whole).
        cleansed: Box<staging_work::Cleansed>,
        warnings: Vec<RowWarning>,
    },
    Finished {
        file: usize,
        blank_rows: u64,
        result: Result<(), ReadError>,
    },
}

/// A table whose data_imports row exists; a reader streams it to the writer.
pub(super) struct Planned {
    pub(super) candidate: Candidate,
    pub(super) data_import_id: String,
    /// Bytes of a text file, rows of a sheet (0: unknown).
    total: u64,
    done: Arc<AtomicU64>,
    rows_read: Arc<AtomicU64>,
    /// Set by the writer once the table is mapped; readers cleanse (and make
    /// machines) with it.
    pub(super) work: staging_work::SharedWork,
    /// True while the writer waits for a batch (one flag for the whole run):
    /// a reader then sends its batch as read, for the writer to cleanse.
    writer_idle: Arc<AtomicBool>,
}

impl Planned {
    /// About how many rows the table has, from what has been read so far: a
    /// text file's size over the bytes per row read, a sheet's declared rows.
    pub(super) fn expected_rows(&self) -> usize {
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

    /// A batch's cleansing, done by the reader (or parser) that read it.
    /// Cleansing is shared with the writer: while it waits for work, the
    /// batch goes as read and the writer cleanses it (a single CSV read by
    /// one thread would otherwise do all the cleansing there). A queue that
    /// is merely empty is not enough: a writer busy writing a batch out would
    /// get more work.
    fn cleanse_unless_writer_idle(&self, rows: &[Row]) -> staging_work::Cleansed {
        if self.writer_idle.load(Ordering::Relaxed) {
            staging_work::Cleansed::default()
        } else {
            staging_work::cleanse_batch(&self.work, rows)
        }
    }
}

/// Creates the data_imports rows, then streams every readable table into SQLite.
#[allow(clippy::too_many_arguments)]
pub(super) fn stage_files<'c>(
    conn: &'c rusqlite::Connection,
    request: &'c ImportRequest,
    tenant: &Tenant,
    ids: &FlowIds,
    to_read: Vec<Candidate>,
    unreadable: Vec<Unreadable>,
    outcomes: &mut [FileOutcome],
    threads: usize,
) -> Result<crate::pipeline::StagedWork<'c>, ImportError> {
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
    let mut staging = if request.stop_after == Phase::DataImport {
        None
    } else {
        let mapper = Mapper::new(
            conn,
            &tenant.client_account_id,
            &ids.master_flow_id,
            &request.phases.mapping,
        )?;
        Some(StagingWork::new(
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
                label: crate::printable::short_label(
                    &p.candidate.input.display,
                    sheet_of(&p.candidate),
                    crate::progress::LABEL_WIDTH,
                ),
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
    split_workbooks(&mut jobs, &planned, threads);
    let (tx, rx) = bounded::<ReaderMessage>(CHANNEL_DEPTH);
    let queue = AtomicUsize::new(0);
    let read_options = &request.read;
    let planned_ref = &planned;
    let jobs_ref = &jobs;
    // A delimited file gets its share of the threads to parse it on; by
    // default one core is left to the writer, which is busy all along (on
    // two cores a second parser only took CPU from it).
    let spare = if request.threads == 0 { 1 } else { 0 };
    let parsers = (threads.saturating_sub(spare) / jobs.len().max(1)).max(1);
    let written = std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs_ref.len()) {
            let tx = tx.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                let i = queue.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs_ref.get(i) else {
                    break;
                };
                let sent = read_job(job, planned_ref, read_options, parsers, &tx);
                if sent.is_err() {
                    break; // the writer has stopped
                }
            });
        }
        drop(tx);
        write_all(conn, planned_ref, rx, outcomes, staging.as_mut())
    });
    bars.finish();
    written?;
    Ok(staging
        .map(StagingWork::into_staged_work)
        .unwrap_or_default())
}

/// Gives readers that would have no job a part of a workbook: while there
/// are fewer jobs than readers, the workbook job with the most rows (as
/// declared, used only to balance) is cut in two with about as many rows
/// each, keeping the sheets' order. Each part opens the workbook once, so
/// its shared strings are read once per part; the writer stays the only
/// writer and takes the parts' batches as they come, as it does for files.
fn split_workbooks(jobs: &mut Vec<Vec<usize>>, planned: &[Planned], readers: usize) {
    let rows = |job: &[usize]| job.iter().map(|&i| planned[i].total.max(1)).sum::<u64>();
    while jobs.len() < readers {
        let Some(at) = jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| job.len() > 1)
            .max_by_key(|(_, job)| rows(job))
            .map(|(at, _)| at)
        else {
            break;
        };
        let job = jobs.remove(at);
        let half = rows(&job).div_ceil(2);
        let mut seen = 0;
        let mut cut = job.len() - 1;
        for (k, &i) in job.iter().enumerate() {
            seen += planned[i].total.max(1);
            if seen >= half {
                cut = (k + 1).clamp(1, job.len() - 1);
                break;
            }
        }
        let (first, rest) = job.split_at(cut);
        jobs.insert(at, rest.to_vec());
        jobs.insert(at, first.to_vec());
    }
}

fn import_type(input: &InputFile) -> &'static str {
    match input.extension().as_str() {
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => "workbook",
        _ => "csv",
    }
}

/// Where a reader thread sends one table: to the writer, as `ReaderMessage`s
/// tagged with the table's number.
struct ToWriter<'a> {
    tx: &'a Sender<ReaderMessage>,
    file: usize,
    plan: &'a Planned,
    /// How the table's progress bar advances.
    unit: Unit,
}

impl TableSink for ToWriter<'_> {
    type Stopped = SendError<ReaderMessage>;
    type Prepared = staging_work::Cleansed;

    fn header(&mut self, header: TableHeader) -> Result<(), Self::Stopped> {
        self.tx.send(ReaderMessage::Started {
            file: self.file,
            header: Box::new(header),
        })
    }

    /// Counts the rows for the progress bar (a sheet's bar advances by rows,
    /// a text file's by the bytes its reader reports) and sends them.
    fn rows(
        &mut self,
        rows: Vec<Row>,
        warnings: Vec<RowWarning>,
        prepared: Option<staging_work::Cleansed>,
    ) -> Result<(), Self::Stopped> {
        let plan = self.plan;
        plan.rows_read
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        if self.unit == Unit::Rows {
            plan.done.fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        let cleansed = Box::new(prepared.unwrap_or_else(|| plan.cleanse_unless_writer_idle(&rows)));
        self.tx.send(ReaderMessage::Rows {
            file: self.file,
            rows,
            cleansed,
            warnings,
        })
    }

    fn finished(
        &mut self,
        blank_rows: u64,
        result: Result<(), ReadError>,
    ) -> Result<(), Self::Stopped> {
        self.tx.send(ReaderMessage::Finished {
            file: self.file,
            blank_rows,
            result,
        })
    }
}

/// A reader thread's job: a text file, or the sheets of one workbook (opened
/// once). Returns Err only when the writer is gone.
fn read_job(
    job: &[usize],
    planned: &[Planned],
    options: &ReadOptions,
    parsers: usize,
    tx: &Sender<ReaderMessage>,
) -> Result<(), SendError<ReaderMessage>> {
    let first = &planned[job[0]];
    match &first.candidate.source {
        SourceKind::Text(probe) => {
            let mut sink = ToWriter {
                tx,
                file: job[0],
                plan: first,
                unit: Unit::Bytes,
            };
            read::stream::stream_text(
                &first.candidate.input,
                probe,
                options,
                first.done.clone(),
                BATCH_ROWS,
                Parallelism::with_parsers(parsers),
                &|rows| first.cleanse_unless_writer_idle(rows),
                &mut sink,
            )
        }
        SourceKind::Sheet { container, .. } => {
            let sheets = job
                .iter()
                .filter_map(|&file| {
                    let plan = &planned[file];
                    let SourceKind::Sheet {
                        sheet,
                        has_merged_cells,
                        ..
                    } = &plan.candidate.source
                    else {
                        return None;
                    };
                    let to_read = SheetToRead {
                        name: sheet.clone(),
                        has_merged_cells: *has_merged_cells,
                        role: plan.candidate.role.clone(),
                    };
                    let sink = ToWriter {
                        tx,
                        file,
                        plan,
                        unit: Unit::Rows,
                    };
                    Some((to_read, sink))
                })
                .collect();
            read::stream::stream_workbook(&first.candidate.input, *container, sheets, BATCH_ROWS)
        }
    }
}

/// The single writer: drains the readers' messages into SQLite.
fn write_all<'c>(
    conn: &'c rusqlite::Connection,
    planned: &[Planned],
    rx: Receiver<ReaderMessage>,
    outcomes: &mut [FileOutcome],
    mut staging: Option<&mut StagingWork<'c>>,
) -> Result<(), ImportError> {
    let mapping_failed = |e: MapError| ImportError::Pipeline(PipelineError::Mapping(e));
    let mut stager = Stager::new(conn);
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
                match staging.as_deref_mut() {
                    Some(staging) => staging
                        .rows(
                            &mut stager,
                            file,
                            &planned[file],
                            counts[file].header.as_ref(),
                            rows,
                            *cleansed,
                        )
                        .map_err(mapping_failed)?,
                    None => {
                        stager.insert_rows(&planned[file].data_import_id, &rows, &[], &[])?;
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
                        // A header and no rows is worth a warning; an empty file has its note.
                        let has_header = counts[file]
                            .header
                            .as_ref()
                            .is_some_and(|h| !h.columns.is_empty());
                        if counts[file].rows == 0 && has_header {
                            let line = counts[file].header.as_ref().map_or(0, |h| h.header_line);
                            counts[file].add_warnings(vec![RowWarning {
                                record_index: 0,
                                line,
                                column: None,
                                code: "no_data_rows",
                                message: "the file has a header but no data rows".to_string(),
                            }]);
                        }
                        let cleansing = match staging.as_deref_mut() {
                            Some(staging) => staging
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
                        if let Some(staging) = staging.as_deref_mut() {
                            staging.abandon(&mut stager, file, plan)?;
                        }
                        stager.fail(&plan.data_import_id, &error, &counts[file])?;
                        outcome.fail(&error);
                    }
                }
                uncommitted[file] = false;
                fill_outcome(outcome, &counts[file], started[file]);
                if let Some((rows, previous)) = stager.sightings_of(&plan.data_import_id) {
                    if outcome.status != FileStatus::Failed && rows > 0 {
                        outcome.unchanged_rows = rows;
                        outcome.unchanged_since = Some(previous.to_string());
                    }
                }
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
