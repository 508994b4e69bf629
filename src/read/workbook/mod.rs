//! Workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) through calamine. `guard` checks
//! the container first; `Book` opens it and lists its sheets; `Book::visit`
//! streams a sheet's non-empty rows (the cell reader for .xlsx and .xlsb, so
//! memory stays flat however long the sheet; a whole range for .xls and .ods,
//! whose size the guard has bounded); `table` turns those rows into staged rows.

pub mod cells;
pub mod guard;
mod ods_cost;
pub mod table;
mod xls_cost;
mod xlsx_cost;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{Reader, SheetType, SheetVisible};

use crate::read::isolate::parser_call;
use serde::Serialize;

pub use cells::{CellKind, CellValue};
pub use guard::Container;

type Source = BufReader<File>;

/// An open workbook.
pub enum Book {
    Xlsx(calamine::Xlsx<Source>),
    Xlsb(calamine::Xlsb<Source>),
    Xls(calamine::Xls<Source>),
    Ods(calamine::Ods<Source>),
}

/// How a sheet is shown in its workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Visible,
    Hidden,
    VeryHidden,
}

/// A sheet as the workbook lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SheetMeta {
    pub name: String,
    pub visibility: Visibility,
    /// Worksheets hold tables; chart, dialog and macro sheets do not.
    pub is_worksheet: bool,
}

/// A row of a sheet with at least one cell record; `cells` holds the non-empty
/// ones as (0-based column, value) in column order.
#[derive(Debug, Clone, Default)]
pub struct SheetRow {
    /// 0-based row of the sheet (Excel's row number minus one).
    pub row: u32,
    pub cells: Vec<(u32, CellValue)>,
}

/// Whether `visit` should go on after a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Continue,
    Stop,
}

/// A merged range, 0-based and inclusive: (first row, first col, last row, last col).
pub type Merged = (u32, u32, u32, u32);

impl Book {
    /// Opens a workbook the guard has checked. Every call into calamine here
    /// is isolated: a panic on a malformed file is that file's error.
    pub fn open(path: &Path, container: Container) -> Result<Book, String> {
        parser_call(|| Self::open_unguarded(path, container))
    }

    fn open_unguarded(path: &Path, container: Container) -> Result<Book, String> {
        let source = || -> Result<Source, String> {
            File::open(path)
                .map(BufReader::new)
                .map_err(|e| e.to_string())
        };
        let describe = |e: &dyn std::fmt::Display| e.to_string();
        Ok(match container {
            Container::Xlsx => {
                Book::Xlsx(calamine::Xlsx::new(source()?).map_err(|e| describe(&e))?)
            }
            Container::Xlsb => {
                Book::Xlsb(calamine::Xlsb::new(source()?).map_err(|e| describe(&e))?)
            }
            Container::Xls => Book::Xls(calamine::Xls::new(source()?).map_err(|e| describe(&e))?),
            Container::Ods => Book::Ods(calamine::Ods::new(source()?).map_err(|e| describe(&e))?),
            other => return Err(format!("{other:?} is not a workbook container")),
        })
    }

    /// The sheets in workbook order.
    pub fn sheets(&self) -> Vec<SheetMeta> {
        let metadata = match self {
            Book::Xlsx(b) => b.sheets_metadata(),
            Book::Xlsb(b) => b.sheets_metadata(),
            Book::Xls(b) => b.sheets_metadata(),
            Book::Ods(b) => b.sheets_metadata(),
        };
        metadata
            .iter()
            .map(|s| SheetMeta {
                name: s.name.clone(),
                visibility: match s.visible {
                    SheetVisible::Visible => Visibility::Visible,
                    SheetVisible::Hidden => Visibility::Hidden,
                    SheetVisible::VeryHidden => Visibility::VeryHidden,
                },
                is_worksheet: matches!(s.typ, SheetType::WorkSheet),
            })
            .collect()
    }

    /// Whether dates count from 1904 (old Mac workbooks); reported by sniff.
    pub fn uses_1904_dates(&self) -> bool {
        match self {
            Book::Xlsx(b) => b.has_1904_epoch(),
            Book::Xlsb(b) => b.has_1904_epoch(),
            Book::Xls(b) => b.has_1904_epoch(),
            Book::Ods(_) => false,
        }
    }

    /// The used range the sheet declares, as (rows, columns); None when unknown.
    pub fn declared_size(&mut self, sheet: &str) -> Result<Option<(u64, u64)>, String> {
        parser_call(|| self.declared_size_unguarded(sheet))
    }

    fn declared_size_unguarded(&mut self, sheet: &str) -> Result<Option<(u64, u64)>, String> {
        let dims = match self {
            Book::Xlsx(b) => b
                .worksheet_cells_reader(sheet)
                .map_err(|e| e.to_string())?
                .dimensions(),
            Book::Xlsb(b) => b
                .worksheet_cells_reader(sheet)
                .map_err(|e| e.to_string())?
                .dimensions(),
            Book::Xls(_) | Book::Ods(_) => return Ok(None),
        };
        let rows = u64::from(dims.end.0.saturating_sub(dims.start.0)) + 1;
        let cols = u64::from(dims.end.1.saturating_sub(dims.start.1)) + 1;
        Ok(Some((rows, cols)))
    }

    /// The merged ranges of a sheet (none for .ods and .xlsb, whose readers do not expose them).
    pub fn merged(&mut self, sheet: &str) -> Result<Vec<Merged>, String> {
        parser_call(|| self.merged_unguarded(sheet))
    }

    fn merged_unguarded(&mut self, sheet: &str) -> Result<Vec<Merged>, String> {
        let dims = match self {
            Book::Xlsx(b) => b
                .merge_cells_by_sheet_name(sheet)
                .map_err(|e| e.to_string())?,
            Book::Xls(b) => b
                .merge_cells_by_sheet_name(sheet)
                .map_err(|e| e.to_string())?,
            Book::Xlsb(_) | Book::Ods(_) => Vec::new(),
        };
        Ok(dims
            .into_iter()
            .filter(|d| d.end.0 >= d.start.0 && d.end.1 >= d.start.1)
            .map(|d| (d.start.0, d.start.1, d.end.0, d.end.1))
            .collect())
    }

    /// Calls `f` with each row that has a cell record, in sheet order, until it
    /// returns `Visit::Stop`. A panic while reading becomes the sheet's error.
    pub fn visit(
        &mut self,
        sheet: &str,
        f: &mut dyn FnMut(SheetRow) -> Visit,
    ) -> Result<(), String> {
        parser_call(|| self.visit_unguarded(sheet, f))
    }

    fn visit_unguarded(
        &mut self,
        sheet: &str,
        f: &mut dyn FnMut(SheetRow) -> Visit,
    ) -> Result<(), String> {
        match self {
            Book::Xlsx(b) => {
                let mut reader = b.worksheet_cells_reader(sheet).map_err(|e| e.to_string())?;
                let mut rows = RowAssembler::default();
                while let Some(record) = reader
                    .next_cell_with_formula_metadata()
                    .map_err(|e| e.to_string())?
                {
                    let value = match (&record.value, &record.formula) {
                        (calamine::DataRef::Empty, Some(formula)) => {
                            let text = match formula {
                                calamine::XlsxFormulaMetadata::Normal { formula }
                                | calamine::XlsxFormulaMetadata::Shared { formula, .. } => {
                                    Some(formula.as_str())
                                }
                                _ => None,
                            };
                            Some(CellValue::formula_without_value(text))
                        }
                        (value, _) => cells::from_ref(value),
                    };
                    if rows.push(record.pos, value, f)? == Visit::Stop {
                        return Ok(());
                    }
                }
                rows.finish(f);
            }
            Book::Xlsb(b) => {
                let mut reader = b.worksheet_cells_reader(sheet).map_err(|e| e.to_string())?;
                let mut rows = RowAssembler::default();
                while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
                    let value = cells::from_ref(cell.get_value());
                    if rows.push(cell.get_position(), value, f)? == Visit::Stop {
                        return Ok(());
                    }
                }
                rows.finish(f);
            }
            Book::Xls(b) => {
                let range = b.worksheet_range(sheet).map_err(|e| e.to_string())?;
                visit_range(&range, None, f)?;
            }
            Book::Ods(b) => {
                let range = b.worksheet_range(sheet).map_err(|e| e.to_string())?;
                let formulas = b.worksheet_formula(sheet).ok();
                visit_range(&range, formulas.as_ref(), f)?;
            }
        }
        Ok(())
    }
}

/// The most text one sheet row may hold, as a CSV record may (a cell that
/// names a long shared string costs its length each time).
pub const MAX_ROW_BYTES: usize = crate::read::DEFAULT_MAX_RECORD_BYTES;

fn row_too_large(row: u32) -> String {
    format!(
        "row {} holds more than {} of text, more than intake reads from one row. Check the sheet for a cell repeated across the row, or export it as CSV",
        row + 1,
        guard::human_bytes(MAX_ROW_BYTES as u64)
    )
}

/// Groups streamed cells into rows.
#[derive(Default)]
struct RowAssembler {
    current: Option<SheetRow>,
    /// Text bytes of the current row.
    bytes: usize,
}

impl RowAssembler {
    fn push(
        &mut self,
        (row, col): (u32, u32),
        value: Option<CellValue>,
        f: &mut dyn FnMut(SheetRow) -> Visit,
    ) -> Result<Visit, String> {
        if self.current.as_ref().is_some_and(|r| r.row != row) {
            let done = self.current.take().expect("checked above");
            self.bytes = 0;
            if f(in_column_order(done)) == Visit::Stop {
                return Ok(Visit::Stop);
            }
        }
        let current = self.current.get_or_insert_with(|| SheetRow {
            row,
            cells: Vec::new(),
        });
        if let Some(value) = value {
            if current.cells.len() >= crate::read::MAX_COLUMNS {
                return Err(format!(
                    "row {} holds more than {} cells, more than the columns intake reads from one table. Split the table, or transpose it so that columns become rows",
                    row + 1,
                    crate::read::MAX_COLUMNS
                ));
            }
            self.bytes += value.text.as_ref().map_or(0, String::len);
            if self.bytes > MAX_ROW_BYTES {
                return Err(row_too_large(row));
            }
            current.cells.push((col, value));
        }
        Ok(Visit::Continue)
    }

    fn finish(&mut self, f: &mut dyn FnMut(SheetRow) -> Visit) {
        if let Some(last) = self.current.take() {
            f(in_column_order(last));
        }
    }
}

/// A row's cells sorted by column, one per column (the last written wins):
/// a sheet's XML may list C1 before A1, or a cell twice, though Excel never
/// writes it so.
fn in_column_order(mut row: SheetRow) -> SheetRow {
    if !row.cells.is_sorted_by(|a, b| a.0 < b.0) {
        // Stable, so of one column's cells the last written stays last.
        row.cells.sort_by_key(|(col, _)| *col);
        let mut deduped: Vec<(u32, CellValue)> = Vec::with_capacity(row.cells.len());
        for cell in row.cells.drain(..) {
            match deduped.last_mut() {
                Some(last) if last.0 == cell.0 => *last = cell,
                _ => deduped.push(cell),
            }
        }
        row.cells = deduped;
    }
    row
}

fn visit_range(
    range: &calamine::Range<calamine::Data>,
    formulas: Option<&calamine::Range<String>>,
    f: &mut dyn FnMut(SheetRow) -> Visit,
) -> Result<(), String> {
    let Some((first_row, first_col)) = range.start() else {
        return Ok(());
    };
    for (i, values) in range.rows().enumerate() {
        let row = first_row + i as u32;
        let mut cells = Vec::new();
        let mut bytes = 0;
        for (j, data) in values.iter().enumerate() {
            let col = first_col + j as u32;
            let value = match cells::from_data(data) {
                Some(v) => Some(v),
                None => formulas
                    .and_then(|fs| fs.get_value((row, col)))
                    .filter(|formula| !formula.is_empty())
                    .map(|formula| CellValue::formula_without_value(Some(formula))),
            };
            if let Some(value) = value {
                bytes += value.text.as_ref().map_or(0, String::len);
                if bytes > MAX_ROW_BYTES {
                    return Err(row_too_large(row));
                }
                cells.push((col, value));
            }
        }
        if f(SheetRow { row, cells }) == Visit::Stop {
            return Ok(());
        }
    }
    Ok(())
}
