//! The discovery flow of a run: its master flow (crewai_flow_state_extensions)
//! and its discovery_flows row, and the record of each of the six phases in both
//! (the boolean flag, current_phase, phases_completed, progress_percentage, and
//! the master's phase_progression).

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use crate::db;
use crate::tenant::Tenant;

/// The six discovery phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    DataImport,
    AttributeMapping,
    DataCleansing,
    Inventory,
    Dependencies,
    TechDebt,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::DataImport,
        Phase::AttributeMapping,
        Phase::DataCleansing,
        Phase::Inventory,
        Phase::Dependencies,
        Phase::TechDebt,
    ];

    /// The phase named `name` ("data_import", "attribute_mapping", ...).
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.iter().copied().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::DataImport => "data_import",
            Phase::AttributeMapping => "attribute_mapping",
            Phase::DataCleansing => "data_cleansing",
            Phase::Inventory => "inventory",
            Phase::Dependencies => "dependencies",
            Phase::TechDebt => "tech_debt",
        }
    }

    fn flag_column(self) -> &'static str {
        match self {
            Phase::DataImport => "data_import_completed",
            Phase::AttributeMapping => "attribute_mapping_completed",
            Phase::DataCleansing => "data_cleansing_completed",
            Phase::Inventory => "inventory_completed",
            Phase::Dependencies => "dependencies_completed",
            Phase::TechDebt => "tech_debt_completed",
        }
    }

    fn next(self) -> Option<Phase> {
        let i = Phase::ALL.iter().position(|p| *p == self)?;
        Phase::ALL.get(i + 1).copied()
    }
}

/// The ids of a run's flows.
#[derive(Debug, Clone)]
pub struct FlowIds {
    pub master_flow_id: String,
    pub discovery_flow_id: String,
}

/// Creates the master flow and its discovery flow, both running the data_import phase.
pub fn start_discovery(
    conn: &Connection,
    tenant: &Tenant,
    flow_name: &str,
) -> rusqlite::Result<FlowIds> {
    let ids = FlowIds {
        master_flow_id: db::new_id(),
        discovery_flow_id: db::new_id(),
    };
    let now = db::now();
    let progression = json!({ "data_import": { "status": "running", "started_at": now } });
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO crewai_flow_state_extensions
           (flow_id, client_account_id, engagement_id, user_id, flow_type, flow_name, flow_status,
            current_phase, phase_flow_id, phase_progression, master_state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'discovery', ?5, 'running', 'discovery', ?6, ?7, ?8, ?9, ?9)",
        params![
            ids.master_flow_id,
            tenant.client_account_id,
            tenant.engagement_id,
            tenant.user_id,
            flow_name,
            ids.discovery_flow_id,
            progression.to_string(),
            json!({ "tool": "intake", "version": env!("CARGO_PKG_VERSION") }).to_string(),
            now
        ],
    )?;
    tx.execute(
        "INSERT INTO discovery_flows
           (id, client_account_id, engagement_id, master_flow_id, user_id, flow_name, status,
            current_phase, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', 'data_import', ?7, ?7)",
        params![
            ids.discovery_flow_id,
            tenant.client_account_id,
            tenant.engagement_id,
            ids.master_flow_id,
            tenant.user_id,
            flow_name,
            now
        ],
    )?;
    tx.commit()?;
    Ok(ids)
}

/// Links the discovery flow to the first data import of its run.
pub fn link_first_import(
    conn: &Connection,
    ids: &FlowIds,
    data_import_id: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE discovery_flows SET data_import_id = ?2 WHERE id = ?1 AND data_import_id IS NULL",
        params![ids.discovery_flow_id, data_import_id],
    )?;
    Ok(())
}

/// Records a finished phase: its flag, phases_completed, the next current_phase,
/// progress, its summary in flow_state, and the master's phase_progression.
pub fn complete_phase(
    conn: &Connection,
    ids: &FlowIds,
    phase: Phase,
    summary: &serde_json::Value,
) -> rusqlite::Result<()> {
    let now = db::now();
    let done = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0) + 1;
    let progress = (done as f64 * 100.0 / Phase::ALL.len() as f64 * 100.0).round() / 100.0;
    let next = phase.next();
    let path = format!("$.{}", phase.name());
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        &format!(
            "UPDATE discovery_flows SET
               {flag} = 1,
               phases_completed = CASE WHEN EXISTS (SELECT 1 FROM json_each(phases_completed) WHERE value = ?2)
                                  THEN phases_completed ELSE json_insert(phases_completed, '$[#]', ?2) END,
               current_phase = coalesce(?3, 'completed'),
               progress_percentage = ?4,
               flow_state = json_set(flow_state, ?5, json(?6)),
               status = CASE WHEN ?3 IS NULL THEN 'completed' ELSE status END,
               completed_at = CASE WHEN ?3 IS NULL THEN ?7 ELSE completed_at END,
               updated_at = ?7
             WHERE id = ?1",
            flag = phase.flag_column()
        ),
        params![
            ids.discovery_flow_id,
            phase.name(),
            next.map(Phase::name),
            progress,
            path,
            summary.to_string(),
            now
        ],
    )?;
    let record = json!({ "status": "completed", "completed_at": now, "summary": summary });
    tx.execute(
        "UPDATE crewai_flow_state_extensions SET
           phase_progression = json_set(phase_progression, ?2,
               json_patch(coalesce(json_extract(phase_progression, ?2), '{}'), json(?3))),
           updated_at = ?4
         WHERE flow_id = ?1",
        params![ids.master_flow_id, path, record.to_string(), now],
    )?;
    if let Some(next) = next {
        let path = format!("$.{}", next.name());
        tx.execute(
            "UPDATE crewai_flow_state_extensions SET
               phase_progression = json_set(phase_progression, ?2, json(?3))
             WHERE flow_id = ?1",
            params![
                ids.master_flow_id,
                path,
                json!({ "status": "pending" }).to_string()
            ],
        )?;
    }
    tx.commit()
}

/// Why no flow was found.
#[derive(Debug, thiserror::Error)]
pub enum FindFlowError {
    #[error("no discovery flow in this database yet; run `intake import` first")]
    NoFlow,
    #[error("no flow {0}; `intake mappings` without --flow shows the latest")]
    UnknownFlow(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The flow named by `flow` (a master or discovery flow id, or a unique prefix),
/// or the latest one.
pub fn find(conn: &Connection, flow: Option<&str>) -> Result<FlowIds, FindFlowError> {
    let row = |r: &rusqlite::Row| {
        Ok(FlowIds {
            discovery_flow_id: r.get(0)?,
            master_flow_id: r.get(1)?,
        })
    };
    match flow {
        None => conn
            .query_row(
                "SELECT id, master_flow_id FROM discovery_flows ORDER BY created_at DESC, id DESC LIMIT 1",
                [],
                row,
            )
            .optional()?
            .ok_or(FindFlowError::NoFlow),
        Some(wanted) => {
            let found: Vec<FlowIds> = conn
                .prepare(
                    "SELECT id, master_flow_id FROM discovery_flows
                     WHERE master_flow_id LIKE ?1 || '%' OR id LIKE ?1 || '%'",
                )?
                .query_map([wanted], row)?
                .collect::<rusqlite::Result<_>>()?;
            match found.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(FindFlowError::UnknownFlow(wanted.to_string())),
            }
        }
    }
}

/// Stores the inventory summary in discovered_assets.
pub fn record_discovered(
    conn: &Connection,
    ids: &FlowIds,
    discovered: &serde_json::Value,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE discovery_flows SET discovered_assets = ?2 WHERE id = ?1",
        params![ids.discovery_flow_id, discovered.to_string()],
    )?;
    Ok(())
}

/// Marks a flow whose phases ran to the end of the pipeline as completed.
pub fn finish(conn: &Connection, ids: &FlowIds) -> rusqlite::Result<()> {
    let now = db::now();
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "UPDATE discovery_flows SET status = 'completed', completed_at = ?2,
           updated_at = ?2, error_message = NULL, error_phase = NULL, error_details = NULL
         WHERE id = ?1",
        params![ids.discovery_flow_id, now],
    )?;
    tx.execute(
        "UPDATE crewai_flow_state_extensions SET flow_status = 'completed', updated_at = ?2 WHERE flow_id = ?1",
        params![ids.master_flow_id, now],
    )?;
    tx.commit()
}

/// Marks both flows failed in `phase`, with the message and details.
pub fn fail(
    conn: &Connection,
    ids: &FlowIds,
    phase: Phase,
    message: &str,
    details: &serde_json::Value,
) -> rusqlite::Result<()> {
    let now = db::now();
    let path = format!("$.{}", phase.name());
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "UPDATE discovery_flows SET status = 'failed', error_phase = ?2, error_message = ?3,
           error_details = ?4, updated_at = ?5 WHERE id = ?1",
        params![
            ids.discovery_flow_id,
            phase.name(),
            message,
            details.to_string(),
            now
        ],
    )?;
    tx.execute(
        "UPDATE crewai_flow_state_extensions SET flow_status = 'failed',
           phase_progression = json_set(phase_progression, ?2, json(?3)), updated_at = ?4
         WHERE flow_id = ?1",
        params![
            ids.master_flow_id,
            path,
            json!({ "status": "failed", "failed_at": now, "error": message }).to_string(),
            now
        ],
    )?;
    tx.commit()
}

/// Marks flows that a killed run left in the data_import phase as failed. Only
/// called under the writer lock, so no live run owns them.
pub fn recover_interrupted(conn: &Connection) -> rusqlite::Result<Vec<FlowIds>> {
    let mut stmt = conn.prepare(
        "SELECT id, master_flow_id FROM discovery_flows
         WHERE status IN ('pending', 'running') AND data_import_completed = 0",
    )?;
    let stale: Vec<FlowIds> = stmt
        .query_map([], |r| {
            Ok(FlowIds {
                discovery_flow_id: r.get(0)?,
                master_flow_id: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for ids in &stale {
        fail(
            conn,
            ids,
            Phase::DataImport,
            "interrupted: the run stopped before its files were imported; a later run re-imported them",
            &json!({ "type": "interrupted" }),
        )?;
    }
    Ok(stale)
}

/// The files a flow imported (or was importing), in the order they were
/// given, without repeats: how a flow is named to the user.
pub fn file_names(conn: &Connection, master_flow_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT filename FROM data_imports WHERE master_flow_id = ?1 ORDER BY created_at, rowid",
    )?;
    for name in stmt.query_map([master_flow_id], |r| r.get::<_, String>(0))? {
        let name = name?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// "flow 0193a2c4 (servers.csv, rvtools.xlsx)": a flow as the user knows it.
pub fn describe(conn: &Connection, master_flow_id: &str) -> rusqlite::Result<String> {
    let short: String = master_flow_id.chars().take(8).collect();
    let files = file_names(conn, master_flow_id)?;
    Ok(match files.len() {
        0 => format!("flow {short}"),
        1..=3 => format!("flow {short} ({})", files.join(", ")),
        n => format!(
            "flow {short} ({}, and {} more)",
            files[..2].join(", "),
            n - 2
        ),
    })
}

/// Why a flow that did not complete cannot be trusted yet, and the command
/// that finishes it; None for a completed flow. `running_now` says whether
/// an intake run holds the database (the flow is then still going).
pub fn unfinished(
    conn: &Connection,
    ids: &FlowIds,
    running_now: bool,
) -> rusqlite::Result<Option<String>> {
    let (status, phase, error): (String, String, Option<String>) = conn.query_row(
        "SELECT status, coalesce(error_phase, current_phase), error_message FROM discovery_flows WHERE id = ?1",
        [&ids.discovery_flow_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if status == "completed" {
        return Ok(None);
    }
    let flow = describe(conn, &ids.master_flow_id)?;
    if status == "running" && running_now {
        return Ok(Some(format!(
            "{flow} is still being imported by another intake run (now in {phase}); what is shown is what it has stored so far"
        )));
    }
    let files = file_names(conn, &ids.master_flow_id)?;
    let command = if files.is_empty() {
        "intake import FILE...".to_string()
    } else {
        format!("intake import {}", files.join(" "))
    };
    let why = match (status.as_str(), error) {
        ("failed", Some(error)) => format!("failed in {phase}: {error}"),
        ("running" | "pending", _) => format!("was interrupted in {phase}"),
        (other, _) => format!("is {other} (stopped in {phase})"),
    };
    Ok(Some(format!(
        "{flow} did not complete: it {why}. Run `{command}` again to finish it: the files are not imported twice, and the run goes on from the phase that stopped"
    )))
}
