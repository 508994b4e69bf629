//! The discovery phases after the import, in order: attribute_mapping,
//! data_cleansing, inventory, dependencies, tech_debt. Each is recorded in the flow as it completes; a
//! failure marks the flow failed in that phase with its message. The same
//! entry point re-runs the later phases after a mapping decision, and finishes
//! flows a killed run left part-way.

use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use crate::cleanse::{self, CleanseOutcome};
use crate::dependencies::{self, DependenciesOutcome};
use crate::flow::{self, FlowIds, Phase};
use crate::inventory::{self, AssetsOnStage, InventoryOutcome};
use crate::map::{self, ImportMapping, MapOptions, MappingOutcome};
use crate::tech_debt::{self, TechDebtOutcome};

/// What the phases of one flow did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseOutcomes {
    pub mapping: Option<MappingOutcome>,
    pub cleansing: Option<CleanseOutcome>,
    pub inventory: Option<InventoryOutcome>,
    pub dependencies: Option<DependenciesOutcome>,
    pub tech_debt: Option<TechDebtOutcome>,
}

/// What the phases after mapping need besides the mapping options.
#[derive(Debug, Clone, Default)]
pub struct PhaseOptions {
    pub mapping: MapOptions,
    /// The day support status is judged on (YYYY-MM-DD); today when None.
    pub support_as_of: Option<String>,
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

/// Runs the phases from `from` (attribute_mapping or later) to tech_debt.
pub fn run_from(
    conn: &Connection,
    ids: &FlowIds,
    from: Phase,
    options: &PhaseOptions,
) -> Result<PhaseOutcomes, PipelineError> {
    run_between(
        conn,
        ids,
        from,
        Phase::TechDebt,
        options,
        OnStage::default(),
    )
}

/// What was done while the files were staged: the imports mapped, and the
/// assets built (see `inventory::AssetsOnStage`).
#[derive(Default)]
pub struct OnStage<'c> {
    pub mappings: Vec<ImportMapping>,
    pub assets: Option<AssetsOnStage<'c>>,
}

/// Runs the phases from `from` through `until`; the flow stays running when
/// `until` is before tech_debt, and a later run finishes it. `on_stage` holds
/// what was done while the files were staged.
pub fn run_between(
    conn: &Connection,
    ids: &FlowIds,
    from: Phase,
    until: Phase,
    options: &PhaseOptions,
    on_stage: OnStage,
) -> Result<PhaseOutcomes, PipelineError> {
    let mut outcomes = PhaseOutcomes::default();
    let result = run_phases(conn, ids, (from, until), options, on_stage, &mut outcomes);
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
    options: &PhaseOptions,
    on_stage: OnStage,
    outcomes: &mut PhaseOutcomes,
) -> Result<(), (Phase, PipelineError)> {
    let OnStage {
        mappings: premapped,
        assets: mut staged,
    } = on_stage;
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
            map::run(conn, ids, &options.mapping, premapped)
                .map_err(|e| (Phase::AttributeMapping, e.into()))?,
        );
    }
    if runs(Phase::DataCleansing) {
        let started = std::time::Instant::now();
        let cleansing = cleanse::run(conn, ids).map_err(wrap(Phase::DataCleansing))?;
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
    if runs(Phase::Inventory) {
        let started = std::time::Instant::now();
        let inventory = inventory::run(conn, ids, staged.take()).map_err(wrap(Phase::Inventory))?;
        tracing::debug!(
            "built {} assets from {} records in {:.2}s",
            inventory.assets,
            inventory.records,
            started.elapsed().as_secs_f64()
        );
        let summary = inventory_summary(&inventory);
        flow::complete_phase(conn, ids, Phase::Inventory, &summary)
            .map_err(wrap(Phase::Inventory))?;
        flow::record_discovered(conn, ids, &summary).map_err(wrap(Phase::Inventory))?;
        outcomes.inventory = Some(inventory);
    }
    if runs(Phase::Dependencies) {
        let started = std::time::Instant::now();
        let found = dependencies::run(conn, ids).map_err(wrap(Phase::Dependencies))?;
        tracing::debug!(
            "derived {} dependencies in {:.2}s",
            found.edges,
            started.elapsed().as_secs_f64()
        );
        dependencies::record(conn, ids, &found).map_err(wrap(Phase::Dependencies))?;
        let summary = json!({
            "edges": found.edges, "created": found.created, "updated": found.updated,
            "removed": found.removed, "unchanged": found.unchanged, "by_type": found.by_type,
            "hosts_created": found.hosts_created, "applications_created": found.applications_created,
            "unresolved": found.unresolved,
        });
        flow::complete_phase(conn, ids, Phase::Dependencies, &summary)
            .map_err(wrap(Phase::Dependencies))?;
        outcomes.dependencies = Some(found);
    }
    if runs(Phase::TechDebt) {
        let started = std::time::Instant::now();
        let verdicts = tech_debt::run(conn, ids, options.support_as_of.as_deref())
            .map_err(wrap(Phase::TechDebt))?;
        tracing::debug!(
            "judged the support of {} assets in {:.2}s",
            verdicts.assets,
            started.elapsed().as_secs_f64()
        );
        let analysis = tech_debt::analysis(conn, ids, &verdicts).map_err(wrap(Phase::TechDebt))?;
        tech_debt::record(conn, ids, &analysis).map_err(wrap(Phase::TechDebt))?;
        let summary = json!({ "as_of": verdicts.as_of, "assets": verdicts.assets, "updated": verdicts.updated,
            "by_status": verdicts.by_status, "sixr_ready": verdicts.sixr_ready });
        flow::complete_phase(conn, ids, Phase::TechDebt, &summary)
            .map_err(wrap(Phase::TechDebt))?;
        flow::finish(conn, ids).map_err(wrap(Phase::TechDebt))?;
        outcomes.tech_debt = Some(verdicts);
    }
    Ok(())
}

fn inventory_summary(inventory: &InventoryOutcome) -> serde_json::Value {
    json!({
        "assets": inventory.assets, "created": inventory.created, "updated": inventory.updated,
        "unchanged": inventory.unchanged, "records": inventory.records, "merged_records": inventory.merged_records,
        "by_type": inventory.by_type,
    })
}

/// Flows a killed run left after their import but before their inventory: the
/// next run finishes them from their first undone phase.
pub fn resume_unfinished(
    conn: &Connection,
    options: &PhaseOptions,
) -> Result<Vec<String>, PipelineError> {
    let stale: Vec<(FlowIds, [i64; 4])> = conn
        .prepare(
            "SELECT id, master_flow_id, attribute_mapping_completed, data_cleansing_completed,
                    inventory_completed, dependencies_completed FROM discovery_flows
             WHERE status = 'running' AND data_import_completed = 1 AND tech_debt_completed = 0",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    FlowIds {
                        discovery_flow_id: r.get(0)?,
                        master_flow_id: r.get(1)?,
                    },
                    [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                ))
            })?
            .collect()
        })
        .map_err(|source| PipelineError::Phase {
            phase: "resume",
            source,
        })?;
    for (ids, done) in &stale {
        // The first phase not done; the flags are set in phase order.
        let from = [
            Phase::AttributeMapping,
            Phase::DataCleansing,
            Phase::Inventory,
            Phase::Dependencies,
        ]
        .into_iter()
        .zip(done)
        .find(|(_, flag)| **flag == 0)
        .map_or(Phase::TechDebt, |(phase, _)| phase);
        run_from(conn, ids, from, options)?;
    }
    Ok(stale
        .into_iter()
        .map(|(ids, ..)| ids.master_flow_id)
        .collect())
}
