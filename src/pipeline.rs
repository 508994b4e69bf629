//! The discovery phases after the import, in order: attribute_mapping,
//! data_cleansing, inventory. Each is recorded in the flow as it completes; a
//! failure marks the flow failed in that phase with its message. The same
//! entry point re-runs the later phases after a mapping decision, and finishes
//! flows a killed run left part-way.

use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use crate::cleanse::{self, CleanseOutcome};
use crate::flow::{self, FlowIds, Phase};
use crate::inventory::{self, InventoryOutcome};
use crate::map::{self, ImportMapping, MapOptions, MappingOutcome};

/// What the phases of one flow did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseOutcomes {
    pub mapping: Option<MappingOutcome>,
    pub cleansing: Option<CleanseOutcome>,
    pub inventory: Option<InventoryOutcome>,
}

/// Why a phase failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("attribute mapping failed: {0}")]
    Mapping(#[from] map::MapError),
    #[error("{phase} failed: {source}")]
    Phase {
        phase: &'static str,
        source: rusqlite::Error,
    },
}

/// Runs the phases from `from` (attribute_mapping or later) to inventory.
pub fn run_from(
    conn: &Connection,
    ids: &FlowIds,
    from: Phase,
    options: &MapOptions,
) -> Result<PhaseOutcomes, PipelineError> {
    run_between(conn, ids, from, Phase::Inventory, options, Vec::new())
}

/// Runs the phases from `from` through `until`; the flow stays running when
/// `until` is before inventory, and a later run finishes it. `premapped` holds
/// the imports mapped while they were staged.
pub fn run_between(
    conn: &Connection,
    ids: &FlowIds,
    from: Phase,
    until: Phase,
    options: &MapOptions,
    premapped: Vec<ImportMapping>,
) -> Result<PhaseOutcomes, PipelineError> {
    let mut outcomes = PhaseOutcomes::default();
    let result = run_phases(conn, ids, (from, until), options, premapped, &mut outcomes);
    if let Err((phase, error)) = result {
        let message = error.to_string();
        let _ = flow::fail(
            conn,
            ids,
            phase,
            &message,
            &json!({ "type": "phase_failed" }),
        );
        return Err(error);
    }
    Ok(outcomes)
}

fn run_phases(
    conn: &Connection,
    ids: &FlowIds,
    (from, until): (Phase, Phase),
    options: &MapOptions,
    premapped: Vec<ImportMapping>,
    outcomes: &mut PhaseOutcomes,
) -> Result<(), (Phase, PipelineError)> {
    let order = |p: Phase| Phase::ALL.iter().position(|x| *x == p).unwrap_or(0);
    let runs = |p: Phase| order(from) <= order(p) && order(p) <= order(until);
    let wrap = |phase: Phase| {
        move |source| {
            (
                phase,
                PipelineError::Phase {
                    phase: phase.name(),
                    source,
                },
            )
        }
    };
    if runs(Phase::AttributeMapping) {
        outcomes.mapping = Some(
            map::run(conn, ids, options, premapped)
                .map_err(|e| (Phase::AttributeMapping, e.into()))?,
        );
    }
    if runs(Phase::DataCleansing) {
        let started = std::time::Instant::now();
        let cleansing =
            cleanse::run(conn, &ids.master_flow_id).map_err(wrap(Phase::DataCleansing))?;
        tracing::debug!(
            "cleansed {} records in {:.2}s",
            cleansing.records,
            started.elapsed().as_secs_f64()
        );
        let summary = json!({ "records": cleansing.records, "valid": cleansing.valid, "invalid": cleansing.invalid });
        flow::complete_phase(conn, ids, Phase::DataCleansing, &summary)
            .map_err(wrap(Phase::DataCleansing))?;
        outcomes.cleansing = Some(cleansing);
    }
    if !runs(Phase::Inventory) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let inventory = inventory::run(conn, ids).map_err(wrap(Phase::Inventory))?;
    tracing::debug!(
        "built {} assets from {} records in {:.2}s",
        inventory.assets,
        inventory.records,
        started.elapsed().as_secs_f64()
    );
    let summary = json!({
        "assets": inventory.assets, "created": inventory.created, "updated": inventory.updated,
        "unchanged": inventory.unchanged, "records": inventory.records, "merged_records": inventory.merged_records,
        "by_type": inventory.by_type,
    });
    flow::complete_phase(conn, ids, Phase::Inventory, &summary).map_err(wrap(Phase::Inventory))?;
    flow::finish(conn, ids, &summary).map_err(wrap(Phase::Inventory))?;
    outcomes.inventory = Some(inventory);
    Ok(())
}

/// Flows a killed run left after their import but before their inventory: the
/// next run finishes them from their first undone phase.
pub fn resume_unfinished(
    conn: &Connection,
    options: &MapOptions,
) -> Result<Vec<String>, PipelineError> {
    let stale: Vec<(FlowIds, i64, i64)> = conn
        .prepare(
            "SELECT id, master_flow_id, attribute_mapping_completed, data_cleansing_completed FROM discovery_flows
             WHERE status = 'running' AND data_import_completed = 1 AND inventory_completed = 0",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    FlowIds {
                        discovery_flow_id: r.get(0)?,
                        master_flow_id: r.get(1)?,
                    },
                    r.get(2)?,
                    r.get(3)?,
                ))
            })?
            .collect()
        })
        .map_err(|source| PipelineError::Phase { phase: "resume", source })?;
    for (ids, mapped, cleansed) in &stale {
        let from = match (mapped, cleansed) {
            (0, _) => Phase::AttributeMapping,
            (_, 0) => Phase::DataCleansing,
            _ => Phase::Inventory,
        };
        run_from(conn, ids, from, options)?;
    }
    Ok(stale
        .into_iter()
        .map(|(ids, ..)| ids.master_flow_id)
        .collect())
}
