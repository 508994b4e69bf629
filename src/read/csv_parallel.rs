//! A large delimited file parsed on several cores. The decoded text is cut
//! into chunks at record boundaries found by `BoundaryScanner`, which follows
//! csv-core's quoting rules (a quote opens a quoted value only at the start of
//! a field, `""` inside one is a quote, a line break inside one belongs to the
//! value). The chunks are parsed on a rayon pool, each by the csv crate with
//! the settings `CsvSource` uses, and handed on in file order, so the rows,
//! their line numbers, the warnings and the blank-row count are the ones a
//! single reader gives. Only the thread that reads the file calls the sink.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use encoding_rs::Encoding;
use rayon::prelude::*;

use super::csv_source::{self, record_row, Decoded, StreamState};
use super::encoding::EncodingSource;
use super::header::RowEncoder;
use super::stream::TableSink;
use super::{ReadError, Row, RowWarning};

/// Decoded text per chunk handed to a parser.
pub const CHUNK_BYTES: usize = 256 << 10;
/// Files smaller than this are parsed by one thread: a pool would not pay.
pub const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// How many threads parse one file, and how big their chunks are.
#[derive(Debug, Clone, Copy)]
pub struct Parallelism {
    pub parsers: usize,
    pub chunk_bytes: usize,
    /// Files smaller than this are read by one thread.
    pub min_file_bytes: u64,
}

impl Parallelism {
    pub fn with_parsers(parsers: usize) -> Parallelism {
        Parallelism {
            parsers,
            chunk_bytes: CHUNK_BYTES,
            min_file_bytes: PARALLEL_MIN_BYTES,
        }
    }

    /// Whether a file of `size` bytes split by `delimiter` is read in parallel.
    pub(super) fn applies(&self, size: u64, delimiter: u8) -> bool {
        // A quote or line break as delimiter makes boundaries ambiguous.
        self.parsers > 1 && size >= self.min_file_bytes && !b"\"\r\n".contains(&delimiter)
    }
}

/// The quoting states that decide whether a line break ends a record, as
/// indexes into `NEXT`.
const RECORD_START: u8 = 0;
const FIELD_START: u8 = 1;
const UNQUOTED: u8 = 2;
const QUOTED: u8 = 3;
/// A quote inside a quoted value: the value's end, or the first of `""`.
const QUOTE_IN_QUOTED: u8 = 4;

/// Byte classes, as indexes into a row of `NEXT`.
const OTHER: u8 = 0;
const QUOTE: u8 = 1;
const DELIMITER: u8 = 2;
const CR: u8 = 3;
const LF: u8 = 4;

/// The state after a byte of each class, by state: csv-core's rules for
/// where a quoted value opens and closes (`""` inside one is a quote).
const NEXT: [[u8; 5]; 5] = [
    // other      quote            delimiter    CR            LF
    [UNQUOTED, QUOTED, FIELD_START, RECORD_START, RECORD_START], // record start
    [UNQUOTED, QUOTED, FIELD_START, RECORD_START, RECORD_START], // field start
    [UNQUOTED, UNQUOTED, FIELD_START, RECORD_START, RECORD_START], // unquoted
    [QUOTED, QUOTE_IN_QUOTED, QUOTED, QUOTED, QUOTED],           // quoted
    [UNQUOTED, QUOTED, FIELD_START, RECORD_START, RECORD_START], // quote in quoted
];

/// A place where the text may be cut: a record ends just before `at`, and
/// `breaks` line breaks come before it (counted from the file's start).
#[derive(Clone, Copy, Debug)]
struct Cut {
    at: usize,
    breaks: u64,
}

/// Follows the text byte by byte as csv-core reads it, to find where records
/// end and to count line breaks as `StreamState` does (`\r\n` is one).
#[derive(Debug)]
struct BoundaryScanner {
    classes: [u8; 256],
    state: u8,
    /// The byte before was `\r`: a `\n` now is not a break of its own, and
    /// the text may not be cut between them.
    after_cr: bool,
    breaks: u64,
    /// Line breaks before the record being scanned, and its length so far.
    record_breaks: u64,
    record_bytes: u64,
    record_limit: u64,
    /// The line of a record found longer than the limit; scanning stops there.
    too_large: Option<u64>,
}

impl BoundaryScanner {
    fn new(delimiter: u8, breaks: u64, after_cr: bool, record_limit: usize) -> BoundaryScanner {
        let mut classes = [OTHER; 256];
        classes[usize::from(delimiter)] = DELIMITER;
        classes[usize::from(b'"')] = QUOTE;
        classes[usize::from(b'\r')] = CR;
        classes[usize::from(b'\n')] = LF;
        BoundaryScanner {
            classes,
            state: RECORD_START,
            after_cr,
            breaks,
            record_breaks: breaks,
            record_bytes: 0,
            record_limit: record_limit as u64,
            too_large: None,
        }
    }

    /// Scans `bytes`, the text after what was scanned before, and returns
    /// the last place in them where a record starts (`at` counts from the
    /// start of `bytes`). Stops at a record longer than `record_limit`,
    /// noting its line in `too_large`. Only quotes change the quoting state
    /// in ways that need the state machine; the text between two quotes is
    /// taken whole, by its line breaks.
    fn scan(&mut self, bytes: &[u8]) -> Option<Cut> {
        let mut cut = None;
        let mut from = 0;
        while from < bytes.len() && self.too_large.is_none() {
            let quote = memchr::memchr(b'"', &bytes[from..]).map_or(bytes.len(), |q| from + q);
            self.scan_quote_free(bytes, from, quote, &mut cut);
            if quote < bytes.len() && self.too_large.is_none() {
                self.step(bytes[quote], quote, &mut cut);
            }
            from = quote + 1;
        }
        cut
    }

    /// One byte through the state machine, at `at`.
    fn step(&mut self, b: u8, at: usize, cut: &mut Option<Cut>) {
        let class = self.classes[usize::from(b)];
        if self.state == RECORD_START && !(self.after_cr && class == LF) {
            *cut = Some(Cut {
                at,
                breaks: self.breaks,
            });
            self.record_breaks = self.breaks;
        }
        self.state = NEXT[usize::from(self.state)][usize::from(class)];
        if self.state == RECORD_START {
            self.record_bytes = 0;
        } else {
            self.grow_record(1);
        }
        self.breaks += u64::from(class == CR || (class == LF && !self.after_cr));
        self.after_cr = class == CR;
    }

    fn grow_record(&mut self, bytes: u64) {
        self.record_bytes += bytes;
        if self.record_bytes > self.record_limit {
            self.too_large = Some(self.record_breaks + 1);
        }
    }

    /// `bytes[from..to]`, which holds no quote.
    fn scan_quote_free(&mut self, bytes: &[u8], from: usize, to: usize, cut: &mut Option<Cut>) {
        if from == to {
            return;
        }
        let run = &bytes[from..to];
        let breaks_of = |t: usize, after_cr: bool| {
            let after_cr = if t == 0 {
                after_cr
            } else {
                run[t - 1] == b'\r'
            };
            u64::from(run[t] == b'\r' || !after_cr)
        };
        if self.state == QUOTED {
            // Inside a quoted value: its line breaks are part of it.
            for t in break_positions(run) {
                self.breaks += breaks_of(t, self.after_cr);
            }
            self.grow_record(run.len() as u64);
        } else {
            // Every line break ends a record (or is a blank line); a record
            // starts after each, and at `from` if one started there.
            if self.state == RECORD_START && !(self.after_cr && run[0] == b'\n') {
                *cut = Some(Cut {
                    at: from,
                    breaks: self.breaks,
                });
                self.record_breaks = self.breaks;
                self.record_bytes = 0;
            }
            // The length of the record open at `from`, counted on from there.
            let mut carried = self.record_bytes;
            let mut start = 0;
            for t in break_positions(run) {
                if (t - start) as u64 + carried > self.record_limit {
                    self.too_large = Some(self.record_breaks + 1);
                    return;
                }
                carried = 0;
                self.breaks += breaks_of(t, self.after_cr);
                start = t + 1;
                if start < run.len() && !is_break(run[start]) {
                    *cut = Some(Cut {
                        at: from + start,
                        breaks: self.breaks,
                    });
                    self.record_breaks = self.breaks;
                }
            }
            self.state = match self.classes[usize::from(run[run.len() - 1])] {
                CR | LF => RECORD_START,
                DELIMITER => FIELD_START,
                _ => UNQUOTED,
            };
            self.record_bytes = 0;
            if self.state != RECORD_START {
                self.grow_record(carried + (run.len() - start) as u64);
            }
        }
        self.after_cr = run[run.len() - 1] == b'\r';
    }
}

/// Where `\r` and `\n` are in `run`. Most runs of a file that quotes every
/// value are a few bytes long (a value, a delimiter): for those a plain
/// loop is cheaper than setting up a vectorised search.
fn break_positions(run: &[u8]) -> impl Iterator<Item = usize> + '_ {
    const SHORT: usize = 24;
    let short = (run.len() < SHORT).then(|| {
        run.iter()
            .enumerate()
            .filter(|(_, &b)| is_break(b))
            .map(|(i, _)| i)
    });
    let long = (run.len() >= SHORT).then(|| memchr::memchr2_iter(b'\r', b'\n', run));
    short
        .into_iter()
        .flatten()
        .chain(long.into_iter().flatten())
}

fn is_break(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// Decoded text that starts where a record starts, ends where one ends, and
/// follows `lines_before` line breaks.
struct Chunk {
    text: Vec<u8>,
    lines_before: u64,
}

/// Cuts the decoded text into chunks of whole records.
struct Chunker {
    reader: Decoded,
    scanner: BoundaryScanner,
    /// Text read and scanned, not yet handed out; it starts at a record start.
    buf: Vec<u8>,
    /// The last cut found in `buf`, not at its start.
    cut: Option<Cut>,
    /// Line breaks before `buf`.
    lines_before: u64,
    eof: bool,
    chunk_bytes: usize,
    file: String,
}

impl Chunker {
    /// The next chunk; None at the end of the text.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        loop {
            let too_large = self.scanner.too_large;
            let full = self.buf.len() >= self.chunk_bytes || too_large.is_some();
            if self.eof || (full && self.cut.is_some()) {
                let chunk = match self.cut.take().filter(|_| !self.eof) {
                    Some(cut) => {
                        let rest = self.buf.split_off(cut.at);
                        let text = std::mem::replace(&mut self.buf, rest);
                        let lines_before = std::mem::replace(&mut self.lines_before, cut.breaks);
                        Chunk { text, lines_before }
                    }
                    None if self.buf.is_empty() => return Ok(None),
                    None => Chunk {
                        text: std::mem::take(&mut self.buf),
                        lines_before: self.lines_before,
                    },
                };
                return Ok(Some(chunk));
            }
            if let Some(line) = too_large {
                // The records before it have been handed out.
                return Err(ReadError::RecordTooLarge {
                    file: self.file.clone(),
                    line,
                    limit: self.scanner.record_limit as usize,
                });
            }
            let start = self.buf.len();
            let grow = (self.chunk_bytes / 2).max(64);
            self.buf.resize((start + grow).max(self.chunk_bytes), 0);
            let read = loop {
                match self.reader.read(&mut self.buf[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        self.buf.truncate(start);
                        return Err(ReadError::Io {
                            file: self.file.clone(),
                            source,
                        });
                    }
                }
            };
            self.buf.truncate(start + read);
            if read == 0 {
                self.eof = true;
                continue;
            }
            if let Some(cut) = self.scanner.scan(&self.buf[start..]) {
                let at = start + cut.at;
                if at > 0 {
                    self.cut = Some(Cut { at, ..cut });
                }
            }
        }
    }

    /// Up to `n` chunks, and the error that ended the text, if one did.
    fn next_group(&mut self, n: usize) -> (Vec<Chunk>, Option<ReadError>) {
        let mut chunks = Vec::with_capacity(n);
        while chunks.len() < n {
            match self.next_chunk() {
                Ok(Some(chunk)) => chunks.push(chunk),
                Ok(None) => break,
                Err(error) => return (chunks, Some(error)),
            }
        }
        (chunks, None)
    }
}

/// A chunk's rows in batches, with what the sink's preparation made of each.
struct Parsed<P> {
    batches: Vec<(Vec<Row>, Vec<RowWarning>, P)>,
    blank_rows: u64,
    error: Option<ReadError>,
}

/// How the chunks are parsed: as `CsvSource` parses the file.
struct ParseSettings<'a> {
    file: &'a str,
    delimiter: u8,
    batch_rows: usize,
    record_limit: usize,
}

fn parse_chunk<P>(
    chunk: &Chunk,
    settings: &ParseSettings,
    encoder: &mut RowEncoder,
    prepare: &(dyn Fn(&[Row]) -> P + Sync),
) -> Parsed<P> {
    let mut lines = StreamState::after_lines(chunk.lines_before);
    lines.note_breaks(0, &chunk.text);
    let mut reader =
        super::delimiter::builder(super::delimiter::Dialect::standard(settings.delimiter))
            .from_reader(chunk.text.as_slice());
    let mut record = csv::ByteRecord::new();
    let mut parsed = Parsed {
        batches: Vec::new(),
        blank_rows: 0,
        error: None,
    };
    let mut rows = Vec::with_capacity(settings.batch_rows);
    let mut warnings = Vec::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                parsed.error = Some(ReadError::Malformed {
                    file: settings.file.to_string(),
                    line: lines.line_at(reader.position().byte()),
                    message: error.to_string(),
                });
                break;
            }
        }
        let start = record.position().map_or(0, |p| p.byte());
        let line = lines.line_at(start);
        if csv_source::is_blank(&record) {
            parsed.blank_rows += 1;
            continue;
        }
        if encoder.repeats_header(&record) {
            warnings.push(csv_source::repeated_header(line));
            continue;
        }
        if let Err(error) = csv_source::check_width(settings.file, line, &record) {
            parsed.error = Some(error);
            break;
        }
        let (row, buffer) = record_row(encoder, std::mem::take(&mut record), line, &mut warnings);
        record = buffer;
        if let Err(error) =
            csv_source::check_encoded(settings.file, line, &row, settings.record_limit)
        {
            parsed.error = Some(error);
            break;
        }
        rows.push(row);
        if rows.len() == settings.batch_rows {
            let batch = std::mem::replace(&mut rows, Vec::with_capacity(settings.batch_rows));
            let prepared = prepare(&batch);
            parsed
                .batches
                .push((batch, std::mem::take(&mut warnings), prepared));
        }
    }
    if !rows.is_empty() || !warnings.is_empty() {
        let prepared = prepare(&rows);
        parsed.batches.push((rows, warnings, prepared));
    }
    parsed
}

/// Where `CsvSource` stopped and the parallel reading goes on.
pub(super) struct Resume<'a> {
    pub path: &'a Path,
    pub file: &'a str,
    pub encoding: &'static Encoding,
    pub encoding_source: EncodingSource,
    pub delimiter: u8,
    pub record_limit: usize,
    /// Decoded bytes already read (the header and the records read ahead).
    pub offset: u64,
    pub encoder: RowEncoder,
    pub blank_rows: u64,
}

/// Reads the rest of a file from `resume` on `parallelism.parsers` threads
/// into `sink`, in file order. `prepare` runs on the parser threads, once per
/// batch, for the sink.
pub(super) fn stream_rest<S: TableSink + Send>(
    resume: Resume,
    parallelism: Parallelism,
    bytes_read: Arc<AtomicU64>,
    batch_rows: usize,
    prepare: &(dyn Fn(&[Row]) -> S::Prepared + Sync),
    sink: &mut S,
) -> Result<(), S::Stopped> {
    let mut blank_rows = resume.blank_rows;
    let io_error = |source| ReadError::Io {
        file: resume.file.to_string(),
        source,
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(parallelism.parsers)
        .thread_name(|i| format!("intake-parse-{i}"))
        .build()
    {
        Ok(pool) => pool,
        Err(error) => {
            let error = io_error(std::io::Error::other(error.to_string()));
            return sink.finished(blank_rows, Err(error));
        }
    };
    // The counter starts again: the text before the offset is read once more.
    bytes_read.store(0, std::sync::atomic::Ordering::Relaxed);
    let mut chunker = match open_at(&resume, parallelism, bytes_read) {
        Ok(chunker) => chunker,
        Err(source) => return sink.finished(blank_rows, Err(io_error(source))),
    };
    tracing::debug!(
        "{}: parsed on {} threads from decoded byte {}",
        resume.file,
        parallelism.parsers,
        resume.offset
    );
    let settings = ParseSettings {
        file: resume.file,
        delimiter: resume.delimiter,
        batch_rows,
        record_limit: resume.record_limit,
    };
    let encoder = &resume.encoder;
    let parse_group = |chunks: &[Chunk]| -> Vec<Parsed<S::Prepared>> {
        chunks
            .par_iter()
            .map_init(
                || encoder.clone(),
                |encoder, chunk| parse_chunk(chunk, &settings, encoder, prepare),
            )
            .collect()
    };
    let group = parallelism.parsers;
    pool.install(|| {
        let (mut parsing, mut read_error) = chunker.next_group(group);
        let mut parsed: Vec<Parsed<S::Prepared>> = Vec::new();
        loop {
            // The parsed group is handed on, and the next read, while the pool parses.
            let reading = read_error.is_none() && !parsing.is_empty();
            let ((handed, next), newly_parsed) = rayon::join(
                || {
                    let handed = hand_on(sink, std::mem::take(&mut parsed), &mut blank_rows);
                    let next = match &handed {
                        Ok(None) if reading => Some(chunker.next_group(group)),
                        _ => None,
                    };
                    (handed, next)
                },
                || parse_group(&parsing),
            );
            if let Some(error) = handed? {
                return sink.finished(blank_rows, Err(error));
            }
            parsed = newly_parsed;
            match next {
                Some((chunks, error)) => {
                    parsing = chunks;
                    read_error = error;
                }
                None => parsing = Vec::new(),
            }
            if parsed.is_empty() && parsing.is_empty() {
                return sink.finished(blank_rows, read_error.take().map_or(Ok(()), Err));
            }
        }
    })
}

/// Hands parsed chunks on in order; returns the error one of them met.
fn hand_on<S: TableSink>(
    sink: &mut S,
    parsed: Vec<Parsed<S::Prepared>>,
    blank_rows: &mut u64,
) -> Result<Option<ReadError>, S::Stopped> {
    for chunk in parsed {
        for (rows, warnings, prepared) in chunk.batches {
            sink.rows(rows, warnings, Some(prepared))?;
        }
        *blank_rows += chunk.blank_rows;
        if chunk.error.is_some() {
            return Ok(chunk.error);
        }
    }
    Ok(None)
}

/// Opens the file again and skips the decoded text `CsvSource` has read.
fn open_at(
    resume: &Resume,
    parallelism: Parallelism,
    bytes_read: Arc<AtomicU64>,
) -> std::io::Result<Chunker> {
    let file = std::fs::File::open(resume.path)?;
    let mut reader = csv_source::decoder(file, resume.encoding, resume.encoding_source, bytes_read);
    // The text read so far goes through the scanner too, for its line
    // breaks; it ends where a record ends.
    let mut scanner = BoundaryScanner::new(resume.delimiter, 0, false, resume.record_limit);
    let mut skip = vec![0; 64 << 10];
    let mut left = resume.offset;
    while left > 0 {
        let want = left.min(skip.len() as u64) as usize;
        let n = reader.read(&mut skip[..want])?;
        if n == 0 {
            break;
        }
        scanner.scan(&skip[..n]);
        left -= n as u64;
    }
    // The records read so far may end between the \r and \n of a break:
    // the \n goes with them, so that no chunk starts inside a break.
    let mut buf = Vec::new();
    if scanner.after_cr {
        let mut next = [0u8; 1];
        if reader.read(&mut next)? == 1 {
            if next[0] == b'\n' {
                scanner.scan(&next);
            } else {
                buf.push(next[0]);
            }
        }
    }
    let lines_before = scanner.breaks;
    scanner.scan(&buf);
    Ok(Chunker {
        reader,
        scanner,
        buf,
        cut: None,
        lines_before,
        eof: false,
        chunk_bytes: parallelism.chunk_bytes.max(1),
        file: resume.file.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(text: &[u8]) -> Vec<usize> {
        let mut scanner = BoundaryScanner::new(b',', 0, false, 1 << 20);
        // Byte by byte, so every cut is seen.
        (0..text.len())
            .filter_map(|i| scanner.scan(&text[i..i + 1]).map(|_| i))
            .filter(|&i| i > 0)
            .collect()
    }

    #[test]
    fn a_record_ends_at_a_line_break_outside_quotes_only() {
        assert_eq!(cuts(b"a,b\nc,d\n"), vec![4]);
        // The break inside the quoted value is part of it.
        assert_eq!(cuts(b"a,\"x\ny\"\nc\n"), vec![8]);
        // A quote inside an unquoted value is a character, not an opening quote.
        assert_eq!(cuts(b"12\" screen,b\nc\n"), vec![13]);
        // "" inside a quoted value is a quote; the value goes on.
        assert_eq!(cuts(b"\"a\"\"\nb\",c\nd\n"), vec![10]);
        // Never between \r and \n; after a lone \r.
        assert_eq!(cuts(b"a\r\nb\rc\n"), vec![3, 5]);
    }

    #[test]
    fn line_breaks_are_counted_as_the_stream_counts_them() {
        let breaks = |text: &[u8], after_cr: bool| {
            let mut scanner = BoundaryScanner::new(b',', 0, after_cr, 1 << 20);
            scanner.scan(text);
            scanner.breaks
        };
        assert_eq!(breaks(b"a\r\nb\rc\n\n", false), 4);
        assert_eq!(breaks(b"\nx", true), 0);
        let mut scanner = BoundaryScanner::new(b';', 0, false, 1 << 20);
        scanner.scan(b"a;\"b\r\nc\";d\r\r\n");
        assert_eq!(scanner.breaks, 3);
    }

    #[test]
    fn a_record_past_the_limit_stops_the_file_after_the_rows_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long_record.csv");
        let mut text = String::from("name,notes\n");
        for i in 0..50 {
            text.push_str(&format!("host{i},\"short\nnote\"\n"));
        }
        text.push_str(&format!("long,\"{}\"\nafter,x\n", "y".repeat(5_000)));
        std::fs::write(&path, &text).unwrap();
        let input = super::super::InputFile {
            path,
            display: "long_record.csv".into(),
        };
        let options = super::super::ReadOptions {
            max_record_bytes: 1_000,
            ..Default::default()
        };
        let probe = super::super::probe_text(&input, &options).unwrap();
        let parallel = Parallelism {
            parsers: 3,
            chunk_bytes: 64,
            min_file_bytes: 0,
        };
        let table = super::super::stream::collect_text(&input, &probe, &options, parallel);
        assert_eq!(table.rows.len(), 50);
        assert_eq!(table.rows.last().unwrap().record_index, 100);
        let error = table.error.unwrap();
        assert!(error.contains("line 102"), "{error}");
    }
}
