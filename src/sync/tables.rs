//! The synced tables and the SQL of each step: which local rows belong to a
//! flow, the temporary staging table and its binary COPY (every column as
//! text, cast to the central type on the way into the real table), the
//! checksum both sides compute, the tenant check, the plan, the deletes, the
//! upsert and the verification.

use std::collections::HashMap;

use indicatif::ProgressBar;
use md5::{Digest, Md5};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Transaction;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::{SyncError, TablePlan};

/// A synced table: its key, and which of its rows belong to a flow.
pub struct TableSpec {
    pub name: &'static str,
    pub key: &'static str,
    /// The local WHERE clause, over the flow's `p.flow`, `p.client`, `p.engagement`.
    local_scope: &'static str,
    /// Central rows of the flow that may be deleted when gone locally.
    deletable: bool,
    /// Rows that a later flow of the engagement may take over (assets are
    /// rebuilt per engagement), so "not in this flow" is not "gone".
    moves: bool,
    /// (column, table, key) of each reference to a row that has a tenant.
    references: &'static [(&'static str, &'static str, &'static str)],
}

impl TableSpec {
    pub fn keeps_moved_rows(&self) -> bool {
        self.moves
    }
}

const BY_FLOW: &str = "master_flow_id = p.flow";

const TO_FLOW: (&str, &str, &str) = ("master_flow_id", "crewai_flow_state_extensions", "flow_id");

/// The references of the rows of one import (its mappings and records).
const TO_IMPORT: &[(&str, &str, &str)] = &[TO_FLOW, ("data_import_id", "data_imports", "id")];

/// Parents before children.
pub const TABLES: &[TableSpec] = &[
    TableSpec { name: "client_accounts", key: "id", local_scope: "id = p.client", deletable: false, moves: false, references: &[] },
    TableSpec { name: "engagements", key: "id", local_scope: "id = p.engagement", deletable: false, moves: false, references: &[] },
    TableSpec {
        name: "users",
        key: "id",
        local_scope: "id IN (SELECT user_id FROM crewai_flow_state_extensions WHERE flow_id = p.flow
                             UNION SELECT user_id FROM discovery_flows WHERE master_flow_id = p.flow
                             UNION SELECT imported_by FROM data_imports WHERE master_flow_id = p.flow)",
        deletable: false,
        moves: false,
        references: &[],
    },
    TableSpec { name: "crewai_flow_state_extensions", key: "flow_id", local_scope: "flow_id = p.flow", deletable: false, moves: false, references: &[] },
    TableSpec { name: "discovery_flows", key: "id", local_scope: BY_FLOW, deletable: true, moves: false, references: &[TO_FLOW] },
    TableSpec { name: "data_imports", key: "id", local_scope: BY_FLOW, deletable: true, moves: false, references: &[TO_FLOW] },
    TableSpec {
        name: "import_field_mappings",
        key: "id",
        local_scope: BY_FLOW,
        deletable: true,
        moves: false,
        references: TO_IMPORT,
    },
    TableSpec {
        name: "raw_import_records",
        key: "id",
        local_scope: BY_FLOW,
        deletable: true,
        moves: false,
        references: TO_IMPORT,
    },
    TableSpec {
        name: "assets",
        key: "id",
        local_scope: BY_FLOW,
        deletable: true,
        moves: true,
        references: &[TO_FLOW, ("discovery_flow_id", "discovery_flows", "id")],
    },
    TableSpec {
        name: "asset_dependencies",
        key: "id",
        local_scope: BY_FLOW,
        deletable: true,
        moves: true,
        references: &[TO_FLOW, ("asset_id", "assets", "id"), ("depends_on_asset_id", "assets", "id")],
    },
];

/// Binds the flow and tenant (?1, ?2, ?3) once for a local scope clause.
const SCOPE: &str = "WITH p(flow, client, engagement) AS (SELECT ?1, ?2, ?3)";

/// The flow and tenant whose rows are synced.
pub struct Scope<'a> {
    pub master_flow_id: &'a str,
    pub client_account_id: &'a str,
    pub engagement_id: &'a str,
}

/// Rows sent or arrived, and the checksum of their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    pub checksum: String,
}

/// The columns of a local table, in order.
pub fn local_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(&format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    ))?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Column name → type (udt_name: uuid, jsonb, timestamptz, numeric, int8, bool, ...).
pub type CentralColumns = HashMap<String, String>;

pub fn central_columns(tx: &mut Transaction, table: &str) -> Result<CentralColumns, SyncError> {
    Ok(tx
        .query(
            "SELECT column_name::text, udt_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

fn staging(spec: &TableSpec) -> String {
    format!("intake_stage_{}", spec.name)
}

fn quoted(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `table."col", ...`: columns named by their table, beside the scope's `p`.
fn quoted_in(table: &str, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("{table}.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s.col::type, ...`: the staged text cast to the central types.
fn casts(prefix: &str, columns: &[String], central: &CentralColumns) -> String {
    columns
        .iter()
        .map(|c| {
            let udt = central.get(c).map_or("text", String::as_str);
            format!("{prefix}\"{c}\"::{udt}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn count_local(conn: &Connection, spec: &TableSpec, scope: &Scope) -> rusqlite::Result<u64> {
    conn.query_row(
        &format!(
            "{SCOPE} SELECT count(*) FROM {}, p WHERE {}",
            spec.name, spec.local_scope
        ),
        rusqlite::params![
            scope.master_flow_id,
            scope.client_account_id,
            scope.engagement_id
        ],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// The text a value is sent as: what PostgreSQL casts to the column's type.
/// PostgreSQL text holds no NUL character, and jsonb no `\u0000`: a NUL
/// that a source file held (kept locally, with a warning) is sent as U+2400
/// SYMBOL FOR NULL, so one byte can never make a flow unsyncable.
fn as_text(value: ValueRef, json: bool) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let text = String::from_utf8_lossy(t);
            let text = if text.contains('\0') {
                text.replace('\0', "\u{2400}")
            } else {
                text.into_owned()
            };
            Some(if json {
                without_nul_escapes(text)
            } else {
                text
            })
        }
    }
}

/// JSON text with each `\u0000` escape written `\u2400`; an escaped
/// backslash followed by `u0000` is left as it is.
fn without_nul_escapes(json: String) -> String {
    if !json.contains("\\u0000") {
        return json;
    }
    let mut out = String::with_capacity(json.len());
    let mut rest = json.as_str();
    while let Some(at) = rest.find("\\u0000") {
        let backslashes = rest[..at].bytes().rev().take_while(|b| *b == b'\\').count();
        out.push_str(&rest[..at]);
        // An odd run of backslashes before this one means it is escaped itself.
        out.push_str(if backslashes % 2 == 0 {
            "\\u2400"
        } else {
            "\\u0000"
        });
        rest = &rest[at + 6..];
    }
    out.push_str(rest);
    out
}

/// Both sides' checksum: per row the MD5 of its values joined by U+001F (NULL
/// as \N); the first 60 bits of each summed. Order-free, so the central side
/// needs no sort.
#[derive(Default)]
struct RowChecksum {
    rows: u64,
    sum: u128,
}

impl RowChecksum {
    fn add(&mut self, values: &[Option<String>]) {
        let mut hasher = Md5::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                hasher.update([0x1f]);
            }
            hasher.update(v.as_deref().unwrap_or("\\N").as_bytes());
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        self.sum += u128::from(u64::from_be_bytes(first) >> 4);
        self.rows += 1;
    }

    fn summary(&self) -> Summary {
        Summary {
            rows: self.rows,
            checksum: self.sum.to_string(),
        }
    }
}

/// Creates the staging table and copies the flow's local rows into it.
pub fn stage(
    tx: &mut Transaction,
    conn: &Connection,
    spec: &TableSpec,
    scope: &Scope,
    columns: &[String],
    central: &CentralColumns,
    bars: &crate::progress::TableBars,
) -> Result<Summary, SyncError> {
    let json: Vec<bool> = columns
        .iter()
        .map(|c| central.get(c).is_some_and(|t| t == "jsonb" || t == "json"))
        .collect();
    let total = count_local(conn, spec, scope)?;
    let bar: ProgressBar = bars.add(spec.name, total);
    let table = staging(spec);
    let definition: Vec<String> = columns.iter().map(|c| format!("\"{c}\" text")).collect();
    tx.batch_execute(&format!(
        // Rows up to a page stay inline and uncompressed: compressing each large
        // JSON text only to read it back once costs more than it saves.
        "CREATE TEMP TABLE {table} ({}) WITH (toast_tuple_target = 8160) ON COMMIT DROP",
        definition.join(", ")
    ))?;
    let sink = tx.copy_in(&format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        quoted(columns)
    ))?;
    let types = vec![Type::TEXT; columns.len()];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut checksum = RowChecksum::default();
    let mut stmt = conn.prepare(&format!(
        "{SCOPE} SELECT {} FROM {}, p WHERE {}",
        quoted_in(spec.name, columns),
        spec.name,
        spec.local_scope
    ))?;
    let mut rows = stmt.query(rusqlite::params![
        scope.master_flow_id,
        scope.client_account_id,
        scope.engagement_id
    ])?;
    let mut values: Vec<Option<String>> = Vec::with_capacity(columns.len());
    while let Some(row) = rows.next()? {
        values.clear();
        for (i, &json) in json.iter().enumerate() {
            values.push(as_text(row.get_ref(i)?, json));
        }
        checksum.add(&values);
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.write(&refs)?;
        if checksum.rows % 4096 == 0 {
            bar.set_position(checksum.rows);
        }
    }
    writer.finish()?;
    bar.finish_and_clear();
    Ok(checksum.summary())
}

/// The count and checksum of what arrived in the staging table.
pub fn staged_summary(
    tx: &mut Transaction,
    spec: &TableSpec,
    columns: &[String],
) -> Result<Summary, SyncError> {
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("coalesce(\"{c}\", '\\N')"))
        .collect();
    let row = tx.query_one(
        &format!(
            "SELECT count(*), coalesce(sum(('x' || substr(md5(concat_ws(chr(31), {})), 1, 15))::bit(60)::bigint), 0)::text
             FROM {}",
            values.join(", "),
            staging(spec)
        ),
        &[],
    )?;
    Ok(Summary {
        rows: row.get::<_, i64>(0) as u64,
        checksum: row.get(1),
    })
}

/// The ids of the engagement's local rows of a table whose rows move between
/// flows: a central row of this flow that is still here under a later flow
/// is not deleted.
pub fn stage_kept_ids(
    tx: &mut Transaction,
    conn: &Connection,
    spec: &TableSpec,
    scope: &Scope,
) -> Result<(), SyncError> {
    let table = format!("intake_keep_{}", spec.name);
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {table} (id text PRIMARY KEY) ON COMMIT DROP"
    ))?;
    let sink = tx.copy_in(&format!("COPY {table} (id) FROM STDIN (FORMAT binary)"))?;
    let mut writer = BinaryCopyInWriter::new(sink, &[Type::TEXT]);
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM {} WHERE engagement_id = ?1",
        spec.key, spec.name
    ))?;
    let mut rows = stmt.query([scope.engagement_id])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        writer.write(&[&id])?;
    }
    writer.finish()?;
    Ok(())
}

/// The columns that say whose a row is: its tenant, or for raw records,
/// which carry none, its flow; and what to call that owner.
fn owner_columns(columns: &[String]) -> Option<(Vec<&'static str>, &'static str)> {
    let has = |c: &str| columns.iter().any(|x| x == c);
    if has("client_account_id") {
        Some((
            ["client_account_id", "engagement_id"]
                .into_iter()
                .filter(|c| has(c))
                .collect(),
            "client or engagement",
        ))
    } else if has("master_flow_id") {
        Some((vec!["master_flow_id"], "flow"))
    } else {
        None
    }
}

/// Refuses when a staged row exists centrally under another tenant (or, for
/// raw records, which carry no tenant, under another flow).
pub fn refuse_other_tenants(
    tx: &mut Transaction,
    spec: &TableSpec,
    columns: &[String],
) -> Result<(), SyncError> {
    let Some((owner_columns, owner)) = owner_columns(columns) else {
        return Ok(());
    };
    let differs: Vec<String> = owner_columns
        .iter()
        .map(|c| format!("t.{c} IS DISTINCT FROM s.{c}::uuid"))
        .collect();
    let found = tx.query_opt(
        &format!(
            "SELECT s.{key} FROM {stage} s JOIN {table} t ON t.{key} = s.{key}::uuid WHERE {} LIMIT 1",
            differs.join(" OR "),
            key = spec.key,
            stage = staging(spec),
            table = spec.name
        ),
        &[],
    )?;
    match found {
        Some(row) => Err(SyncError::OtherTenant {
            table: spec.name,
            key: row.get(0),
            owner,
        }),
        None => Ok(()),
    }
}

/// Refuses when a staged row refers to a central row (a flow, an import, an
/// asset) of another tenant.
pub fn refuse_foreign_references(
    tx: &mut Transaction,
    spec: &TableSpec,
    scope: &Scope,
) -> Result<(), SyncError> {
    for &(column, parent, parent_key) in spec.references {
        let found = tx.query_opt(
            &format!(
                "SELECT s.{key}, s.{column} FROM {stage} s JOIN {parent} r ON r.{parent_key} = s.{column}::uuid
                 WHERE (r.client_account_id, r.engagement_id) IS DISTINCT FROM ($1::text::uuid, $2::text::uuid)
                 LIMIT 1",
                key = spec.key,
                stage = staging(spec),
            ),
            &[&scope.client_account_id, &scope.engagement_id],
        )?;
        if let Some(row) = found {
            return Err(SyncError::ForeignReference {
                table: spec.name,
                key: row.get(0),
                parent,
                id: row.get(1),
            });
        }
    }
    Ok(())
}

/// WHERE clause of the central rows of this flow that are gone locally.
fn gone(spec: &TableSpec) -> String {
    let mut clause = format!(
        "t.master_flow_id = $1::text::uuid AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.{key}::uuid = t.{key})",
        stage = staging(spec),
        key = spec.key
    );
    if spec.moves {
        clause.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM intake_keep_{} k WHERE k.id::uuid = t.{})",
            spec.name, spec.key
        ));
    }
    clause
}

/// Rows of the staging table that differ from their central row (or have none).
fn differing(spec: &TableSpec, columns: &[String], central: &CentralColumns) -> String {
    let target: Vec<String> = columns.iter().map(|c| format!("t.\"{c}\"")).collect();
    format!(
        "SELECT count(*) FILTER (WHERE t.{key} IS NULL), count(*) FILTER (WHERE t.{key} IS NOT NULL)
         FROM {stage} s LEFT JOIN {table} t ON t.{key} = s.{key}::uuid
         WHERE t.{key} IS NULL OR ({}) IS DISTINCT FROM ({})",
        target.join(", "),
        casts("s.", columns, central),
        key = spec.key,
        stage = staging(spec),
        table = spec.name
    )
}

/// Inserts, updates and deletes this table's sync would make.
pub fn plan(
    tx: &mut Transaction,
    spec: &TableSpec,
    columns: &[String],
    central: &CentralColumns,
    scope: &Scope,
) -> Result<TablePlan, SyncError> {
    let row = tx.query_one(&differing(spec, columns, central), &[])?;
    let deletes: i64 = if spec.deletable {
        tx.query_one(
            &format!("SELECT count(*) FROM {} t WHERE {}", spec.name, gone(spec)),
            &[&scope.master_flow_id],
        )?
        .get(0)
    } else {
        0
    };
    Ok(TablePlan {
        table: spec.name,
        inserts: row.get::<_, i64>(0) as u64,
        updates: row.get::<_, i64>(1) as u64,
        deletes: deletes as u64,
        ..Default::default()
    })
}

pub fn delete_missing(
    tx: &mut Transaction,
    spec: &TableSpec,
    scope: &Scope,
) -> Result<(), SyncError> {
    tx.execute(
        &format!("DELETE FROM {} t WHERE {}", spec.name, gone(spec)),
        &[&scope.master_flow_id],
    )?;
    Ok(())
}

/// Inserts new rows and updates changed ones; unchanged rows are not touched.
/// When no staged row exists centrally (a first sync), a plain INSERT skips the
/// conflict handling. Returns the rows written.
pub fn upsert(
    tx: &mut Transaction,
    spec: &TableSpec,
    columns: &[String],
    central: &CentralColumns,
    only_inserts: bool,
) -> Result<u64, SyncError> {
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| c.as_str() != spec.key)
        .map(|c| format!("\"{c}\" = EXCLUDED.\"{c}\""))
        .collect();
    let target: Vec<String> = columns.iter().map(|c| format!("t.\"{c}\"")).collect();
    let excluded: Vec<String> = columns
        .iter()
        .map(|c| format!("EXCLUDED.\"{c}\""))
        .collect();
    // A row is updated only while it is still this tenant's: the check and
    // the write are one statement, so a row another tenant inserted after
    // `refuse_other_tenants` is left alone (and refused after the upsert).
    let same_owner: String = owner_columns(columns)
        .map(|(owner, _)| {
            owner
                .iter()
                .map(|c| format!("t.\"{c}\" = EXCLUDED.\"{c}\" AND "))
                .collect()
        })
        .unwrap_or_default();
    let on_conflict = if only_inserts {
        String::new()
    } else {
        format!(
            "ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {same_owner}({target}) IS DISTINCT FROM ({excluded})",
            key = spec.key,
            sets = sets.join(", "),
            target = target.join(", "),
            excluded = excluded.join(", "),
        )
    };
    let sql = format!(
        "INSERT INTO {table} AS t ({cols}) SELECT {casts} FROM {stage} s {on_conflict}",
        table = spec.name,
        cols = quoted(columns),
        casts = casts("s.", columns, central),
        stage = staging(spec),
    );
    tx.execute(&sql, &[]).map_err(|e| match e.as_db_error() {
        Some(db) if db.code() == &postgres::error::SqlState::UNIQUE_VIOLATION => {
            SyncError::Conflict {
                table: spec.name,
                detail: db.detail().unwrap_or(db.message()).to_string(),
            }
        }
        _ => SyncError::from(e),
    })
}

/// After a table's writes: as many rows written as the plan counted, every
/// staged row present centrally, and (for rows that stay with their flow) the
/// flow's central rows as many as the local ones. The values themselves were
/// verified on arrival (count and checksum) and are written by one statement.
pub fn verify(
    tx: &mut Transaction,
    spec: &TableSpec,
    scope: &Scope,
    plan: &TablePlan,
    written: u64,
) -> Result<(), SyncError> {
    let fail = |detail: String| {
        Err(SyncError::Verification {
            table: spec.name,
            detail,
        })
    };
    if written != plan.inserts + plan.updates {
        return fail(format!(
            "{written} rows written, {} planned",
            plan.inserts + plan.updates
        ));
    }
    let missing: i64 = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = s.{key}::uuid)",
                stage = staging(spec),
                table = spec.name,
                key = spec.key
            ),
            &[],
        )?
        .get(0);
    if missing > 0 {
        return fail(format!("{missing} rows missing centrally"));
    }
    if spec.deletable && !spec.moves {
        let count: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE master_flow_id = $1::text::uuid",
                    spec.name
                ),
                &[&scope.master_flow_id],
            )?
            .get(0);
        if count as u64 != plan.rows {
            return fail(format!(
                "{count} rows of the flow centrally, {} locally",
                plan.rows
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_sent_as_the_symbol_for_null() {
        let sent = |text: &str, json| as_text(ValueRef::Text(text.as_bytes()), json).unwrap();
        assert_eq!(sent("ab\0cd", false), "ab\u{2400}cd");
        assert_eq!(sent(r#"{"n":"ab\u0000cd"}"#, true), r#"{"n":"ab\u2400cd"}"#);
        // An escaped backslash before "u0000" is text, not an escape.
        assert_eq!(sent(r#"{"n":"a\\u0000"}"#, true), r#"{"n":"a\\u0000"}"#);
        assert_eq!(sent(r#"{"n":"a\\\u0000"}"#, true), r#"{"n":"a\\\u2400"}"#);
        assert_eq!(
            sent(r#"{"n":"\u0000\u0000"}"#, true),
            r#"{"n":"\u2400\u2400"}"#
        );
        assert_eq!(sent(r#"plain \u0000"#, false), r#"plain \u0000"#);
    }
}
