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
use crate::inventory::{self, FirstBuild, InventoryOutcome};
use crate::map::decision;
use crate::map::{self, ImportMapping, MapOptions, MappingOutcome};
use crate::phase::{PhaseCtx, PhaseOutcome};
use crate::phase_cost::{Meter, PhaseCost};
use crate::progress::PhaseBars;
use crate::tech_debt::{self, TechDebtOutcome};

/// What the phases of one flow did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseOutcomes {
    pub mapping: Option<MappingOutcome>,
    pub cleansing: Option<CleanseOutcome>,
    pub inventory: Option<InventoryOutcome>,
    pub dependencies: Option<DependenciesOutcome>,
    pub tech_debt: Option<TechDebtOutcome>,
    /// Each phase run, in order: its time and peak memory.
    pub costs: Vec<PhaseCost>,
}

/// What the phases after mapping need besides the mapping options.
#[derive(Debug, Clone, Default)]
pub struct PhaseOptions {
    pub mapping: MapOptions,
    /// The day support status is judged on (YYYY-MM-DD); today when None.
    pub support_as_of: Option<String>,
    /// A progress bar per phase on a terminal.
    pub progress: bool,
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
        StagedWork::default(),
    )
}

/// The phases' work done while the files were staged (composed by
/// `import::staging_work`): the imports mapped from their first rows, and the
/// assets of an engagement's first build (see `inventory::FirstBuild`).
#[derive(Default)]
pub struct StagedWork<'c> {
    pub mappings: Vec<ImportMapping>,
    pub assets: Option<FirstBuild<'c>>,
}

/// Runs the phases from `from` through `until`; the flow stays running when
/// `until` is before tech_debt, and a later run finishes it. `staged` holds
/// what was done while the files were staged.
pub fn run_between(
    conn: &Connection,
    ids: &FlowIds,
    from: Phase,
    until: Phase,
    options: &PhaseOptions,
    staged: StagedWork,
) -> Result<PhaseOutcomes, PipelineError> {
    let mut outcomes = PhaseOutcomes::default();
    let result = run_phases(conn, ids, (from, until), options, staged, &mut outcomes);
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
    staged: StagedWork,
    outcomes: &mut PhaseOutcomes,
) -> Result<(), (Phase, PipelineError)> {
    let StagedWork {
        mappings: premapped,
        assets: mut staged_assets,
    } = staged;
    let order = |p: Phase| Phase::ALL.iter().position(|x| *x == p).unwrap_or(0);
    let runs = |p: Phase| order(from) <= order(p) && order(p) <= order(until);
    let mut ctx = PhaseCtx::of_flow(conn, ids).map_err(failed_in(from))?;
    let bars = PhaseBars::new(options.progress);
    // The rows the flow holds: what cleansing and the inventory work
    // through, read once and only when bars are drawn.
    let rows: Option<u64> = bars
        .shown()
        .then(|| {
            let scope = crate::stage::tables::Scope::Flow {
                master_flow_id: &ids.master_flow_id,
            };
            crate::stage::tables::completed(conn, scope).ok()
        })
        .flatten()
        .map(|tables| {
            tables
                .iter()
                .filter(|t| !t.holds_relationships())
                .map(|t| t.records.max(0) as u64)
                .sum()
        });
    if runs(Phase::AttributeMapping) {
        ctx.progress = bars.start(Phase::AttributeMapping.name(), "columns", None);
        let started = Meter::start();
        let mapping = map::run(&ctx, &options.mapping, premapped)
            .map_err(|e| (Phase::AttributeMapping, e.into()));
        let mapping = record(&ctx, started, mapping, &mut outcomes.costs)?;
        ctx.progress.set_position(
            (mapping.approved + mapping.suggested + mapping.unmapped + mapping.ignored) as u64,
        );
        ctx.progress.finish();
        outcomes.mapping = Some(mapping);
    }
    if runs(Phase::DataCleansing) {
        ctx.progress = bars.start(Phase::DataCleansing.name(), "rows", rows);
        let started = Meter::start();
        let cleansing = cleanse::run(&ctx).map_err(failed_in(Phase::DataCleansing));
        outcomes.cleansing = Some(record(&ctx, started, cleansing, &mut outcomes.costs)?);
        ctx.progress.finish();
    }
    if runs(Phase::Inventory) {
        ctx.progress = bars.start(Phase::Inventory.name(), "rows", rows);
        let started = Meter::start();
        let inventory =
            inventory::run(&ctx, staged_assets.take()).map_err(failed_in(Phase::Inventory));
        let inventory = record(&ctx, started, inventory, &mut outcomes.costs)?;
        ctx.progress
            .finish_with_message(format!("→ {} assets", inventory.assets));
        outcomes.inventory = Some(inventory);
    }
    if runs(Phase::Dependencies) {
        ctx.progress = bars.start(Phase::Dependencies.name(), "edges", None);
        let started = Meter::start();
        let found = dependencies::run(&ctx).map_err(failed_in(Phase::Dependencies));
        let found = record(&ctx, started, found, &mut outcomes.costs)?;
        ctx.progress.set_position(found.edges);
        ctx.progress.finish();
        outcomes.dependencies = Some(found);
    }
    if runs(Phase::TechDebt) {
        ctx.progress = bars.start(Phase::TechDebt.name(), "assets", None);
        let started = Meter::start();
        let verdicts = tech_debt::run(&ctx, options.support_as_of.as_deref())
            .map_err(failed_in(Phase::TechDebt));
        let verdicts = record(&ctx, started, verdicts, &mut outcomes.costs)?;
        ctx.progress.set_position(verdicts.assets);
        ctx.progress.finish();
        outcomes.tech_debt = Some(verdicts);
        flow::finish(conn, ids).map_err(failed_in(Phase::TechDebt))?;
    }
    Ok(())
}

/// A database error of `phase`, as the pipeline reports it.
fn failed_in(phase: Phase) -> impl Fn(rusqlite::Error) -> (Phase, PipelineError) {
    move |source| {
        (
            phase,
            PipelineError::Phase {
                phase: phase.name(),
                source,
            },
        )
    }
}

/// Records a phase's outcome in the flow (the phase is then complete) and
/// hands it back; what it did and what it cost since `started` are logged,
/// and the cost is added to `costs`.
fn record<O: PhaseOutcome>(
    ctx: &PhaseCtx,
    started: Meter,
    outcome: Result<O, (Phase, PipelineError)>,
    costs: &mut Vec<PhaseCost>,
) -> Result<O, (Phase, PipelineError)> {
    let outcome = outcome?;
    outcome.record(ctx).map_err(failed_in(O::PHASE))?;
    let cost = started.stop(O::PHASE.name());
    tracing::debug!(
        "{} done in {:.2}s (peak RSS {} MB): {}",
        cost.phase,
        cost.seconds,
        cost.peak_rss_bytes.map_or(0, |b| b >> 20),
        outcome.summary()
    );
    costs.push(cost);
    Ok(outcome)
}

/// Why a mapping decision was not applied.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error(transparent)]
    Decision(#[from] decision::DecisionError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Applies a planned decision on a column's mappings, then runs cleansing
/// and the later phases again so the assets follow it; the assets that
/// re-run creates are recorded for its undo. Returns the decision's id and
/// what the phases did.
pub fn apply_mapping_decision(
    conn: &Connection,
    ids: &FlowIds,
    plan: &decision::DecisionPlan,
    user: &str,
) -> Result<(String, PhaseOutcomes), DecisionError> {
    let id = decision::apply(conn, ids, plan, user)?;
    let phases = run_from(conn, ids, Phase::DataCleansing, &PhaseOptions::default())?;
    decision::record_created_assets(conn, &id).map_err(decision::DecisionError::from)?;
    Ok((id, phases))
}

/// Undoes the flow's last mapping decision (planned by `plan_undo`): the
/// mappings go back, the assets it created go, and the phases run again so
/// every asset value is what it was before.
pub fn undo_mapping_decision(
    conn: &Connection,
    ids: &FlowIds,
    plan: &decision::UndoPlan,
) -> Result<PhaseOutcomes, DecisionError> {
    decision::undo(conn, ids, plan)?;
    Ok(run_from(
        conn,
        ids,
        Phase::DataCleansing,
        &PhaseOptions::default(),
    )?)
}

/// Flows a killed run left after their import but before their last phase,
/// and flows that failed in a phase after the import (a full disk, a lock):
/// the next run finishes them from their first undone phase. A flow that
/// fails again stays failed, with the new error, and is tried again by the
/// run after; it does not stop this run. Returns the flows finished.
pub fn resume_unfinished(
    conn: &Connection,
    options: &PhaseOptions,
) -> Result<Vec<String>, PipelineError> {
    let stale: Vec<(FlowIds, [i64; 4])> = conn
        .prepare(
            "SELECT id, master_flow_id, attribute_mapping_completed, data_cleansing_completed,
                    inventory_completed, dependencies_completed FROM discovery_flows
             WHERE status IN ('running', 'failed') AND data_import_completed = 1
               AND tech_debt_completed = 0",
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
    let mut finished = Vec::new();
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
        match run_from(conn, ids, from, options) {
            Ok(_) => finished.push(ids.master_flow_id.clone()),
            Err(error) => tracing::warn!(
                "flow {} could not be finished ({error}); it stays failed and the next run tries again",
                ids.master_flow_id
            ),
        }
    }
    Ok(finished)
}
