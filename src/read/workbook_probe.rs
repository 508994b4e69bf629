//! The probe of a workbook file: its hash, the container check, the sheets
//! with their visibility, declared size and detected header, the layout they
//! form, and which sheets the run will read (every visible worksheet with a
//! table, or those named by `--sheet`). `intake sniff` prints this; `import`
//! turns each sheet to read into its own data_imports row.

use std::fs::File;
use std::io::Read;

use serde::Serialize;

use super::isolate::parser_call;
use super::layout::{self, Layout, TableRole};
use super::workbook::guard::{self, Container, GuardError};
use super::workbook::table::SheetTable;
use super::workbook::{Book, Visibility, Visit};
use super::{InputFile, ReadOptions};
use crate::read::workbook::table::SheetHeader;
use crate::read::ReadError;

/// A workbook as the probe found it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkbookProbe {
    #[serde(serialize_with = "container_name")]
    pub container: Container,
    pub hash: String,
    pub size: u64,
    pub uses_1904_dates: bool,
    /// False when the container check found no merged range in any sheet.
    pub has_merged_cells: bool,
    /// The layout the sheets form together (RVTools), if recognised.
    pub layout: Option<Layout>,
    pub sheets: Vec<SheetProbe>,
}

fn container_name<S: serde::Serializer>(c: &Container, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(container_label(*c))
}

/// "xlsx", "xlsb", ... as shown to users.
pub fn container_label(c: Container) -> &'static str {
    match c {
        Container::Xlsx => "xlsx",
        Container::Xlsb => "xlsb",
        Container::Ods => "ods",
        Container::Xls => "xls",
        Container::Encrypted => "encrypted",
        Container::Text => "text",
        Container::Markup => "markup",
    }
}

/// What the run does with a sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum SheetStatus {
    Import,
    Hidden,
    Empty,
    NotSelected,
    /// A chart, dialog or macro sheet.
    NotWorksheet,
    /// The sheet cannot be read or is beyond the limits; the message says why.
    Failed(String),
}

impl SheetStatus {
    /// Why a sheet is skipped, for the summary; None when it is imported or failed.
    pub fn skip_reason(&self) -> Option<&'static str> {
        match self {
            SheetStatus::Hidden => Some("hidden sheet (name it with --sheet to import it)"),
            SheetStatus::Empty => Some("empty sheet"),
            SheetStatus::NotSelected => Some("not named by --sheet"),
            SheetStatus::NotWorksheet => Some("chart or macro sheet, no table"),
            SheetStatus::Import | SheetStatus::Failed(_) => None,
        }
    }
}

/// One sheet of a workbook.
#[derive(Debug, Clone, Serialize)]
pub struct SheetProbe {
    pub name: String,
    /// 1-based position in the workbook.
    pub position: usize,
    pub visibility: Visibility,
    /// Rows × columns the sheet declares (.xlsx, .xlsb).
    pub declared_rows: Option<u64>,
    pub declared_columns: Option<u64>,
    pub header: Option<SheetHeader>,
    #[serde(flatten)]
    pub status: SheetStatus,
    pub role: Option<TableRole>,
    /// The data_imports content hash of this sheet: the file's hash and the sheet name.
    pub content_hash: String,
}

/// Probes a workbook. Ok(None) when the file, despite its extension, holds
/// delimited text (web tools often save CSV or TSV as .xls).
pub fn probe(file: &InputFile, options: &ReadOptions) -> Result<Option<WorkbookProbe>, ReadError> {
    let io_err = |source| ReadError::Io {
        file: file.display.clone(),
        source,
    };
    let (hash, size) = hash_file(file).map_err(io_err)?;
    if size == 0 {
        return Err(ReadError::Empty {
            file: file.display.clone(),
        });
    }
    // The guard walks the container with the zip, cfb and quick-xml crates.
    let checked = match parser_call(|| Ok(guard::check(&file.path, &guard::LIMITS))) {
        Ok(Ok(checked)) => checked,
        Ok(Err(error)) => return Err(guard_error(file, error)),
        Err(message) => return Err(workbook_error(file, message)),
    };
    let container = match checked.container {
        Container::Text => return Ok(None),
        Container::Markup => {
            return Err(ReadError::Unsupported {
                file: file.display.clone(),
                format: "an HTML page or XML Spreadsheet 2003 saved with a workbook extension"
                    .into(),
            })
        }
        container => container,
    };
    let mut book =
        Book::open(&file.path, container).map_err(|message| workbook_error(file, message))?;
    let uses_1904_dates = book.uses_1904_dates();
    let metas = book.sheets();
    if metas.is_empty() {
        return Err(ReadError::Workbook {
            file: file.display.clone(),
            message: "the workbook lists no sheets".into(),
        });
    }
    let wanted: Vec<String> = options
        .sheets
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    if !wanted.is_empty() {
        let missing: Vec<&String> = options
            .sheets
            .iter()
            .filter(|w| {
                !metas
                    .iter()
                    .any(|m| m.name.trim().eq_ignore_ascii_case(w.trim()))
            })
            .collect();
        if missing.len() == options.sheets.len() {
            return Err(ReadError::NoSuchSheet {
                file: file.display.clone(),
                wanted: options.sheets.join(", "),
                available: metas
                    .iter()
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let mut sheets = Vec::with_capacity(metas.len());
    for (i, meta) in metas.iter().enumerate() {
        let named = wanted.contains(&meta.name.trim().to_lowercase());
        let mut sheet = SheetProbe {
            name: meta.name.clone(),
            position: i + 1,
            visibility: meta.visibility,
            declared_rows: None,
            declared_columns: None,
            header: None,
            status: SheetStatus::Import,
            role: None,
            content_hash: sheet_hash(&hash, &meta.name),
        };
        sheet.status = if !meta.is_worksheet {
            SheetStatus::NotWorksheet
        } else if !wanted.is_empty() && !named {
            SheetStatus::NotSelected
        } else if meta.visibility != Visibility::Visible && !named {
            SheetStatus::Hidden
        } else {
            SheetStatus::Import
        };
        if meta.is_worksheet {
            inspect_sheet(&mut book, &mut sheet);
        }
        sheets.push(sheet);
    }
    let headers: Vec<(String, Vec<String>)> = sheets
        .iter()
        .filter_map(|s| {
            s.header
                .as_ref()
                .map(|h| (s.name.clone(), h.columns.clone()))
        })
        .collect();
    let layout = layout::recognise_workbook(&headers);
    for sheet in &mut sheets {
        sheet.role = match layout {
            Some(Layout::Rvtools) => layout::rvtools_role(&sheet.name),
            _ => sheet
                .header
                .as_ref()
                .and_then(|h| layout::recognise_table(&h.columns))
                .map(layout::single_table_role),
        };
    }
    Ok(Some(WorkbookProbe {
        container,
        hash,
        size,
        uses_1904_dates,
        has_merged_cells: checked.has_merged_cells,
        layout,
        sheets,
    }))
}

/// Reads the declared size (reported, never trusted: a streamed sheet costs
/// the cells it holds) and the first rows of a sheet to find its header.
fn inspect_sheet(book: &mut Book, sheet: &mut SheetProbe) {
    match book.declared_size(&sheet.name) {
        Ok(Some((rows, cols))) => {
            sheet.declared_rows = Some(rows);
            sheet.declared_columns = Some(cols);
        }
        Ok(None) => {}
        Err(message) => {
            sheet.status = SheetStatus::Failed(format!("the sheet cannot be read: {message}"));
            return;
        }
    }
    let mut table = SheetTable::new(Vec::new());
    let visited = book.visit(&sheet.name, &mut |row| {
        table.push(row);
        if table.header().is_some() {
            Visit::Stop
        } else {
            Visit::Continue
        }
    });
    if let Err(message) = visited {
        sheet.status = SheetStatus::Failed(format!("the sheet cannot be read: {message}"));
        return;
    }
    table.finish();
    match table.header() {
        Some(header) if !header.columns.is_empty() => sheet.header = Some(header.clone()),
        _ => {
            if sheet.status == SheetStatus::Import {
                sheet.status = SheetStatus::Empty;
            }
        }
    }
}

fn hash_file(file: &InputFile) -> std::io::Result<(String, u64)> {
    let mut reader = File::open(&file.path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// A sheet's content hash: the same workbook's same sheet is recognised on re-import.
pub fn sheet_hash(file_hash: &str, sheet: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(file_hash.as_bytes());
    hasher.update(b"\0sheet\0");
    hasher.update(sheet.as_bytes());
    hasher.finalize().to_hex().to_string()
}

fn guard_error(file: &InputFile, error: GuardError) -> ReadError {
    match error {
        GuardError::Io(source) => ReadError::Io {
            file: file.display.clone(),
            source,
        },
        GuardError::Corrupt(message) => workbook_error(file, message),
        GuardError::Refused(reason) => ReadError::Refused {
            file: file.display.clone(),
            reason,
        },
        GuardError::Encrypted => ReadError::PasswordProtected {
            file: file.display.clone(),
        },
    }
}

fn workbook_error(file: &InputFile, message: String) -> ReadError {
    if message.to_ascii_lowercase().contains("password") {
        return ReadError::PasswordProtected {
            file: file.display.clone(),
        };
    }
    ReadError::Workbook {
        file: file.display.clone(),
        message,
    }
}
