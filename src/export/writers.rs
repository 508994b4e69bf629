//! One writer per export format. Files are written beside their destination
//! and renamed into place when complete, so an interrupted export never
//! leaves half a file under the name asked for.

use std::io::Write;
use std::path::Path;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use polars::prelude::{Column, DataFrame, ParquetWriter};
use rust_xlsxwriter::{Format as XlsxFormat, Workbook};
use serde_json::{Map, Value};

use super::{neutralise, AssetTable, Cell, ColumnKind, ExportError, Format};

/// The columns the terminal table shows; the file formats carry all of them.
const TABLE_COLUMNS: &[&str] = &[
    "name",
    "asset_type",
    "environment",
    "operating_system",
    "os_version",
    "ip_address",
    "cpu_cores",
    "memory_gb",
    "support_status",
    "sixr_ready",
];

/// Writes `table` as `format` to `output`, or to stdout when None (text formats only).
pub fn write(table: &AssetTable, format: Format, output: Option<&Path>) -> Result<(), ExportError> {
    let Some(path) = output else {
        if format.is_binary() {
            return Err(ExportError::OutputRequired(match format {
                Format::Xlsx => "XLSX",
                _ => "Parquet",
            }));
        }
        let mut stdout = std::io::stdout().lock();
        return write_text(table, format, &mut stdout).map_err(|source| ExportError::Io {
            path: "standard output".into(),
            source,
        });
    };
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    match format {
        Format::Xlsx => write_xlsx(table, temp.as_file_mut())?,
        Format::Parquet => write_parquet(table, temp.as_file_mut())?,
        text => {
            let mut out = std::io::BufWriter::new(temp.as_file_mut());
            write_text(table, text, &mut out).map_err(io)?;
            out.flush().map_err(io)?;
        }
    }
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

fn write_text(table: &AssetTable, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Csv => write_csv(table, out).map_err(std::io::Error::other),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &json_rows(table))?;
            writeln!(out)
        }
        _ => writeln!(out, "{}", terminal_table(table)),
    }
}

fn write_csv(table: &AssetTable, out: &mut dyn Write) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(
        table
            .columns
            .iter()
            .map(|(name, _)| neutralise(name).into_owned()),
    )?;
    for row in &table.rows {
        writer.write_record(row.iter().map(|cell| match cell {
            Cell::Null => String::new(),
            Cell::Integer(n) => n.to_string(),
            Cell::Real(x) => x.to_string(),
            Cell::Text(t) => neutralise(t).into_owned(),
        }))?;
    }
    writer.flush()?;
    Ok(())
}

/// JSON keeps the stored values: custom_attributes nested, JSON columns parsed.
fn json_rows(table: &AssetTable) -> Vec<Value> {
    let plain = table.columns.len() - custom_count(table);
    table
        .rows
        .iter()
        .zip(&table.custom)
        .map(|(row, custom)| {
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
        })
        .collect()
}

fn is_json_column(name: &str) -> bool {
    matches!(name, "dependencies" | "tech_debt_details")
}

fn custom_count(table: &AssetTable) -> usize {
    table
        .columns
        .iter()
        .filter(|(n, _)| n.starts_with("custom."))
        .count()
}

fn terminal_table(table: &AssetTable) -> String {
    let positions: Vec<usize> = TABLE_COLUMNS
        .iter()
        .filter_map(|c| table.columns.iter().position(|(n, _)| n == c))
        .collect();
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
    for row in &table.rows {
        out.add_row(positions.iter().map(|&i| match &row[i] {
            Cell::Null => String::new(),
            Cell::Integer(n) => n.to_string(),
            Cell::Real(x) => x.to_string(),
            Cell::Text(t) => t.clone(),
        }));
    }
    out.to_string()
}

fn write_xlsx(table: &AssetTable, file: &mut std::fs::File) -> Result<(), ExportError> {
    let mut workbook = Workbook::new();
    let bold = XlsxFormat::new().set_bold();
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("assets")?;
    for (col, (name, _)) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, neutralise(name), &bold)?;
    }
    for (i, row) in table.rows.iter().enumerate() {
        let r = i as u32 + 1;
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
                    sheet.write_string(r, c, neutralise(t))?;
                }
            }
        }
    }
    if !table.columns.is_empty() {
        sheet.set_freeze_panes(1, 0)?;
        sheet.autofilter(
            0,
            0,
            table.rows.len() as u32,
            table.columns.len() as u16 - 1,
        )?;
    }
    workbook.save_to_writer(file)?;
    Ok(())
}

fn write_parquet(table: &AssetTable, file: &mut std::fs::File) -> Result<(), ExportError> {
    let columns: Vec<Column> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let cells = table.rows.iter().map(|row| &row[i]);
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
    let mut frame = DataFrame::new(table.rows.len(), columns)?;
    ParquetWriter::new(file).finish(&mut frame)?;
    Ok(())
}
