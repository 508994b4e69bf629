//! A sheet's rows as a table: finds the header under title and blank rows,
//! reports a sheet without one instead of guessing silently, copies the value of
//! a merged range into the cells it covers below the header, and encodes each
//! data row as the JSON object that is staged, with a warning for every value
//! that could not be kept (error cells, formulas without a cached value).

use std::collections::HashMap;

use serde::Serialize;

use super::cells::{cell_ref, CellKind, CellValue};
use super::{Merged, SheetRow};
use crate::read::csv_source::PreambleRow;
use crate::read::header::{
    combine_two_rows, header_shape, name_columns, HeaderShape, HeaderWarning, RowEncoder,
};
use crate::read::{Row, RowWarning};

/// Non-empty rows looked at to find the header.
pub const HEADER_SCAN_ROWS: usize = 20;

/// Excel's widest sheet (A..XFD). A table no wider keeps a column for every
/// position between its first and last header cell, as Excel shows it; a
/// wider one (only a damaged or hostile file declares a cell past XFD) keeps
/// a column only where a cell exists, so memory follows the cells, never a
/// declared coordinate.
pub const MAX_COLUMNS: u32 = 16_384;

/// What was decided about a sheet's header.
#[derive(Debug, Clone, Serialize)]
pub struct SheetHeader {
    /// 1-based row of the header; None when the sheet has no header row.
    pub row: Option<u32>,
    /// One header row, none, or group labels above the names.
    pub shape: HeaderShape,
    /// 0-based column where the table starts.
    pub first_col: u32,
    pub columns: Vec<String>,
    /// The sheet column of each of `columns`, ascending.
    #[serde(skip)]
    pub sheet_cols: Vec<u32>,
    #[serde(skip)]
    pub warnings: Vec<HeaderWarning>,
    pub preamble: Vec<PreambleRow>,
}

/// Streams a sheet's rows into staged rows.
pub struct SheetTable {
    /// Rows read ahead to find the header, each with the number of blank
    /// rows just before it (counted, never held).
    lookahead: Vec<(SheetRow, u64)>,
    blanks_ahead: u64,
    /// The last record_index given: rows whose XML comes out of order are
    /// numbered after it, so record indexes stay unique.
    last_record_index: i64,
    /// Merged ranges (sorted by first row) not yet reached, and those
    /// covering the current row.
    next_merged: usize,
    active_merged: Vec<usize>,
    merged_row: u32,
    header: Option<SheetHeader>,
    encoder: RowEncoder,
    merged: Vec<Merged>,
    /// Values of merged ranges' top-left cells, by index into `merged`.
    anchors: HashMap<usize, CellValue>,
    filled_cells: u64,
    rows: Vec<Row>,
    /// Bytes of `rows`' raw data.
    rows_bytes: usize,
    warnings: Vec<RowWarning>,
    blank_rows: u64,
}

impl SheetTable {
    pub fn new(merged: Vec<Merged>) -> SheetTable {
        let mut merged = merged;
        merged.sort_unstable();
        SheetTable {
            lookahead: Vec::new(),
            blanks_ahead: 0,
            last_record_index: 0,
            next_merged: 0,
            active_merged: Vec::new(),
            merged_row: 0,
            header: None,
            encoder: RowEncoder::new(&[]),
            merged,
            anchors: HashMap::new(),
            filled_cells: 0,
            rows: Vec::new(),
            rows_bytes: 0,
            warnings: Vec::new(),
            blank_rows: 0,
        }
    }

    /// Takes the next row of the sheet.
    pub fn push(&mut self, row: SheetRow) {
        if self.header.is_some() {
            self.emit(row);
            return;
        }
        if row.cells.is_empty() {
            self.blanks_ahead += 1;
            return;
        }
        self.lookahead
            .push((row, std::mem::take(&mut self.blanks_ahead)));
        if self.lookahead.len() >= HEADER_SCAN_ROWS {
            self.decide();
        }
    }

    /// Ends the sheet: a short sheet's header is decided now.
    pub fn finish(&mut self) {
        if self.header.is_none() && !self.lookahead.is_empty() {
            self.decide();
        }
        if self.header.is_some() {
            // Blank rows below the last one read ahead.
            self.blank_rows += std::mem::take(&mut self.blanks_ahead);
        }
    }

    /// The header, once enough rows were seen (or the sheet ended).
    pub fn header(&self) -> Option<&SheetHeader> {
        self.header.as_ref()
    }

    /// Rows (and their warnings) ready to stage.
    pub fn pending(&self) -> usize {
        self.rows.len()
    }

    /// Bytes of raw data in the rows ready to stage.
    pub fn pending_bytes(&self) -> usize {
        self.rows_bytes
    }

    pub fn take_rows(&mut self) -> (Vec<Row>, Vec<RowWarning>) {
        self.rows_bytes = 0;
        (
            std::mem::take(&mut self.rows),
            std::mem::take(&mut self.warnings),
        )
    }

    /// Rows inside the table with no value at all: counted, not staged.
    pub fn blank_rows(&self) -> u64 {
        self.blank_rows
    }

    /// Cells that took the value of the merged range covering them.
    pub fn filled_cells(&self) -> u64 {
        self.filled_cells
    }

    fn decide(&mut self) {
        let rows = std::mem::take(&mut self.lookahead);
        let header = find_header(rows.iter().map(|(row, _)| row));
        self.encoder = RowEncoder::new(&header.columns);
        // The header row, or the last title row of a sheet without one: rows up
        // to it are not data.
        let skip_through = header
            .row
            .map(u64::from)
            .or_else(|| header.preamble.last().map(|p| p.line))
            .unwrap_or(0);
        self.header = Some(header);
        for (row, blanks_before) in rows {
            if u64::from(row.row) < skip_through {
                continue;
            }
            self.blank_rows += blanks_before;
            self.emit(row);
        }
    }

    fn emit(&mut self, mut row: SheetRow) {
        let header = self
            .header
            .as_ref()
            .expect("emit runs after the header is decided");
        let first_col = header.first_col;
        let header_row0 = header.row.map(|r| r - 1);
        let sheet_cols = std::mem::take(&mut self.header.as_mut().expect("decided").sheet_cols);
        self.fill_merged(&mut row, header_row0, &sheet_cols);
        if row.cells.is_empty() {
            self.header.as_mut().expect("decided").sheet_cols = sheet_cols;
            self.blank_rows += 1;
            return;
        }
        let line = u64::from(row.row) + 1;
        let mut record_index = i64::from(row.row) + 1;
        if record_index <= self.last_record_index {
            record_index = self.last_record_index + 1;
            self.warnings.push(RowWarning {
                record_index,
                line,
                column: None,
                code: "row_out_of_order",
                message: format!(
                    "row {line} comes after row {} in the sheet's XML; it is kept as record {record_index}. Open and save the workbook in Excel or LibreOffice to put its rows in order",
                    self.last_record_index
                ),
            });
        }
        self.last_record_index = record_index;
        let header_len = self.encoder.header_len();
        let mut values: Vec<Option<&str>> = vec![Some(""); header_len];
        let mut outside = Vec::new();
        let mut right = Vec::new();
        for (col, value) in &row.cells {
            if *col < first_col {
                outside.push(*col);
                continue;
            }
            // Contiguous columns are placed by subtraction, others looked up.
            let index = match sheet_cols.get((col - first_col) as usize) {
                Some(c) if c == col => Some((col - first_col) as usize),
                _ => sheet_cols.binary_search(col).ok(),
            };
            let Some(index) = index else {
                // Right of the header (or in a column only a hostile sheet
                // has): kept after the header's values, without gaps.
                right.push(*col);
                values.push(value.text.as_deref());
                let index = values.len() - 1;
                if let Some((code, held)) = &value.problem {
                    let column = self.encoder.name(index).to_string();
                    let warning =
                        cell_warning(code, held, row.row, *col, column, record_index, line);
                    self.warnings.push(warning);
                }
                continue;
            };
            values[index] = value.text.as_deref();
            if let Some((code, held)) = &value.problem {
                let column = self.encoder.name(index).to_string();
                let warning = cell_warning(code, held, row.row, *col, column, record_index, line);
                self.warnings.push(warning);
            }
        }
        if let Some(&first_right) = right.first() {
            let extra = self.encoder.name(header_len).to_string();
            self.warnings.push(RowWarning {
                record_index,
                line,
                column: Some(extra.clone()),
                code: "ragged_row",
                message: format!(
                    "row {line} has {} value(s) outside the header's columns, from {}; they are kept as {extra}..",
                    right.len(),
                    cell_ref(row.row, first_right)
                ),
            });
        }
        if !outside.is_empty() {
            // Values left of the table are kept after the others rather than dropped.
            let refs: Vec<String> = outside.iter().map(|c| cell_ref(row.row, *c)).collect();
            for col in &outside {
                let value = row
                    .cells
                    .iter()
                    .find(|(c, _)| c == col)
                    .and_then(|(_, v)| v.text.as_deref());
                values.push(value);
            }
            let first_extra = self.encoder.name(values.len() - outside.len()).to_string();
            self.warnings.push(RowWarning {
                record_index,
                line,
                column: Some(first_extra.clone()),
                code: "ragged_row",
                message: format!(
                    "{} left of the table's first column; kept as {first_extra}..",
                    refs.join(", ")
                ),
            });
        }
        let raw_data = self.encoder.encode_nullable(values.into_iter());
        self.header.as_mut().expect("decided").sheet_cols = sheet_cols;
        self.rows_bytes += raw_data.len();
        self.rows.push(Row {
            record_index,
            raw_data,
        });
    }

    /// Copies the top-left value of each merged range into the cells it covers,
    /// for ranges that start below the header.
    /// Only the table's columns are filled, and only in rows the sheet
    /// holds: a range declared over `A2:XFD5000` costs what the table has.
    fn fill_merged(&mut self, row: &mut SheetRow, header_row0: Option<u32>, sheet_cols: &[u32]) {
        if self.merged.is_empty() {
            return;
        }
        let r = row.row;
        if r < self.merged_row {
            // Rows out of order: sweep the ranges again from the top.
            self.next_merged = 0;
            self.active_merged.clear();
        }
        self.merged_row = r;
        while let Some(&(r0, ..)) = self.merged.get(self.next_merged) {
            if r0 > r {
                break;
            }
            self.active_merged.push(self.next_merged);
            self.next_merged += 1;
        }
        let merged = &self.merged;
        let anchors = &mut self.anchors;
        self.active_merged.retain(|&i| {
            let keep = merged[i].2 >= r;
            if !keep {
                anchors.remove(&i);
            }
            keep
        });
        let mut present: std::collections::HashSet<u32> =
            row.cells.iter().map(|(c, _)| *c).collect();
        let mut added = Vec::new();
        for &i in &self.active_merged {
            let (r0, c0, r1, c1) = self.merged[i];
            if header_row0.is_some_and(|h| r0 <= h) {
                continue;
            }
            if r == r0 {
                if let Some((_, v)) = row.cells.iter().find(|(c, _)| *c == c0) {
                    self.anchors.insert(i, v.clone());
                }
            }
            let Some(anchor) = self.anchors.get(&i) else {
                continue;
            };
            let from = sheet_cols.partition_point(|&c| c < c0);
            let to = sheet_cols.partition_point(|&c| c <= c1);
            for &col in &sheet_cols[from..to] {
                if (r, col) == (r0, c0) || !present.insert(col) {
                    continue;
                }
                added.push((col, anchor.clone()));
            }
            if r == r1 {
                self.anchors.remove(&i);
            }
        }
        if !added.is_empty() {
            self.filled_cells += added.len() as u64;
            row.cells.extend(added);
            row.cells.sort_by_key(|(c, _)| *c);
        }
    }
}

/// Finds the header among the first rows: title rows (one or two cells at the
/// left of a table at least four columns wide) are skipped into the preamble;
/// the next row is the header unless most of its cells are numbers, dates or
/// booleans, in which case the sheet has no header and columns are numbered.
pub fn find_header<'r>(rows: impl Iterator<Item = &'r SheetRow>) -> SheetHeader {
    let filled: Vec<&SheetRow> = rows.filter(|r| !r.cells.is_empty()).collect();
    let widest = filled.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    let first_col = filled
        .iter()
        .filter_map(|r| r.cells.first().map(|(c, _)| *c))
        .min()
        .unwrap_or(0);
    let mut preamble = Vec::new();
    let mut at = 0;
    while let Some(row) = filled.get(at) {
        let is_title = widest >= 4
            && row.cells.len() * 3 <= widest
            && row.cells.iter().all(|(c, _)| *c < first_col + 2)
            && at + 1 < filled.len();
        if !is_title {
            break;
        }
        preamble.push(PreambleRow {
            line: u64::from(row.row) + 1,
            text: row
                .cells
                .iter()
                .filter_map(|(_, v)| v.text.clone())
                .collect::<Vec<_>>()
                .join(" | "),
        });
        at += 1;
    }
    let mut warnings = Vec::new();
    if let (Some(first), Some(last)) = (preamble.first(), preamble.last()) {
        warnings.push(sheet_warning(format!(
            "{} title row(s) above the header (rows {}..{}) are kept in read_metadata.preamble, not as data",
            preamble.len(),
            first.line,
            last.line
        )));
    }
    let Some(candidate) = filled.get(at) else {
        return SheetHeader {
            row: None,
            shape: HeaderShape::Named,
            first_col,
            columns: Vec::new(),
            sheet_cols: Vec::new(),
            warnings,
            preamble,
        };
    };
    let typed = candidate
        .cells
        .iter()
        .filter(|(_, v)| matches!(v.kind, CellKind::Number | CellKind::Date | CellKind::Bool))
        .count();
    let texts = candidate
        .cells
        .iter()
        .filter(|(_, v)| v.kind == CellKind::Text)
        .count();
    let shape = header_shape(&as_text(&filled[at..], first_col));
    if texts == 0 || typed * 2 > candidate.cells.len() || shape == HeaderShape::Absent {
        let last_col = filled
            .iter()
            .filter_map(|r| r.cells.last().map(|(c, _)| *c))
            .max()
            .unwrap_or(first_col);
        let sheet_cols = table_columns(first_col, last_col, &filled);
        let columns: Vec<String> = sheet_cols
            .iter()
            .map(|c| format!("column_{}", c - first_col + 1))
            .collect();
        warnings.push(sheet_warning(format!(
            "no header row found: row {} holds values ({} of its {} cells are numbers, dates or booleans, or it reads like the rows below it), not column names; every row is kept as data under column_1..column_{} and the columns are mapped by their values. Add a header row to the sheet and import it again to map the columns by name",
            candidate.row + 1,
            typed,
            candidate.cells.len(),
            columns.len()
        )));
        return SheetHeader {
            row: None,
            shape: HeaderShape::Absent,
            first_col,
            columns,
            sheet_cols,
            warnings,
            preamble,
        };
    }
    // Group labels above the field labels: the label row is the header.
    let (groups, candidate): (Option<&SheetRow>, &SheetRow) = match (shape, filled.get(at + 1)) {
        (HeaderShape::TwoRows, Some(labels)) => (Some(*candidate), *labels),
        _ => (None, *candidate),
    };
    let last_col = candidate.cells.last().map_or(first_col, |(c, _)| *c).max(
        groups
            .and_then(|g| g.cells.last())
            .map_or(first_col, |(c, _)| *c),
    );
    let sheet_cols = table_columns(
        first_col,
        last_col,
        &filled[at..at + 1 + usize::from(groups.is_some())],
    );
    let texts_of = |row: &SheetRow| {
        let mut written = vec![String::new(); sheet_cols.len()];
        for (col, value) in &row.cells {
            if let Ok(index) = sheet_cols.binary_search(col) {
                written[index] = value.text.clone().unwrap_or_default();
            }
        }
        written
    };
    let mut written = texts_of(candidate);
    if let Some(groups) = groups {
        written = combine_two_rows(&texts_of(groups), &written);
        warnings.push(sheet_warning(format!(
            "two header rows (rows {}..{}): the group labels above are combined with the names below, one name per column (\"CPU - Cores\")",
            groups.row + 1,
            candidate.row + 1
        )));
    }
    let (columns, renamed) = name_columns(&written);
    warnings.extend(renamed);
    SheetHeader {
        row: Some(candidate.row + 1),
        shape: if groups.is_some() {
            HeaderShape::TwoRows
        } else {
            HeaderShape::Named
        },
        first_col,
        columns,
        sheet_cols,
        warnings,
        preamble,
    }
}

/// The first rows of a table as text, one cell per column from `first_col`
/// (at most 512 columns: enough to tell a header from data).
fn as_text(rows: &[&SheetRow], first_col: u32) -> Vec<Vec<String>> {
    rows.iter()
        .take(HEADER_SCAN_ROWS)
        .map(|row| {
            let width = row.cells.last().map_or(0, |(c, _)| {
                (c.saturating_sub(first_col) as usize + 1).min(512)
            });
            let mut texts = vec![String::new(); width];
            for (col, value) in &row.cells {
                if let Some(slot) = texts.get_mut(col.saturating_sub(first_col) as usize) {
                    *slot = value.text.clone().unwrap_or_default();
                }
            }
            texts
        })
        .collect()
}

/// The sheet columns of a table from `first` to `last`: every one when the
/// table is no wider than Excel allows, else only those where `rows` hold a
/// cell.
fn table_columns(first: u32, last: u32, rows: &[&SheetRow]) -> Vec<u32> {
    if last < first {
        return Vec::new();
    }
    if last - first < MAX_COLUMNS {
        return (first..=last).collect();
    }
    let mut cols: Vec<u32> = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|(c, _)| *c))
        .filter(|c| (first..=last).contains(c))
        .collect();
    cols.sort_unstable();
    cols.dedup();
    cols
}

/// The warning for a cell whose value could not be kept.
fn cell_warning(
    code: &'static str,
    held: &str,
    row: u32,
    col: u32,
    column: String,
    record_index: i64,
    line: u64,
) -> RowWarning {
    let at = cell_ref(row, col);
    let message = match code {
        "error_cell" => format!(
            "{at} ({column}) holds the error {held}; stored as null. Fix the formula or value in the workbook"
        ),
        _ => format!(
            "{at} ({column}) holds {held} but the file stores no computed value; stored as null. Open the workbook in Excel or LibreOffice, let it recalculate, save, and import again"
        ),
    };
    RowWarning {
        record_index,
        line,
        column: Some(column),
        code,
        message,
    }
}

fn sheet_warning(message: String) -> HeaderWarning {
    HeaderWarning {
        column: 0,
        written: String::new(),
        named: String::new(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> CellValue {
        CellValue {
            kind: CellKind::Text,
            text: Some(s.into()),
            problem: None,
        }
    }
    fn number(s: &str) -> CellValue {
        CellValue {
            kind: CellKind::Number,
            text: Some(s.into()),
            problem: None,
        }
    }
    fn row(r: u32, cells: Vec<(u32, CellValue)>) -> SheetRow {
        SheetRow { row: r, cells }
    }

    #[test]
    fn header_under_a_title_and_blank_rows() {
        let rows = [
            row(0, vec![(1, text("Server inventory"))]),
            row(1, vec![]),
            row(3, (1..6).map(|c| (c, text(&format!("H{c}")))).collect()),
            row(4, (1..6).map(|c| (c, number("1"))).collect()),
        ];
        let header = find_header(rows.iter());
        assert_eq!(header.row, Some(4));
        assert_eq!(header.first_col, 1);
        assert_eq!(header.columns, vec!["H1", "H2", "H3", "H4", "H5"]);
        assert_eq!(header.preamble.len(), 1);
        assert_eq!(header.preamble[0].line, 1);
    }

    #[test]
    fn numbers_in_the_first_row_mean_no_header() {
        let rows = [
            row(
                0,
                vec![(0, text("web01")), (1, number("4")), (2, number("16"))],
            ),
            row(
                1,
                vec![(0, text("web02")), (1, number("8")), (2, number("32"))],
            ),
        ];
        let header = find_header(rows.iter());
        assert_eq!(header.row, None);
        assert_eq!(header.columns, vec!["column_1", "column_2", "column_3"]);
        assert!(header.warnings[0].message.contains("no header row found"));
    }

    #[test]
    fn group_labels_above_the_names_are_combined_and_text_data_is_no_header() {
        let groups = row(0, vec![(0, text("Server")), (2, text("CPU"))]);
        let labels = row(
            1,
            vec![
                (0, text("Name")),
                (1, text("IP Address")),
                (2, text("Cores")),
                (3, text("Utilization %")),
            ],
        );
        let data = [
            row(
                2,
                vec![
                    (0, text("web01")),
                    (1, text("10.0.0.1")),
                    (2, number("4")),
                    (3, number("12.5")),
                ],
            ),
            row(
                3,
                vec![
                    (0, text("db01")),
                    (1, text("10.0.0.2")),
                    (2, number("8")),
                    (3, number("55")),
                ],
            ),
        ];
        let rows: Vec<SheetRow> = [groups, labels].into_iter().chain(data).collect();
        let header = find_header(rows.iter());
        assert_eq!(header.shape, HeaderShape::TwoRows);
        assert_eq!(header.row, Some(2));
        assert_eq!(
            header.columns,
            vec![
                "Server - Name",
                "Server - IP Address",
                "CPU - Cores",
                "CPU - Utilization %"
            ]
        );
        // Dates and versions written as text: the first row is data.
        let sccm = [
            row(
                0,
                vec![
                    (0, text("PC-0001")),
                    (1, text("10.0.19045")),
                    (2, text("2024-01-05")),
                ],
            ),
            row(
                1,
                vec![
                    (0, text("PC-0002")),
                    (1, text("10.0.22631")),
                    (2, text("2024-01-06")),
                ],
            ),
            row(
                2,
                vec![
                    (0, text("PC-0003")),
                    (1, text("10.0.19045")),
                    (2, text("2024-02-01")),
                ],
            ),
        ];
        let header = find_header(sccm.iter());
        assert_eq!(header.row, None);
        assert_eq!(header.shape, HeaderShape::Absent);
    }

    #[test]
    fn merged_values_fill_down_below_the_header_only() {
        let mut table = SheetTable::new(vec![(0, 0, 0, 2), (1, 0, 2, 0)]);
        table.push(row(0, vec![(0, text("Name")), (1, text("DC"))]));
        table.push(row(1, vec![(0, text("dc1")), (1, text("a"))]));
        table.push(row(2, vec![(1, text("b"))]));
        table.finish();
        let (rows, _) = table.take_rows();
        assert_eq!(rows.len(), 2);
        let second: serde_json::Value = serde_json::from_str(&rows[1].raw_data).unwrap();
        assert_eq!(second["Name"], "dc1");
        assert_eq!(table.filled_cells(), 1);
    }
}
