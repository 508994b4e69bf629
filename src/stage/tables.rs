//! What staging tells the later phases about its tables, as types: which
//! completed tables a flow or an engagement has, their columns, layout and
//! role, how each was cleansed, and whether its assets were built while it was
//! staged. The JSON keys of `data_imports.read_metadata` that carry this are
//! read and written here only.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db;
use crate::read::layout::{Layout, Role};
use crate::stage::CleansedRow;

/// The completed tables of one flow, or of every flow of an engagement.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Flow { master_flow_id: &'a str },
    Engagement { engagement_id: &'a str },
}

/// One completed import (a delimited file or one sheet) as the phases read it.
#[derive(Debug, Clone)]
pub struct StagedTable {
    pub data_import_id: String,
    pub master_flow_id: String,
    pub client_account_id: String,
    pub engagement_id: String,
    pub filename: String,
    pub sheet: Option<String>,
    pub source_system: Option<String>,
    pub records: i64,
    /// The column names as the header gave them (after de-duplication).
    pub columns: Vec<String>,
    /// The export format the table was recognised as.
    pub layout: Option<Layout>,
    /// What the table is within that layout; None when no layout was recognised.
    pub role: Option<Role>,
    /// The cleansing recorded when the import was last cleansed.
    pub cleansing: Option<RecordedCleansing>,
    /// The table had no header row: its columns are numbered.
    pub headerless: bool,
}

impl StagedTable {
    /// Rows of a relationship export are edges for the dependencies phase, not
    /// records to map, cleanse or make assets of.
    pub fn holds_relationships(&self) -> bool {
        self.role == Some(Role::Relationships)
    }

    /// Rows that become assets: a table of a known layout's primary kind, or of
    /// no recognised layout at all.
    pub fn holds_machines(&self) -> bool {
        matches!(self.role, None | Some(Role::Primary))
    }
}

/// The completed tables in `scope`, oldest first.
pub fn completed(conn: &Connection, scope: Scope) -> rusqlite::Result<Vec<StagedTable>> {
    let (condition, key) = match scope {
        Scope::Flow { master_flow_id } => ("master_flow_id = ?1", master_flow_id),
        Scope::Engagement { engagement_id } => ("engagement_id = ?1", engagement_id),
    };
    let sql = format!(
        "SELECT id, master_flow_id, client_account_id, engagement_id, filename, sheet_name,
                source_system, total_records,
                coalesce(json_extract(read_metadata, '$.columns'), '[]'),
                json_extract(read_metadata, '$.layout.layout'),
                json_extract(read_metadata, '$.layout.role'),
                json_extract(read_metadata, '$.cleansing'),
                coalesce(json_extract(read_metadata, '$.header_shape') = 'absent', 0)
         FROM data_imports WHERE {condition} AND status = 'completed'
         ORDER BY created_at, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([key], |r| {
        let columns: String = r.get(8)?;
        let layout: Option<String> = r.get(9)?;
        let role: Option<String> = r.get(10)?;
        let cleansing: Option<String> = r.get(11)?;
        Ok(StagedTable {
            data_import_id: r.get(0)?,
            master_flow_id: r.get(1)?,
            client_account_id: r.get(2)?,
            engagement_id: r.get(3)?,
            filename: r.get(4)?,
            sheet: r.get(5)?,
            source_system: r.get(6)?,
            records: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
            columns: serde_json::from_str(&columns).unwrap_or_default(),
            layout: layout.and_then(named),
            role: role.and_then(named),
            cleansing: cleansing.and_then(|c| serde_json::from_str(&c).ok()),
            headerless: r.get(12)?,
        })
    })?;
    rows.collect()
}

/// The column names an import recorded and the layout it was recognised as;
/// empty for an import not staged yet.
/// A table's title for what its name says (`values::table_kind`, the
/// application-list rule): the file's base name and the sheet, never the
/// directories it was found in.
pub fn title(filename: &str, sheet: Option<&str>) -> String {
    let base = std::path::Path::new(filename).file_name().map_or_else(
        || filename.to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match sheet {
        Some(sheet) => format!("{base} / {sheet}"),
        None => base,
    }
}

pub fn shape(
    conn: &Connection,
    data_import_id: &str,
) -> rusqlite::Result<(Vec<String>, Option<Layout>)> {
    conn.query_row(
        "SELECT coalesce(json_extract(read_metadata, '$.columns'), '[]'),
                json_extract(read_metadata, '$.layout.layout')
         FROM data_imports WHERE id = ?1",
        [data_import_id],
        |r| {
            let columns: String = r.get(0)?;
            let layout: Option<String> = r.get(1)?;
            Ok((
                serde_json::from_str(&columns).unwrap_or_default(),
                layout.and_then(named),
            ))
        },
    )
}

/// A snake_case name read back as the enum it was written from.
fn named<T: serde::de::DeserializeOwned>(name: String) -> Option<T> {
    serde_json::from_value(Value::String(name)).ok()
}

/// The counts of an import's cleansing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CleansingTally {
    pub records: u64,
    pub valid: u64,
    pub invalid: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// Valid rows by what they become (server, network, storage, database,
    /// application).
    #[serde(default)]
    pub valid_by_type: BTreeMap<String, u64>,
}

impl CleansingTally {
    pub fn add(&mut self, row: &CleansedRow) {
        self.records += 1;
        if row.is_valid {
            self.valid += 1;
        } else {
            self.invalid += 1;
        }
        if let Some(kind) = row.becomes {
            *self.valid_by_type.entry(kind.to_string()).or_default() += 1;
        }
        for code in &row.error_codes {
            *self.errors_by_code.entry((*code).to_string()).or_default() += 1;
        }
    }

    /// Counts a row seen again as the record it repeats was counted; `becomes`
    /// is what that record, when valid, becomes.
    pub fn add_seen(&mut self, verdict: &super::sightings::Verdict, becomes: Option<&str>) {
        if verdict.is_valid.is_none() {
            return; // not cleansed: nor is the row
        }
        self.records += 1;
        if verdict.is_valid == Some(true) {
            self.valid += 1;
        } else {
            self.invalid += 1;
        }
        if let Some(kind) = becomes {
            *self.valid_by_type.entry(kind.to_string()).or_default() += 1;
        }
        for code in &verdict.codes {
            *self.errors_by_code.entry(code.clone()).or_default() += 1;
        }
    }
}

/// How an import was last cleansed: its counts, and the fingerprint of the
/// mappings and program that did it (rows cleansed with other mappings need
/// cleansing again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedCleansing {
    #[serde(flatten)]
    pub tally: CleansingTally,
    pub fingerprint: String,
}

/// Records an import's cleansing: its counts and fingerprint, and its invalid
/// rows as the import's failed_records.
pub fn record_cleansing(
    conn: &Connection,
    data_import_id: &str,
    recorded: &RecordedCleansing,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(recorded)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        "UPDATE data_imports SET failed_records = ?2, updated_at = ?3,
           read_metadata = json_set(read_metadata, '$.cleansing', json(?4))
         WHERE id = ?1",
        params![
            data_import_id,
            recorded.tally.invalid as i64,
            db::now(),
            json
        ],
    )?;
    Ok(())
}

/// The fingerprint an import was last cleansed with, if it was.
pub fn cleansing_fingerprint(
    conn: &Connection,
    data_import_id: &str,
) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT json_extract(read_metadata, '$.cleansing.fingerprint') FROM data_imports WHERE id = ?1",
            [data_import_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Marks an import whose assets are being built while it is staged (an
/// engagement's first build): a recovery of an interrupted run removes those
/// assets with the import's rows (`recover_interrupted`).
pub fn mark_assets_built_on_stage(conn: &Connection, data_import_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE data_imports SET read_metadata = json_set(read_metadata, '$.assets_on_stage', json('true'))
         WHERE id = ?1",
        [data_import_id],
    )?;
    Ok(())
}

/// The SQL condition, on data_imports aliased `i`, of an import marked by
/// `mark_assets_built_on_stage`.
pub(super) const ASSETS_BUILT_ON_STAGE: &str = "json_extract(i.read_metadata, '$.assets_on_stage')";
