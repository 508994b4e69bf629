//! `intake mappings`: the mapping table of a flow with sample values, and the
//! decisions a person makes on it (approve, reject, set). Each decision records
//! approved_by and approved_at, keeps one column per target within an import,
//! and refreshes the flow's field_mappings so the later phases follow it.

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::catalogue;
use crate::db;
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
    #[error("flow {flow} has no mapping of column '{column}'{target}; its columns are: {columns}")]
    UnknownSource {
        flow: String,
        column: String,
        target: String,
        columns: String,
    },
    #[error("'{0}' is not an asset field; `intake mappings fields` lists them (use \"none\" to leave a column unmapped)")]
    UnknownField(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

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
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Sample values: the first distinct ones among the first rows of each import.
    let mut current: Option<(String, Vec<serde_json::Map<String, serde_json::Value>>)> = None;
    for row in &mut rows {
        if current
            .as_ref()
            .is_none_or(|(id, _)| *id != row.data_import_id)
        {
            let raw: Vec<String> = conn
                .prepare("SELECT raw_data FROM raw_import_records WHERE data_import_id = ?1 ORDER BY record_index LIMIT 50")?
                .query_map([&row.data_import_id], |r| r.get(0))?
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

/// A decision on the mappings of one source column in a flow.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Approve the current target (optionally only where it is `target`).
    Approve {
        target: Option<String>,
    },
    Reject {
        target: Option<String>,
    },
    /// Map to `target`, or leave unmapped when None.
    Set {
        target: Option<String>,
    },
}

/// Applies a decision to every import of the flow that has the source column;
/// returns how many mapping rows changed.
pub fn decide(
    conn: &Connection,
    ids: &FlowIds,
    source: &str,
    decision: &Decision,
    user: &str,
) -> Result<usize, ReviewError> {
    if let Decision::Set { target: Some(t) } = decision {
        if catalogue::field(t).is_none() {
            return Err(ReviewError::UnknownField(t.clone()));
        }
    }
    let wanted_target = match decision {
        Decision::Approve { target } | Decision::Reject { target } => target.clone(),
        Decision::Set { .. } => None,
    };
    let matching: Vec<(String, String, Option<String>)> = conn
        .prepare(
            "SELECT id, data_import_id, target_field FROM import_field_mappings
             WHERE master_flow_id = ?1 AND source_field = ?2 AND (?3 IS NULL OR target_field = ?3)",
        )?
        .query_map(params![ids.master_flow_id, source, wanted_target], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if matching.is_empty() {
        let columns: Vec<String> = conn
            .prepare("SELECT DISTINCT source_field FROM import_field_mappings WHERE master_flow_id = ?1 ORDER BY source_field")?
            .query_map([&ids.master_flow_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        return Err(ReviewError::UnknownSource {
            flow: ids.master_flow_id.clone(),
            column: source.to_string(),
            target: wanted_target
                .map(|t| format!(" to {t}"))
                .unwrap_or_default(),
            columns: columns.join(", "),
        });
    }
    let now = db::now();
    let tx = conn.unchecked_transaction()?;
    for (id, import_id, current_target) in &matching {
        let new_target = match decision {
            Decision::Set { target } => target.clone(),
            _ => current_target.clone(),
        };
        let (status, match_type_sql) = match decision {
            Decision::Approve { .. } if new_target.is_some() => ("approved", "match_type"),
            Decision::Approve { .. } => ("ignored", "match_type"),
            Decision::Reject { .. } => ("rejected", "match_type"),
            Decision::Set { target: Some(_) } => ("approved", "'manual'"),
            Decision::Set { target: None } => ("ignored", "'manual'"),
        };
        if status == "approved" {
            // One column per target within an import: whoever held it goes back to suggested.
            tx.execute(
                "UPDATE import_field_mappings SET status = 'suggested', approved_by = NULL, approved_at = NULL,
                   updated_at = ?4
                 WHERE data_import_id = ?1 AND target_field = ?2 AND id <> ?3 AND status = 'approved'",
                params![import_id, new_target, id, now],
            )?;
        }
        // A new target gets the transforms its field needs for this import's layout.
        let new_rules = match (decision, &new_target) {
            (Decision::Set { .. }, Some(target)) if new_target != *current_target => {
                let (columns, layout) = crate::stage::tables::shape(&tx, import_id)?;
                let field = catalogue::field(target).expect("checked above");
                Some(super::suggest::rules_for(field, source, layout, &columns).to_string())
            }
            (Decision::Set { .. }, None) => Some("{}".to_string()),
            _ => None,
        };
        tx.execute(
            &format!(
                "UPDATE import_field_mappings SET target_field = ?2, status = ?3, match_type = {match_type_sql},
                   confidence_score = CASE WHEN {match_type_sql} = 'manual' THEN 1.0 ELSE confidence_score END,
                   transformation_rules = coalesce(?7, transformation_rules),
                   evidence = json_insert(evidence, '$[#]', ?6),
                   approved_by = ?4, approved_at = ?5, updated_at = ?5
                 WHERE id = ?1"
            ),
            params![
                id,
                new_target,
                status,
                user,
                now,
                format!("{status} by {user} on {now}"),
                new_rules
            ],
        )?;
    }
    tx.commit()?;
    super::record_field_mappings(conn, ids)?;
    Ok(matching.len())
}
