//! The read phase: finding the input files, deciding how to read each one
//! (encoding, delimiter) and streaming its rows as JSON objects keyed by the
//! header. Nothing here touches the database; `stage` writes what this produces.

pub mod archive;
pub mod csv_parallel;
pub mod csv_source;
pub mod delimiter;
pub mod encoding;
mod error;
pub mod header;
pub mod isolate;
pub mod layout;
pub mod sniff;
pub mod stream;
pub mod workbook;
pub mod workbook_probe;

use std::io::Write;
use std::path::{Path, PathBuf};

use encoding_rs::Encoding;
use serde::Serialize;

pub use csv_source::CsvSource;
pub use delimiter::DelimiterSource;
pub use encoding::{ContentScan, EncodingSource};
pub use workbook_probe::{SheetProbe, SheetStatus, WorkbookProbe};

pub use error::{InputError, ReadError};
pub use stream::{TableHeader, TableSink};

/// Extensions read as delimited text when found in a directory.
pub const DELIMITED_EXTENSIONS: &[&str] = &["csv", "tsv", "tab", "txt", "psv"];
/// Workbook extensions, read through calamine.
pub const WORKBOOK_EXTENSIONS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// The default limit on one record's decoded size.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;
const SNIFF_BYTES: usize = 256 << 10;

/// One data row of a file.
#[derive(Debug, Clone)]
pub struct Row {
    /// The row's number in the file: the line its record starts on.
    pub record_index: i64,
    /// A JSON object keyed by the column names, values as written.
    pub raw_data: String,
}

/// A problem with one row that does not stop the import; the row is kept.
#[derive(Debug, Clone, Serialize)]
pub struct RowWarning {
    pub record_index: i64,
    pub line: u64,
    pub column: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// An input to import.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    /// How the file is named in messages and in data_imports.filename.
    pub display: String,
}

impl InputFile {
    pub fn extension(&self) -> String {
        Path::new(&self.display)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    pub fn mime_type(&self) -> &'static str {
        match self.extension().as_str() {
            "tsv" | "tab" => "text/tab-separated-values",
            "txt" => "text/plain",
            "xlsx" | "xlsm" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsb" => "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
            "xls" => "application/vnd.ms-excel",
            "ods" => "application/vnd.oasis.opendocument.spreadsheet",
            _ => "text/csv",
        }
    }
}

/// How a table is named in tables and messages: the file name, and the sheet
/// of a workbook ("inventory.xlsx [vInfo]").
pub fn table_label(path: &str, sheet: Option<&str>) -> String {
    let name = Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().to_string());
    match sheet {
        Some(sheet) => format!("{name} [{sheet}]"),
        None => name,
    }
}

/// A path given on the command line that was not imported, and why.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredPath {
    pub path: String,
    pub reason: String,
}

/// The most columns one table may have (about 200 MB of memory to map,
/// measured at 100,000). A wider row fails its file with a message saying
/// so; the other files import. Excel's own limit is 16,384.
pub const MAX_COLUMNS: usize = 100_000;

/// The note of a file with nothing in it (0 bytes, or blank lines only):
/// it is imported as a table of no rows, not failed.
pub const EMPTY_FILE_NOTE: &str =
    "the file is empty (no header, no rows): imported as a table of no rows";

/// The inputs of a run.
pub struct Inputs {
    pub files: Vec<InputFile>,
    pub ignored: Vec<IgnoredPath>,
    /// Standard input spooled to disk; the files are removed when these drop.
    pub stdin_spools: Vec<tempfile::NamedTempFile>,
    /// The directories `.zip` archives were inflated into; removed when these drop.
    pub archives: Vec<tempfile::TempDir>,
    /// Archives or archive entries that could not be read: the name shown and why.
    pub refused: Vec<(String, String)>,
}

/// Turns the command-line paths into input files: a file as it is, a directory
/// into every supported file under it (sorted, hidden files skipped), `-` into
/// standard input spooled to a temporary file so it can be read twice.
pub fn expand_inputs(
    paths: &[PathBuf],
    spool_dir: &Path,
    spool_prefix: &str,
) -> Result<Inputs, InputError> {
    let mut files: Vec<InputFile> = Vec::new();
    let mut ignored = Vec::new();
    let mut spools = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut spool = tempfile::Builder::new()
                .prefix(spool_prefix)
                .tempfile_in(spool_dir)
                .or_else(|_| tempfile::NamedTempFile::new())
                .map_err(InputError::Stdin)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut spool).map_err(InputError::Stdin)?;
            spool.flush().map_err(InputError::Stdin)?;
            files.push(InputFile {
                path: spool.path().to_path_buf(),
                display: "stdin".to_string(),
            });
            spools.push(spool);
        } else if path.is_dir() {
            let mut found = Vec::new();
            let mut visited = std::collections::HashSet::new();
            walk(path, &mut found, &mut ignored, &mut visited);
            found.sort();
            files.extend(found.into_iter().map(|p| InputFile {
                display: p.display().to_string(),
                path: p,
            }));
        } else if path.exists() {
            files.push(InputFile {
                path: path.clone(),
                display: path.display().to_string(),
            });
        } else {
            return Err(InputError::NotFound { path: path.clone() });
        }
    }
    // A .zip given or found is read as the files inside it.
    let mut archives = Vec::new();
    let mut refused = Vec::new();
    let mut read = Vec::with_capacity(files.len());
    for file in files {
        if !archive::is_archive(&file.path) {
            read.push(file);
            continue;
        }
        match archive::extract(&file.path, &file.display) {
            Ok(extracted) => {
                read.extend(extracted.files);
                ignored.extend(extracted.ignored);
                refused.extend(extracted.refused);
                archives.push(extracted.dir);
            }
            Err(error) => refused.push((file.display.clone(), error.to_string())),
        }
    }
    Ok(Inputs {
        files: read,
        ignored,
        stdin_spools: spools,
        archives,
        refused,
    })
}

/// Collects the supported files under `dir`. Symbolic links are followed,
/// but a directory already visited (`a -> .`, or two links to one place) is
/// listed as ignored instead of walked again, so a link loop ends.
/// Removes standard-input spools named `spool_prefix...` in `spool_dir` that
/// a killed run left behind. Called only by the run that holds the
/// database's writer lock, so no live run owns one.
pub fn remove_stale_spools(spool_dir: &Path, spool_prefix: &str) {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(spool_prefix)
        {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(
                    "removed {}, standard input spooled by a run that was killed",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

fn walk(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    ignored: &mut Vec<IgnoredPath>,
    visited: &mut std::collections::HashSet<PathBuf>,
) {
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !visited.insert(real.clone()) {
                ignored.push(IgnoredPath {
                    path: dir.display().to_string(),
                    reason: format!(
                        "a link to {}, which is already read (a symbolic link loop or a second link)",
                        real.display()
                    ),
                });
                return;
            }
        }
        Err(e) => {
            ignored.push(IgnoredPath {
                path: dir.display().to_string(),
                reason: format!("cannot resolve directory: {e}"),
            });
            return;
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            ignored.push(IgnoredPath {
                path: dir.display().to_string(),
                reason: format!("cannot list directory: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.starts_with("~$") {
            continue; // hidden files and Office lock files
        }
        if path.is_dir() {
            walk(&path, found, ignored, visited);
            continue;
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if DELIMITED_EXTENSIONS.contains(&ext.as_str())
            || WORKBOOK_EXTENSIONS.contains(&ext.as_str())
            || ext == "zip"
        {
            found.push(path);
        } else {
            ignored.push(IgnoredPath {
                path: path.display().to_string(),
                reason: "not a supported file type (csv, tsv, txt, xlsx, xls, ods, zip)"
                    .to_string(),
            });
        }
    }
}

/// How to read files; the overrides apply to every file of the run.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub encoding: Option<&'static Encoding>,
    pub delimiter: Option<u8>,
    pub max_record_bytes: usize,
    /// Sheets to read from workbooks (case-insensitive); empty means every visible one.
    pub sheets: Vec<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            encoding: None,
            delimiter: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            sheets: Vec::new(),
        }
    }
}

/// What was decided about a delimited text file before its rows are read.
#[derive(Debug, Clone)]
pub struct TextProbe {
    pub scan: ContentScan,
    /// The delimiter, quote, escape and padding the file is read with.
    pub dialect: delimiter::Dialect,
    pub delimiter_source: DelimiterSource,
    /// Another dialect that read the head nearly as consistently (said in
    /// the summary and by `sniff`; `--delimiter` settles it).
    pub runner_up: Option<delimiter::Dialect>,
    /// A quote opening a header cell that never closes (decoded byte
    /// offset, column): dropped when the header is read, with a warning.
    pub stray_quote: Option<(u64, usize)>,
    /// The tables of a file that holds several (empty: one table). Found in
    /// the head the sniffer reads (256 KiB); the last runs to the end.
    pub parts: Vec<delimiter::TextPart>,
    /// The one table of `parts` this probe reads (None: the whole file).
    pub part: Option<delimiter::TextPart>,
    /// Set when a file with a workbook extension turned out to be text.
    pub note: Option<String>,
}

/// What a file turned out to be, and how it will be read.
#[derive(Debug, Clone)]
pub enum FileProbe {
    Text(TextProbe),
    Workbook(WorkbookProbe),
}

impl FileProbe {
    pub fn hash(&self) -> &str {
        match self {
            FileProbe::Text(p) => &p.scan.hash,
            FileProbe::Workbook(p) => &p.hash,
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            FileProbe::Text(p) => p.scan.size,
            FileProbe::Workbook(p) => p.size,
        }
    }
}

/// Reads a file once to decide how to read it: a workbook's container is
/// checked and its sheets listed; a text file's encoding and delimiter are found.
pub fn probe(file: &InputFile, options: &ReadOptions) -> Result<FileProbe, ReadError> {
    let ext = file.extension();
    if WORKBOOK_EXTENSIONS.contains(&ext.as_str()) {
        return match workbook_probe::probe(file, options)? {
            Some(book) => Ok(FileProbe::Workbook(book)),
            None => {
                let mut text = probe_text(file, options)?;
                text.note = Some(format!(
                    "the .{ext} file holds delimited text, not a workbook; it was read as CSV"
                ));
                Ok(FileProbe::Text(text))
            }
        };
    }
    if let Some(actual) = workbook_inside(file) {
        return Err(ReadError::NotText {
            file: file.display.clone(),
            reason: format!(
                "it is {actual} named .{ext}; rename it to end in the right extension and import it again"
            ),
        });
    }
    probe_text(file, options).map(FileProbe::Text)
}

/// The first `max` bytes of a file.
fn raw_head(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path)?, max),
        &mut head,
    )?;
    Ok(head)
}

/// What workbook a file with a text extension holds, judged by its magic
/// bytes: such a file read as text would stage its compressed bytes as rows.
fn workbook_inside(file: &InputFile) -> Option<&'static str> {
    let mut head = [0u8; 8];
    let mut reader = std::fs::File::open(&file.path).ok()?;
    let n = std::io::Read::read(&mut reader, &mut head).ok()?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some("a zip archive (an .xlsx, .xlsb or .ods workbook?)")
    } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Some("an OLE compound file (an .xls workbook?)")
    } else {
        None
    }
}

/// The share of a text's characters that are control characters other than
/// tab, line breaks and form feed (and, decoded, replacement characters):
/// text exports have next to none, random, compressed or encrypted bytes
/// about one in nine. `None` for a sample too short to judge.
fn binary_share(chars: impl Iterator<Item = char>) -> Option<f64> {
    let (mut total, mut binary) = (0usize, 0usize);
    for c in chars {
        total += 1;
        let control =
            (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c')) || c == '\u{fffd}';
        binary += usize::from(control);
    }
    (total >= BINARY_SAMPLE_MIN).then(|| binary as f64 / total as f64)
}

/// A file shorter than this is not judged binary: a few escape sequences
/// in a small export are data to keep (and warn about), not a sign.
const BINARY_SAMPLE_MIN: usize = 4096;
/// Above this share of binary characters in its head, a text file is refused.
const MAX_BINARY_SHARE: f64 = 0.08;

/// Hash, size, encoding and delimiter of a delimited text file.
pub fn probe_text(file: &InputFile, options: &ReadOptions) -> Result<TextProbe, ReadError> {
    let io_err = |source| ReadError::Io {
        file: file.display.clone(),
        source,
    };
    let ext = file.extension();
    let scan = encoding::scan(&file.path, options.encoding).map_err(io_err)?;
    let (head, complete) =
        csv_source::decoded_head(&file.path, scan.encoding, scan.encoding_source, SNIFF_BYTES)
            .map_err(io_err)?;
    // Blank lines (or a BOM) and nothing else, or 0 bytes: an import of no
    // rows, said in a note; nothing to sniff.
    if complete && head.iter().all(u8::is_ascii_whitespace) {
        return Ok(TextProbe {
            scan,
            dialect: delimiter::Dialect::standard(b','),
            delimiter_source: DelimiterSource::Default,
            runner_up: None,
            stray_quote: None,
            parts: Vec::new(),
            part: None,
            note: Some(EMPTY_FILE_NOTE.into()),
        });
    }
    // Judged on the bytes as written, except UTF-16, whose NULs are text.
    let binary =
        if scan.encoding == encoding_rs::UTF_16LE || scan.encoding == encoding_rs::UTF_16BE {
            binary_share(String::from_utf8_lossy(&head).chars())
        } else {
            let raw = raw_head(&file.path, 64 << 10).map_err(io_err)?;
            binary_share(raw.iter().map(|&b| if b < 0x80 { b as char } else { 'x' }))
        }
        .unwrap_or(0.0);
    if binary > MAX_BINARY_SHARE {
        return Err(ReadError::NotText {
            file: file.display.clone(),
            reason: format!(
                "{:.0} % of its first bytes are control characters: it holds binary data, not delimited text (a compressed or encrypted file?)",
                binary * 100.0
            ),
        });
    }
    let (dialect, delimiter_source, runner_up) = match options.delimiter {
        Some(d) => (
            delimiter::Dialect::standard(d),
            DelimiterSource::Override,
            None,
        ),
        None => match delimiter::sniff_dialect(&head, complete) {
            Some(sniffed) => (
                sniffed.dialect,
                DelimiterSource::Detected,
                sniffed.runner_up.map(|(d, _)| d),
            ),
            None if matches!(ext.as_str(), "tsv" | "tab") => (
                delimiter::Dialect::standard(b'\t'),
                DelimiterSource::Default,
                None,
            ),
            None => (
                delimiter::Dialect::standard(b','),
                DelimiterSource::Default,
                None,
            ),
        },
    };
    let delimiter = dialect.delimiter;
    // A readme or an e-mail beside the exports: lines of words, no columns.
    if delimiter_source != DelimiterSource::Override {
        if let Some(reason) = prose(&head, delimiter) {
            return Err(ReadError::NotATable {
                file: file.display.clone(),
                reason,
            });
        }
    }
    let stray_quote = delimiter::stray_header_quote(&head, dialect);
    // Several tables one after the other: looked for in the text as the
    // parser will see it (the stray quote and the padding dropped), in the
    // head of a large file (its last table runs to the end of the file).
    let parts = {
        let mut seen = head.clone();
        if let Some((at, _)) = stray_quote {
            seen.remove(at as usize);
        }
        if dialect.skip_initial_space {
            seen = delimiter::skip_initial_spaces(&seen, dialect);
        }
        delimiter::tables_in(&seen, dialect)
    };
    Ok(TextProbe {
        scan,
        dialect,
        delimiter_source,
        runner_up,
        stray_quote,
        parts,
        part: None,
        note: None,
    })
}

/// Why the head of a text file reads as prose rather than a table, or None:
/// most of its lines hold no delimiter at all (a table's lines split into the
/// same number of columns, a list of names into one short field), and at
/// least a third are sentences of five or more words.
fn prose(head: &[u8], delimiter: u8) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(50)
        .collect();
    if lines.len() < 3 {
        return None;
    }
    let fields = |l: &str| l.split(delimiter as char).count();
    let sentences = lines
        .iter()
        .filter(|l| l.split_whitespace().count() >= 5 && fields(l) <= 2)
        .count();
    let mut counts: std::collections::HashMap<usize, usize> = Default::default();
    for l in &lines {
        *counts.entry(fields(l)).or_default() += 1;
    }
    let (modal, modal_lines) = counts
        .into_iter()
        .max_by_key(|(f, n)| (*n, std::cmp::Reverse(*f)))
        .unwrap_or((1, 0));
    let is_prose = modal == 1 && modal_lines * 2 > lines.len() && sentences * 3 >= lines.len();
    is_prose.then(|| {
        format!(
            "{sentences} of its first {} lines are sentences and most hold no delimiter",
            lines.len()
        )
    })
}

#[cfg(test)]
mod prose_tests {
    use super::prose;

    #[test]
    fn a_message_is_prose_and_lists_and_tables_are_not() {
        let mail = b"Hi team,\n\nattached are the exports from the CMDB. Please note that the RVTools file is old and\nsome servers were decommissioned since then.\n\nRegards,\nBob\n";
        assert!(prose(mail, b',').is_some());
        let hosts = b"Server Name\nweb01\nweb02\ndb01\napp01\n";
        assert!(prose(hosts, b',').is_none());
        let described = b"name,description\nweb01,Main web server for the shop frontend\nweb02,Second web server for the shop frontend\ndb01,The database behind the shop and the billing\n";
        assert!(prose(described, b',').is_none());
    }
}
