//! `intake sync`: push one completed flow to the central PostgreSQL.

use std::path::Path;

use clap::Args;

use intake::db;
use intake::sync::{self, SyncRequest};

/// Push a completed discovery flow to the central PostgreSQL, all or nothing
///
/// Sends the flow and everything linked to its master_flow_id (tenant rows,
/// flows, imports, raw records, mappings, assets, dependencies) in one
/// transaction, locked per client and engagement. Rows go by binary COPY into
/// staging tables and are upserted; the flow's central rows that no longer
/// exist locally are deleted; a second sync of an unchanged flow changes
/// nothing. Counts and a checksum per table are verified before COMMIT, and
/// every attempt is logged (sync_log locally, intake_sync_log centrally).
/// The connection string comes from DATABASE_URL (or --database-url) and is
/// never printed.
///
/// Examples:
///   DATABASE_URL=postgres://me@db.example.com/platform intake sync --latest
///   intake sync --flow 01935a2c --dry-run
///   intake sync --create-schema --json
///
/// Exit codes:
///   0  synced, planned (--dry-run), or nothing to do: the central rows
///      already equal the local flow (--json's "outcome" says which)
///   1  failed (connection lost, server error); nothing was changed centrally
///   2  the command line is wrong (also: no DATABASE_URL)
///   3  no flow in the local database, or no such flow
///   4  refused: the flow is not completed, the central schema differs, or a
///      row belongs to another client or engagement centrally
///   5  locked: another sync of the same engagement is running
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SyncArgs {
    /// A master or discovery flow id, or a unique prefix [default: the latest flow]
    #[arg(long, value_name = "ID", conflicts_with = "latest")]
    pub flow: Option<String>,

    /// Sync the latest flow (the default)
    #[arg(long)]
    pub latest: bool,

    /// The central database [default: $DATABASE_URL]
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Print the plan (inserts, updates, deletes per table) and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Create the central tables that are missing (schema.postgres.sql)
    #[arg(long)]
    pub create_schema: bool,

    /// Print the outcome as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SyncArgs, db_path: &Path, quiet: bool) -> anyhow::Result<i32> {
    let Some(url) = args.database_url.as_deref() else {
        eprintln!("error: no central database: set DATABASE_URL or pass --database-url");
        return Ok(super::exit::USAGE);
    };
    // A sync reads a local database; it never creates one.
    if !db_path.exists() {
        super::say(&format!(
            "error: no database {}; run `intake import` first (or give --db FILE)",
            db_path.display()
        ));
        return Ok(super::exit::NOT_FOUND);
    }
    let conn = db::open(db_path)?;
    let request = SyncRequest {
        flow: args.flow.as_deref(),
        database_url: url,
        dry_run: args.dry_run,
        create_schema: args.create_schema,
        progress: !quiet && !args.json,
    };
    match sync::run(&conn, &request) {
        Ok(outcome) => {
            if args.json {
                super::print_json(&outcome)?;
            } else {
                super::print_text(&intake::console::sync_table(&outcome))?;
            }
            if !quiet {
                let said = match outcome.outcome {
                    "planned" => "planned (dry run: nothing was written)",
                    "unchanged" => "already up to date: nothing to do",
                    _ => "synced",
                };
                super::say(&format!(
                    "flow {} to {}: {said} in {:.2}s; checksum {}",
                    outcome.master_flow_id, outcome.target, outcome.seconds, outcome.checksum
                ));
            }
            Ok(super::exit::of_sync(&outcome))
        }
        Err(error) => {
            let code = super::exit::of_sync_error(&error);
            if args.json {
                super::print_json(
                    &serde_json::json!({ "outcome": error.outcome(), "error": error.to_string() }),
                )?;
            }
            super::say(&format!("error: {error}"));
            Ok(code)
        }
    }
}
