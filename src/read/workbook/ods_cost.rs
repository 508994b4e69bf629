//! What calamine will build from an .ods's content.xml, worked out while
//! streaming it before calamine opens the file. calamine expands every table
//! when the workbook is opened: a cell repeated across columns and a row
//! repeated down the sheet are copied, text and all, into a dense grid of
//! values and one of formulas, and the sheet being read is copied again. So
//! what counts is not the cells the file writes but the cells and bytes the
//! repeats make, summed over every table: a 4,000-character cell in a row
//! repeated a million times is 4 GB, however small the file.

use std::io::BufRead;
use std::mem::size_of;

use quick_xml::events::{BytesStart, Event};

use super::guard::{human_bytes, GuardError, Limits};

/// What one grid cell costs before its text: a value and a formula.
const CELL_BYTES: u64 = (size_of::<calamine::Data>() + size_of::<String>()) as u64;

/// The table being read.
#[derive(Default)]
struct Table {
    name: String,
    /// Rows so far, repeats counted.
    rows: u64,
    /// The first and the end of the rows that hold a value.
    first_filled_row: Option<u64>,
    filled_rows_end: u64,
    /// Columns up to the last that holds a value, in the widest row.
    width: u64,
    /// Text the grid's cells own, repeats counted.
    text: u64,
}

impl Table {
    fn grid(&self) -> u64 {
        let rows = self
            .filled_rows_end
            .saturating_sub(self.first_filled_row.unwrap_or(self.filled_rows_end));
        rows.saturating_mul(self.width)
    }

    fn bytes(&self) -> u64 {
        self.grid()
            .saturating_mul(CELL_BYTES)
            .saturating_add(self.text.saturating_mul(2))
    }
}

/// The row being read.
#[derive(Default)]
struct Row {
    repeat: u64,
    columns: u64,
    /// Columns up to the last that holds a value.
    width: u64,
    text: u64,
}

/// The cell being read.
#[derive(Default)]
struct Cell {
    repeat: u64,
    filled: bool,
    text: u64,
}

/// The tables done and the running totals.
struct Totals<'l> {
    limits: &'l Limits,
    grid: u64,
    bytes: u64,
    largest: u64,
}

impl Totals<'_> {
    /// Refuses once the tables so far, with `current`, cost more than the
    /// limits (the largest table counted twice: it is copied when read).
    fn check(&self, current: &Table) -> Result<(), GuardError> {
        let grid = self.grid.saturating_add(current.grid());
        let bytes = self.bytes.saturating_add(current.bytes());
        let largest = self.largest.max(current.bytes());
        if grid > self.limits.max_grid_cells
            || bytes.saturating_add(largest) > self.limits.max_expanded_bytes
        {
            return Err(GuardError::Refused(format!(
                "sheet '{}' expands to {} rows × {} columns and {} of text through repeated rows and cells; with the sheets before it that is more than the {} cells or {} intake expands from an .ods. Delete the repeated rows and columns, or save it as .xlsx (read as a stream)",
                current.name,
                current.filled_rows_end.saturating_sub(current.first_filled_row.unwrap_or(0)),
                current.width,
                human_bytes(current.text),
                self.limits.max_grid_cells,
                human_bytes(self.limits.max_expanded_bytes)
            )));
        }
        Ok(())
    }

    fn add(&mut self, table: &Table) {
        self.grid = self.grid.saturating_add(table.grid());
        self.bytes = self.bytes.saturating_add(table.bytes());
        self.largest = self.largest.max(table.bytes());
    }
}

fn attr(e: &BytesStart, key: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .map(|a| a.value.to_string())
}

fn count_attr(e: &BytesStart, key: &str) -> u64 {
    attr(e, key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// A cell's start: its repeat, whether calamine will keep a value for it,
/// and the text its attributes hold.
fn cell_start(e: &BytesStart) -> Cell {
    let mut cell = Cell {
        repeat: count_attr(e, "table:number-columns-repeated"),
        ..Cell::default()
    };
    for a in e.attributes().flatten() {
        match a.key.as_ref() {
            "office:value" | "office:boolean-value" => cell.filled = true,
            "office:string-value" | "office:date-value" | "office:time-value" | "table:formula" => {
                cell.filled = true;
                cell.text += a.value.len() as u64;
            }
            "office:value-type" => cell.filled |= a.value.as_ref() == "string",
            _ => {}
        }
    }
    cell
}

/// Streams content.xml and refuses it when what calamine would build passes `limits`.
pub fn check_content<R: BufRead>(content: R, limits: &Limits) -> Result<(), GuardError> {
    let mut reader = quick_xml::Reader::from_reader(content);
    let mut buf = Vec::new();
    let mut totals = Totals {
        limits,
        grid: 0,
        bytes: 0,
        largest: 0,
    };
    let mut table = Table::default();
    let mut row = Row::default();
    let mut cell: Option<Cell> = None;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| GuardError::Corrupt(format!("content.xml is not valid XML ({e})")))?;
        let ended = match &event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.name().as_ref() {
                    "table:table" => {
                        table = Table {
                            name: attr(e, "table:name").unwrap_or_default(),
                            ..Table::default()
                        };
                        None
                    }
                    "table:table-row" => {
                        row = Row {
                            repeat: count_attr(e, "table:number-rows-repeated"),
                            ..Row::default()
                        };
                        empty.then_some("table:table-row")
                    }
                    "table:table-cell" | "table:covered-table-cell" => {
                        cell = Some(cell_start(e));
                        empty.then_some("table:table-cell")
                    }
                    // Spaces written as a count, tabs, line breaks, paragraphs.
                    "text:s" => {
                        if let Some(cell) = cell.as_mut() {
                            cell.text = cell.text.saturating_add(count_attr(e, "text:c"));
                        }
                        None
                    }
                    "text:tab" | "text:line-break" | "text:p" => {
                        if let Some(cell) = cell.as_mut() {
                            cell.text += 1;
                        }
                        None
                    }
                    _ => None,
                }
            }
            Event::Text(t) => {
                if let Some(cell) = cell.as_mut() {
                    cell.text += t.len() as u64;
                }
                None
            }
            Event::End(e) => match e.name().as_ref() {
                "table:table-cell" | "table:covered-table-cell" => Some("table:table-cell"),
                "table:table-row" => Some("table:table-row"),
                "table:table" => {
                    totals.check(&table)?;
                    totals.add(&table);
                    table = Table::default();
                    None
                }
                _ => None,
            },
            Event::Eof => break,
            _ => None,
        };
        match ended {
            Some("table:table-cell") => {
                if let Some(done) = cell.take() {
                    row.columns = row.columns.saturating_add(done.repeat);
                    if done.filled {
                        row.width = row.columns;
                        row.text = row
                            .text
                            .saturating_add(done.text.saturating_mul(done.repeat));
                    }
                }
            }
            Some(_) => {
                let start = table.rows;
                table.rows = table.rows.saturating_add(row.repeat);
                if row.width > 0 {
                    table.first_filled_row.get_or_insert(start);
                    table.filled_rows_end = table.rows;
                    table.width = table.width.max(row.width);
                    table.text = table
                        .text
                        .saturating_add(row.text.saturating_mul(row.repeat));
                    totals.check(&table)?;
                }
                row = Row::default();
            }
            None => {}
        }
        buf.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::workbook::guard::LIMITS;

    fn content(tables: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><office:document-content><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"#
        )
    }

    fn check(xml: &str) -> Result<(), GuardError> {
        check_content(xml.as_bytes(), &LIMITS)
    }

    #[test]
    fn a_long_string_in_a_row_repeated_a_million_times_is_refused() {
        let text = "x".repeat(4000);
        let xml = content(&format!(
            r#"<table:table table:name="T"><table:table-row table:number-rows-repeated="1000000"><table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell></table:table-row></table:table>"#
        ));
        let err = check(&xml).unwrap_err();
        assert!(
            matches!(err, GuardError::Refused(ref m) if m.contains("'T'")),
            "{err:?}"
        );
    }

    #[test]
    fn values_without_a_value_type_count() {
        let xml = content(
            r#"<table:table table:name="N"><table:table-row table:number-rows-repeated="1000000"><table:table-cell office:value="1" table:number-columns-repeated="100"/></table:table-row></table:table>"#,
        );
        assert!(check(&xml).is_err());
    }

    #[test]
    fn tables_add_up_and_a_space_count_is_text() {
        let table = |name: &str| {
            format!(
                r#"<table:table table:name="{name}"><table:table-row table:number-rows-repeated="40000"><table:table-cell office:value="1" table:number-columns-repeated="50"/></table:table-row></table:table>"#
            )
        };
        // 2 M cells each: one passes, three do not.
        assert!(check(&content(&table("A"))).is_ok());
        let three: String = ["A", "B", "C"].iter().map(|n| table(n)).collect();
        assert!(check(&content(&three)).is_err());
        let spaces = content(
            r#"<table:table table:name="S"><table:table-row><table:table-cell office:value-type="string"><text:p><text:s text:c="900000000"/></text:p></table:table-cell></table:table-row></table:table>"#,
        );
        assert!(check(&spaces).is_err());
    }

    #[test]
    fn leading_empty_rows_cost_nothing() {
        let xml = content(
            r#"<table:table table:name="L"><table:table-row table:number-rows-repeated="1048000"><table:table-cell table:number-columns-repeated="1024"/></table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>a</text:p></table:table-cell></table:table-row></table:table>"#,
        );
        assert!(check(&xml).is_ok());
    }
}
