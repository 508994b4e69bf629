//! Streaming rows out of a delimited text file: raw bytes (counted for the
//! progress bar) are decoded to UTF-8, guarded against runaway records, parsed by
//! the csv crate and encoded as JSON rows. Memory stays bounded by the record
//! limit whatever the size of the file.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use encoding_rs::Encoding;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use super::encoding::EncodingSource;
use super::header::{
    combine_two_rows, header_shape, name_columns, HeaderShape, HeaderWarning, RowEncoder,
};
use super::{Row, RowWarning};
use crate::read::ReadError;

/// Counts the raw bytes read from the file, for progress.
pub(super) struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Marks the io::Error raised when one record grows past the limit.
#[derive(Debug)]
struct RecordLimitExceeded;

impl std::fmt::Display for RecordLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record size limit exceeded")
    }
}

impl std::error::Error for RecordLimitExceeded {}

/// What the parser has consumed, shared between `RecordGuard` and `CsvSource`:
/// where the current record starts, and the line breaks seen, so the line of a
/// record is counted here (the csv crate's own line counter lags by one on CRLF
/// files). A line break is `\n`, `\r\n`, or a lone `\r` (old Mac exports).
#[derive(Default)]
pub(super) struct StreamState {
    record_start: u64,
    /// Offsets of line breaks handed to the parser but not yet passed by a record.
    breaks: VecDeque<u64>,
    /// Runs of line-break bytes ([start, end) offsets) not yet passed: the
    /// parser skips blank lines, and may report a record as starting at the
    /// run before it (at the `\n` of the `\r\n` that ended the record before).
    runs: VecDeque<(u64, u64)>,
    /// Line breaks before the front of `breaks`.
    passed: u64,
    /// A `\r` at the end of the last read, not yet known to be part of `\r\n`.
    pending_cr: Option<u64>,
}

impl StreamState {
    /// The state at the start of a chunk of text that follows `lines` line breaks.
    pub(super) fn after_lines(lines: u64) -> StreamState {
        StreamState {
            passed: lines,
            ..StreamState::default()
        }
    }

    pub(super) fn note_breaks(&mut self, offset: u64, bytes: &[u8]) {
        let mut from = 0;
        if let Some(cr) = self.pending_cr.take() {
            if bytes.first() != Some(&b'\n') {
                self.breaks.push_back(cr);
            }
        }
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            let at = offset + i as u64;
            match self.runs.back_mut() {
                Some(run) if run.1 == at => run.1 += 1,
                _ => self.runs.push_back((at, at + 1)),
            }
            if i < from {
                continue;
            }
            if bytes[i] == b'\n' {
                self.breaks.push_back(offset + i as u64);
            } else if i + 1 == bytes.len() {
                self.pending_cr = Some(offset + i as u64);
            } else if bytes[i + 1] != b'\n' {
                self.breaks.push_back(offset + i as u64);
            } else {
                self.breaks.push_back(offset + i as u64 + 1);
                from = i + 2;
            }
        }
    }

    /// The 1-based line of a record that the parser began to read at byte
    /// `start`: the line of its first byte after any line breaks there.
    pub(super) fn line_at(&mut self, start: u64) -> u64 {
        while self.runs.front().is_some_and(|run| run.1 <= start) {
            self.runs.pop_front();
        }
        let start = match self.runs.front() {
            Some(&(run_start, run_end)) if run_start <= start => run_end,
            _ => start,
        };
        while self.breaks.front().is_some_and(|&b| b < start) {
            self.breaks.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// Stops the parser from buffering an endless record (an unclosed quote would
/// otherwise pull the rest of the file into memory), and notes line breaks.
struct RecordGuard<R> {
    inner: R,
    handed_out: u64,
    state: Rc<RefCell<StreamState>>,
    limit: u64,
    /// Drops the padding after delimiters (`a, "b, c"`) before the parser sees it.
    skip_spaces: Option<super::delimiter::SkipInitialSpace>,
    /// A stray quote in the header to drop: its offset in the decoded text.
    stray_quote: Option<u64>,
    /// Decoded bytes read from `inner` so far (before any byte is dropped).
    decoded: u64,
    /// The one table of a file of several to read: bytes before `start` are
    /// passed over, the text ends at `end` (offsets after the filters).
    window: Option<super::delimiter::TextPart>,
    /// Bytes the filters let through so far.
    filtered: u64,
}

impl<R: Read> RecordGuard<R> {
    /// Reads decoded text with the stray header quote and the padding after
    /// delimiters dropped; 0 only at the end of the text.
    fn read_filtered(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let read = self.inner.read(buf)?;
            if read == 0 {
                return Ok(0);
            }
            let mut n = read;
            if let Some(at) = self.stray_quote {
                if at >= self.decoded && at < self.decoded + read as u64 {
                    let i = (at - self.decoded) as usize;
                    buf.copy_within(i + 1..read, i);
                    n -= 1;
                    self.stray_quote = None;
                }
            }
            self.decoded += read as u64;
            if let Some(skip) = &mut self.skip_spaces {
                n = skip.filter(&mut buf[..n]);
            }
            // All of it dropped: read on, 0 would mean the end.
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

impl<R: Read> Read for RecordGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .handed_out
            .saturating_sub(self.state.borrow().record_start)
            > self.limit
        {
            return Err(io::Error::other(RecordLimitExceeded));
        }
        let mut n = self.read_filtered(buf)?;
        if let Some(window) = self.window {
            loop {
                let (from, to) = (self.filtered, self.filtered + n as u64);
                if n == 0 || window.end.is_some_and(|end| from >= end) {
                    n = 0;
                    break;
                }
                self.filtered = to;
                let keep_from = window.start.max(from);
                let keep_to = window.end.map_or(to, |end| end.min(to));
                if keep_from < keep_to {
                    let (a, b) = ((keep_from - from) as usize, (keep_to - from) as usize);
                    buf.copy_within(a..b, 0);
                    n = b - a;
                    break;
                }
                // All of this read is before the table: read on.
                n = self.read_filtered(buf)?;
            }
        }
        self.state
            .borrow_mut()
            .note_breaks(self.handed_out, &buf[..n]);
        self.handed_out += n as u64;
        Ok(n)
    }
}

pub(super) type Decoded = DecodeReaderBytes<CountingReader<File>, Vec<u8>>;

pub(super) fn decoder(
    file: File,
    encoding: &'static Encoding,
    source: EncodingSource,
    count: Arc<AtomicU64>,
) -> Decoded {
    DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        // A BOM is the strongest evidence there is, unless the user said otherwise.
        .bom_override(source != EncodingSource::Override)
        .strip_bom(true)
        .utf8_passthru(true)
        .build(CountingReader { inner: file, count })
}

/// Reads up to `max` decoded bytes from the start of the file, for sniffing.
/// Returns the text and whether it is the whole file.
pub fn decoded_head(
    path: &Path,
    encoding: &'static Encoding,
    source: EncodingSource,
    max: usize,
) -> io::Result<(Vec<u8>, bool)> {
    let file = File::open(path)?;
    let mut reader = decoder(file, encoding, source, Arc::new(AtomicU64::new(0)));
    let mut head = Vec::with_capacity(max);
    let n = (&mut reader).take(max as u64 + 1).read_to_end(&mut head)?;
    let complete = n <= max;
    head.truncate(max);
    Ok((head, complete))
}

/// A delimited file opened for reading rows.
pub struct CsvSource {
    name: String,
    reader: csv::Reader<RecordGuard<Decoded>>,
    state: Rc<RefCell<StreamState>>,
    record_limit: usize,
    columns: Vec<String>,
    header_warnings: Vec<HeaderWarning>,
    header_line: u64,
    header_shape: HeaderShape,
    encoder: RowEncoder,
    record: csv::ByteRecord,
    /// Records read ahead while looking for the header, replayed as data:
    /// (line, record, blank records just before it). Blank records are
    /// counted, never held: a file of blank lines holds no memory.
    lookahead: VecDeque<(u64, csv::ByteRecord, u64)>,
    /// The line the current record starts on.
    line: u64,
    preamble: Vec<PreambleRow>,
    blank_rows: u64,
}

/// A row above the header (a title, an export date): kept as metadata, not data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreambleRow {
    pub line: u64,
    pub text: String,
}

/// Records looked at to find the header under title rows.
const HEADER_SCAN_RECORDS: usize = 20;

impl CsvSource {
    /// Opens `path` and reads its header (the first non-blank record).
    /// `bytes_read` is advanced as raw bytes are consumed.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        path: &Path,
        name: &str,
        encoding: &'static Encoding,
        encoding_source: EncodingSource,
        dialect: super::delimiter::Dialect,
        stray_quote: Option<(u64, usize)>,
        part: Option<super::delimiter::TextPart>,
        record_limit: usize,
        bytes_read: Arc<AtomicU64>,
    ) -> Result<CsvSource, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Io {
            file: name.to_string(),
            source,
        })?;
        // A later table of the file counts its lines from where it starts.
        let state = Rc::new(RefCell::new(match part {
            Some(part) => StreamState::after_lines(part.lines_before),
            None => StreamState::default(),
        }));
        let guard = RecordGuard {
            inner: decoder(file, encoding, encoding_source, bytes_read),
            handed_out: 0,
            state: state.clone(),
            limit: record_limit as u64,
            skip_spaces: dialect
                .skip_initial_space
                .then(|| super::delimiter::SkipInitialSpace::new(dialect)),
            stray_quote: stray_quote.map(|(at, _)| at),
            decoded: 0,
            window: part,
            filtered: 0,
        };
        let reader = super::delimiter::builder(dialect)
            .buffer_capacity(64 * 1024)
            .from_reader(guard);
        let mut source = CsvSource {
            name: name.to_string(),
            reader,
            state,
            record_limit,
            columns: Vec::new(),
            header_warnings: Vec::new(),
            header_line: 0,
            header_shape: HeaderShape::Named,
            encoder: RowEncoder::new(&[]),
            record: csv::ByteRecord::new(),
            lookahead: VecDeque::new(),
            line: 0,
            preamble: Vec::new(),
            blank_rows: 0,
        };
        // Read ahead to find the header under any title rows.
        let mut blanks = 0;
        while source.lookahead.len() < HEADER_SCAN_RECORDS && source.read_record()? {
            if is_blank(&source.record) {
                blanks += 1;
                continue;
            }
            source
                .lookahead
                .push_back((source.line, source.record.clone(), blanks));
            blanks = 0;
        }
        // Blank records after the last one read ahead, at the end of the file.
        source.blank_rows = blanks;
        let filled: Vec<usize> = source
            .lookahead
            .iter()
            .map(|(_, r, _)| non_empty_positions(r).len())
            .collect();
        let widest = filled.iter().copied().max().unwrap_or(0);
        while let Some((_, first, _)) = source.lookahead.front() {
            let positions = non_empty_positions(first);
            if positions.is_empty() {
                source.lookahead.pop_front(); // blank lines above the header
                continue;
            }
            // A title is one or two cells at the left of a table at least four wide.
            let is_title =
                widest >= 4 && positions.len() * 3 <= widest && positions.iter().all(|&p| p < 2);
            if !is_title {
                break;
            }
            let (line, title, _) = source.lookahead.pop_front().expect("front exists");
            source.preamble.push(PreambleRow {
                line,
                text: title
                    .iter()
                    .map(|f| to_text(f).0.into_owned())
                    .filter(|t| !t.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" | "),
            });
        }
        let mut lossy = false;
        match source.lookahead.pop_front() {
            Some((line, header, _)) => {
                source.line = line;
                source.record = header;
            }
            None => return Ok(source), // no header: the caller reports an empty file
        }
        source.header_line = source.line();
        check_width(&source.name, source.line, &source.record)?;
        let written: Vec<String> = source
            .record
            .iter()
            .map(|f| {
                let (text, was_lossy) = to_text(f);
                lossy |= was_lossy;
                text.into_owned()
            })
            .collect();
        let texts = |r: &csv::ByteRecord| -> Vec<String> {
            r.iter().map(|f| to_text(f).0.into_owned()).collect()
        };
        let mut first_rows = vec![written.clone()];
        first_rows.extend(source.lookahead.iter().map(|(_, r, _)| texts(r)));
        source.header_shape = header_shape(&first_rows);
        let mut shape_warning = None;
        let written = match source.header_shape {
            HeaderShape::Named => written,
            HeaderShape::Absent => {
                // The first row is data: it goes back in front of the others.
                let line = source.line;
                let first = std::mem::take(&mut source.record);
                let width = first_rows.iter().map(Vec::len).max().unwrap_or(0);
                source.lookahead.push_front((line, first, 0));
                source.header_line = 0;
                shape_warning = Some(format!(
                    "no header row found: line {} reads like the lines below it (dates, addresses, versions or values that repeat), so every line is data under column_1..column_{width}; the columns are mapped by their values. Add a header line to map them by name",
                    line
                ));
                (1..=width).map(|i| format!("column_{i}")).collect()
            }
            HeaderShape::TwoRows => {
                let (line, labels, _) = source.lookahead.pop_front().expect("two rows were read");
                let group_line = source.header_line;
                source.line = line;
                source.header_line = source.line();
                shape_warning = Some(format!(
                    "two header rows (lines {group_line}..{}): the group labels above are combined with the names below, one name per column (\"CPU - Cores\")",
                    source.header_line
                ));
                combine_two_rows(&written, &texts(&labels))
            }
        };
        let (columns, mut warnings) = name_columns(&written);
        if let Some(message) = shape_warning {
            warnings.push(HeaderWarning {
                column: 0,
                written: String::new(),
                named: String::new(),
                message,
            });
        }
        if let Some(last) = source.preamble.last() {
            warnings.push(HeaderWarning {
                column: 0,
                written: String::new(),
                named: String::new(),
                message: format!(
                    "{} title row(s) above the header (lines {}..{}) are kept in read_metadata.preamble, not as data",
                    source.preamble.len(),
                    source.preamble[0].line,
                    last.line
                ),
            });
        }
        if lossy {
            warnings.push(HeaderWarning {
                column: 0,
                written: String::new(),
                named: String::new(),
                message: "the header is not valid in the chosen encoding; bytes were replaced by U+FFFD. Check --encoding".to_string(),
            });
        }
        if let Some((_, column)) = stray_quote {
            let named = columns.get(column).cloned().unwrap_or_default();
            warnings.push(HeaderWarning {
                column: column + 1,
                written: format!("\"{named}"),
                named,
                message: "this header cell opened a quote that never closes; the quote was dropped so the columns after it are read (check the header row of the export)".to_string(),
            });
        }
        source.encoder = RowEncoder::new(&columns);
        source.columns = columns;
        source.header_warnings = warnings;
        Ok(source)
    }

    /// Rows found above the header.
    pub fn preamble(&self) -> &[PreambleRow] {
        &self.preamble
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn header_warnings(&self) -> &[HeaderWarning] {
        &self.header_warnings
    }

    /// The line the header was on (0 when the file has no header).
    /// Whether the table has a header of one row, none, or two rows.
    pub fn header_shape(&self) -> HeaderShape {
        self.header_shape
    }

    pub fn header_line(&self) -> u64 {
        self.header_line
    }

    /// Rows that held no value at all (only delimiters or whitespace); they carry
    /// no data and are counted instead of stored.
    pub fn blank_rows(&self) -> u64 {
        self.blank_rows
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn read_record(&mut self) -> Result<bool, ReadError> {
        let start = self.reader.position().byte();
        let line = {
            let mut state = self.state.borrow_mut();
            state.record_start = start;
            state.line_at(start)
        };
        match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => {
                if let Some(position) = self.record.position() {
                    self.line = self.state.borrow_mut().line_at(position.byte());
                }
                Ok(more)
            }
            Err(err) => match err.kind() {
                csv::ErrorKind::Io(io)
                    if io
                        .get_ref()
                        .is_some_and(|inner| inner.is::<RecordLimitExceeded>()) =>
                {
                    Err(ReadError::RecordTooLarge {
                        file: self.name.clone(),
                        line,
                        limit: self.record_limit,
                    })
                }
                csv::ErrorKind::Io(io) => Err(ReadError::Io {
                    file: self.name.clone(),
                    source: io::Error::new(io.kind(), io.to_string()),
                }),
                _ => Err(ReadError::Malformed {
                    file: self.name.clone(),
                    line,
                    message: err.to_string(),
                }),
            },
        }
    }

    /// The next data row, skipping blank ones. Row-level problems are pushed to
    /// `warnings`; the row is still returned whole.
    pub fn next_row(&mut self, warnings: &mut Vec<RowWarning>) -> Result<Option<Row>, ReadError> {
        if self.columns.is_empty() {
            return Ok(None);
        }
        loop {
            if let Some((line, record, blanks_before)) = self.lookahead.pop_front() {
                self.line = line;
                self.record = record;
                self.blank_rows += blanks_before;
            } else if !self.read_record()? {
                return Ok(None);
            }
            if is_blank(&self.record) {
                self.blank_rows += 1;
                continue;
            }
            if self.encoder.repeats_header(&self.record) {
                warnings.push(repeated_header(self.line));
                continue;
            }
            break;
        }
        check_width(&self.name, self.line, &self.record)?;
        let record = std::mem::take(&mut self.record);
        let (row, record) = record_row(&mut self.encoder, record, self.line, warnings);
        self.record = record;
        check_encoded(&self.name, self.line, &row, self.record_limit)?;
        Ok(Some(row))
    }

    /// Whether records are left that were read ahead to find the header.
    pub(super) fn has_lookahead(&self) -> bool {
        !self.lookahead.is_empty()
    }

    /// Where the records not read yet begin, once the lookahead is drained:
    /// the decoded byte offset `csv_parallel` resumes from, with the encoder
    /// the rows are made with.
    pub(super) fn resume_point(&self) -> (u64, &RowEncoder) {
        (self.reader.position().byte(), &self.encoder)
    }
}

/// Refuses a record wider than a table may be (`MAX_COLUMNS`).
pub(super) fn check_width(
    file: &str,
    line: u64,
    record: &csv::ByteRecord,
) -> Result<(), ReadError> {
    if record.len() > super::MAX_COLUMNS {
        return Err(ReadError::TooWide {
            file: file.to_string(),
            line,
            columns: record.len(),
            limit: super::MAX_COLUMNS,
        });
    }
    Ok(())
}

/// Refuses a row whose stored JSON is far larger than the record it came
/// from: control characters are escaped at six times their size (`\u0001`),
/// so a record just under the limit could make a row of a hundred MB, copied
/// several times on its way into the database.
pub(super) fn check_encoded(
    file: &str,
    line: u64,
    row: &Row,
    record_limit: usize,
) -> Result<(), ReadError> {
    // At least 1 MiB: the column names are part of every row's JSON.
    let limit = record_limit.saturating_mul(2).max(1 << 20);
    if row.raw_data.len() > limit {
        return Err(ReadError::Malformed {
            file: file.to_string(),
            line,
            message: format!(
                "the record stores as {} of JSON, more than twice the {} a record may hold and over 1 MiB (its control characters are escaped at six times their size): the line holds binary data, not text. Remove it or raise --max-record-bytes",
                crate::read::workbook::guard::human_bytes(row.raw_data.len() as u64),
                crate::read::workbook::guard::human_bytes(record_limit as u64)
            ),
        });
    }
    Ok(())
}

/// The warning for a row skipped because it repeats the header.
pub(super) fn repeated_header(line: u64) -> RowWarning {
    RowWarning {
        record_index: line as i64,
        line,
        column: None,
        code: "repeated_header",
        message: "the row repeats the header (two exports joined into one file?); it was skipped, not imported".into(),
    }
}

/// A record of only delimiters and whitespace: counted, never stored.
pub(super) fn is_blank(record: &csv::ByteRecord) -> bool {
    record
        .iter()
        .all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
}

/// Makes a record (of line `line`) into a row, noting a ragged width and
/// values that are not valid text; the record's buffer is handed back.
pub(super) fn record_row(
    encoder: &mut RowEncoder,
    record: csv::ByteRecord,
    line: u64,
    warnings: &mut Vec<RowWarning>,
) -> (Row, csv::ByteRecord) {
    let record_index = line as i64;
    let fields = record.len();
    let header_len = encoder.header_len();
    if fields != header_len {
        let message = if fields > header_len {
            format!(
                "row has {fields} values but the header has {header_len} columns; the extra values are kept as {}..",
                encoder.name(header_len)
            )
        } else {
            format!(
                "row has {fields} values but the header has {header_len} columns; the missing columns are left out"
            )
        };
        warnings.push(RowWarning {
            record_index,
            line,
            column: None,
            code: "ragged_row",
            message,
        });
    }
    // One UTF-8 check for the whole record; field by field only when it fails.
    let record = match csv::StringRecord::from_byte_record(record) {
        Ok(text) => {
            if text.as_byte_record().as_slice().contains(&0) {
                for (i, _) in text.iter().enumerate().filter(|(_, f)| f.contains('\0')) {
                    warnings.push(field_warning(
                        encoder,
                        record_index,
                        line,
                        i,
                        FieldProblem::Nul,
                    ));
                }
            }
            let raw_data = encoder.encode(text.iter());
            let row = Row {
                record_index,
                raw_data,
            };
            return (row, text.into_byte_record());
        }
        Err(error) => error.into_byte_record(),
    };
    let mut texts = Vec::with_capacity(fields);
    for (i, field) in record.iter().enumerate() {
        let (text, lossy) = to_text(field);
        if lossy {
            warnings.push(field_warning(
                encoder,
                record_index,
                line,
                i,
                FieldProblem::Encoding,
            ));
        } else if field.contains(&0) {
            warnings.push(field_warning(
                encoder,
                record_index,
                line,
                i,
                FieldProblem::Nul,
            ));
        }
        texts.push(text);
    }
    let raw_data = encoder.encode(texts.iter().map(|t| t.as_ref()));
    drop(texts);
    (
        Row {
            record_index,
            raw_data,
        },
        record,
    )
}

/// A value kept with a warning.
enum FieldProblem {
    Nul,
    Encoding,
}

fn field_warning(
    encoder: &mut RowEncoder,
    record_index: i64,
    line: u64,
    index: usize,
    problem: FieldProblem,
) -> RowWarning {
    let (code, message) = match problem {
            FieldProblem::Nul => ("nul_byte", "value contains NUL bytes; they are kept as \\u0000"),
            FieldProblem::Encoding => (
                "invalid_encoding",
                "value is not valid in the chosen encoding; bytes were replaced by U+FFFD. Check --encoding",
            ),
        };
    RowWarning {
        record_index,
        line,
        column: Some(encoder.name(index).to_string()),
        code,
        message: message.to_string(),
    }
}

fn non_empty_positions(record: &csv::ByteRecord) -> Vec<usize> {
    record
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.iter().all(u8::is_ascii_whitespace))
        .map(|(i, _)| i)
        .collect()
}

fn to_text(field: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    match std::str::from_utf8(field) {
        Ok(s) => (std::borrow::Cow::Borrowed(s), false),
        Err(_) => (String::from_utf8_lossy(field), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> Vec<i64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, text).unwrap();
        let mut source = CsvSource::open(
            &path,
            "f.csv",
            encoding_rs::UTF_8,
            EncodingSource::Override,
            crate::read::delimiter::Dialect::standard(b','),
            None,
            None,
            1 << 20,
            Arc::new(AtomicU64::new(0)),
        )
        .unwrap();
        let mut warnings = Vec::new();
        let mut lines = Vec::new();
        while let Some(row) = source.next_row(&mut warnings).unwrap() {
            lines.push(row.record_index);
        }
        lines
    }

    #[test]
    fn a_row_is_numbered_by_the_line_it_starts_on_after_blank_lines() {
        assert_eq!(lines(b"h,i\na,1\n\nb,2\n"), vec![2, 4]);
        assert_eq!(lines(b"h,i\r\na,1\r\n\r\nb,2\r\n"), vec![2, 4]);
        assert_eq!(lines(b"h,i\ra,1\r\rb,2\r"), vec![2, 4]);
        assert_eq!(lines(b"h,i\r\na,\"x\r\ny\"\r\n\r\n\r\nb,2\r\n"), vec![2, 6]);
    }
}
