//! `intake consolidate`: brings a legacy platform PostgreSQL into the
//! consolidated schema the seeds describe, losing nothing. The database is
//! inspected for what it holds (v3_ tables, discovery_assets, sessions, the
//! removed tables, old column names, is_mock, missing master flows — any
//! subset, in any state), then every step runs as set-based SQL on the
//! server in one transaction under the central schema's advisory lock:
//! columns renamed and added, is_mock rows moved to a test tenant, v3 rows
//! merged into the originals, discovery_assets merged into assets by
//! machine, data quality issues into their records' validation_errors, one
//! master flow per discovery flow, import session or import, values outside
//! a CHECK normalised or kept in custom_attributes, and the legacy tables
//! and dropped columns moved to a dated archive schema. Every legacy row is
//! accounted for and the schema checked before COMMIT; a dry run, a failed
//! check or a killed run rolls everything back. The counts each step
//! reports are the rows it changed.

mod legacy;

use std::collections::BTreeMap;
use std::time::Instant;

use postgres::{NoTls, Transaction};
use serde::Serialize;

use crate::schema_check;
use crate::sync::{central_url, CentralError, POSTGRES_SCHEMA_SQL};

/// The lock `intake sync` takes to change the central schema: one
/// consolidation at a time, and no schema change beside it.
const SCHEMA_LOCK_KEY: &str = "intake central schema";

/// Where the consolidated schema is built to be read, inside the transaction.
const SCRATCH: &str = "intake_consolidate_target";

/// The client and engagement that receive the rows flagged is_mock.
const TEST_CLIENT: &str = "intake test data (was is_mock)";
const TEST_ENGAGEMENT: &str = "is_mock rows";

/// What to consolidate.
pub struct ConsolidateRequest<'a> {
    pub database_url: &'a str,
    /// Run every step, report, and roll back.
    pub dry_run: bool,
}

/// Why a consolidation did not happen. Each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ConsolidateError {
    #[error("{0}")]
    Url(#[from] central_url::UrlError),
    #[error("cannot connect to the central database ({target}): {source}. Check DATABASE_URL or --database-url and that the server is reachable")]
    Connect {
        target: String,
        source: CentralError,
    },
    #[error("verification failed, nothing was changed:\n  {}", .0.join("\n  "))]
    Verification(Vec<String>),
    #[error("central database error: {0}; nothing was changed (the transaction was rolled back)")]
    Postgres(#[from] CentralError),
}

impl From<postgres::Error> for ConsolidateError {
    fn from(error: postgres::Error) -> Self {
        ConsolidateError::Postgres(CentralError(error))
    }
}

/// One step of the plan: what it did to which table, how many rows, why.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub table: String,
    pub action: &'static str,
    pub rows: u64,
    pub reason: String,
}

/// A table's rows before and after.
#[derive(Debug, Clone, Serialize)]
pub struct TableCount {
    pub table: String,
    pub before: i64,
    /// None: the table left the working schema (archived).
    pub after: Option<i64>,
}

/// A legacy row merged into an existing one.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub table: String,
    pub from: String,
    pub legacy_id: String,
    pub into_id: String,
}

/// A column removed from the working schema that held data (archived).
#[derive(Debug, Clone, Serialize)]
pub struct DroppedColumn {
    pub table: String,
    pub column: String,
    pub rows_with_data: i64,
}

/// What a consolidation found and did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct ConsolidateOutcome {
    pub target: String,
    /// nothing_to_do, planned (dry run) or consolidated.
    pub outcome: &'static str,
    /// What was found that needs consolidating.
    pub found: Vec<String>,
    pub archive_schema: Option<String>,
    pub steps: Vec<Step>,
    pub tables: Vec<TableCount>,
    pub merged: Vec<Merged>,
    pub dropped_columns: Vec<DroppedColumn>,
    /// The tables locked (ACCESS EXCLUSIVE) until COMMIT, and for how long.
    pub locked_tables: Vec<String>,
    pub seconds: f64,
}

/// A column of a table: its name, its type as SQL, whether NOT NULL.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    sql_type: String,
    default: Option<String>,
    not_null: bool,
}

type Layout = BTreeMap<String, Vec<Column>>;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table of `schema` with its columns.
fn layout(tx: &mut impl postgres::GenericClient, schema: &str) -> Result<Layout, postgres::Error> {
    let rows = tx.query(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                pg_get_expr(d.adbin, d.adrelid), a.attnotnull
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
         ORDER BY c.relname, a.attnum",
        &[&schema],
    )?;
    let mut out = Layout::new();
    for row in rows {
        out.entry(row.get(0)).or_default().push(Column {
            name: row.get(1),
            sql_type: row.get(2),
            default: row.get(3),
            not_null: row.get(4),
        });
    }
    Ok(out)
}

fn has(layout: &Layout, table: &str, column: &str) -> bool {
    layout
        .get(table)
        .is_some_and(|cols| cols.iter().any(|c| c.name == column))
}

fn column<'l>(layout: &'l Layout, table: &str, column: &str) -> Option<&'l Column> {
    layout.get(table)?.iter().find(|c| c.name == column)
}

/// The legacy tables of the seeds present in `layout`.
fn legacy_tables(layout: &Layout) -> Vec<String> {
    layout
        .keys()
        .filter(|t| t.starts_with("v3_") || schema_check::REMOVED_TABLES.contains(&t.as_str()))
        .cloned()
        .collect()
}

/// The removed and renamed columns of the consolidated tables in `layout`.
fn legacy_columns(layout: &Layout) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // is_mock and session_id go from every table (llm_usage_logs too); the
    // renamed and removed ones from the consolidated tables.
    for (table, cols) in layout {
        if legacy::CONSOLIDATED.contains(&table.as_str()) || table.starts_with("v3_") {
            continue;
        }
        if schema_check::REMOVED_TABLES.contains(&table.as_str()) || table.starts_with(SCRATCH) {
            continue;
        }
        for c in cols {
            if schema_check::REMOVED_EVERYWHERE.contains(&c.name.as_str()) {
                out.push((table.clone(), c.name.clone()));
            }
        }
    }
    for table in legacy::CONSOLIDATED {
        let Some(cols) = layout.get(*table) else {
            continue;
        };
        let removed = schema_check::REMOVED_COLUMNS
            .iter()
            .find(|(t, _)| t == table)
            .map_or(&[][..], |(_, c)| *c);
        for c in cols {
            let renamed = legacy::RENAMED
                .iter()
                .any(|(t, old, _)| t == table && *old == c.name);
            if renamed
                || removed.contains(&c.name.as_str())
                || schema_check::REMOVED_EVERYWHERE.contains(&c.name.as_str())
            {
                out.push(((*table).to_string(), c.name.clone()));
            }
        }
    }
    out
}

/// The tables whose master_flow_id the seeds require filled.
const FLOW_LINKED: &[&str] = &[
    "discovery_flows",
    "data_imports",
    "raw_import_records",
    "import_field_mappings",
    "assets",
];

/// What needs consolidating, in words; empty when nothing does.
fn findings(
    tx: &mut impl postgres::GenericClient,
    present: &Layout,
    target: Option<&Layout>,
) -> Result<Vec<String>, postgres::Error> {
    let mut found = Vec::new();
    for table in legacy_tables(present) {
        found.push(format!("legacy table {table}"));
    }
    for (table, col) in legacy_columns(present) {
        found.push(format!("legacy column {table}.{col}"));
    }
    if let Some(target) = target {
        for (table, cols) in target {
            if !legacy::CONSOLIDATED.contains(&table.as_str()) {
                continue;
            }
            match present.get(table) {
                None => found.push(format!("missing table {table}")),
                Some(_) => {
                    let missing: Vec<&str> = cols
                        .iter()
                        .filter(|c| {
                            let renamed_here = legacy::RENAMED.iter().any(|(t, old, new)| {
                                t == table && *new == c.name && has(present, t, old)
                            });
                            !has(present, table, &c.name) && !renamed_here
                        })
                        .map(|c| c.name.as_str())
                        .collect();
                    if !missing.is_empty() {
                        found.push(format!(
                            "{} missing column(s) in {table}: {}",
                            missing.len(),
                            missing.join(", ")
                        ));
                    }
                }
            }
        }
    }
    for table in FLOW_LINKED {
        if has(present, table, "master_flow_id") {
            let n: i64 = tx
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {} WHERE master_flow_id IS NULL",
                        quote(table)
                    ),
                    &[],
                )?
                .get(0);
            if n > 0 {
                found.push(format!("{n} {table} row(s) without a master flow"));
            }
        }
    }
    Ok(found)
}

/// Consolidates the database `request.database_url` names (see the module notes).
pub fn run(request: &ConsolidateRequest) -> Result<ConsolidateOutcome, ConsolidateError> {
    let started = Instant::now();
    let config = central_url::parse(request.database_url)?;
    let target_name = central_url::target(&config);
    let mut client = config
        .connect(NoTls)
        .map_err(|source| ConsolidateError::Connect {
            target: target_name.clone(),
            source: CentralError(source),
        })?;
    let schema: String = client
        .query_one("SELECT current_schema()::text", &[])?
        .get(0);
    let present = layout(&mut client, &schema)?;
    let mut tx = client.transaction()?;
    // Waits for a schema change or another consolidation; syncs wait on the
    // tables this one locks.
    tx.query_one(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&SCHEMA_LOCK_KEY],
    )?;
    tx.batch_execute("SET LOCAL lock_timeout = '120s'")?;
    let target = scratch_target(&mut tx, &schema)?;
    let found = findings(&mut tx, &present, Some(&target))?;
    let mut outcome = ConsolidateOutcome {
        target: target_name,
        outcome: "nothing_to_do",
        found: found.clone(),
        archive_schema: None,
        steps: Vec::new(),
        tables: Vec::new(),
        merged: Vec::new(),
        dropped_columns: Vec::new(),
        locked_tables: Vec::new(),
        seconds: 0.0,
    };
    if found.is_empty() {
        tx.rollback()?;
        outcome.seconds = started.elapsed().as_secs_f64();
        return Ok(outcome);
    }
    let mut tables: Vec<String> = legacy::CONSOLIDATED
        .iter()
        .map(|t| t.to_string())
        .chain(legacy_tables(&present))
        .filter(|t| present.contains_key(t))
        .collect();
    tables.dedup();
    let mut before = BTreeMap::new();
    for t in &tables {
        before.insert(
            t.clone(),
            count(&mut tx, &format!("SELECT count(*) FROM {}", quote(t)))?,
        );
    }
    let mut work = Work {
        tx: &mut tx,
        schema: schema.clone(),
        present,
        target,
        steps: Vec::new(),
        merged: Vec::new(),
        dropped: Vec::new(),
        archive: format!("intake_archive_{}", time_stamp()),
    };
    work.consolidate()?;
    let problems = work.verify(&before)?;
    outcome.steps = std::mem::take(&mut work.steps);
    outcome.merged = std::mem::take(&mut work.merged);
    outcome.dropped_columns = std::mem::take(&mut work.dropped);
    outcome.archive_schema = Some(work.archive.clone());
    let after_layout = work.present.clone();
    drop(work);
    for t in &tables {
        let after = if after_layout.contains_key(t) {
            Some(count(
                &mut tx,
                &format!("SELECT count(*) FROM {}", quote(t)),
            )?)
        } else {
            None
        };
        outcome.tables.push(TableCount {
            table: t.clone(),
            before: before[t],
            after,
        });
    }
    outcome.locked_tables = tables;
    tx.batch_execute(&format!("DROP SCHEMA {} CASCADE", quote(SCRATCH)))?;
    if !problems.is_empty() {
        tx.rollback()?;
        return Err(ConsolidateError::Verification(problems));
    }
    if request.dry_run {
        tx.rollback()?;
        outcome.outcome = "planned";
    } else {
        tx.commit()?;
        outcome.outcome = "consolidated";
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

fn count(tx: &mut Transaction, sql: &str) -> Result<i64, postgres::Error> {
    Ok(tx.query_one(sql, &[])?.get(0))
}

/// Today as YYYYMMDD (UTC), for the archive schema's name.
fn time_stamp() -> String {
    crate::db::now()[..10].replace('-', "")
}

/// Builds the consolidated schema in a scratch schema (dropped before
/// COMMIT) and reads its tables.
fn scratch_target(tx: &mut Transaction, schema: &str) -> Result<Layout, postgres::Error> {
    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {scratch} CASCADE; CREATE SCHEMA {scratch}; SET LOCAL search_path TO {scratch}",
        scratch = quote(SCRATCH)
    ))?;
    tx.batch_execute(POSTGRES_SCHEMA_SQL)?;
    tx.batch_execute(&format!("SET LOCAL search_path TO {}", quote(schema)))?;
    layout(tx, SCRATCH)
}

/// The consolidation in progress, inside its transaction.
struct Work<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    schema: String,
    /// The working schema's tables, kept current as steps change them.
    present: Layout,
    target: Layout,
    steps: Vec<Step>,
    merged: Vec<Merged>,
    dropped: Vec<DroppedColumn>,
    archive: String,
}

impl Work<'_, '_> {
    fn step(&mut self, table: &str, action: &'static str, rows: u64, reason: impl Into<String>) {
        self.steps.push(Step {
            table: table.to_string(),
            action,
            rows,
            reason: reason.into(),
        });
    }

    fn exec(&mut self, sql: &str) -> Result<u64, postgres::Error> {
        self.tx.execute(sql, &[])
    }

    fn refresh(&mut self) -> Result<(), postgres::Error> {
        self.present = layout(self.tx, &self.schema.clone())?;
        Ok(())
    }

    fn consolidate(&mut self) -> Result<(), postgres::Error> {
        self.rename_columns()?;
        self.add_missing()?;
        self.test_tenant()?;
        self.merge_v3()?;
        self.merge_discovery_assets()?;
        self.quality_issues()?;
        self.orphans()?;
        // Statuses first: a new master flow takes its flow's status.
        self.normalise()?;
        self.master_flows()?;
        self.archive_columns()?;
        self.archive_tables()?;
        Ok(())
    }

    /// Old column names become the consolidated ones; where both exist the
    /// old values fill the new column's gaps (the old column is archived).
    fn rename_columns(&mut self) -> Result<(), postgres::Error> {
        for (table, old, new) in legacy::RENAMED {
            if !has(&self.present, table, old) {
                continue;
            }
            if has(&self.present, table, new) {
                let ty = column(&self.present, table, new)
                    .map(|c| c.sql_type.clone())
                    .unwrap_or_default();
                let n = self.exec(&format!(
                    "UPDATE {t} SET {new} = {old}::text::{ty} WHERE {new} IS NULL AND {old} IS NOT NULL",
                    t = quote(table),
                    new = quote(new),
                    old = quote(old),
                ))?;
                self.step(
                    table,
                    "filled",
                    n,
                    format!("{new} taken from the legacy {old} where empty"),
                );
            } else {
                self.tx.batch_execute(&format!(
                    "ALTER TABLE {} RENAME COLUMN {} TO {}",
                    quote(table),
                    quote(old),
                    quote(new)
                ))?;
                let n = count(self.tx, &format!("SELECT count(*) FROM {}", quote(table)))? as u64;
                self.step(
                    table,
                    "renamed",
                    n,
                    format!("column {old} is {new} in the consolidated schema"),
                );
            }
            self.refresh()?;
        }
        Ok(())
    }

    /// Columns the consolidated schema has and the table lacks are added
    /// (with their default; constraints stay with the check), then the
    /// missing tables are created.
    fn add_missing(&mut self) -> Result<(), postgres::Error> {
        let target = self.target.clone();
        for table in legacy::CONSOLIDATED {
            let (Some(cols), Some(_)) = (target.get(*table), self.present.get(*table)) else {
                continue;
            };
            let mut added = Vec::new();
            for c in cols {
                if has(&self.present, table, &c.name) {
                    continue;
                }
                let default = c
                    .default
                    .as_deref()
                    .map(|d| format!(" DEFAULT {d}"))
                    .unwrap_or_default();
                self.tx.batch_execute(&format!(
                    "ALTER TABLE {} ADD COLUMN {} {}{default}",
                    quote(table),
                    quote(&c.name),
                    c.sql_type
                ))?;
                added.push(c.name.clone());
            }
            if !added.is_empty() {
                let rows =
                    count(self.tx, &format!("SELECT count(*) FROM {}", quote(table)))? as u64;
                self.step(
                    table,
                    "columns added",
                    rows,
                    format!(
                        "{} column(s) of the consolidated schema, with their defaults: {}",
                        added.len(),
                        added.join(", ")
                    ),
                );
            }
        }
        let missing: Vec<&str> = legacy::CONSOLIDATED
            .iter()
            .copied()
            .filter(|t| !self.present.contains_key(*t))
            .collect();
        // The rest of the DDL (IF NOT EXISTS) creates what is missing.
        self.tx.batch_execute(POSTGRES_SCHEMA_SQL)?;
        for table in missing {
            self.step(table, "table created", 0, "part of the consolidated schema");
        }
        self.refresh()
    }

    /// Rows flagged is_mock belong to a test client and engagement of their own.
    fn test_tenant(&mut self) -> Result<(), postgres::Error> {
        let flagged: Vec<String> = self
            .present
            .iter()
            .filter(|(t, _)| {
                has(&self.present, t, "is_mock") && has(&self.present, t, "client_account_id")
            })
            .map(|(t, _)| t.clone())
            .collect();
        let mut any = 0i64;
        for t in &flagged {
            any += count(
                self.tx,
                &format!("SELECT count(*) FROM {} WHERE is_mock IS TRUE", quote(t)),
            )?;
        }
        if any == 0 {
            return Ok(());
        }
        self.tx.batch_execute(&format!(
            "INSERT INTO client_accounts (id, name, description, created_at, updated_at)
               SELECT gen_random_uuid(), '{TEST_CLIENT}', 'rows the legacy schema flagged is_mock', now(), now()
               WHERE NOT EXISTS (SELECT 1 FROM client_accounts WHERE name = '{TEST_CLIENT}');
             INSERT INTO engagements (id, client_account_id, name, status, created_at, updated_at)
               SELECT gen_random_uuid(), c.id, '{TEST_ENGAGEMENT}', 'active', now(), now()
               FROM client_accounts c WHERE c.name = '{TEST_CLIENT}'
                 AND NOT EXISTS (SELECT 1 FROM engagements e WHERE e.client_account_id = c.id AND e.name = '{TEST_ENGAGEMENT}');"
        ))?;
        for t in flagged {
            if t == "client_accounts" || t == "engagements" {
                continue;
            }
            let engagement = if has(&self.present, &t, "engagement_id") {
                format!(", engagement_id = (SELECT e.id FROM engagements e JOIN client_accounts c ON c.id = e.client_account_id WHERE c.name = '{TEST_CLIENT}' AND e.name = '{TEST_ENGAGEMENT}')")
            } else {
                String::new()
            };
            let n = self.exec(&format!(
                "UPDATE {} SET client_account_id = (SELECT id FROM client_accounts WHERE name = '{TEST_CLIENT}'){engagement}
                 WHERE is_mock IS TRUE",
                quote(&t)
            ))?;
            if n > 0 {
                self.step(
                    &t,
                    "moved to the test tenant",
                    n,
                    "flagged is_mock: test data belongs to a tenant of its own",
                );
            }
        }
        Ok(())
    }

    /// The value of `column` for a row `src` of `from`, cast to the target
    /// column's type; None when `from` has no such column (or synonym).
    fn source_value(&self, from: &str, table: &str, target: &Column) -> Option<String> {
        let mut names = vec![target.name.clone()];
        for (old, new) in legacy::V3_SYNONYMS {
            if *new == target.name {
                names.push((*old).to_string());
            }
        }
        for (t, old, new) in legacy::RENAMED {
            if *t == table && *new == target.name {
                names.push((*old).to_string());
            }
        }
        let found = names.iter().find_map(|n| column(&self.present, from, n))?;
        Some(if found.sql_type == target.sql_type {
            format!("src.{}", quote(&found.name))
        } else {
            format!("src.{}::text::{}", quote(&found.name), target.sql_type)
        })
    }

    /// Copies the rows of `from` into `table`: a row whose id is already
    /// there fills that row's empty columns (merged); the others are
    /// inserted. Returns (merged, inserted).
    fn merge_into(
        &mut self,
        from: &str,
        table: &str,
        key: &str,
    ) -> Result<(u64, u64), postgres::Error> {
        let Some(target_cols) = self.present.get(table).cloned() else {
            return Ok((0, 0));
        };
        let mut columns = Vec::new();
        let mut values = Vec::new();
        let mut fills = Vec::new();
        for c in &target_cols {
            let value = self.source_value(from, table, c);
            match (&value, c.not_null, legacy::fallback(table, &c.name)) {
                (Some(v), _, fallback) => {
                    columns.push(quote(&c.name));
                    values.push(match fallback {
                        Some(f) if c.not_null => format!("coalesce({v}, {f})"),
                        _ => v.clone(),
                    });
                    if c.name != key {
                        fills.push(format!("{n} = coalesce(t.{n}, {v})", n = quote(&c.name)));
                    }
                }
                (None, true, Some(f)) if c.default.is_none() => {
                    columns.push(quote(&c.name));
                    values.push(f.to_string());
                }
                _ => {}
            }
        }
        let key_q = quote(key);
        let merged = if fills.is_empty() {
            0
        } else {
            self.exec(&format!(
                "UPDATE {t} t SET {} FROM {f} src WHERE t.{key_q} = src.{key_q}",
                fills.join(", "),
                t = quote(table),
                f = quote(from)
            ))?
        };
        // The merged rows' ids, for the report.
        let ids = self.tx.query(
            &format!(
                "SELECT src.{key_q}::text FROM {f} src JOIN {t} t ON t.{key_q} = src.{key_q} LIMIT 10000",
                t = quote(table),
                f = quote(from)
            ),
            &[],
        )?;
        for row in ids {
            let id: String = row.get(0);
            self.merged.push(Merged {
                table: table.to_string(),
                from: from.to_string(),
                legacy_id: id.clone(),
                into_id: id,
            });
        }
        let inserted = self.exec(&format!(
            "INSERT INTO {t} ({cols}) SELECT {vals} FROM {f} src
             WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE t.{key_q} = src.{key_q})
             ON CONFLICT DO NOTHING",
            t = quote(table),
            f = quote(from),
            cols = columns.join(", "),
            vals = values.join(", ")
        ))?;
        Ok((merged, inserted))
    }

    /// v3_ rows into the original tables, parents first.
    fn merge_v3(&mut self) -> Result<(), postgres::Error> {
        for (v3, table) in legacy::V3_TABLES {
            if !self.present.contains_key(*v3) || !self.present.contains_key(*table) {
                continue;
            }
            let total = count(self.tx, &format!("SELECT count(*) FROM {}", quote(v3)))? as u64;
            let (merged, inserted) = self.merge_into(v3, table, "id")?;
            self.step(table, "merged from v3", merged, format!("{v3} rows whose id the original table has: their values fill its empty columns"));
            self.step(
                table,
                "migrated from v3",
                inserted,
                format!("{v3} rows the original table lacked"),
            );
            let kept = total.saturating_sub(merged + inserted);
            if kept > 0 {
                self.step(v3, "archived only", kept, format!("rows that duplicate an existing {table} row under another id (same natural key): kept in the archive"));
            }
        }
        Ok(())
    }

    /// discovery_assets into assets, one asset per machine: a row matches
    /// an asset of its engagement by the inventory's identity keys; the
    /// unmatched are inserted (one per machine), then every row fills its
    /// asset's empty columns and is named in its custom_attributes.
    fn merge_discovery_assets(&mut self) -> Result<(), postgres::Error> {
        let from = "discovery_assets";
        if !self.present.contains_key(from) || !self.present.contains_key("assets") {
            return Ok(());
        }
        let total = count(self.tx, "SELECT count(*) FROM discovery_assets")? as u64;
        let key = |alias: &str, p: &Layout| -> String {
            let mut parts = Vec::new();
            for c in ["hostname", "name", "asset_name"] {
                if has(p, if alias == "a" { "assets" } else { from }, c) {
                    parts.push(format!("nullif(lower(trim({alias}.{})), '')", quote(c)));
                }
            }
            format!(
                "coalesce({})",
                if parts.is_empty() {
                    "NULL".into()
                } else {
                    parts.join(", ")
                }
            )
        };
        let d_key = key("d", &self.present);
        let a_key = key("a", &self.present);
        let engagement = if has(&self.present, from, "engagement_id") {
            "a.engagement_id = d.engagement_id AND "
        } else {
            ""
        };
        // The inventory's identity order, one equi-join per key (the server
        // hashes each instead of comparing every pair): the strong keys,
        // then FQDN, host name or name, MAC, IP; the first key that finds
        // an asset decides.
        let mut keys: Vec<(String, String)> = Vec::new();
        for c in crate::catalogue::IDENTITY_KEYS {
            // Host name and name are one key, read from whichever each side has.
            if *c == "hostname" {
                keys.push((a_key.clone(), d_key.clone()));
            } else if has(&self.present, from, c) && has(&self.present, "assets", c) {
                keys.push((
                    format!("nullif(lower(trim(a.{q}::text)), '')", q = quote(c)),
                    format!("nullif(lower(trim(d.{q}::text)), '')", q = quote(c)),
                ));
            }
        }
        let matches = |unmatched_only: bool| {
            let only = if unmatched_only {
                " AND NOT EXISTS (SELECT 1 FROM intake_da_match m WHERE m.legacy_id = d.id)"
            } else {
                ""
            };
            let branches: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(preference, (a, d))| {
                    format!(
                        "SELECT d.id AS legacy_id, a.id AS asset_id, {preference} AS preference, a.created_at
                         FROM discovery_assets d JOIN assets a ON {engagement}{a} = {d}
                         WHERE {d} IS NOT NULL{only}"
                    )
                })
                .collect();
            format!(
                "SELECT DISTINCT ON (legacy_id) legacy_id, asset_id FROM ({}) m
                 ORDER BY legacy_id, preference, created_at, asset_id",
                branches.join(" UNION ALL ")
            )
        };
        self.tx.batch_execute(&format!(
            "CREATE TEMP TABLE intake_da_match ON COMMIT DROP AS {}",
            matches(false)
        ))?;
        // One new asset per unmatched machine (its first legacy row's id).
        let temp = "intake_da_new";
        self.tx.batch_execute(&format!(
            "CREATE TEMP TABLE {temp} ON COMMIT DROP AS
             SELECT DISTINCT ON ({eng}{d_key}) d.*
             FROM discovery_assets d WHERE NOT EXISTS (SELECT 1 FROM intake_da_match m WHERE m.legacy_id = d.id)
             ORDER BY {eng}{d_key}, d.id",
            eng = if engagement.is_empty() { "" } else { "d.engagement_id, " }
        ))?;
        let temp_cols = layout_of_temp(self.tx, temp)?;
        self.present.insert(temp.to_string(), temp_cols);
        let (_, inserted) = self.merge_into(temp, "assets", "id")?;
        self.present.remove(temp);
        self.merged.retain(|m| m.from != temp);
        self.step(
            "assets",
            "migrated from discovery_assets",
            inserted,
            "machines no asset described: one asset each",
        );
        // Every legacy row now has its asset.
        self.tx.batch_execute(&format!(
            "INSERT INTO intake_da_match (legacy_id, asset_id) {}",
            matches(true)
        ))?;
        let mut fills = Vec::new();
        let assets = self.present.get("assets").cloned().unwrap_or_default();
        for c in &assets {
            if [
                "id",
                "client_account_id",
                "engagement_id",
                "created_at",
                "updated_at",
                "custom_attributes",
            ]
            .contains(&c.name.as_str())
            {
                continue;
            }
            if let Some(v) = self.source_value(from, "assets", c) {
                fills.push(format!("{n} = coalesce(t.{n}, {v})", n = quote(&c.name)));
            }
        }
        fills.push(
            "custom_attributes = coalesce(t.custom_attributes, '{}'::jsonb) || jsonb_build_object('_discovery_asset_ids', m.ids)"
                .into(),
        );
        let merged = self.exec(&format!(
            "UPDATE assets t SET {} FROM (
               SELECT m.asset_id, jsonb_agg(m.legacy_id::text ORDER BY m.legacy_id) AS ids, (array_agg(m.legacy_id ORDER BY m.legacy_id))[1] AS first
               FROM intake_da_match m GROUP BY m.asset_id) m
             JOIN discovery_assets src ON src.id = m.first
             WHERE t.id = m.asset_id",
            fills.join(", ")
        ))?;
        let rows = self.tx.query(
            "SELECT legacy_id::text, asset_id::text FROM intake_da_match WHERE legacy_id::text <> asset_id::text LIMIT 10000",
            &[],
        )?;
        for row in rows {
            self.merged.push(Merged {
                table: "assets".into(),
                from: from.into(),
                legacy_id: row.get(0),
                into_id: row.get(1),
            });
        }
        let matched = count(self.tx, "SELECT count(*) FROM intake_da_match")? as u64;
        self.step("assets", "merged from discovery_assets", merged, format!("{matched} of {total} legacy rows merged into the asset of their machine (ids kept in custom_attributes._discovery_asset_ids)"));
        Ok(())
    }

    /// data_quality_issues become entries of their record's validation_errors.
    fn quality_issues(&mut self) -> Result<(), postgres::Error> {
        let t = "data_quality_issues";
        if !self.present.contains_key(t)
            || !has(&self.present, "raw_import_records", "validation_errors")
        {
            return Ok(());
        }
        let record = ["raw_import_record_id", "record_id", "raw_record_id"]
            .into_iter()
            .find(|c| has(&self.present, t, c));
        let Some(record) = record else {
            return Ok(());
        };
        let text = |c: &str, p: &Layout| {
            if has(p, t, c) {
                format!("q.{}::text", quote(c))
            } else {
                "NULL".to_string()
            }
        };
        let field = text("field_name", &self.present);
        let code = text("issue_type", &self.present);
        let message = text("description", &self.present);
        let severity = text("severity", &self.present);
        let ty = column(&self.present, "raw_import_records", "validation_errors")
            .map(|c| c.sql_type.clone())
            .unwrap_or_else(|| "jsonb".into());
        let n = self.exec(&format!(
            "UPDATE raw_import_records r SET validation_errors = (
               coalesce(r.validation_errors::text, '[]')::jsonb || q.issues)::text::{ty}
             FROM (SELECT q.{rec} AS record, jsonb_agg(jsonb_build_object(
                     'field', {field}, 'code', coalesce({code}, 'data_quality_issue'),
                     'message', {message}, 'severity', {severity}, 'source', 'data_quality_issues', 'legacy_id', q.id::text)) AS issues
                   FROM data_quality_issues q GROUP BY q.{rec}) q
             WHERE r.id = q.record",
            rec = quote(record)
        ))?;
        self.step(
            "raw_import_records",
            "validation errors from data_quality_issues",
            n,
            "each issue added to its record's validation_errors (the table itself is archived)",
        );
        Ok(())
    }

    /// Records and mappings whose import does not exist get one import per
    /// legacy tenant ("recovered orphans"), so no row is lost to a broken
    /// foreign key.
    fn orphans(&mut self) -> Result<(), postgres::Error> {
        for table in ["raw_import_records", "import_field_mappings"] {
            if !has(&self.present, table, "data_import_id") {
                continue;
            }
            let n = count(self.tx, &format!(
                "SELECT count(*) FROM {t} x WHERE NOT EXISTS (SELECT 1 FROM data_imports d WHERE d.id = x.data_import_id)",
                t = quote(table)
            ))?;
            if n == 0 {
                continue;
            }
            let (client, engagement) = if has(&self.present, table, "client_account_id")
                && has(&self.present, table, "engagement_id")
            {
                ("x.client_account_id", "x.engagement_id")
            } else {
                (
                    "(SELECT id FROM client_accounts ORDER BY created_at LIMIT 1)",
                    "(SELECT id FROM engagements ORDER BY created_at LIMIT 1)",
                )
            };
            self.tx.batch_execute(&format!(
                "INSERT INTO data_imports (id, client_account_id, engagement_id, import_name, import_type, filename, status, created_at, updated_at)
                 SELECT DISTINCT ON (x.data_import_id) x.data_import_id, {client}, {engagement}, 'recovered orphans', 'csv',
                        '(import missing in the legacy database)', 'completed', now(), now()
                 FROM {t} x WHERE x.data_import_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM data_imports d WHERE d.id = x.data_import_id)",
                t = quote(table)
            ))?;
            self.step(table, "orphans given an import", n as u64, "their data_import was missing: a placeholder import of their tenant keeps them linked");
        }
        Ok(())
    }

    /// One master flow (crewai_flow_state_extensions) per discovery flow,
    /// import session, import, and per tenant for assets linked to none;
    /// every flow-linked row gets its master_flow_id.
    fn master_flows(&mut self) -> Result<(), postgres::Error> {
        let masters = "crewai_flow_state_extensions";
        // Discovery flows: their legacy CrewAI flow id when it names a master, else a new one.
        if has(&self.present, "discovery_flows", "flow_id") {
            let n = self.exec(&format!(
                "UPDATE discovery_flows d SET master_flow_id = d.flow_id WHERE d.master_flow_id IS NULL
                   AND EXISTS (SELECT 1 FROM {masters} c WHERE c.flow_id = d.flow_id)"
            ))?;
            if n > 0 {
                self.step(
                    "discovery_flows",
                    "master flow linked",
                    n,
                    "its legacy flow_id is a master flow",
                );
            }
        }
        if self.present.contains_key("discovery_flows") {
            self.master_per_row(
                "discovery_flows",
                "flow_name",
                "one per discovery flow without one",
            )?;
        }
        // Imports: their discovery flow's master, else their session's, else their own.
        if has(&self.present, "discovery_flows", "data_import_id") {
            let n = self.exec(
                "UPDATE data_imports i SET master_flow_id = d.master_flow_id FROM discovery_flows d
                 WHERE i.master_flow_id IS NULL AND d.data_import_id = i.id AND d.master_flow_id IS NOT NULL",
            )?;
            self.step(
                "data_imports",
                "master flow linked",
                n,
                "the master flow of the discovery flow that names the import",
            );
        }
        if has(&self.present, "data_imports", "session_id") {
            self.tx.batch_execute(
                "CREATE TEMP TABLE intake_session_master ON COMMIT DROP AS
                 SELECT s.session_id, coalesce(
                          (SELECT i.master_flow_id FROM data_imports i WHERE i.session_id = s.session_id AND i.master_flow_id IS NOT NULL ORDER BY i.created_at LIMIT 1),
                          gen_random_uuid()) AS master, s.client_account_id, s.engagement_id, s.created_at,
                        NOT EXISTS (SELECT 1 FROM data_imports i WHERE i.session_id = s.session_id AND i.master_flow_id IS NOT NULL) AS new
                 FROM (SELECT DISTINCT ON (session_id) session_id, client_account_id, engagement_id, created_at
                       FROM data_imports WHERE session_id IS NOT NULL ORDER BY session_id, created_at) s",
            )?;
            let n = self.exec(&insert_masters_sql(
                "SELECT master, client_account_id, engagement_id, 'import session ' || session_id::text AS name, 'completed' AS status, created_at
                 FROM intake_session_master WHERE new",
            ))?;
            self.step(
                masters,
                "master flow created",
                n,
                "one per legacy import session (session ids resolved to flows)",
            );
            let linked = self.exec(
                "UPDATE data_imports i SET master_flow_id = s.master FROM intake_session_master s
                 WHERE i.master_flow_id IS NULL AND i.session_id = s.session_id",
            )?;
            self.step(
                "data_imports",
                "master flow linked",
                linked,
                "the master flow of its import session",
            );
        }
        if self.present.contains_key("data_imports") {
            self.master_per_row(
                "data_imports",
                "import_name",
                "one per import linked to no flow or session",
            )?;
        }
        for table in ["raw_import_records", "import_field_mappings"] {
            if !has(&self.present, table, "master_flow_id") {
                continue;
            }
            let n = self.exec(&format!(
                "UPDATE {t} x SET master_flow_id = i.master_flow_id FROM data_imports i
                 WHERE x.data_import_id = i.id AND x.master_flow_id IS DISTINCT FROM i.master_flow_id",
                t = quote(table)
            ))?;
            self.step(
                table,
                "master flow linked",
                n,
                "the master flow of its import",
            );
        }
        if has(&self.present, "assets", "master_flow_id") {
            let mut n = 0;
            if has(&self.present, "assets", "discovery_flow_id") {
                n += self.exec(
                    "UPDATE assets a SET master_flow_id = d.master_flow_id FROM discovery_flows d
                     WHERE a.master_flow_id IS NULL AND a.discovery_flow_id = d.id",
                )?;
            }
            if has(&self.present, "assets", "session_id")
                && has(&self.present, "data_imports", "session_id")
            {
                n += self.exec(
                    "UPDATE assets a SET master_flow_id = s.master FROM intake_session_master s
                     WHERE a.master_flow_id IS NULL AND a.session_id = s.session_id",
                )?;
            }
            self.step(
                "assets",
                "master flow linked",
                n,
                "the master flow of its discovery flow or import session",
            );
            self.tx.batch_execute(
                "CREATE TEMP TABLE intake_asset_master ON COMMIT DROP AS
                 SELECT client_account_id, engagement_id, gen_random_uuid() AS master, min(created_at) AS created_at
                 FROM assets WHERE master_flow_id IS NULL GROUP BY client_account_id, engagement_id",
            )?;
            let created = self.exec(&insert_masters_sql(
                "SELECT master, client_account_id, engagement_id, 'legacy assets' AS name, 'completed' AS status, created_at FROM intake_asset_master",
            ))?;
            self.step(
                masters,
                "master flow created",
                created,
                "one per tenant for the legacy assets no flow or session names",
            );
            let linked = self.exec(
                "UPDATE assets a SET master_flow_id = m.master FROM intake_asset_master m
                 WHERE a.master_flow_id IS NULL AND a.client_account_id = m.client_account_id AND a.engagement_id = m.engagement_id",
            )?;
            self.step(
                "assets",
                "master flow linked",
                linked,
                "the legacy-assets master flow of its tenant",
            );
        }
        Ok(())
    }

    /// A new master flow for each row of `table` that has none (named by
    /// its `name` column, with its status), linked back to the row.
    fn master_per_row(
        &mut self,
        table: &str,
        name: &str,
        reason: &str,
    ) -> Result<(), postgres::Error> {
        let temp = format!("intake_{table}_master");
        let t = quote(table);
        self.tx.batch_execute(&format!(
            "CREATE TEMP TABLE {temp} ON COMMIT DROP AS
             SELECT id, gen_random_uuid() AS master FROM {t} WHERE master_flow_id IS NULL"
        ))?;
        let n = self.exec(&insert_masters_sql(&format!(
            "SELECT f.master, x.client_account_id, x.engagement_id, x.{name}::text AS name, x.status::text AS status, x.created_at
             FROM {temp} f JOIN {t} x ON x.id = f.id",
            name = quote(name)
        )))?;
        self.exec(&format!(
            "UPDATE {t} x SET master_flow_id = f.master FROM {temp} f WHERE x.id = f.id"
        ))?;
        self.step(
            "crewai_flow_state_extensions",
            "master flow created",
            n,
            reason,
        );
        Ok(())
    }

    /// Values a consolidated CHECK refuses are normalised the way cleansing
    /// reads them, or kept in custom_attributes (never dropped).
    fn normalise(&mut self) -> Result<(), postgres::Error> {
        // (table, column, normalising SQL, allowed values, value when none
        // fits, the JSON column that keeps the original)
        let rules: [(&str, &str, &str, &str, &str, &str); 8] = [
            ("assets", "asset_type", legacy::ASSET_TYPE_SQL, "'server', 'application', 'database', 'network', 'storage'", "'server'", "custom_attributes"),
            ("assets", "environment", legacy::ENVIRONMENT_SQL, "'production', 'staging', 'test', 'development', 'disaster_recovery'", "NULL", "custom_attributes"),
            ("assets", "criticality", legacy::CRITICALITY_SQL, "'low', 'medium', 'high', 'critical'", "NULL", "custom_attributes"),
            ("assets", "six_r_strategy", legacy::SIX_R_SQL, "'rehost', 'replatform', 'refactor', 'rearchitect', 'repurchase', 'retire', 'retain'", "NULL", "custom_attributes"),
            ("import_field_mappings", "match_type", legacy::MATCH_TYPE_SQL, "'rule', 'learned', 'exact', 'alias', 'fuzzy', 'content', 'manual', 'none'", "'none'", "transformation_rules"),
            ("import_field_mappings", "status", legacy::MAPPING_STATUS_SQL, "'suggested', 'approved', 'rejected', 'ignored'", "'suggested'", "transformation_rules"),
            ("data_imports", "status", legacy::IMPORT_STATUS_SQL, "'pending', 'processing', 'completed', 'failed'", "'pending'", "read_metadata"),
            ("discovery_flows", "status", legacy::FLOW_STATUS_SQL, "'pending', 'running', 'completed', 'failed', 'cancelled'", "'pending'", "flow_state"),
        ];
        for (table, col, sql, allowed, fallback, keep) in rules {
            if !has(&self.present, table, col) || !has(&self.present, table, keep) {
                continue;
            }
            let keep_type = column(&self.present, table, keep)
                .map(|c| c.sql_type.clone())
                .unwrap_or_else(|| "jsonb".into());
            let normalised = sql.replace("lower(v)", &format!("lower(t.{col}::text)"));
            let n = self.exec(&format!(
                "UPDATE {t} t SET
                   {keep} = (coalesce(t.{keep}::text, '{{}}')::jsonb || jsonb_build_object('_legacy_{col}', t.{col}::text))::text::{keep_type},
                   {col} = coalesce({normalised}, {fallback})
                 WHERE t.{col} IS NOT NULL AND t.{col}::text NOT IN ({allowed})",
                t = quote(table)
            ))?;
            if n > 0 {
                self.step(table, "normalised", n, format!("{col} outside the consolidated values: normalised, the original kept in {keep}._legacy_{col}"));
            }
        }
        Ok(())
    }

    fn ensure_archive(&mut self) -> Result<(), postgres::Error> {
        self.tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote(&self.archive)
        ))
    }

    /// The removed and renamed columns that are still there: their non-empty
    /// values are copied to `<archive>.<table>__columns` with the row's key,
    /// then the column is dropped.
    fn archive_columns(&mut self) -> Result<(), postgres::Error> {
        let columns = legacy_columns(&self.present);
        let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (t, c) in columns {
            by_table.entry(t).or_default().push(c);
        }
        for (table, cols) in by_table {
            self.ensure_archive()?;
            let key = if table == "crewai_flow_state_extensions" {
                "flow_id".to_string()
            } else if has(&self.present, &table, "id") {
                "id".to_string()
            } else {
                self.present[&table][0].name.clone()
            };
            let any = cols
                .iter()
                .map(|c| format!("{} IS NOT NULL", quote(c)))
                .collect::<Vec<_>>()
                .join(" OR ");
            let archived = format!(
                "{}.{}",
                quote(&self.archive),
                quote(&format!("{table}__columns"))
            );
            self.tx.batch_execute(&format!(
                "CREATE TABLE {archived} AS SELECT {key}, {cols}, now() AS archived_at FROM {t} WHERE {any}",
                key = quote(&key),
                cols = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                t = quote(&table)
            ))?;
            for c in &cols {
                let n = count(
                    self.tx,
                    &format!(
                        "SELECT count(*) FROM {archived} WHERE {} IS NOT NULL",
                        quote(c)
                    ),
                )?;
                if n > 0 {
                    self.dropped.push(DroppedColumn {
                        table: table.clone(),
                        column: c.clone(),
                        rows_with_data: n,
                    });
                }
                self.tx.batch_execute(&format!(
                    "ALTER TABLE {} DROP COLUMN {} CASCADE",
                    quote(&table),
                    quote(c)
                ))?;
                self.step(&table, "column archived and dropped", n as u64, format!("{c} is not in the consolidated schema; its values are in {}.{table}__columns", self.archive));
            }
        }
        self.refresh()
    }

    /// The v3_ and removed tables leave the working schema for the archive.
    fn archive_tables(&mut self) -> Result<(), postgres::Error> {
        for table in legacy_tables(&self.present) {
            self.ensure_archive()?;
            let n = count(self.tx, &format!("SELECT count(*) FROM {}", quote(&table)))? as u64;
            self.tx.batch_execute(&format!(
                "ALTER TABLE {} SET SCHEMA {}",
                quote(&table),
                quote(&self.archive)
            ))?;
            self.step(
                &table,
                "table archived",
                n,
                format!(
                    "not in the consolidated schema: moved to {} (the seeds' deprecated copy)",
                    self.archive
                ),
            );
        }
        self.refresh()
    }

    /// Before COMMIT: every legacy table is in the archive with all its
    /// rows, no flow-linked row lacks its master flow, the links hold, and
    /// the working schema passes the schema check.
    fn verify(&mut self, before: &BTreeMap<String, i64>) -> Result<Vec<String>, postgres::Error> {
        let mut problems = Vec::new();
        for (table, rows) in before {
            let in_archive: bool = self
                .tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)",
                    &[&self.archive, table],
                )?
                .get(0);
            if in_archive {
                let archived = count(
                    self.tx,
                    &format!(
                        "SELECT count(*) FROM {}.{}",
                        quote(&self.archive),
                        quote(table)
                    ),
                )?;
                if archived != *rows {
                    problems.push(format!(
                        "{table}: {rows} rows before, {archived} in the archive"
                    ));
                }
            } else if !self.present.contains_key(table) {
                problems.push(format!(
                    "{table}: {rows} rows before, and the table is gone"
                ));
            } else {
                let now = count(self.tx, &format!("SELECT count(*) FROM {}", quote(table)))?;
                if now < *rows {
                    problems.push(format!("{table}: {rows} rows before, {now} after"));
                }
            }
        }
        for table in FLOW_LINKED {
            if !self.present.contains_key(*table) {
                continue;
            }
            let n = count(self.tx, &format!(
                "SELECT count(*) FROM {t} x WHERE x.master_flow_id IS NULL OR NOT EXISTS
                   (SELECT 1 FROM crewai_flow_state_extensions c WHERE c.flow_id = x.master_flow_id)",
                t = quote(table)
            ))?;
            if n > 0 {
                problems.push(format!("{table}: {n} row(s) without a master flow"));
            }
        }
        for (table, parent) in [
            ("raw_import_records", "data_imports"),
            ("import_field_mappings", "data_imports"),
        ] {
            if has(&self.present, table, "data_import_id") {
                let n = count(self.tx, &format!(
                    "SELECT count(*) FROM {t} x WHERE NOT EXISTS (SELECT 1 FROM {p} p WHERE p.id = x.data_import_id)",
                    t = quote(table),
                    p = quote(parent)
                ))?;
                if n > 0 {
                    problems.push(format!(
                        "{table}: {n} row(s) whose {parent} row does not exist"
                    ));
                }
            }
        }
        let layout: Vec<(String, Vec<String>)> = self
            .present
            .iter()
            .filter(|(t, _)| !t.starts_with(SCRATCH))
            .map(|(t, cols)| (t.clone(), cols.iter().map(|c| c.name.clone()).collect()))
            .collect();
        for p in schema_check::check_central_layout(&layout) {
            problems.push(p.message);
        }
        Ok(problems)
    }
}

/// Inserts a master flow for each row `source` selects (master, tenant,
/// name, status, created_at); a master that exists is left alone.
fn insert_masters_sql(source: &str) -> String {
    format!(
        "INSERT INTO crewai_flow_state_extensions (flow_id, client_account_id, engagement_id, flow_type, flow_name, flow_status, current_phase, created_at, updated_at)
         SELECT m.master, m.client_account_id, m.engagement_id, 'discovery', m.name,
                CASE WHEN m.status IN ('pending', 'running', 'completed', 'failed', 'cancelled') THEN m.status ELSE 'completed' END,
                'discovery', coalesce(m.created_at, now()), now()
         FROM ({source}) m ON CONFLICT (flow_id) DO NOTHING"
    )
}

/// The columns of a temporary table (its schema is pg_temp_N).
fn layout_of_temp(tx: &mut Transaction, table: &str) -> Result<Vec<Column>, postgres::Error> {
    let schema: String = tx
        .query_one(
            "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $1 AND n.oid = pg_my_temp_schema()",
            &[&table],
        )?
        .get(0);
    Ok(layout(tx, &schema)?.remove(table).unwrap_or_default())
}

impl ConsolidateOutcome {
    /// The report in Markdown: what was found, each step, the tables before
    /// and after, merged rows and dropped columns that held data.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Consolidation of {}\n\nOutcome: **{}** in {:.1} s.",
            self.target, self.outcome, self.seconds
        );
        if let Some(archive) = &self.archive_schema {
            out.push_str(&format!(" Archive schema: `{archive}`."));
        }
        out.push_str("\n\n## Found\n\n");
        if self.found.is_empty() {
            out.push_str(
                "Nothing to consolidate: the database already has the consolidated schema.\n",
            );
        }
        for f in &self.found {
            out.push_str(&format!("- {f}\n"));
        }
        if !self.steps.is_empty() {
            out.push_str("\n## Steps\n\n| table | action | rows | why |\n|---|---|---:|---|\n");
            for s in &self.steps {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    s.table, s.action, s.rows, s.reason
                ));
            }
        }
        if !self.tables.is_empty() {
            out.push_str("\n## Tables\n\n| table | rows before | rows after |\n|---|---:|---:|\n");
            for t in &self.tables {
                let after = t
                    .after
                    .map_or_else(|| "archived".to_string(), |n| n.to_string());
                out.push_str(&format!("| {} | {} | {after} |\n", t.table, t.before));
            }
            out.push_str(&format!(
                "\nLocked (ACCESS EXCLUSIVE) until the end of the transaction, {:.1} s: {}.\n",
                self.seconds,
                self.locked_tables.join(", ")
            ));
        }
        if !self.merged.is_empty() {
            out.push_str(
                "\n## Merged rows\n\n| table | from | legacy id | into |\n|---|---|---|---|\n",
            );
            for m in &self.merged {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    m.table, m.from, m.legacy_id, m.into_id
                ));
            }
        }
        if !self.dropped_columns.is_empty() {
            out.push_str("\n## Dropped columns that held data (archived)\n\n| table | column | rows with a value |\n|---|---|---:|\n");
            for d in &self.dropped_columns {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    d.table, d.column, d.rows_with_data
                ));
            }
        }
        out
    }
}
