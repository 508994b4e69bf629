//! `intake mappings`: the mapping table of a flow with sample values. The
//! decisions a person makes on it (approve, reject, set, undo) are
//! `map::decision`.

use rusqlite::Connection;
use serde::Serialize;

use crate::flow::{FindFlowError, FlowIds};

/// One row of the mapping table.
#[derive(Debug, Clone, Serialize)]
pub struct MappingRow {
    pub id: String,
    pub data_import_id: String,
    pub file: String,
    pub sheet: Option<String>,
    pub source_field: String,
    pub target_field: Option<String>,
    pub confidence_score: f64,
    pub match_type: String,
    pub status: String,
    /// What the row means for a person: approved, review (a field is
    /// suggested), unmapped (no field: kept in custom_attributes), ignored or
    /// rejected.
    pub state: &'static str,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub transformation_rules: serde_json::Value,
    pub evidence: Vec<String>,
    pub sample_values: Vec<String>,
}

/// Why a review command could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Flow(#[from] FindFlowError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// What a mapping row means for a person (see `MappingRow::state`).
pub fn state_of(status: &str, has_target: bool) -> &'static str {
    match (status, has_target) {
        ("approved", true) => "approved",
        ("approved", false) | ("ignored", _) => "ignored",
        ("rejected", _) => "rejected",
        (_, true) => "review",
        (_, false) => "unmapped",
    }
}

/// The states `intake mappings --status` takes.
pub const STATES: &[&str] = &["approved", "review", "unmapped", "ignored", "rejected"];

/// The mapping table of a flow, in file and column order.
pub fn list(conn: &Connection, ids: &FlowIds) -> Result<Vec<MappingRow>, ReviewError> {
    let mut stmt = conn.prepare(
        "SELECT m.id, m.data_import_id, d.filename, d.sheet_name, m.source_field, m.target_field,
                m.confidence_score, m.match_type, m.status, m.approved_by, m.approved_at,
                m.transformation_rules, m.evidence
         FROM import_field_mappings m JOIN data_imports d ON d.id = m.data_import_id
         WHERE m.master_flow_id = ?1
         ORDER BY d.created_at, d.id, m.created_at, m.rowid",
    )?;
    let mut rows: Vec<MappingRow> = stmt
        .query_map([&ids.master_flow_id], |r| {
            let rules: String = r.get(11)?;
            let evidence: String = r.get(12)?;
            Ok(MappingRow {
                id: r.get(0)?,
                data_import_id: r.get(1)?,
                file: r.get(2)?,
                sheet: r.get(3)?,
                source_field: r.get(4)?,
                target_field: r.get(5)?,
                confidence_score: r.get(6)?,
                match_type: r.get(7)?,
                status: r.get(8)?,
                approved_by: r.get(9)?,
                approved_at: r.get(10)?,
                transformation_rules: serde_json::from_str(&rules).unwrap_or_default(),
                evidence: serde_json::from_str(&evidence).unwrap_or_default(),
                sample_values: Vec::new(),
                state: "",
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for row in &mut rows {
        row.state = state_of(&row.status, row.target_field.is_some());
    }
    // Sample values: the first distinct ones among the first rows of each import.
    let mut current: Option<(String, Vec<serde_json::Map<String, serde_json::Value>>)> = None;
    for row in &mut rows {
        if current
            .as_ref()
            .is_none_or(|(id, _)| *id != row.data_import_id)
        {
            let keys = crate::record_store::ColumnKeys::of_import(conn, &row.data_import_id)?;
            let raw: Vec<String> = conn
                .prepare(&format!(
                    "SELECT raw_values FROM {} ORDER BY record_index LIMIT 50",
                    crate::record_store::records_of("?1")
                ))?
                .query_map([&row.data_import_id], |r| r.get::<_, String>(0))?
                .map(|stored| Ok(keys.object(&stored?).into_owned()))
                .collect::<rusqlite::Result<_>>()?;
            let parsed = raw
                .iter()
                .filter_map(|r| serde_json::from_str(r).ok())
                .collect();
            current = Some((row.data_import_id.clone(), parsed));
        }
        let (_, records) = current.as_ref().expect("set above");
        for record in records {
            if row.sample_values.len() == 3 {
                break;
            }
            if let Some(serde_json::Value::String(v)) = record.get(&row.source_field) {
                if !v.trim().is_empty() && !row.sample_values.contains(v) {
                    row.sample_values.push(v.clone());
                }
            }
        }
    }
    Ok(rows)
}
