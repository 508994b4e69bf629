//! The sync to the central PostgreSQL: one completed flow and everything linked
//! to its master_flow_id (its tenant rows, the flows, imports, raw records,
//! mappings, assets and dependencies) in one transaction. The engagement is
//! locked (`pg_try_advisory_xact_lock`), each table's rows go by binary COPY
//! into a temporary staging table (`tables`), a plan is counted, rows of
//! another tenant refuse the sync, then the rows are upserted and the flow's
//! rows that no longer exist locally deleted. Before COMMIT every table is
//! verified: the staged count and checksum equal the local ones and no central
//! row differs from its local row. Each attempt is logged locally (sync_log)
//! and, when it commits, centrally (intake_sync_log).

pub mod central_url;
mod tables;

use std::time::Instant;

use postgres::{Client, NoTls, Transaction};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use crate::db;
use crate::flow::FlowIds;
pub use tables::TABLES;

/// The central DDL that mirrors schema.sql.
pub const POSTGRES_SCHEMA_SQL: &str = include_str!("../../schema.postgres.sql");

/// What to sync and where.
pub struct SyncRequest<'a> {
    /// A master or discovery flow id or unique prefix; None: the latest flow.
    pub flow: Option<&'a str>,
    pub database_url: &'a str,
    pub dry_run: bool,
    pub create_schema: bool,
    /// Show a progress bar per table (drawn only on a terminal).
    pub progress: bool,
}

/// Why a sync did not happen. Each variant says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no discovery flow in the local database; run `intake import` first")]
    NoFlow,
    #[error("no flow matches '{0}'; `intake mappings` shows the latest flow's id")]
    UnknownFlow(String),
    #[error("only a completed flow is synced, and {note}")]
    NotCompleted { flow: String, note: String },
    #[error("cannot connect to the central database ({target}): {source}. Check DATABASE_URL or --database-url (user, password, database name) and that the server is reachable")]
    Connect {
        target: String,
        source: CentralError,
    },
    #[error("the central schema does not match this intake's:\n  {}\nRun `intake sync --create-schema` to create what is missing, or have the platform team migrate the central database", .0.join("\n  "))]
    SchemaMismatch(Vec<String>),
    #[error("another sync of client {client} / engagement {engagement} is running; try again when it has finished")]
    Locked { client: String, engagement: String },
    #[error("{table} row {key} already exists centrally under another {owner}; nothing was synced. Check that --db is the right local file, and ask the platform team who owns that row")]
    OtherTenant {
        table: &'static str,
        key: String,
        owner: &'static str,
    },
    #[error("{table} would break a unique constraint centrally ({detail}); nothing was synced")]
    Conflict { table: &'static str, detail: String },
    #[error("verification of {table} failed before commit: {detail}; nothing was synced")]
    Verification { table: &'static str, detail: String },
    #[error("{table} row {key} refers to {parent} {id}, which belongs to another client or engagement centrally; nothing was synced. Check that --db is the right local file")]
    ForeignReference {
        table: &'static str,
        key: String,
        parent: &'static str,
        id: String,
    },
    #[error("{0}")]
    Url(#[from] central_url::UrlError),
    #[error("flow {flow}'s dependencies point at {assets} asset(s) that a later flow took over locally and the central database does not hold yet; nothing was synced. Sync that flow first (`intake sync --flow {}`), then this one again", holders.join("`, `intake sync --flow "))]
    SyncFirst {
        flow: String,
        assets: usize,
        holders: Vec<String>,
    },
    #[error("central database error: {0}; nothing was synced")]
    Postgres(#[from] CentralError),
    #[error("local database error: {0}")]
    Local(#[from] rusqlite::Error),
}

impl From<postgres::Error> for SyncError {
    fn from(error: postgres::Error) -> Self {
        SyncError::Postgres(CentralError(error))
    }
}

/// An error of the central database with its cause: the SQLSTATE and the
/// server's message, detail and hint, or what failed on the way to the
/// server. postgres' own Display says only "db error". The connection
/// string (and so a password) is never part of it.
#[derive(Debug)]
pub struct CentralError(pub postgres::Error);

impl std::fmt::Display for CentralError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            write!(f, "{} (SQLSTATE {}", db.message(), db.code().code())?;
            if let Some(table) = db.table() {
                write!(f, ", table {table}")?;
            }
            if let Some(constraint) = db.constraint() {
                write!(f, ", constraint {constraint}")?;
            }
            write!(f, ")")?;
            if let Some(detail) = db.detail() {
                write!(f, "; {detail}")?;
            }
            if let Some(hint) = db.hint() {
                write!(f, "; hint: {hint}")?;
            }
            return Ok(());
        }
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(&self.0);
        while let Some(inner) = cause {
            write!(f, ": {inner}")?;
            cause = inner.source();
        }
        Ok(())
    }
}

impl std::error::Error for CentralError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl SyncError {
    /// refused, locked or failed: the outcome the sync logs record (the
    /// command's exit code follows from it).
    pub fn outcome(&self) -> &'static str {
        match self {
            SyncError::NotCompleted { .. }
            | SyncError::SchemaMismatch(_)
            | SyncError::OtherTenant { .. }
            | SyncError::ForeignReference { .. }
            | SyncError::SyncFirst { .. }
            | SyncError::Conflict { .. } => "refused",
            SyncError::Locked { .. } => "locked",
            _ => "failed",
        }
    }
}

/// What one table's sync did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TablePlan {
    pub table: &'static str,
    pub rows: u64,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub checksum: String,
}

/// What a sync did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    pub master_flow_id: String,
    pub client_account_id: String,
    pub engagement_id: String,
    /// The server and database, without user or password.
    pub target: String,
    /// synced, unchanged, or planned (a dry run).
    pub outcome: &'static str,
    pub tables: Vec<TablePlan>,
    pub checksum: String,
    pub seconds: f64,
}

/// The flow being synced and its tenant.
struct FlowToSync {
    ids: FlowIds,
    client: String,
    engagement: String,
    synced_by: String,
}

/// Syncs one completed flow. Every attempt that gets as far as a flow is
/// recorded in the local sync_log, whatever its outcome; a dry run writes
/// nothing anywhere.
pub fn run(conn: &Connection, request: &SyncRequest) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    let central = central_url::parse(request.database_url)?;
    // One read transaction: every table is read as of one moment, even if
    // an import writes to the file meanwhile (its commit waits). It ends
    // once every table is staged centrally (`load_and_apply`), or here.
    conn.execute_batch("BEGIN")?;
    let flow = flow_to_sync(conn, request.flow);
    let result = flow.map(|flow| {
        let target = central_url::target(&central);
        let result = sync_flow(conn, request, &central, &flow, &target, started);
        (flow, target, result)
    });
    end_snapshot(conn)?;
    let (flow, target, result) = result?;
    if request.dry_run {
        return result;
    }
    let (outcome, counts, checksum, message) = match &result {
        Ok(done) => (
            done.outcome,
            counts_json(&done.tables),
            Some(done.checksum.clone()),
            None,
        ),
        Err(e) => (e.outcome(), json!({}), None, Some(e.to_string())),
    };
    conn.execute(
        "INSERT INTO sync_log (id, master_flow_id, synced_by, synced_at, target, outcome, counts, checksum, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            db::new_id(),
            flow.ids.master_flow_id,
            flow.synced_by,
            db::now(),
            target,
            outcome,
            counts.to_string(),
            checksum,
            message
        ],
    )?;
    result
}

/// Ends the local read transaction if it is still open.
fn end_snapshot(conn: &Connection) -> rusqlite::Result<()> {
    if conn.is_autocommit() {
        Ok(())
    } else {
        conn.execute_batch("ROLLBACK")
    }
}

fn sync_flow(
    conn: &Connection,
    request: &SyncRequest,
    central: &postgres::Config,
    flow: &FlowToSync,
    target: &str,
    started: Instant,
) -> Result<SyncOutcome, SyncError> {
    let mut client = central
        .connect(NoTls)
        .map_err(|source| SyncError::Connect {
            target: target.to_string(),
            source: CentralError(source),
        })?;
    // The schema is compared outside any data transaction, and created or
    // upgraded only when something is missing (`ensure_schema`).
    let missing = schema_differences(conn, &mut client)?;
    let create_in_dry_run = !missing.is_empty() && request.create_schema && request.dry_run;
    if !missing.is_empty() && !create_in_dry_run {
        if !request.create_schema {
            return Err(SyncError::SchemaMismatch(missing));
        }
        ensure_schema(conn, &mut client)?;
    }
    let mut tx = client.transaction()?;
    // Local times without a zone (first_discovered_at from an export) are UTC.
    tx.batch_execute("SET LOCAL TIME ZONE 'UTC'")?;
    // A dry run plans against the schema it would create, rolled back with it.
    let result = if create_in_dry_run {
        create_schema_in(&mut tx).map_err(SyncError::from)
    } else {
        Ok(())
    }
    .and_then(|()| load_and_apply(conn, &mut tx, request, flow));
    let tables = match result {
        Ok(tables) => tables,
        Err(e) => {
            drop(tx); // rolls back
            if !request.dry_run && !matches!(e, SyncError::Locked { .. }) {
                log_central_failure(&mut client, flow, &e);
            }
            return Err(e);
        }
    };
    let changed = tables.iter().any(|t| t.inserts + t.updates + t.deletes > 0);
    let outcome = match (request.dry_run, changed) {
        (true, _) => "planned",
        (false, true) => "synced",
        (false, false) => "unchanged",
    };
    let checksum = combined_checksum(&tables);
    if request.dry_run {
        tx.rollback()?;
    } else {
        tx.execute(
            "INSERT INTO intake_sync_log (id, client_account_id, engagement_id, master_flow_id, synced_by,
               synced_at, outcome, counts, checksum)
             VALUES ($1::text::uuid, $2::text::uuid, $3::text::uuid, $4::text::uuid, $5, now(), $6, $7::text::jsonb, $8)",
            &[
                &db::new_id(),
                &flow.client,
                &flow.engagement,
                &flow.ids.master_flow_id,
                &flow.synced_by,
                &outcome,
                &counts_json(&tables).to_string(),
                &checksum,
            ],
        )?;
        tx.commit()?;
    }
    Ok(SyncOutcome {
        master_flow_id: flow.ids.master_flow_id.clone(),
        client_account_id: flow.client.clone(),
        engagement_id: flow.engagement.clone(),
        target: target.to_string(),
        outcome,
        tables,
        checksum,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Everything inside the transaction: lock, load, check, apply, verify.
fn load_and_apply(
    conn: &Connection,
    tx: &mut Transaction,
    request: &SyncRequest,
    flow: &FlowToSync,
) -> Result<Vec<TablePlan>, SyncError> {
    let lock_key = format!("intake sync {} {}", flow.client, flow.engagement);
    let locked: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
            &[&lock_key],
        )?
        .get(0);
    if !locked {
        return Err(SyncError::Locked {
            client: flow.client.clone(),
            engagement: flow.engagement.clone(),
        });
    }
    refuse_edges_to_unsynced_flows(conn, tx, flow)?;
    let scope = tables::Scope {
        master_flow_id: &flow.ids.master_flow_id,
        client_account_id: &flow.client,
        engagement_id: &flow.engagement,
    };
    let bars = crate::progress::TableBars::new(request.progress);
    // Load and check every table before writing any.
    let mut loaded = Vec::with_capacity(TABLES.len());
    let step = |what: &str, table: &str, since: Instant| {
        tracing::debug!("{table}: {what} in {:.2}s", since.elapsed().as_secs_f64());
    };
    for spec in TABLES {
        let columns = tables::local_columns(conn, spec.name)?;
        let central = tables::central_columns(tx, spec.name)?;
        let started = Instant::now();
        let sent = tables::stage(tx, conn, spec, &scope, &columns, &central, &bars)?;
        step("copied", spec.name, started);
        let started = Instant::now();
        let arrived = tables::staged_summary(tx, spec, &columns)?;
        step("checksummed", spec.name, started);
        if arrived != sent {
            return Err(SyncError::Verification {
                table: spec.name,
                detail: format!(
                    "{} rows with checksum {} arrived, {} rows with checksum {} were sent",
                    arrived.rows, arrived.checksum, sent.rows, sent.checksum
                ),
            });
        }
        if spec.keeps_moved_rows() {
            tables::stage_kept_ids(tx, conn, spec, &scope)?;
        }
        let started = Instant::now();
        tables::refuse_other_tenants(tx, spec, &columns)?;
        let mut plan = tables::plan(tx, spec, &columns, &central, &scope)?;
        step("checked and planned", spec.name, started);
        plan.rows = sent.rows;
        plan.checksum = sent.checksum;
        loaded.push((spec, columns, central, plan));
    }
    // Everything local is read: local writers need not wait for the rest.
    end_snapshot(conn)?;
    // Deletes first, children before parents; then upserts, parents first, each
    // verified as it is written.
    for (spec, _, _, plan) in loaded.iter().rev() {
        if plan.deletes > 0 {
            tables::delete_missing(tx, spec, &scope)?;
        }
    }
    for (spec, columns, central, plan) in &loaded {
        let started = Instant::now();
        let written = if plan.inserts + plan.updates > 0 {
            tables::upsert(tx, spec, columns, central, plan.inserts == plan.rows)?
        } else {
            0
        };
        step("upserted", spec.name, started);
        // The upsert never takes over another tenant's row (its conflict
        // update is guarded by tenant); one that appeared since the first
        // check is found here, in the same transaction, and refuses it all.
        tables::refuse_other_tenants(tx, spec, columns)?;
        tables::verify(tx, spec, &scope, plan, written)?;
    }
    // Every row this flow refers to (a dependency's two assets, a record's
    // import) is this tenant's, as the transaction is about to commit it.
    for (spec, _, _, _) in &loaded {
        tables::refuse_foreign_references(tx, spec, &scope)?;
    }
    Ok(loaded.into_iter().map(|(.., plan)| plan).collect())
}

fn flow_to_sync(conn: &Connection, flow: Option<&str>) -> Result<FlowToSync, SyncError> {
    use crate::flow::{self, FindFlowError};
    let ids = flow::find(conn, flow).map_err(|e| match e {
        FindFlowError::NoFlow => SyncError::NoFlow,
        FindFlowError::UnknownFlow(f) => SyncError::UnknownFlow(f),
        FindFlowError::Sql(e) => SyncError::Local(e),
    })?;
    let (status, client, engagement, user): (String, String, String, Option<String>) = conn
        .query_row(
            "SELECT f.status, f.client_account_id, f.engagement_id, u.username
             FROM discovery_flows f LEFT JOIN users u ON u.id = f.user_id WHERE f.id = ?1",
            [&ids.discovery_flow_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
    if status != "completed" {
        let running_now = conn
            .path()
            .is_some_and(|path| db::WriterLock::is_held(std::path::Path::new(path)));
        let note = flow::unfinished(conn, &ids, running_now)?
            .unwrap_or_else(|| format!("flow {} is {status}", ids.master_flow_id));
        return Err(SyncError::NotCompleted {
            flow: ids.master_flow_id,
            note,
        });
    }
    Ok(FlowToSync {
        ids,
        client,
        engagement,
        synced_by: user.unwrap_or_else(|| "intake".into()),
    })
}

/// Refuses at once a flow whose dependencies point at assets that a later
/// flow took over locally and that the central database does not hold yet:
/// the edges could not be written until that flow is synced, and finding it
/// out at the foreign-key check came after every table was copied.
fn refuse_edges_to_unsynced_flows(
    conn: &Connection,
    tx: &mut Transaction,
    flow: &FlowToSync,
) -> Result<(), SyncError> {
    let held: Vec<(String, String)> = conn
        .prepare(
            "SELECT a.id, a.master_flow_id FROM assets a
             WHERE a.id IN (SELECT asset_id FROM asset_dependencies WHERE master_flow_id = ?1
                            UNION SELECT depends_on_asset_id FROM asset_dependencies WHERE master_flow_id = ?1)
               AND a.master_flow_id <> ?1",
        )?
        .query_map([&flow.ids.master_flow_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if held.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = held.iter().map(|(id, _)| id.as_str()).collect();
    let central: std::collections::HashSet<String> = tx
        .query(
            "SELECT id::text FROM assets WHERE id = ANY($1::text[]::uuid[])",
            &[&ids],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut holders: Vec<&str> = held
        .iter()
        .filter(|(id, _)| !central.contains(id))
        .map(|(_, holder)| holder.as_str())
        .collect();
    holders.sort_unstable();
    holders.dedup();
    if holders.is_empty() {
        return Ok(());
    }
    Err(SyncError::SyncFirst {
        flow: flow.ids.master_flow_id.clone(),
        assets: held.iter().filter(|(id, _)| !central.contains(id)).count(),
        holders: holders.iter().map(|h| h.to_string()).collect(),
    })
}

/// Serialises every change to the central schema, whichever tenant makes it.
const SCHEMA_LOCK_KEY: &str = "intake central schema";

/// How long one attempt at the schema's DDL may wait for a table lock: a
/// reader queued behind an ALTER TABLE waits with it, so the wait is short
/// and retried rather than long.
const SCHEMA_LOCK_WAIT: &str = "500ms";
const SCHEMA_ATTEMPTS: u32 = 240;

/// What the central schema lacks that this intake writes: missing tables
/// and columns.
fn schema_differences(
    conn: &Connection,
    client: &mut impl postgres::GenericClient,
) -> Result<Vec<String>, SyncError> {
    let mut differences = Vec::new();
    for spec in TABLES.iter().map(|t| t.name).chain(["intake_sync_log"]) {
        let central: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1",
                &[&spec],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if central.is_empty() {
            differences.push(format!("table {spec} is missing"));
            continue;
        }
        if spec == "intake_sync_log" {
            continue;
        }
        for column in tables::local_columns(conn, spec)? {
            if !central.contains(&column) {
                differences.push(format!("column {spec}.{column} is missing"));
            }
        }
    }
    Ok(differences)
}

/// Creates what the central schema lacks, in a transaction of its own under
/// one global advisory lock: concurrent syncs wait for the first to finish
/// and then find nothing to do. The DDL takes table locks only briefly: each
/// attempt gives up after SCHEMA_LOCK_WAIT and is tried again, so that the
/// platform's readers never queue behind it for long.
fn ensure_schema(conn: &Connection, client: &mut Client) -> Result<(), SyncError> {
    for attempt in 1..=SCHEMA_ATTEMPTS {
        let mut tx = client.transaction()?;
        tx.query_one(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&SCHEMA_LOCK_KEY],
        )?;
        // Another sync may have created it while this one waited.
        if schema_differences(conn, &mut tx)?.is_empty() {
            return Ok(tx.commit()?);
        }
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{SCHEMA_LOCK_WAIT}'"))?;
        match create_schema_in(&mut tx) {
            Ok(()) => {
                tx.commit()?;
                let left = schema_differences(conn, client)?;
                return if left.is_empty() {
                    Ok(())
                } else {
                    Err(SyncError::SchemaMismatch(left))
                };
            }
            Err(e) if is_lock_timeout(&e) && attempt < SCHEMA_ATTEMPTS => {
                drop(tx);
                tracing::info!(
                    "the central schema change waits for a table lock (attempt {attempt})"
                );
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}

/// Runs schema.postgres.sql (every statement IF NOT EXISTS) in `tx`.
fn create_schema_in(tx: &mut Transaction) -> Result<(), postgres::Error> {
    tx.batch_execute(POSTGRES_SCHEMA_SQL)
}

fn is_lock_timeout(error: &postgres::Error) -> bool {
    error.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// Records a failed attempt centrally, outside the rolled-back transaction.
/// Best effort: the connection itself may be what failed.
fn log_central_failure(client: &mut Client, flow: &FlowToSync, error: &SyncError) {
    if client.is_closed() {
        return;
    }
    let _ = client.execute(
        "INSERT INTO intake_sync_log (id, client_account_id, engagement_id, master_flow_id, synced_by,
           synced_at, outcome, message)
         VALUES ($1::text::uuid, $2::text::uuid, $3::text::uuid, $4::text::uuid, $5, now(), $6, $7)",
        &[
            &db::new_id(),
            &flow.client,
            &flow.engagement,
            &flow.ids.master_flow_id,
            &flow.synced_by,
            &error.outcome(),
            &error.to_string(),
        ],
    );
}

fn counts_json(tables: &[TablePlan]) -> serde_json::Value {
    serde_json::Value::Object(
        tables
            .iter()
            .map(|t| {
                (
                    t.table.to_string(),
                    json!({ "rows": t.rows, "inserts": t.inserts, "updates": t.updates, "deletes": t.deletes }),
                )
            })
            .collect(),
    )
}

/// One checksum for the whole flow: the MD5 of the tables' checksums in order.
fn combined_checksum(tables: &[TablePlan]) -> String {
    use md5::{Digest, Md5};
    let mut hasher = Md5::new();
    for t in tables {
        hasher.update(t.table.as_bytes());
        hasher.update(t.checksum.as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// host:port/dbname of a connection string: what may be shown and logged.
pub fn describe_target(database_url: &str) -> String {
    match central_url::parse(database_url) {
        Ok(config) => central_url::target(&config),
        Err(_) => "an unreadable connection string".into(),
    }
}
