//! Assets out of the database: every column of `assets` and every custom
//! attribute, as a terminal table, CSV, JSON, XLSX or Parquet. The columns
//! come from the table itself (so a field added to the schema is exported
//! without a change here); custom attributes become one column each, named
//! `custom.<original header>`, in the order they first appear. A `kind`
//! column follows asset_type: the type, or `end_user_device` for a desktop,
//! laptop or other end-user device (`catalogue::MACHINE_KINDS`).
//!
//! CSV and XLSX cells a spreadsheet would run as a formula (text starting
//! with = + - @, a tab or a carriage return) are written with a leading
//! apostrophe; numbers, and text that is only a number, are left alone.

pub mod destination;
mod writers;

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::json_entries::Entries;

use crate::flow::{self, FindFlowError};

pub use destination::{replace_file, Destination};
pub use writers::write;

/// The formats `intake assets` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Xlsx,
    Parquet,
}

impl Format {
    /// The format a file name asks for by its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "xlsx" => Format::Xlsx,
            "parquet" | "pq" => Format::Parquet,
            "txt" => Format::Table,
            _ => return None,
        })
    }

    /// Binary formats are never written to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Xlsx | Format::Parquet)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no discovery flow in this database yet; run `intake import` first")]
    NoFlow,
    #[error("no flow {0}; `intake assets` without --flow exports the latest flow's engagement")]
    UnknownFlow(String),
    #[error("{0} is a binary format: give --output FILE")]
    OutputRequired(&'static str),
    #[error("'{0}' is not a kind of asset; --type takes server, database, network, storage, end_user_device or application")]
    UnknownKind(String),
    #[error("--output {0} is the database (or one of its files); writing the export there would replace the inventory. Choose another file name")]
    OutputIsDatabase(PathBuf),
    #[error("cannot write {path}: {source}; check the directory exists and is writable")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the CSV: {0}")]
    Csv(String),
    #[error("cannot write the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("cannot write the Parquet file: {0}")]
    Parquet(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// An I/O failure under the CSV writer stays an I/O error (its source kept,
/// so a closed pipe is recognised as one); anything else is the CSV's.
impl From<csv::Error> for ExportError {
    fn from(error: csv::Error) -> Self {
        let message = error.to_string();
        match error.into_kind() {
            csv::ErrorKind::Io(source) => ExportError::Io {
                path: "the output".into(),
                source,
            },
            _ => ExportError::Csv(message),
        }
    }
}

/// The kind of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Real,
    Text,
}

/// One exported cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// The assets to export: named, typed columns and how to read the rows.
/// Rows are streamed (`each_row`), never held: an export's memory does not
/// grow with the inventory.
#[derive(Debug, Clone)]
pub struct AssetTable {
    /// The `assets` columns, then one `custom.<header>` column per custom
    /// attribute in the order they first appear.
    pub columns: Vec<(String, ColumnKind)>,
    /// How many of `columns` are `assets` columns.
    plain: usize,
    custom_keys: Vec<String>,
    select: String,
    key: String,
    /// The number of assets.
    pub rows: usize,
    /// The master flow the selection came from.
    pub master_flow_id: String,
}

/// Which assets an export holds, beyond the flow: one kind, at most so many.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    /// An asset type or end_user_device (`catalogue::MACHINE_KINDS`, application).
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

/// Which assets: every asset of the latest flow's engagement, or with
/// `flow` the assets that flow created or last updated, narrowed by
/// `filter`. Reads the columns and the custom attributes' names; the rows
/// are read by `each_row`. `name` is the first column.
pub fn load(
    conn: &Connection,
    flow: Option<&str>,
    filter: &AssetFilter,
) -> Result<AssetTable, ExportError> {
    let ids = flow::find(conn, flow).map_err(|e| match e {
        FindFlowError::NoFlow => ExportError::NoFlow,
        FindFlowError::Sql(e) => ExportError::Sql(e),
        FindFlowError::UnknownFlow(wanted) => ExportError::UnknownFlow(wanted),
    })?;
    let declared: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('assets') ORDER BY cid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let plain: Vec<(String, ColumnKind)> = declared
        .into_iter()
        .filter(|(name, _)| name != "custom_attributes")
        .map(|(name, kind)| {
            let kind = match kind.to_ascii_uppercase().as_str() {
                "INTEGER" => ColumnKind::Integer,
                "REAL" => ColumnKind::Real,
                _ => ColumnKind::Text,
            };
            (name, kind)
        })
        .collect();
    // `kind` beside asset_type: the asset type, or end_user_device for a
    // desktop or laptop (stored as a server marked in custom_attributes).
    let mut plain = plain;
    if let Some(at) = plain.iter().position(|(n, _)| n == "asset_type") {
        plain.insert(at + 1, ("kind".to_string(), ColumnKind::Text));
    }
    // The asset's name first, in every format.
    if let Some(at) = plain.iter().position(|(n, _)| n == "name") {
        let name = plain.remove(at);
        plain.insert(0, name);
    }
    let list = plain
        .iter()
        .map(|(n, _)| match n.as_str() {
            "kind" => format!("{} AS kind", crate::catalogue::KIND_SQL),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (scope, key) = match flow {
        Some(_) => ("master_flow_id = ?1", ids.master_flow_id.clone()),
        None => (
            "engagement_id = (SELECT engagement_id FROM discovery_flows WHERE id = ?1)",
            ids.discovery_flow_id.clone(),
        ),
    };
    // The kind is one of a fixed list (checked here), so it is written inline.
    let kind = match filter.kind.as_deref() {
        Some(k) if crate::catalogue::MACHINE_KINDS.contains(&k) || k == "application" => {
            format!(" AND {} = '{k}'", crate::catalogue::KIND_SQL)
        }
        Some(other) => return Err(ExportError::UnknownKind(other.to_string())),
        None => String::new(),
    };
    let limit = filter
        .limit
        .map(|n| format!(" LIMIT {n}"))
        .unwrap_or_default();
    let filter = format!("{scope}{kind}");
    let order = format!("ORDER BY asset_type, name, id{limit}");
    // The custom attributes' names, in the order rows are exported.
    let mut custom_keys: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut rows = 0;
    let mut stmt = conn.prepare(&format!(
        "SELECT custom_attributes FROM assets WHERE {filter} {order}"
    ))?;
    let mut query = stmt.query([&key])?;
    while let Some(r) = query.next()? {
        rows += 1;
        let text: String = r.get(0)?;
        if text == "{}" {
            continue;
        }
        if let Ok(Entries(entries)) = serde_json::from_str::<Entries<IgnoredAny>>(&text) {
            for (k, _) in entries {
                if !seen.contains(k.as_ref()) {
                    seen.insert(k.to_string());
                    custom_keys.push(k.into_owned());
                }
            }
        }
    }
    let mut columns = plain;
    let plain_count = columns.len();
    for k in &custom_keys {
        columns.push((format!("custom.{k}"), ColumnKind::Text));
    }
    Ok(AssetTable {
        columns,
        plain: plain_count,
        custom_keys,
        select: format!("SELECT {list}, custom_attributes FROM assets WHERE {filter} {order}"),
        key,
        rows,
        master_flow_id: ids.master_flow_id,
    })
}

impl AssetTable {
    /// How many columns are custom attributes.
    pub fn custom_count(&self) -> usize {
        self.columns.len() - self.plain
    }

    /// Calls `f` with each asset's cells (one per column) and its custom
    /// attributes as stored, in export order.
    pub fn each_row(
        &self,
        conn: &Connection,
        mut f: impl FnMut(&[Cell], &Map<String, Value>) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let mut stmt = conn.prepare(&self.select)?;
        let mut query = stmt.query([&self.key])?;
        let mut row = Vec::with_capacity(self.columns.len());
        while let Some(r) = query.next()? {
            row.clear();
            for i in 0..self.plain {
                row.push(match r.get::<_, SqlValue>(i)? {
                    SqlValue::Null => Cell::Null,
                    SqlValue::Integer(n) => Cell::Integer(n),
                    SqlValue::Real(x) => Cell::Real(x),
                    SqlValue::Text(t) => Cell::Text(t),
                    SqlValue::Blob(b) => Cell::Text(String::from_utf8_lossy(&b).into_owned()),
                });
            }
            let attributes: String = r.get(self.plain)?;
            let attributes: Map<String, Value> =
                serde_json::from_str(&attributes).unwrap_or_default();
            for k in &self.custom_keys {
                row.push(match attributes.get(k) {
                    None | Some(Value::Null) => Cell::Null,
                    Some(Value::String(s)) => Cell::Text(s.clone()),
                    Some(other) => Cell::Text(other.to_string()),
                });
            }
            f(&row, &attributes)?;
        }
        Ok(())
    }
}

/// Refuses an output path that is the database itself or one of its
/// journals: an export renamed over it would replace the inventory.
pub fn check_output(output: &Path, database: &Path) -> Result<(), ExportError> {
    let database = crate::db::canonical_path(database);
    let target = crate::db::canonical_path(output);
    let mut protected = vec![database.clone()];
    for suffix in ["-journal", "-wal", "-shm", ".lock"] {
        let mut name = database.clone().into_os_string();
        name.push(suffix);
        protected.push(PathBuf::from(name));
    }
    if protected.contains(&target) {
        return Err(ExportError::OutputIsDatabase(output.to_path_buf()));
    }
    Ok(())
}

/// Text a spreadsheet would execute gets a leading apostrophe, also when
/// spaces or line breaks come before the formula character (spreadsheets
/// skip them); a number written as text ("-12.5", "+3") is left as it is.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    let risky = text.starts_with(['\t', '\r'])
        || text
            .trim_start_matches(|c: char| c.is_whitespace())
            .starts_with(['=', '+', '-', '@']);
    if risky && text.trim().parse::<f64>().is_err() {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        assert_eq!(
            neutralise("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(neutralise("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(neutralise("-2+3"), "'-2+3");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("\rx"), "'\rx");
        assert_eq!(neutralise("-12.5"), "-12.5");
        assert_eq!(neutralise("+3"), "+3");
        assert_eq!(neutralise("web-01"), "web-01");
        assert_eq!(neutralise(" =1+1"), "' =1+1");
        assert_eq!(neutralise("\n=cmd()"), "'\n=cmd()");
        assert_eq!(neutralise("  @SUM(A1)"), "'  @SUM(A1)");
        assert_eq!(neutralise(" -5"), " -5");
    }
}
