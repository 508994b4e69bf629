//! The attribute_mapping phase: for every completed import of a flow, profile
//! the columns (`profile`), score each column against the field catalogue with
//! the rules file and the client's mapping memory (`suggest`, `rules`,
//! `memory`), store every suggestion in import_field_mappings with its
//! evidence, and keep the approved ones in discovery_flows.field_mappings.
//! The pipeline records the phase from `MappingOutcome`. `review` is what
//! `intake mappings` does afterwards.

pub mod decision;
pub mod header_words;
pub mod memory;
pub mod profile;
pub mod review;
pub mod rules;
pub mod suggest;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::json;

use crate::db;
use crate::flow::{FlowIds, Phase};
use crate::phase::{PhaseCtx, PhaseOutcome};
use crate::read::layout::Layout;
use crate::stage;
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

/// Maps every completed import of a flow. Imports in `premapped` were mapped
/// while they were staged (from their first rows) and are reported as they
/// were, not profiled again.
pub fn run(
    ctx: &PhaseCtx,
    options: &MapOptions,
    premapped: Vec<ImportMapping>,
) -> Result<MappingOutcome, MapError> {
    let (conn, ids) = (ctx.conn, &ctx.ids);
    let mapper = Mapper::new(
        conn,
        &ctx.tenant.client_account_id,
        &ids.master_flow_id,
        options,
    )?;
    let imports = completed_imports(conn, &ids.master_flow_id)?;
    let mut outcome = MappingOutcome {
        auto_approve_threshold: mapper.settings.auto_approve,
        ..Default::default()
    };
    let mut premapped = premapped;
    for import in imports {
        let mapping = match premapped.iter().position(|m| m.data_import_id == import.id) {
            Some(i) => premapped.swap_remove(i),
            None => {
                let started = std::time::Instant::now();
                let profiles = profile::profile_import(conn, &import.id, &import.columns)?;
                tracing::debug!(
                    "{}: profiled {} columns of {} rows in {:.2}s",
                    import.filename,
                    import.columns.len(),
                    profiles.first().map_or(0, |p| p.rows),
                    started.elapsed().as_secs_f64()
                );
                mapper.map(conn, &import, &profiles)?
            }
        };
        for s in &mapping.suggestions {
            match (s.status, s.target) {
                (Status::Ignored, _) => outcome.ignored += 1,
                (_, None) => outcome.unmapped += 1,
                (Status::Approved, Some(_)) => outcome.approved += 1,
                _ => outcome.suggested += 1,
            }
        }
        outcome.imports.push(mapping);
    }
    record_field_mappings(conn, ids)?;
    Ok(outcome)
}

impl PhaseOutcome for MappingOutcome {
    const PHASE: Phase = Phase::AttributeMapping;

    fn summary(&self) -> serde_json::Value {
        json!({
            "auto_approve_threshold": self.auto_approve_threshold,
            "imports": self.imports.len(),
            "approved": self.approved,
            "suggested": self.suggested,
            "unmapped": self.unmapped,
            "ignored": self.ignored,
        })
    }
}

/// What mapping needs for all imports of a run: the options and the client's
/// mapping memory, read once.
pub struct Mapper<'o> {
    options: &'o MapOptions,
    settings: Settings,
    learned: std::collections::HashMap<String, String>,
    master_flow_id: String,
}

impl<'o> Mapper<'o> {
    pub fn new(
        conn: &Connection,
        client_account_id: &str,
        master_flow_id: &str,
        options: &'o MapOptions,
    ) -> rusqlite::Result<Mapper<'o>> {
        Ok(Mapper {
            options,
            settings: options.settings(),
            learned: memory::learned(conn, client_account_id)?,
            master_flow_id: master_flow_id.to_string(),
        })
    }

    /// Suggests a field for each column of an import from its profiles and
    /// stores the suggestions.
    pub fn map(
        &self,
        conn: &Connection,
        import: &ImportToMap,
        profiles: &[profile::ColumnProfile],
    ) -> rusqlite::Result<ImportMapping> {
        let title = stage::tables::title(&import.filename, import.sheet.as_deref());
        let suggestions = suggest::suggest(&suggest::Inputs {
            title: &title,
            columns: &import.columns,
            profiles,
            layout: import.layout,
            rules: &self.options.rules,
            learned: &self.learned,
            settings: self.settings,
            headerless: import.headerless,
        });
        store(conn, import, &self.master_flow_id, &suggestions)?;
        Ok(ImportMapping {
            data_import_id: import.id.clone(),
            file: import.filename.clone(),
            sheet: import.sheet.clone(),
            layout: import.layout,
            rows_profiled: profiles.first().map_or(0, |p| p.rows),
            suggestions,
        })
    }
}

/// One import as mapping sees it.
pub struct ImportToMap {
    pub id: String,
    pub filename: String,
    pub sheet: Option<String>,
    pub client_account_id: String,
    pub engagement_id: String,
    pub columns: Vec<String>,
    pub layout: Option<Layout>,
    /// The table had no header row: its columns are mapped by their values.
    pub headerless: bool,
}

fn completed_imports(
    conn: &Connection,
    master_flow_id: &str,
) -> rusqlite::Result<Vec<ImportToMap>> {
    let scope = stage::tables::Scope::Flow { master_flow_id };
    // Relationship exports are read by the dependencies phase instead.
    Ok(stage::tables::completed(conn, scope)?
        .into_iter()
        .filter(|t| !t.holds_relationships())
        .map(|t| ImportToMap {
            id: t.data_import_id,
            filename: t.filename,
            sheet: t.sheet,
            client_account_id: t.client_account_id,
            engagement_id: t.engagement_id,
            columns: t.columns,
            layout: t.layout,
            headerless: t.headerless,
        })
        .collect())
}

/// Replaces the machine's suggestions of an import; decisions a person made
/// (approved_by set) are kept as they are.
fn store(
    conn: &Connection,
    import: &ImportToMap,
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
        // What is left after the delete is a person's: read once, not per
        // column (a lookup per column was quadratic in a wide file).
        let human: std::collections::HashSet<String> = tx
            .prepare("SELECT source_field FROM import_field_mappings WHERE data_import_id = ?1")?
            .query_map([&import.id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut insert = tx.prepare(
            "INSERT INTO import_field_mappings
               (id, client_account_id, engagement_id, data_import_id, master_flow_id, source_field, target_field,
                confidence_score, match_type, status, suggested_by, approved_at, transformation_rules, evidence,
                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        )?;
        for s in suggestions {
            if human.contains(&s.source) {
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
