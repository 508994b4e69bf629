//! A table read from its first row to its last and handed on in batches: a
//! delimited file through `CsvSource`, or the sheets of one workbook (opened
//! once) through `SheetTable`. Each table goes to a `TableSink` as its header,
//! its rows in batches, and its end with the error that stopped it, if any.
//! `import` runs these on its reader threads with a sink that sends to the
//! single writer; reading stops as soon as a sink says it has stopped.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::read::csv_parallel::{self, Parallelism, Resume};
use crate::read::header::{HeaderShape, HeaderWarning};
use crate::read::layout::{self, TableRole};
use crate::read::workbook::cells::cell_ref;
use crate::read::workbook::table::SheetTable;
use crate::read::workbook::{Book, Container, Visit};
use crate::read::{
    csv_source::PreambleRow, CsvSource, InputFile, ReadError, ReadOptions, Row, RowWarning,
    TextProbe,
};

/// A batch of rows is handed on once it holds this much raw data.
const BATCH_BYTES: usize = 8 << 20;

/// The header of a table, known when its rows start.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableHeader {
    pub columns: Vec<String>,
    /// The line (or sheet row) of the header; 0 when there is none.
    pub header_line: u64,
    pub header_warnings: Vec<HeaderWarning>,
    pub preamble: Vec<PreambleRow>,
    /// Merged ranges of a sheet ("A2:A5").
    pub merged_ranges: Vec<String>,
    /// The layout the header was recognised as, if any.
    pub layout: Option<TableRole>,
    /// One header row, none (the columns are numbered), or two combined.
    pub shape: HeaderShape,
}

/// Where a reader hands what it reads. Every method may say the sink has
/// stopped (its receiver is gone), which ends the reading.
pub trait TableSink {
    type Stopped: Send;
    /// What a parser thread works out for a batch before it is handed on
    /// (the import cleanses there when a file is parsed in parallel).
    type Prepared: Send;

    fn header(&mut self, header: TableHeader) -> Result<(), Self::Stopped>;

    /// A batch of rows and the row warnings met while reading them, with
    /// what `prepare` made of them when they were parsed on another thread.
    fn rows(
        &mut self,
        rows: Vec<Row>,
        warnings: Vec<RowWarning>,
        prepared: Option<Self::Prepared>,
    ) -> Result<(), Self::Stopped>;

    /// The table's end: its blank records and, if it failed, why.
    fn finished(
        &mut self,
        blank_rows: u64,
        result: Result<(), ReadError>,
    ) -> Result<(), Self::Stopped>;
}

/// Reads a delimited file found by `probe` into `sink`, in batches of
/// `batch_rows`; `bytes_read` follows the reading for a progress bar. A large
/// file is parsed on `parallelism.parsers` threads (`csv_parallel`), which
/// run `prepare` on each batch; the rows reach the sink in file order.
#[allow(clippy::too_many_arguments)]
pub fn stream_text<S: TableSink + Send>(
    input: &InputFile,
    probe: &TextProbe,
    options: &ReadOptions,
    bytes_read: Arc<AtomicU64>,
    batch_rows: usize,
    parallelism: Parallelism,
    prepare: &(dyn Fn(&[Row]) -> S::Prepared + Sync),
    sink: &mut S,
) -> Result<(), S::Stopped> {
    let mut source = match CsvSource::open(
        &input.path,
        &input.display,
        probe.scan.encoding,
        probe.scan.encoding_source,
        probe.dialect,
        probe.stray_quote,
        probe.part,
        options.max_record_bytes,
        bytes_read.clone(),
    ) {
        Ok(source) => source,
        Err(error) => return sink.finished(0, Err(error)),
    };
    // An empty file (0 bytes, or blank lines only) is an import of no rows.
    if source.columns().is_empty() {
        sink.header(TableHeader {
            columns: Vec::new(),
            header_line: 0,
            header_warnings: Vec::new(),
            preamble: Vec::new(),
            merged_ranges: Vec::new(),
            layout: None,
            shape: source.header_shape(),
        })?;
        return finish_ok(sink, Vec::new(), Vec::new(), source.blank_rows());
    }
    sink.header(TableHeader {
        columns: source.columns().to_vec(),
        header_line: source.header_line(),
        header_warnings: source.header_warnings().to_vec(),
        preamble: source.preamble().to_vec(),
        merged_ranges: Vec::new(),
        layout: layout::recognise_table(source.columns()).map(layout::single_table_role),
        shape: source.header_shape(),
    })?;
    // The parallel reader cuts records by RFC 4180's quoting rules only.
    // A dropped stray quote shifts the offsets it would resume from.
    let parallel = probe.dialect.is_standard()
        && probe.stray_quote.is_none()
        && probe.part.is_none()
        && parallelism.applies(probe.scan.size, probe.dialect.delimiter);
    let mut rows = Vec::with_capacity(batch_rows);
    let mut rows_bytes = 0;
    let mut warnings = Vec::new();
    // In parallel, this thread reads only the records read ahead for the header.
    while !parallel || source.has_lookahead() {
        match source.next_row(&mut warnings) {
            Ok(Some(row)) => {
                rows_bytes += row.raw_data.len();
                rows.push(row);
                // Bounded in bytes too: records near the size limit add up.
                if rows.len() == batch_rows || rows_bytes >= BATCH_BYTES {
                    rows_bytes = 0;
                    let batch = std::mem::replace(&mut rows, Vec::with_capacity(batch_rows));
                    sink.rows(batch, std::mem::take(&mut warnings), None)?;
                }
            }
            Ok(None) => break,
            Err(error) => return sink.finished(source.blank_rows(), Err(error)),
        }
    }
    if !parallel {
        return finish_ok(sink, rows, warnings, source.blank_rows());
    }
    if !rows.is_empty() || !warnings.is_empty() {
        sink.rows(rows, warnings, None)?;
    }
    let (offset, encoder) = source.resume_point();
    let resume = Resume {
        path: &input.path,
        file: &input.display,
        encoding: probe.scan.encoding,
        encoding_source: probe.scan.encoding_source,
        delimiter: probe.dialect.delimiter,
        record_limit: options.max_record_bytes,
        offset,
        encoder: encoder.clone(),
        blank_rows: source.blank_rows(),
    };
    drop(source);
    csv_parallel::stream_rest(resume, parallelism, bytes_read, batch_rows, prepare, sink)
}

/// One sheet to read and what the probe found of it.
pub struct SheetToRead {
    pub name: String,
    pub has_merged_cells: bool,
    pub role: Option<TableRole>,
}

/// Reads sheets of one workbook, opened once, each into its own sink. A
/// workbook that cannot be opened fails every sheet with the same message.
pub fn stream_workbook<S: TableSink>(
    input: &InputFile,
    container: Container,
    sheets: Vec<(SheetToRead, S)>,
    batch_rows: usize,
) -> Result<(), S::Stopped> {
    let mut book = match Book::open(&input.path, container) {
        Ok(book) => book,
        Err(message) => {
            for (_, mut sink) in sheets {
                sink.finished(
                    0,
                    Err(ReadError::Workbook {
                        file: input.display.clone(),
                        message: message.clone(),
                    }),
                )?;
            }
            return Ok(());
        }
    };
    for (sheet, mut sink) in sheets {
        stream_sheet(&input.display, &mut book, &sheet, batch_rows, &mut sink)?;
    }
    Ok(())
}

fn stream_sheet<S: TableSink>(
    file_name: &str,
    book: &mut Book,
    sheet: &SheetToRead,
    batch_rows: usize,
    sink: &mut S,
) -> Result<(), S::Stopped> {
    let name = sheet.name.as_str();
    let sheet_error = |message: String| ReadError::Sheet {
        file: file_name.to_string(),
        sheet: name.to_string(),
        message,
    };
    let merged = if !sheet.has_merged_cells {
        Vec::new()
    } else {
        book.merged(name).unwrap_or_else(|message| {
            tracing::warn!("{file_name} [{name}]: merged ranges cannot be read ({message}); cells are read as stored");
            Vec::new()
        })
    };
    let merged_ranges: Vec<String> = merged
        .iter()
        .map(|&(r0, c0, r1, c1)| format!("{}:{}", cell_ref(r0, c0), cell_ref(r1, c1)))
        .collect();
    let mut table = SheetTable::new(merged);
    let mut started = false;
    let mut stopped: Option<S::Stopped> = None;
    // The header is sent once the table has found it (or at the end).
    let start = |table: &SheetTable, started: &mut bool, sink: &mut S| {
        let Some(header) = table.header() else {
            return Ok(());
        };
        *started = true;
        let mut header_warnings = header.warnings.clone();
        if !merged_ranges.is_empty() {
            header_warnings.push(HeaderWarning {
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
        sink.header(TableHeader {
            columns: header.columns.clone(),
            header_line: header.row.map_or(0, u64::from),
            header_warnings,
            preamble: header.preamble.clone(),
            merged_ranges: merged_ranges.clone(),
            layout: sheet.role.clone(),
            shape: header.shape,
        })
    };
    let visited = book.visit(name, &mut |row| {
        table.push(row);
        if !started {
            if let Err(e) = start(&table, &mut started, sink) {
                stopped = Some(e);
                return Visit::Stop;
            }
        }
        // A batch is bounded in bytes too: rows of long cells add up.
        if table.pending() >= batch_rows || table.pending_bytes() >= BATCH_BYTES {
            let (rows, warnings) = table.take_rows();
            if let Err(e) = sink.rows(rows, warnings, None) {
                stopped = Some(e);
                return Visit::Stop;
            }
        }
        Visit::Continue
    });
    if let Some(stopped) = stopped {
        return Err(stopped);
    }
    if let Err(message) = visited {
        return sink.finished(table.blank_rows(), Err(sheet_error(message)));
    }
    table.finish();
    if !started {
        start(&table, &mut started, sink)?;
    }
    if !started || table.header().is_some_and(|h| h.columns.is_empty()) {
        return sink.finished(0, Err(sheet_error("the sheet is empty".into())));
    }
    let (rows, warnings) = table.take_rows();
    finish_ok(sink, rows, warnings, table.blank_rows())
}

/// Hands on a table's last rows and its successful end.
fn finish_ok<S: TableSink>(
    sink: &mut S,
    rows: Vec<Row>,
    warnings: Vec<RowWarning>,
    blank_rows: u64,
) -> Result<(), S::Stopped> {
    if !rows.is_empty() || !warnings.is_empty() {
        sink.rows(rows, warnings, None)?;
    }
    sink.finished(blank_rows, Ok(()))
}

/// A delimited file read whole into memory: what a sink would have been given.
#[derive(Debug, Default)]
pub struct CollectedTable {
    pub header: Option<TableHeader>,
    pub rows: Vec<Row>,
    pub warnings: Vec<RowWarning>,
    pub blank_rows: u64,
    /// Why the reading stopped early, if it did.
    pub error: Option<String>,
}

impl TableSink for CollectedTable {
    type Stopped = std::convert::Infallible;
    type Prepared = ();

    fn header(&mut self, header: TableHeader) -> Result<(), Self::Stopped> {
        self.header = Some(header);
        Ok(())
    }

    fn rows(
        &mut self,
        rows: Vec<Row>,
        warnings: Vec<RowWarning>,
        _prepared: Option<()>,
    ) -> Result<(), Self::Stopped> {
        self.rows.extend(rows);
        self.warnings.extend(warnings);
        Ok(())
    }

    fn finished(
        &mut self,
        blank_rows: u64,
        result: Result<(), ReadError>,
    ) -> Result<(), Self::Stopped> {
        self.blank_rows = blank_rows;
        self.error = result.err().map(|e| e.to_string());
        Ok(())
    }
}

/// Reads a whole delimited file into memory, on `parallelism.parsers`
/// threads when it is large enough (for small tables and for comparing the
/// parallel reading with a single reader's).
pub fn collect_text(
    input: &InputFile,
    probe: &TextProbe,
    options: &ReadOptions,
    parallelism: Parallelism,
) -> CollectedTable {
    let mut table = CollectedTable::default();
    let read = stream_text(
        input,
        probe,
        options,
        Arc::new(AtomicU64::new(0)),
        500,
        parallelism,
        &|_| (),
        &mut table,
    );
    match read {
        Ok(()) => table,
        Err(never) => match never {},
    }
}
