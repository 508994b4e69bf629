//! The shape every discovery phase after the import shares: it is given a
//! `PhaseCtx` (the connection it writes through, the flow it works on and the
//! tenant the flow belongs to) and returns an outcome that implements
//! `PhaseOutcome`, which `pipeline` records in the flow. A phase never marks
//! itself complete: the pipeline does, from the outcome, so a phase that fails
//! leaves its flag unset and the next run redoes it.

use rusqlite::Connection;
use serde::Serialize;

use crate::flow::{self, FlowIds, Phase};

/// The client account and engagement a flow belongs to, as ids.
#[derive(Debug, Clone)]
pub struct FlowTenant {
    pub client_account_id: String,
    pub engagement_id: String,
}

/// What a phase is given: one connection (the run's only writer), the flow's
/// ids and its tenant, read once when the context is made.
pub struct PhaseCtx<'c> {
    pub conn: &'c Connection,
    pub ids: FlowIds,
    pub tenant: FlowTenant,
    /// The phase's progress bar: a phase adds what it worked through (rows,
    /// machines); hidden when bars are off, and then nearly free.
    pub progress: indicatif::ProgressBar,
}

impl<'c> PhaseCtx<'c> {
    /// The context of a flow, its tenant read from its discovery_flows row.
    pub fn of_flow(conn: &'c Connection, ids: &FlowIds) -> rusqlite::Result<PhaseCtx<'c>> {
        let tenant = conn.query_row(
            "SELECT client_account_id, engagement_id FROM discovery_flows WHERE id = ?1",
            [&ids.discovery_flow_id],
            |r| {
                Ok(FlowTenant {
                    client_account_id: r.get(0)?,
                    engagement_id: r.get(1)?,
                })
            },
        )?;
        Ok(PhaseCtx {
            conn,
            ids: ids.clone(),
            tenant,
            progress: indicatif::ProgressBar::hidden(),
        })
    }
}

/// What a phase returns: shown to the user (`--json` is its serde form) and
/// recorded in the flow by the pipeline.
pub trait PhaseOutcome: Serialize {
    /// The phase this is the outcome of.
    const PHASE: Phase;

    /// What the flow keeps of it (flow_state and phase_progression).
    fn summary(&self) -> serde_json::Value;

    /// Records the phase as completed with its summary. An outcome that also
    /// fills a column of the flow (the inventory's discovered_assets) adds it
    /// here, in the same place.
    fn record(&self, ctx: &PhaseCtx) -> rusqlite::Result<()> {
        flow::complete_phase(ctx.conn, &ctx.ids, Self::PHASE, &self.summary())
    }
}
