//! One writer per export format, each streaming the rows (a terminal table
//! and a Parquet row group hold 10,000 at a time). Files are written beside
//! their destination and renamed into place when complete (`destination`),
//! so an interrupted export never leaves half a file under the name asked for.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{Column, DataFrame, ParquetWriter};
use rusqlite::Connection;
use rust_xlsxwriter::{Format as XlsxFormat, Workbook};
use serde_json::{Map, Value};

use super::destination::Destination;
use super::{neutralise, AssetTable, Cell, ColumnKind, ExportError, Format};
use crate::printable::{escape_controls, escape_json_controls};

/// The columns the terminal table shows; the file formats carry all of them.
const TABLE_COLUMNS: &[&str] = &[
    "name",
    "kind",
    "environment",
    "operating_system",
    "os_version",
    "ip_address",
    "cpu_cores",
    "memory_gb",
    "support_status",
    "sixr_ready",
];

/// Excel's longest cell text.
const EXCEL_CELL_CHARS: usize = 32_767;

/// Rows per terminal table and per Parquet row group: what an export holds
/// in memory at once.
const CHUNK_ROWS: usize = 10_000;

/// Writes `table` as `format` to `output`, or to stdout when None (text
/// formats only; `-o -` asks for stdout in any format).
pub fn write(
    conn: &Connection,
    table: &AssetTable,
    format: Format,
    output: Option<&Path>,
) -> Result<(), ExportError> {
    let destination = match output {
        Some(path) => Destination::of(path),
        None if format.is_binary() => {
            return Err(ExportError::OutputRequired(match format {
                Format::Xlsx => "XLSX",
                _ => "Parquet",
            }))
        }
        None => Destination::Stdout,
    };
    match format {
        Format::Xlsx => destination.write_file(|file| write_xlsx(conn, table, file)),
        Format::Parquet => destination.write_file(|file| write_parquet(conn, table, file)),
        text => destination.write_stream(|out| write_text(conn, table, text, out)),
    }
}

fn write_text(
    conn: &Connection,
    table: &AssetTable,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let io = |source| ExportError::Io {
        path: "the output".into(),
        source,
    };
    match format {
        Format::Csv => write_csv(conn, table, out),
        Format::Json => {
            out.write_all(b"[").map_err(io)?;
            let mut first = true;
            table.each_row(conn, |row, custom| {
                let object = json_row(table, row, custom);
                let text = serde_json::to_string_pretty(&object).map_err(std::io::Error::other);
                let text = text.map_err(io)?;
                let separator: &[u8] = if std::mem::take(&mut first) {
                    b"\n  "
                } else {
                    b",\n  "
                };
                out.write_all(separator).map_err(io)?;
                // Strings hold no raw line breaks: indenting lines is safe.
                let text = escape_json_controls(&text).replace('\n', "\n  ");
                out.write_all(text.as_bytes()).map_err(io)
            })?;
            let end: &[u8] = if first { b"]\n" } else { b"\n]\n" };
            out.write_all(end).map_err(io)
        }
        _ => {
            // One table per chunk of rows, so a long inventory is not held.
            let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(CHUNK_ROWS.min(table.rows));
            let positions = table_positions(table);
            table.each_row(conn, |row, _| {
                rows.push(positions.iter().map(|&i| row[i].clone()).collect());
                if rows.len() == CHUNK_ROWS {
                    let text = terminal_table(table, &positions, &std::mem::take(&mut rows));
                    writeln!(out, "{}", escape_controls(&text)).map_err(io)?;
                }
                Ok(())
            })?;
            if !rows.is_empty() || table.rows == 0 {
                let text = terminal_table(table, &positions, &rows);
                writeln!(out, "{}", escape_controls(&text)).map_err(io)?;
            }
            Ok(())
        }
    }
}

fn write_csv(
    conn: &Connection,
    table: &AssetTable,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(
        table
            .columns
            .iter()
            .map(|(name, _)| neutralise(name).into_owned()),
    )?;
    table.each_row(conn, |row, _| {
        writer.write_record(row.iter().map(|cell| match cell {
            Cell::Null => String::new(),
            Cell::Integer(n) => n.to_string(),
            Cell::Real(x) => x.to_string(),
            Cell::Text(t) => neutralise(t).into_owned(),
        }))?;
        Ok(())
    })?;
    writer.flush().map_err(|source| ExportError::Io {
        path: "the output".into(),
        source,
    })?;
    Ok(())
}

/// JSON keeps the stored values: custom_attributes nested, JSON columns parsed.
fn json_row(table: &AssetTable, row: &[Cell], custom: &Map<String, Value>) -> Value {
    let plain = table.columns.len() - table.custom_count();
    let mut object = Map::new();
    for ((name, _), cell) in table.columns.iter().zip(row).take(plain) {
        let value = match cell {
            Cell::Null => Value::Null,
            Cell::Integer(n) => Value::from(*n),
            Cell::Real(x) => Value::from(*x),
            Cell::Text(t) if is_json_column(name) => {
                serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone()))
            }
            Cell::Text(t) => Value::String(t.clone()),
        };
        object.insert(name.clone(), value);
    }
    object.insert("custom_attributes".into(), Value::Object(custom.clone()));
    Value::Object(object)
}

fn is_json_column(name: &str) -> bool {
    matches!(name, "dependencies" | "tech_debt_details")
}

/// Where the terminal table's columns are among the table's.
fn table_positions(table: &AssetTable) -> Vec<usize> {
    TABLE_COLUMNS
        .iter()
        .filter_map(|c| table.columns.iter().position(|(n, _)| n == c))
        .collect()
}

fn terminal_table(table: &AssetTable, positions: &[usize], rows: &[Vec<Cell>]) -> String {
    let mut out = Table::new();
    out.load_preset(UTF8_FULL_CONDENSED).set_header(
        positions
            .iter()
            .map(|&i| table.columns[i].0.clone())
            .collect::<Vec<_>>(),
    );
    if out.width().is_some_and(|w| w >= 60) {
        out.set_content_arrangement(ContentArrangement::Dynamic);
    }
    for row in rows {
        out.add_row(row.iter().map(|cell| match cell {
            Cell::Null => String::new(),
            Cell::Integer(n) => n.to_string(),
            Cell::Real(x) => x.to_string(),
            // One line per row: a line break in a value is shown escaped.
            Cell::Text(t) => t.replace('\n', "\\n"),
        }));
    }
    out.to_string()
}

/// The text of an Excel cell: at most Excel's 32,767 characters. A longer
/// value is cut with a marker saying so (CSV, JSON and Parquet keep it whole).
fn excel_text(text: &str) -> Cow<'_, str> {
    let text = neutralise(text);
    let chars = text.chars().count();
    if chars <= EXCEL_CELL_CHARS {
        return text;
    }
    let marker = format!(" [… cut at Excel's limit: {chars} characters; export CSV, JSON or Parquet for the whole value]");
    let keep = EXCEL_CELL_CHARS - marker.chars().count();
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(&marker);
    Cow::Owned(cut)
}

fn write_xlsx(
    conn: &Connection,
    table: &AssetTable,
    file: &mut std::fs::File,
) -> Result<(), ExportError> {
    let mut workbook = Workbook::new();
    let bold = XlsxFormat::new().set_bold();
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("assets")?;
    for (col, (name, _)) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, excel_text(name), &bold)?;
    }
    let mut r = 0u32;
    table.each_row(conn, |row, _| {
        r += 1;
        for (col, cell) in row.iter().enumerate() {
            let c = col as u16;
            match cell {
                Cell::Null => {}
                Cell::Integer(n) => {
                    sheet.write_number(r, c, *n as f64)?;
                }
                Cell::Real(x) => {
                    sheet.write_number(r, c, *x)?;
                }
                Cell::Text(t) => {
                    sheet.write_string(r, c, excel_text(t))?;
                }
            }
        }
        Ok(())
    })?;
    if !table.columns.is_empty() {
        sheet.set_freeze_panes(1, 0)?;
        sheet.autofilter(0, 0, r, table.columns.len() as u16 - 1)?;
    }
    workbook.save_to_writer(file)?;
    Ok(())
}

fn write_parquet(
    conn: &Connection,
    table: &AssetTable,
    file: &mut std::fs::File,
) -> Result<(), ExportError> {
    let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(CHUNK_ROWS.min(table.rows));
    let mut writer: Option<BatchedWriter<&mut std::fs::File>> = None;
    let mut file = Some(file);
    let mut flush = |batch: &mut Vec<Vec<Cell>>| -> Result<(), ExportError> {
        let frame = frame_of(table, batch)?;
        batch.clear();
        if writer.is_none() {
            let file = file.take().expect("the writer is made once");
            writer = Some(ParquetWriter::new(file).batched(frame.schema())?);
        }
        writer.as_mut().expect("made above").write_batch(&frame)?;
        Ok(())
    };
    table.each_row(conn, |row, _| {
        batch.push(row.to_vec());
        if batch.len() == CHUNK_ROWS {
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    if !batch.is_empty() || table.rows == 0 {
        flush(&mut batch)?;
    }
    if let Some(writer) = writer {
        writer.finish()?;
    }
    Ok(())
}

/// A batch of rows as a data frame with the table's typed columns.
fn frame_of(table: &AssetTable, rows: &[Vec<Cell>]) -> Result<DataFrame, ExportError> {
    let columns: Vec<Column> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let cells = rows.iter().map(|row| &row[i]);
            let name = name.as_str().into();
            match kind {
                ColumnKind::Integer => Column::new(
                    name,
                    cells
                        .map(|c| match c {
                            Cell::Integer(n) => Some(*n),
                            Cell::Real(x) => Some(*x as i64),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                ColumnKind::Real => Column::new(
                    name,
                    cells
                        .map(|c| match c {
                            Cell::Real(x) => Some(*x),
                            Cell::Integer(n) => Some(*n as f64),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                ColumnKind::Text => Column::new(
                    name,
                    cells
                        .map(|c| match c {
                            Cell::Text(t) => Some(t.clone()),
                            Cell::Integer(n) => Some(n.to_string()),
                            Cell::Real(x) => Some(x.to_string()),
                            Cell::Null => None,
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        })
        .collect();
    Ok(DataFrame::new(rows.len(), columns)?)
}
