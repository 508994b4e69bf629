//! The attribute_mapping phase: for every completed import of a flow, profile
//! the columns (`profile`), score each column against the field catalogue with
//! the rules file and the client's mapping memory (`suggest`, `rules`,
//! `memory`), store every suggestion in import_field_mappings with its
//! evidence, and record the phase in the discovery flow. `review` is what
//! `intake mappings` does afterwards.

pub mod memory;
pub mod profile;
pub mod review;
pub mod rules;
pub mod suggest;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::json;

use crate::db;
use crate::flow::{self, FlowIds, Phase};
use crate::read::layout::Layout;
pub use rules::{Rules, RulesError};
pub use suggest::{MatchType, Settings, Status, Suggestion};

/// How to map.
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    pub rules: Rules,
    /// Overrides the rules file's threshold.
    pub auto_approve: Option<f64>,
}

impl MapOptions {
    pub fn settings(&self) -> Settings {
        let default = Settings::default();
        Settings {
            auto_approve: self
                .auto_approve
                .or(self.rules.auto_approve)
                .unwrap_or(default.auto_approve),
            floor: self.rules.floor.unwrap_or(default.floor),
        }
    }
}

/// The mapping of one import (a file or a sheet).
#[derive(Debug, Clone, Serialize)]
pub struct ImportMapping {
    pub data_import_id: String,
    pub file: String,
    pub sheet: Option<String>,
    pub layout: Option<Layout>,
    pub rows_profiled: u64,
    pub suggestions: Vec<Suggestion>,
}

/// What the phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MappingOutcome {
    pub auto_approve_threshold: f64,
    pub imports: Vec<ImportMapping>,
    pub approved: usize,
    pub suggested: usize,
    pub unmapped: usize,
    pub ignored: usize,
}

/// Why the phase failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("database error while mapping: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Profile(#[from] profile::ProfileError),
}

/// Maps every completed import of a flow and records the phase.
pub fn run(
    conn: &Connection,
    ids: &FlowIds,
    options: &MapOptions,
) -> Result<MappingOutcome, MapError> {
    let settings = options.settings();
    let client: String = conn.query_row(
        "SELECT client_account_id FROM discovery_flows WHERE id = ?1",
        [&ids.discovery_flow_id],
        |r| r.get(0),
    )?;
    let learned = memory::learned(conn, &client)?;
    let imports = completed_imports(conn, &ids.master_flow_id)?;
    let mut outcome = MappingOutcome {
        auto_approve_threshold: settings.auto_approve,
        ..Default::default()
    };
    for import in imports {
        let started = std::time::Instant::now();
        let profiles = profile::profile_import(conn, &import.id, &import.columns)?;
        tracing::debug!(
            "{}: profiled {} columns of {} rows in {:.2}s",
            import.filename,
            import.columns.len(),
            profiles.first().map_or(0, |p| p.rows),
            started.elapsed().as_secs_f64()
        );
        let suggestions = suggest::suggest(&suggest::Inputs {
            columns: &import.columns,
            profiles: &profiles,
            layout: import.layout,
            rules: &options.rules,
            learned: &learned,
            settings,
        });
        store(conn, &import, &ids.master_flow_id, &suggestions)?;
        for s in &suggestions {
            match (s.status, s.target) {
                (Status::Ignored, _) => outcome.ignored += 1,
                (_, None) => outcome.unmapped += 1,
                (Status::Approved, Some(_)) => outcome.approved += 1,
                _ => outcome.suggested += 1,
            }
        }
        outcome.imports.push(ImportMapping {
            data_import_id: import.id,
            file: import.filename,
            sheet: import.sheet,
            layout: import.layout,
            rows_profiled: profiles.first().map_or(0, |p| p.rows),
            suggestions,
        });
    }
    let summary = json!({
        "auto_approve_threshold": settings.auto_approve,
        "imports": outcome.imports.len(),
        "approved": outcome.approved,
        "suggested": outcome.suggested,
        "unmapped": outcome.unmapped,
        "ignored": outcome.ignored,
    });
    record_field_mappings(conn, ids)?;
    flow::complete_phase(conn, ids, Phase::AttributeMapping, &summary)?;
    Ok(outcome)
}

struct CompletedImport {
    id: String,
    filename: String,
    sheet: Option<String>,
    client_account_id: String,
    engagement_id: String,
    columns: Vec<String>,
    layout: Option<Layout>,
}

fn completed_imports(
    conn: &Connection,
    master_flow_id: &str,
) -> rusqlite::Result<Vec<CompletedImport>> {
    let mut stmt = conn.prepare(
        "SELECT id, filename, sheet_name, client_account_id, engagement_id
         FROM data_imports WHERE master_flow_id = ?1 AND status = 'completed' ORDER BY created_at, id",
    )?;
    let rows: Vec<(String, String, Option<String>, String, String)> = stmt
        .query_map([master_flow_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(id, filename, sheet, client_account_id, engagement_id)| {
            let (columns, layout) = crate::stage::table_shape(conn, &id)?;
            Ok(CompletedImport {
                id,
                filename,
                sheet,
                client_account_id,
                engagement_id,
                columns,
                layout,
            })
        })
        .collect()
}

/// Replaces the machine's suggestions of an import; decisions a person made
/// (approved_by set) are kept as they are.
fn store(
    conn: &Connection,
    import: &CompletedImport,
    master_flow_id: &str,
    suggestions: &[Suggestion],
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "DELETE FROM import_field_mappings WHERE data_import_id = ?1 AND approved_by IS NULL",
        [&import.id],
    )?;
    let now = db::now();
    let suggested_by = format!("intake {}", env!("CARGO_PKG_VERSION"));
    {
        let mut human = tx.prepare(
            "SELECT 1 FROM import_field_mappings WHERE data_import_id = ?1 AND source_field = ?2",
        )?;
        let mut insert = tx.prepare(
            "INSERT INTO import_field_mappings
               (id, client_account_id, engagement_id, data_import_id, master_flow_id, source_field, target_field,
                confidence_score, match_type, status, suggested_by, approved_at, transformation_rules, evidence,
                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        )?;
        for s in suggestions {
            if human.exists(params![import.id, s.source])? {
                continue;
            }
            insert.execute(params![
                db::new_id(),
                import.client_account_id,
                import.engagement_id,
                import.id,
                master_flow_id,
                s.source,
                s.target,
                s.confidence,
                s.match_type.as_str(),
                s.status.as_str(),
                suggested_by,
                (s.status == Status::Approved).then_some(&now),
                s.transformation_rules.to_string(),
                serde_json::to_string(&s.evidence).unwrap_or_else(|_| "[]".into()),
                now
            ])?;
        }
    }
    tx.commit()
}

/// discovery_flows.field_mappings: per import, the approved source → target pairs.
pub fn record_field_mappings(conn: &Connection, ids: &FlowIds) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE discovery_flows SET field_mappings = (
           SELECT json_group_object(data_import_id, json(mappings)) FROM (
             SELECT data_import_id, json_group_object(source_field, target_field) AS mappings
             FROM import_field_mappings
             WHERE master_flow_id = ?2 AND status = 'approved' AND target_field IS NOT NULL
             GROUP BY data_import_id)),
           updated_at = ?3
         WHERE id = ?1",
        params![ids.discovery_flow_id, ids.master_flow_id, db::now()],
    )?;
    Ok(())
}
