//! The stage phase's single SQLite writer: data_imports rows and their lifecycle
//! (pending → processing → completed or failed), and raw_import_records written in
//! batches. An import is marked completed in the same transaction as its last
//! rows; a failed or interrupted import keeps no rows, so nothing is half-counted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

pub mod sightings;
pub mod tables;

use crate::db;
use crate::flow::FlowIds;
use crate::no_copy_insert::NoCopyInsert;
use crate::read::ReadError;
use crate::read::{Row, RowWarning, TableHeader};
use crate::tenant::Tenant;

/// How many row warnings of one import are kept with their details; the rest are counted.
pub const KEPT_WARNINGS: usize = 200;

/// Commit when this many rows are pending, or this much time has passed.
const COMMIT_ROWS: usize = 100_000;
const COMMIT_INTERVAL: Duration = Duration::from_secs(2);

/// What is known of a file when its data_imports row is created.
pub struct NewImport<'a> {
    pub filename: &'a str,
    /// The sheet, for a workbook.
    pub sheet: Option<&'a str>,
    pub description: Option<String>,
    pub file_size: Option<u64>,
    pub mime_type: &'a str,
    pub import_type: &'a str,
    pub source_system: Option<&'a str>,
    pub content_hash: Option<&'a str>,
    pub read_metadata: serde_json::Value,
}

/// A new import id whose first 24 characters no other import's id has: a
/// record's id is its import's id with the last 12 hex digits replaced by
/// its record index (raw_import_records), so two imports must differ there.
fn import_id(conn: &Connection) -> rusqlite::Result<String> {
    loop {
        let id = db::new_id();
        let prefix = &id[..24];
        let taken: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM data_imports WHERE id >= ?1 AND id < ?1 || 'g')",
            [prefix],
            |r| r.get(0),
        )?;
        if !taken {
            return Ok(id);
        }
    }
}

/// Creates the data_imports row of a file, status pending.
pub fn create_import(
    conn: &Connection,
    tenant: &Tenant,
    flow: &FlowIds,
    import: &NewImport,
) -> rusqlite::Result<String> {
    let id = import_id(conn)?;
    let now = db::now();
    let import_name = crate::read::table_label(import.filename, import.sheet);
    conn.execute(
        "INSERT INTO data_imports
           (id, client_account_id, engagement_id, master_flow_id, import_name, import_type, filename,
            file_size, mime_type, source_system, status, imported_by, content_hash, read_metadata,
            created_at, updated_at, sheet_name, description)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13, ?14, ?14, ?15, ?16)",
        params![
            id,
            tenant.client_account_id,
            tenant.engagement_id,
            flow.master_flow_id,
            import_name,
            import.import_type,
            import.filename,
            import.file_size.map(|s| s as i64),
            import.mime_type,
            import.source_system,
            tenant.user_id,
            import.content_hash,
            import.read_metadata.to_string(),
            now,
            import.sheet,
            import.description
        ],
    )?;
    Ok(id)
}

/// A completed import of the same content in the same engagement, if any.
#[derive(Debug, Clone, Serialize)]
pub struct PriorImport {
    pub data_import_id: String,
    pub master_flow_id: String,
    pub filename: String,
    pub completed_at: String,
}

pub fn find_completed_by_hash(
    conn: &Connection,
    engagement_id: &str,
    content_hash: &str,
) -> rusqlite::Result<Option<PriorImport>> {
    conn.query_row(
        "SELECT id, master_flow_id, filename, completed_at FROM data_imports
         WHERE engagement_id = ?1 AND content_hash = ?2 AND status = 'completed'
         ORDER BY completed_at DESC LIMIT 1",
        params![engagement_id, content_hash],
        |r| {
            Ok(PriorImport {
                data_import_id: r.get(0)?,
                master_flow_id: r.get(1)?,
                filename: r.get(2)?,
                completed_at: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Imports a killed run left pending or processing: their rows (and the
/// mappings suggested while they were staged) are removed and
/// they are marked failed, so the next run imports the file again. Only called
/// under the writer lock.
pub fn recover_interrupted(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let tx = conn.unchecked_transaction()?;
    let stale: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT filename FROM data_imports WHERE status IN ('pending', 'processing')",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if !stale.is_empty() {
        // Assets built while such an import was staged (an engagement's first
        // build) are only its records' machines: they go with the records.
        tx.execute(
            &format!(
                "DELETE FROM assets WHERE discovery_flow_id IN
               (SELECT f.id FROM discovery_flows f JOIN data_imports i ON i.master_flow_id = f.master_flow_id
                WHERE i.status IN ('pending', 'processing')
                  AND {})",
                tables::ASSETS_BUILT_ON_STAGE
            ),
            [],
        )?;
        for table in [
            "raw_records",
            "raw_record_sightings",
            "import_field_mappings",
        ] {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE data_import_id IN
                       (SELECT id FROM data_imports WHERE status IN ('pending', 'processing'))"
                ),
                [],
            )?;
        }
        tx.execute(
            "UPDATE data_imports SET status = 'failed', processed_records = 0, progress_percentage = 0,
               error_message = 'interrupted: the run was stopped before all rows were committed; its rows were removed and the file can be imported again',
               error_details = json_object('type', 'interrupted'), updated_at = ?1
             WHERE status IN ('pending', 'processing')",
            [db::now()],
        )?;
    }
    tx.commit()?;
    Ok(stale)
}

/// The next `limit` raw records of an import after record `after`, in record
/// order, as (rowid, record_index, raw_data): each batch is a range scan of
/// the (data_import_id, record_index) index.
pub fn raw_records_after(
    conn: &Connection,
    data_import_id: &str,
    keys: &crate::record_store::ColumnKeys,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<(i64, i64, String)>> {
    conn.prepare_cached(
        "SELECT rowid, record_index, raw_values FROM raw_records
         WHERE data_import_id = ?1 AND record_index > ?2 ORDER BY record_index LIMIT ?3",
    )?
    .query_map(params![data_import_id, after, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?))
    })?
    .map(|row| {
        let (rowid, index, stored) = row?;
        Ok((rowid, index, keys.object(&stored).into_owned()))
    })
    .collect()
}

/// Marks an import failed before any row was read (the file could not be opened).
pub fn fail_unread(
    conn: &Connection,
    data_import_id: &str,
    error: &ReadError,
) -> rusqlite::Result<()> {
    let now = db::now();
    conn.execute(
        "UPDATE data_imports SET status = 'failed', error_message = ?2, error_details = ?3,
           started_at = coalesce(started_at, ?4), completed_at = ?4, updated_at = ?4
         WHERE id = ?1",
        params![
            data_import_id,
            error.to_string(),
            error_details(error).to_string(),
            now
        ],
    )?;
    Ok(())
}

fn error_details(error: &ReadError) -> serde_json::Value {
    json!({ "type": error.code(), "line": error.line(), "message": error.to_string() })
}

/// A row's cleansing as raw_import_records stores it beside the raw data;
/// made by `cleanse`, written by the `Stager` when a row is cleansed as it is
/// staged.
#[derive(Debug, Clone)]
pub struct CleansedRow {
    /// The cleansed fields, without the copies of `copies` where they are
    /// their column's raw value (`record_store`).
    pub cleansed_data: String,
    /// The `cleansed_copies` row `cleansed_data` leaves out (None: whole).
    pub copies: Option<i64>,
    pub validation_errors: String,
    pub is_valid: bool,
    /// The codes of the row's validation errors, for the import's tally.
    pub error_codes: Vec<&'static str>,
    /// What a valid row becomes: an asset type (`server` when it names none),
    /// or `application` for a row of an application list.
    pub becomes: Option<&'static str>,
}

impl CleansedRow {
    /// Stands in for the cleansing of a row the stager records as seen: that
    /// row keeps the cleansing of the record it repeats.
    pub fn seen() -> CleansedRow {
        CleansedRow {
            cleansed_data: String::new(),
            copies: None,
            validation_errors: String::new(),
            is_valid: false,
            error_codes: Vec::new(),
            becomes: None,
        }
    }
}

/// The counts of one import as the writer saw them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportCounts {
    pub rows: u64,
    pub blank_rows: u64,
    pub warning_count: u64,
    pub warnings_by_code: BTreeMap<&'static str, u64>,
    pub warnings: Vec<RowWarning>,
    pub header: Option<TableHeader>,
}

impl ImportCounts {
    pub fn add_warnings(&mut self, warnings: Vec<RowWarning>) {
        for w in warnings {
            self.warning_count += 1;
            *self.warnings_by_code.entry(w.code).or_default() += 1;
            if self.warnings.len() < KEPT_WARNINGS {
                self.warnings.push(w);
            }
        }
    }
}

/// The single writer. Rows of several imports interleave; all writes go into one
/// open transaction that is committed in batches and rolled back if dropped.
pub struct Stager<'c> {
    conn: &'c Connection,
    /// The columns of each import started, for storing its rows' values.
    columns: std::collections::HashMap<String, crate::record_store::ColumnKeys>,
    in_tx: bool,
    pending: usize,
    last_commit: Instant,
    now: String,
    /// Prepared on the first row.
    insert: Option<NoCopyInsert<'c>>,
    /// Per import: the rows of the previous import of its source, which it
    /// records as seen rather than stores.
    seen: std::collections::HashMap<String, std::sync::Arc<sightings::SeenRows>>,
    /// Per import: the rows recorded as seen so far.
    sighted: std::collections::HashMap<String, u64>,
}

/// What became of a staged row.
#[derive(Debug, Clone, Copy)]
pub enum StagedRow {
    /// Stored in raw_records, with this rowid.
    Stored(i64),
    /// The same as a record the previous import of its source stored: recorded
    /// as a sighting of it.
    Seen(sightings::Seen),
}

impl<'c> Stager<'c> {
    /// The connection the stager writes with.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    pub fn new(conn: &'c Connection) -> Stager<'c> {
        Stager {
            conn,
            columns: std::collections::HashMap::new(),
            in_tx: false,
            pending: 0,
            last_commit: Instant::now(),
            now: db::now(),
            insert: None,
            seen: std::collections::HashMap::new(),
            sighted: std::collections::HashMap::new(),
        }
    }

    /// The rows of an import recorded as seen, and the import they repeat.
    pub fn sightings_of(&self, data_import_id: &str) -> Option<(u64, &str)> {
        let seen = self.seen.get(data_import_id)?;
        Some((
            self.sighted.get(data_import_id).copied().unwrap_or(0),
            seen.previous.as_str(),
        ))
    }

    /// From now on, rows of `data_import_id` that repeat a row of `seen` are
    /// recorded as sightings of it.
    pub fn record_sightings(
        &mut self,
        data_import_id: &str,
        seen: std::sync::Arc<sightings::SeenRows>,
    ) {
        self.seen.insert(data_import_id.to_string(), seen);
    }

    fn begin(&mut self) -> rusqlite::Result<()> {
        if !self.in_tx {
            // Every row staged references this run's flow and imports.
            db::begin_bulk(self.conn)?;
            self.in_tx = true;
            self.now = db::now();
        }
        Ok(())
    }

    /// Marks an import processing and records its header.
    pub fn start(&mut self, data_import_id: &str, header: &TableHeader) -> rusqlite::Result<()> {
        self.begin()?;
        self.columns.insert(
            data_import_id.to_string(),
            crate::record_store::ColumnKeys::new(&header.columns),
        );
        let now = db::now();
        self.conn.execute(
            "UPDATE data_imports SET status = 'processing', started_at = ?2, updated_at = ?2,
               read_metadata = json_set(read_metadata, '$.columns', json(?3), '$.header_line', ?4,
                                        '$.header_warnings', json(?5), '$.preamble', json(?6),
                                        '$.merged_ranges', json(?7), '$.layout', json(?8),
                                        '$.header_shape', ?11),
               source_system = coalesce(source_system, ?9),
               description = coalesce(description, ?10)
             WHERE id = ?1",
            params![
                data_import_id,
                now,
                serde_json::to_string(&header.columns).unwrap_or_default(),
                header.header_line as i64,
                serde_json::to_string(&header.header_warnings).unwrap_or_default(),
                serde_json::to_string(&header.preamble).unwrap_or_default(),
                serde_json::to_string(&header.merged_ranges).unwrap_or_default(),
                serde_json::to_string(&header.layout).unwrap_or_default(),
                header.layout.as_ref().map(|l| l.layout.source_system()),
                header.layout.as_ref().map(|l| l.describe()),
                header.shape.name()
            ],
        )?;
        Ok(())
    }

    /// Inserts rows of one import, with their cleansing when `cleansed` holds
    /// one per row (rows cleansed as they are staged are not rewritten later).
    /// A row that repeats one of the previous import of its source
    /// (`record_sightings`) is recorded as seen instead, whatever its cleansing.
    /// `hashes` holds each row's `sightings::row_hash` when its reader made
    /// them (else they are made here). Returns what became of each row.
    pub fn insert_rows(
        &mut self,
        data_import_id: &str,
        rows: &[Row],
        cleansed: &[CleansedRow],
        hashes: &[sightings::RowHash],
    ) -> rusqlite::Result<Vec<StagedRow>> {
        self.begin()?;
        let insert = match &mut self.insert {
            Some(insert) => insert,
            None => self.insert.insert(NoCopyInsert::prepare(
                self.conn,
                "INSERT INTO raw_records (data_import_id, record_index, raw_values, cleansed_data,
                   is_valid, validation_errors, processed_at, copies, row_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?),
        };
        let seen_rows = self.seen.get(data_import_id);
        let mut sighting = match seen_rows {
            Some(_) => Some(self.conn.prepare_cached(
                "INSERT INTO raw_record_sightings (data_import_id, record_index, seen_import_id, seen_index)
                 VALUES (?1, ?2, ?3, ?4)",
            )?),
            None => None,
        };
        if !self.columns.contains_key(data_import_id) {
            let keys = crate::record_store::ColumnKeys::of_import(self.conn, data_import_id)?;
            self.columns.insert(data_import_id.to_string(), keys);
        }
        let keys = &self.columns[data_import_id];
        let with_cleansing = cleansed.len() == rows.len();
        let mut staged = Vec::with_capacity(rows.len());
        let mut seen_here = 0;
        for (i, row) in rows.iter().enumerate() {
            let hash = match hashes.get(i).filter(|_| hashes.len() == rows.len()) {
                Some(hash) => *hash,
                None => sightings::row_hash(&row.raw_data),
            };
            if let (Some(seen_rows), Some(stmt)) = (seen_rows, sighting.as_mut()) {
                if let Some(seen) = seen_rows.find(&hash) {
                    stmt.execute(params![
                        data_import_id,
                        row.record_index,
                        seen_rows.import_of(&seen),
                        seen.record_index
                    ])?;
                    staged.push(StagedRow::Seen(seen));
                    seen_here += 1;
                    continue;
                }
            }
            let c = cleansed.get(i).filter(|_| with_cleansing);
            insert.execute([
                ValueRef::from(data_import_id),
                ValueRef::Integer(row.record_index),
                ValueRef::from(keys.compact(&row.raw_data).as_ref()),
                c.map_or(ValueRef::Null, |c| ValueRef::from(c.cleansed_data.as_str())),
                c.map_or(ValueRef::Null, |c| ValueRef::Integer(i64::from(c.is_valid))),
                c.map_or(ValueRef::Null, |c| {
                    ValueRef::from(c.validation_errors.as_str())
                }),
                c.map_or(ValueRef::Null, |_| ValueRef::from(self.now.as_str())),
                c.and_then(|c| c.copies)
                    .map_or(ValueRef::Null, ValueRef::Integer),
                ValueRef::Blob(&hash),
            ])?;
            staged.push(StagedRow::Stored(self.conn.last_insert_rowid()));
        }
        self.pending += rows.len();
        if seen_here > 0 {
            *self.sighted.entry(data_import_id.to_string()).or_default() += seen_here;
        }
        Ok(staged)
    }

    /// Whether a batch commit is due.
    pub fn commit_due(&self) -> bool {
        self.in_tx && (self.pending >= COMMIT_ROWS || self.last_commit.elapsed() >= COMMIT_INTERVAL)
    }

    /// Records how far an import has come (in the open transaction).
    pub fn record_progress(
        &mut self,
        data_import_id: &str,
        processed: u64,
        percent: f64,
    ) -> rusqlite::Result<()> {
        self.begin()?;
        self.conn.execute(
            "UPDATE data_imports SET processed_records = ?2, total_records = ?2, progress_percentage = ?3,
               updated_at = ?4 WHERE id = ?1",
            params![data_import_id, processed as i64, percent.clamp(0.0, 100.0), db::now()],
        )?;
        Ok(())
    }

    pub fn commit(&mut self) -> rusqlite::Result<()> {
        if self.in_tx {
            db::end_bulk(self.conn, true)?;
            self.in_tx = false;
        }
        self.pending = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Marks an import completed with its counts and commits, so the status and
    /// the last rows land together.
    pub fn complete(
        &mut self,
        data_import_id: &str,
        counts: &ImportCounts,
    ) -> rusqlite::Result<()> {
        self.begin()?;
        let now = db::now();
        self.conn.execute(
            "UPDATE data_imports SET status = 'completed', total_records = ?2, processed_records = ?2,
               failed_records = 0, progress_percentage = 100, completed_at = ?3, updated_at = ?3,
               read_metadata = json_set(read_metadata, '$.blank_rows', ?4, '$.warning_count', ?5,
                 '$.warnings_by_code', json(?6), '$.warnings', json(?7))
             WHERE id = ?1",
            params![
                data_import_id,
                counts.rows as i64,
                now,
                counts.blank_rows as i64,
                counts.warning_count as i64,
                serde_json::to_string(&counts.warnings_by_code).unwrap_or_default(),
                serde_json::to_string(&counts.warnings).unwrap_or_default()
            ],
        )?;
        self.commit()
    }

    /// Marks an import failed, removes the rows it had staged, and commits.
    pub fn fail(
        &mut self,
        data_import_id: &str,
        error: &ReadError,
        counts: &ImportCounts,
    ) -> rusqlite::Result<()> {
        self.begin()?;
        let now = db::now();
        for table in [
            "raw_records",
            "raw_record_sightings",
            "import_field_mappings",
        ] {
            self.conn.execute(
                &format!("DELETE FROM {table} WHERE data_import_id = ?1"),
                [data_import_id],
            )?;
        }
        self.conn.execute(
            "UPDATE data_imports SET status = 'failed', total_records = ?2, processed_records = 0,
               progress_percentage = 0, error_message = ?3, error_details = ?4,
               completed_at = ?5, updated_at = ?5
             WHERE id = ?1",
            params![
                data_import_id,
                counts.rows as i64,
                error.to_string(),
                error_details(error).to_string(),
                now
            ],
        )?;
        self.commit()
    }
}

impl Drop for Stager<'_> {
    fn drop(&mut self) {
        if self.in_tx {
            // Roll back unless committed; an error here leaves the rollback to SQLite.
            let _ = db::end_bulk(self.conn, false);
        }
    }
}
