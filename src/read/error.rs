//! Why a file could not be read (`ReadError`, one file fails and the run goes
//! on with the others) and why the command-line inputs could not be gathered
//! (`InputError`, the run stops before any file is read).

use std::path::PathBuf;

/// Why one input file could not be read. The run goes on with the other files.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error(
        "{file}: the file is empty (no rows, no header): nothing to import; export it again if rows were expected"
    )]
    Empty { file: String },
    #[error("{file}: line {line}: a record is larger than {limit} bytes; most likely a quote opened at line {line} is never closed. Fix the quoting or raise --max-record-bytes")]
    RecordTooLarge {
        file: String,
        line: u64,
        limit: usize,
    },
    #[error("{file}: line {line}: a row of {columns} values, more than the {limit} columns intake reads from one table. Split the table, or transpose it so that columns become rows")]
    TooWide {
        file: String,
        line: u64,
        columns: usize,
        limit: usize,
    },
    #[error("{file}: line {line}: {message}")]
    Malformed {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: unknown encoding '{label}'. Use a WHATWG label such as utf-8, utf-16le, windows-1252, iso-8859-15, shift_jis")]
    UnknownEncoding { file: String, label: String },
    #[error("{file}: {format} files are not supported by this version of intake. Save the data as CSV and import that")]
    Unsupported { file: String, format: String },
    #[error("{file}: the workbook cannot be read: {message}. Open it in Excel or LibreOffice and save a new copy, or export the sheet as CSV")]
    Workbook { file: String, message: String },
    #[error("{file}: refused: {reason}. The file was not opened; if it is a genuine export, save the sheets as CSV and import those")]
    Refused { file: String, reason: String },
    #[error("{file}: {reason}. Nothing was imported from it")]
    NotText { file: String, reason: String },
    #[error("{file}: skipped, it reads as prose (a readme or a message), not a table: {reason}. Give it with --delimiter to import it anyway")]
    NotATable { file: String, reason: String },
    #[error("{file}: the workbook is password-protected. Open it in Excel, remove the password (File > Info > Protect Workbook > Encrypt with Password), save, and import again")]
    PasswordProtected { file: String },
    #[error("{file}: no sheet named {wanted}; the workbook has: {available}")]
    NoSuchSheet {
        file: String,
        wanted: String,
        available: String,
    },
    #[error("{file}, sheet '{sheet}': {message}")]
    Sheet {
        file: String,
        sheet: String,
        message: String,
    },
}

impl ReadError {
    /// A short machine-readable code for `error_details` and `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::Io { .. } => "io",
            ReadError::Empty { .. } => "empty_file",
            ReadError::RecordTooLarge { .. } => "record_too_large",
            ReadError::TooWide { .. } => "too_many_columns",
            ReadError::Malformed { .. } => "malformed",
            ReadError::UnknownEncoding { .. } => "unknown_encoding",
            ReadError::Unsupported { .. } => "unsupported_format",
            ReadError::Workbook { .. } => "unreadable_workbook",
            ReadError::Refused { .. } => "refused_workbook",
            ReadError::NotText { .. } => "not_text",
            ReadError::NotATable { .. } => "not_a_table",
            ReadError::PasswordProtected { .. } => "password_protected",
            ReadError::NoSuchSheet { .. } => "no_such_sheet",
            ReadError::Sheet { .. } => "unreadable_sheet",
        }
    }

    /// The line of the file the error points at, when there is one.
    pub fn line(&self) -> Option<u64> {
        match self {
            ReadError::RecordTooLarge { line, .. }
            | ReadError::TooWide { line, .. }
            | ReadError::Malformed { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Why the inputs named on the command line could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("reading standard input: {0}")]
    Stdin(std::io::Error),
}
