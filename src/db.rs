//! The local SQLite file: opening it with the right pragmas, creating and migrating
//! the schema (versioned by `PRAGMA user_version`), the writer lock that lets one
//! writing run at a time, and the id and timestamp formats every table uses.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Errors that stop a command as a whole (the database cannot be used).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot open database {path}: {source}. Check the path and that the directory is writable"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} was written by a newer intake (schema version {found}; this build knows up to {known}). Upgrade intake, or use another --db file")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path} is a SQLite file that intake did not create (it has tables but no intake schema version). Use another --db file")]
    ForeignDatabase { path: PathBuf },
    #[error("migrating {path} from schema version {from} to {to} failed: {source}. The file was left at version {from}")]
    Migration {
        path: PathBuf,
        from: i64,
        to: i64,
        source: rusqlite::Error,
    },
    #[error("cannot lock {path} for writing: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The DDL of the current schema, also printed by `intake schema print`.
pub const SCHEMA_SQL: &str = include_str!("../schema.sql");

/// The schema version this build writes. Bump it with every change to schema.sql and
/// add the step that upgrades the previous version to `MIGRATIONS`.
pub const SCHEMA_VERSION: i64 = 9;

/// Upgrade steps: `MIGRATIONS[i]` takes a file from version `i + 1` to `i + 2`.
/// Version 0 (a new, empty file) is created from `SCHEMA_SQL` directly.
const MIGRATIONS: &[Migration] = &[
    // 1 → 2: workbooks stage one data_imports row per sheet; mappings keep their evidence.
    Migration::Sql("ALTER TABLE data_imports ADD COLUMN sheet_name TEXT;
     ALTER TABLE import_field_mappings ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(evidence));"),
    // 2 → 3: the log of `intake sync`.
    Migration::Sql("CREATE TABLE sync_log (
         id             TEXT PRIMARY KEY,
         master_flow_id TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
         synced_by      TEXT NOT NULL,
         synced_at      TEXT NOT NULL,
         target         TEXT NOT NULL,
         outcome        TEXT NOT NULL CHECK (outcome IN ('synced', 'unchanged', 'failed', 'refused', 'locked')),
         counts         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(counts)),
         checksum       TEXT,
         message        TEXT
     ) STRICT;
     CREATE INDEX ix_sync_log_flow ON sync_log(master_flow_id);"),
    // 3 → 4: the tech_debt phase's verdict on each asset.
    Migration::Sql("ALTER TABLE assets ADD COLUMN support_status TEXT CHECK (support_status IS NULL OR support_status IN
         ('supported', 'extended_support', 'end_of_life', 'unknown'));
     ALTER TABLE assets ADD COLUMN tech_debt_details TEXT CHECK (tech_debt_details IS NULL OR json_valid(tech_debt_details));"),
    // 4 → 5: raw_import_records loses its json_valid CHECKs. Removing a CHECK
    // does not change how rows are stored, so SQLite's documented procedure is
    // to edit the table's DDL in place (no copy of a million-row table); the
    // schema cookie is bumped by `migrate_locked`.
    Migration::Sql("PRAGMA writable_schema = ON;
     UPDATE sqlite_schema SET sql = replace(replace(replace(replace(sql,
         ' CHECK (json_valid(raw_data))', ''),
         ' CHECK (cleansed_data IS NULL OR json_valid(cleansed_data))', ''),
         ' CHECK (validation_errors IS NULL OR json_valid(validation_errors))', ''),
         '    record_index      INTEGER NOT NULL,
', '    record_index      INTEGER NOT NULL,
    -- JSON written only by intake''s own serialiser, so not re-parsed by a
    -- json_valid CHECK on every insert (that cost 6% of a million-row import)
')
       WHERE type = 'table' AND name = 'raw_import_records' AND sql LIKE '%json_valid(raw_data)%';
     PRAGMA writable_schema = OFF;"),
    // 5 → 6: CHECKs list their allowed values with OR instead of IN (see
    // `check_lists_as_or`); the same in-place DDL edit, for every table.
    Migration::Rust(rewrite_check_lists),
    // 6 → 7: the log of mapping decisions `intake mappings undo` reverts.
    Migration::Sql("CREATE TABLE mapping_decisions (
         id               TEXT PRIMARY KEY,
         master_flow_id   TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
         decided_by       TEXT NOT NULL,
         decided_at       TEXT NOT NULL,
         command          TEXT NOT NULL,
         before           TEXT NOT NULL CHECK (json_valid(before)),
         after            TEXT NOT NULL CHECK (json_valid(after)),
         last_asset_rowid INTEGER NOT NULL DEFAULT 0,
         created_assets   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(created_assets)),
         undone_at        TEXT
     ) STRICT;
     CREATE INDEX ix_mapping_decisions_flow ON mapping_decisions(master_flow_id);"),
    // 7 → 8: records are stored in raw_records without what their import
    // says (flow, time) and without a stored id; raw_import_records is a view.
    Migration::Rust(raw_records_without_copies),
    // 8 → 9: rows a later import of the same source sees unchanged are
    // recorded as sightings of the stored row (found by its hash).
    Migration::Rust(raw_record_sightings),
];

/// One upgrade step: SQL, or a Rust function for edits SQL cannot express.
enum Migration {
    Sql(&'static str),
    Rust(fn(&Connection) -> rusqlite::Result<()>),
}

/// Rewrites every CHECK of the form `CHECK (col IN ('a', 'b'))` or
/// `CHECK (col IS NULL OR col IN ('a', 'b'))` to compare with `=` and `OR`.
/// For an IN list of more than two constants SQLite builds a temporary index
/// each time a statement runs: every asset INSERT built and freed five of them,
/// a sixth of the inventory phase of a million-row import. Other CHECKs, and
/// lists inside larger expressions, are left as they are.
pub fn check_lists_as_or(ddl: &str) -> std::borrow::Cow<'_, str> {
    // A quoted SQL string, '' being an escaped quote.
    const QUOTED: &str = r"'(?:[^']|'')*'";
    static LIST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(&format!(
            r"CHECK \((?<null>(?<null_column>\w+) IS NULL OR )?(?<column>\w+) IN\s*\((?<values>{QUOTED}(?:\s*,\s*{QUOTED})*)\)\)"
        ))
        .expect("the CHECK list pattern is valid")
    });
    static VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(QUOTED).expect("the quoted value pattern is valid")
    });
    LIST.replace_all(ddl, |c: &regex::Captures| {
        let column = &c["column"];
        if c.name("null_column").is_some_and(|n| n.as_str() != column) {
            return c[0].to_string(); // `a IS NULL OR b IN (...)` is not this shape
        }
        let tests: Vec<String> = VALUE
            .find_iter(&c["values"])
            .map(|v| format!("{column} = {}", v.as_str()))
            .collect();
        let null = c.name("null").map_or("", |n| n.as_str());
        format!("CHECK ({null}{})", tests.join(" OR "))
    })
}

/// Migration 5 → 6: `check_lists_as_or` applied to the stored DDL of every
/// table. An equivalent CHECK does not change how rows are stored, so editing
/// the DDL in place is SQLite's documented procedure (no table copy).
fn rewrite_check_lists(conn: &Connection) -> rusqlite::Result<()> {
    let tables: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql LIKE '% IN%'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    conn.execute_batch("PRAGMA writable_schema = ON")?;
    let edited = tables.iter().try_for_each(|(name, sql)| {
        let rewritten = check_lists_as_or(sql);
        if rewritten != sql.as_str() {
            conn.execute(
                "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
                [rewritten.as_ref(), name.as_str()],
            )?;
        }
        Ok(())
    });
    let off = conn.execute_batch("PRAGMA writable_schema = OFF");
    edited.and(off)
}

/// The statement of `SCHEMA_SQL` that starts with `prefix` (comments above
/// it included), so an upgrade writes exactly what a new file has.
fn schema_statement(prefix: &str) -> &'static str {
    SCHEMA_SQL
        .split_inclusive(";\n")
        .find(|statement| {
            statement
                .lines()
                .find(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
                .is_some_and(|l| l.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("schema.sql has a statement `{prefix}`"))
}

/// Migration 7 → 8: every record copied, in its order, into raw_records
/// (keeping the id it was synced with as `legacy_id`, and its raw_data
/// object as it is: the view reads both forms), the table dropped and the
/// view created in its place. Inside the upgrade's transaction.
fn raw_records_without_copies(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(schema_statement("CREATE TABLE cleansed_copies"))?;
    conn.execute_batch(schema_statement("CREATE TABLE raw_records"))?;
    conn.execute_batch(
        "INSERT INTO raw_records (data_import_id, record_index, raw_values, cleansed_data, is_valid,
           validation_errors, processed_at, legacy_id)
         SELECT data_import_id, record_index, raw_data, cleansed_data, is_valid, validation_errors,
                CASE WHEN is_processed = 1 THEN coalesce(processed_at, created_at) END, id
         FROM raw_import_records ORDER BY rowid;
         DROP TABLE raw_import_records;",
    )?;
    // The view of today's schema reads the sightings of schema 9 too.
    conn.execute_batch(schema_statement("CREATE TABLE raw_record_sightings"))?;
    conn.execute_batch(schema_statement("CREATE TABLE inventory_links"))?;
    conn.execute_batch(schema_statement("CREATE VIEW raw_import_records"))
}

/// Migration 8 → 9: the row hash column (NULL for the rows already stored,
/// which a later import then stores again rather than sees), the sightings
/// table, the view that reads both, and the inventory's links (none yet:
/// the next inventory run is a full one and writes them).
/// A file upgraded from schema 7 in the same run has both already (7 → 8
/// writes today's raw_records).
fn raw_record_sightings(conn: &Connection) -> rusqlite::Result<()> {
    let has_hash: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('raw_records') WHERE name = 'row_hash')",
        [],
        |r| r.get(0),
    )?;
    if !has_hash {
        conn.execute_batch("ALTER TABLE raw_records ADD COLUMN row_hash BLOB")?;
    }
    let has_sightings: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'raw_record_sightings')",
        [],
        |r| r.get(0),
    )?;
    if !has_sightings {
        conn.execute_batch(schema_statement("CREATE TABLE raw_record_sightings"))?;
        conn.execute_batch(schema_statement("CREATE TABLE inventory_links"))?;
        conn.execute_batch("DROP VIEW raw_import_records")?;
        conn.execute_batch(schema_statement("CREATE VIEW raw_import_records"))?;
    }
    Ok(())
}

/// Opens (creating if needed) the database at `path`, brings its schema to
/// `SCHEMA_VERSION`, and refuses a file written by a newer intake.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let failed = |source| DbError::Open {
        path: path.to_path_buf(),
        source,
    };
    crate::write_behind::register().map_err(failed)?;
    let conn = Connection::open_with_flags_and_vfs(
        path,
        rusqlite::OpenFlags::default(),
        crate::write_behind::VFS_NAME,
    )
    .map_err(failed)?;
    configure(&conn).map_err(|source| DbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    migrate(&conn, path)?;
    ensure_indexes(&conn).map_err(failed)?;
    read_records_natively(&conn).map_err(failed)?;
    Ok(conn)
}

/// The schema's raw_import_records view with `raw_data` and `cleansed_data`
/// rebuilt by `intake_raw_data` and `intake_cleansed_data` instead of
/// SQLite's JSON functions, as a temporary view of the same name: this
/// connection's reads (sync, exports, the report) take it, other programs
/// read the schema's view.
fn native_records_view() -> String {
    let view = schema_statement("CREATE VIEW raw_import_records").replace(
        "CREATE VIEW raw_import_records",
        "CREATE TEMP VIEW IF NOT EXISTS raw_import_records",
    );
    let view = with_column(
        &view,
        // (the cleansed_data expression has a `CASE WHEN substr(r.raw_values` too)
        "CASE WHEN substr(r.raw_values, 1, 1) = '['\n            THEN (SELECT json_group_object",
        "raw_data",
        "intake_raw_data(r.raw_values, d.read_metadata -> '$.columns')",
    );
    with_column(
        &view,
        "CASE WHEN r.copies IS NULL",
        "cleansed_data",
        crate::record_store::WHOLE_CLEANSED,
    )
}

/// `view` with each expression that starts with `starts` and is named
/// `column` replaced by `expression` (the view computes it once per branch).
fn with_column(view: &str, starts: &str, column: &str, expression: &str) -> String {
    let mut out = String::with_capacity(view.len());
    let mut rest = view;
    while let Some(start) = rest.find(starts) {
        let end = rest[start..]
            .find(&format!(" AS {column}"))
            .unwrap_or_else(|| panic!("the view names {column}"))
            + start;
        out.push_str(&rest[..start]);
        out.push_str(expression);
        rest = &rest[end..];
    }
    assert!(
        !out.is_empty(),
        "the view computes {column} with `{starts}`"
    );
    out.push_str(rest);
    out
}

/// Registers `intake_raw_data` and, once the file has raw_records (schema
/// 8 on), the temporary raw_import_records view that uses it.
fn read_records_natively(conn: &Connection) -> rusqlite::Result<()> {
    crate::record_store::register(conn)?;
    let has_records: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE name = 'raw_records')",
        [],
        |r| r.get(0),
    )?;
    if has_records {
        conn.execute_batch(&native_records_view())?;
    }
    Ok(())
}

/// Creates every index of the schema that is missing. A bulk insert may
/// drop an index and build it again after (`drop_index_for_bulk`); a run
/// killed between the two leaves it missing, and the next open (or the end
/// of the bulk work) puts it back. A no-op when all are there.
pub fn ensure_indexes(conn: &Connection) -> rusqlite::Result<()> {
    for statement in SCHEMA_SQL.split(';') {
        let statement = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("CREATE INDEX ") else {
            continue;
        };
        conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {rest}"))?;
    }
    Ok(())
}

/// Drops `index` before a bulk insert of about `rows` rows into `table`
/// when they are at least `min_rows` and a quarter of what the table holds:
/// an index whose keys come in no order (host names in file order, the
/// depends_on ends of a relationship export) costs a page read and write per
/// row once it outgrows the cache, and building it again sorts once. Returns
/// whether it was dropped; the caller builds it again with `ensure_indexes`.
pub fn drop_index_for_bulk(
    conn: &Connection,
    table: &str,
    index: &str,
    rows: u64,
    min_rows: u64,
) -> rusqlite::Result<bool> {
    if rows < min_rows {
        return Ok(false);
    }
    let stored: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    if rows.saturating_mul(4) < stored.max(0) as u64 {
        return Ok(false);
    }
    conn.execute_batch(&format!("DROP INDEX IF EXISTS {index}"))?;
    Ok(true)
}

/// Opens an existing database read-only, without migrating it (for checks).
pub fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    let open = |flags| -> Result<Connection, DbError> {
        let conn = Connection::open_with_flags(path, flags).map_err(|source| DbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_handler(Some(wait_while_locked))?;
        Ok(conn)
    };
    let read_only =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let probe = |c: &Connection| c.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
    let conn = open(read_only)?;
    match probe(&conn) {
        // A run killed mid-commit left a hot journal, which only a writer can
        // roll back: open the file writable once to do that, then read-only.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK =>
        {
            drop(conn);
            probe(&open(rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?)?;
            let conn = open(read_only)?;
            probe(&conn)?;
            Ok(conn)
        }
        _ => Ok(conn),
    }
    .inspect(|conn| {
        // A file that is not a database fails at its first real query with
        // the error that says so; without the native view the schema's
        // view still reads the records.
        let _ = read_records_natively(conn);
    })
}

/// How a connection waits for another process's lock on the file (a reader
/// in a paused `intake assets | less`, a long sync's snapshot, an import's
/// commit): as long as it is held, saying so on stderr once it has waited
/// two seconds, as the writer lock does. A fixed timeout failed a long
/// import with "database is locked" naming neither the holder nor a remedy.
fn wait_while_locked(attempt: i32) -> bool {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let pause_ms = match attempt {
        0..10 => 5,
        10..50 => 20,
        _ => 100,
    };
    if attempt == 60 && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "waiting for another process that holds the database (an `intake assets`, `report` or `sync` still reading, perhaps paused in a pager); this goes on as soon as it ends"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(pause_ms));
    true
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait_while_locked))?;
    // Takes effect only on a new file: the largest pages mean the fewest page
    // writes and the least slack for the 1-2 KiB JSON rows that fill the file.
    conn.pragma_update(None, "page_size", 65_536)?;
    // A rollback journal, not WAL: an import appends gigabytes, and WAL writes
    // every page twice (into the log, then into the file at each checkpoint),
    // which cost a quarter of a million-row import. Pages appended to the file
    // are not journalled at all. FULL sync: a killed process or a power loss
    // leaves the last committed batch, never a corrupt file. Readers wait
    // (wait_while_locked) while a batch commits.
    conn.pragma_update(None, "journal_mode", "TRUNCATE")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -32_768)?; // 32 MiB
                                                      // For set-based inserts (INSERT ... SELECT), ids made as `new_id` makes them.
    conn.create_scalar_function(
        "intake_new_id",
        0,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        |_| Ok(new_id()),
    )?;
    Ok(())
}

/// The schema version stored in the file.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), DbError> {
    if schema_version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE: a second process opening the same new file waits here, then
    // sees the version the first one wrote.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = migrate_locked(conn, path);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end)?;
    result
}

fn migrate_locked(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let found = schema_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(DbError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let wrap = |source| DbError::Migration {
        path: path.to_path_buf(),
        from: found,
        to: SCHEMA_VERSION,
        source,
    };
    if found == 0 {
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(DbError::ForeignDatabase {
                path: path.to_path_buf(),
            });
        }
    }
    // Inside the caller's transaction: a failed or killed migration leaves the
    // old version intact.
    if found == 0 {
        conn.execute_batch(SCHEMA_SQL).map_err(wrap)?;
    } else {
        for step in &MIGRATIONS[(found - 1) as usize..] {
            match step {
                Migration::Sql(sql) => conn.execute_batch(sql),
                Migration::Rust(edit) => edit(conn),
            }
            .map_err(wrap)?;
        }
        // Other connections (and this one) re-read the edited DDL.
        let cookie: i64 = conn
            .pragma_query_value(None, "schema_version", |r| r.get(0))
            .map_err(wrap)?;
        conn.pragma_update(None, "schema_version", cookie + 1)
            .map_err(wrap)?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(wrap)?;
    Ok(())
}

/// Held while a command writes: one writing run per database at a time, so a run
/// can treat any import still marked `processing` as left behind by a killed run.
/// The operating system releases the lock when the process dies.
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock next to `db_path`, waiting (with a message on stderr) while
    /// another run holds it.
    pub fn acquire(db_path: &Path) -> Result<WriterLock, DbError> {
        let lock_path = lock_path(db_path);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| DbError::Lock {
                path: lock_path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!(
                    "another intake run is writing to {}; waiting for it to finish",
                    db_path.display()
                );
                file.lock().map_err(|source| DbError::Lock {
                    path: lock_path.clone(),
                    source,
                })?;
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(DbError::Lock {
                    path: lock_path,
                    source,
                })
            }
        }
        Ok(WriterLock { _file: file })
    }

    /// Whether an intake run holds the lock of `db_path` now (a flow it
    /// shows as running is then really running, not interrupted).
    pub fn is_held(db_path: &Path) -> bool {
        let Ok(file) = File::options().read(true).open(lock_path(db_path)) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
}

/// The lock file beside the database, named from its canonical path: a
/// symbolic link to the database, or a path through a linked directory,
/// takes the same lock as the database's own path.
fn lock_path(db_path: &Path) -> PathBuf {
    let db_path = canonical_path(db_path);
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db_path.with_file_name(name)
}

/// `path` with links and `..` resolved, whether or not the file exists yet
/// (then its directory is resolved); as given when neither can be.
pub fn canonical_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Starts a write transaction for bulk inserts whose parent rows the caller
/// has itself written or read (the flow, the import, the tenant): SQLite's
/// per-row foreign key lookups, which were two thirds of the cost of writing
/// a million assets, are off until `end_bulk`. `PRAGMA foreign_keys` only
/// takes effect outside a transaction, hence the pair.
pub fn begin_bulk(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let begun = conn.execute_batch("BEGIN IMMEDIATE");
    if begun.is_err() {
        // No transaction to end: enforcement must not stay off for what follows.
        let _ = conn.execute_batch("PRAGMA foreign_keys = ON");
    }
    begun
}

/// Commits (or rolls back) a `begin_bulk` transaction and turns foreign key
/// enforcement back on, whatever the outcome.
pub fn end_bulk(conn: &Connection, commit: bool) -> rusqlite::Result<()> {
    let ended = conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" });
    // A failed COMMIT leaves the transaction open; enforcement returns once it ends.
    let restored = conn.execute_batch("PRAGMA foreign_keys = ON");
    ended.and(restored)
}

/// A new time-ordered id (UUID v7) as text.
pub fn new_id() -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut text)
        .to_string()
}

/// The current UTC time as RFC 3339 text with milliseconds.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .expect("a fixed format always formats a UTC time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn an_index_dropped_for_a_bulk_insert_is_built_again_and_only_for_many_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_SQL).unwrap();
        let all = indexes(&conn);
        assert!(all > 10, "{all}");
        ensure_indexes(&conn).unwrap();
        assert_eq!(indexes(&conn), all, "nothing to do when all are there");
        let drop = |rows| drop_index_for_bulk(&conn, "assets", "ix_assets_hostname", rows, 20_000);
        assert!(!drop(19_999).unwrap(), "a small table keeps the index");
        assert_eq!(indexes(&conn), all);
        assert!(drop(20_000).unwrap());
        assert_eq!(indexes(&conn), all - 1);
        conn.execute_batch("DROP INDEX ix_asset_dependencies_depends_on")
            .unwrap();
        ensure_indexes(&conn).unwrap();
        assert_eq!(indexes(&conn), all, "every missing index is back");
    }

    #[test]
    fn check_lists_become_or_chains_that_still_reject_other_values() {
        let old = "CREATE TABLE t (
    kind TEXT NOT NULL CHECK (kind IN ('a', 'b', 'c')),
    env  TEXT CHECK (env IS NULL OR env IN
                     ('prod', 'o''k')),
    flag INTEGER CHECK (flag IN (0, 1)),
    mix  TEXT CHECK (mix IN ('x', 'y', 'z') AND length(mix) = 1)
) STRICT";
        let new = check_lists_as_or(old);
        assert_eq!(
            new,
            "CREATE TABLE t (
    kind TEXT NOT NULL CHECK (kind = 'a' OR kind = 'b' OR kind = 'c'),
    env  TEXT CHECK (env IS NULL OR env = 'prod' OR env = 'o''k'),
    flag INTEGER CHECK (flag IN (0, 1)),
    mix  TEXT CHECK (mix IN ('x', 'y', 'z') AND length(mix) = 1)
) STRICT"
        );
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&new).unwrap();
        let insert = |kind: &str, env: Option<&str>| {
            conn.execute(
                "INSERT INTO t (kind, env, flag, mix) VALUES (?1, ?2, 1, 'x')",
                rusqlite::params![kind, env],
            )
        };
        insert("b", None).unwrap();
        insert("c", Some("o'k")).unwrap();
        assert!(insert("d", None).is_err());
        assert!(insert("a", Some("dev")).is_err());
        // The shipped schema is already in this form.
        assert_eq!(check_lists_as_or(SCHEMA_SQL), SCHEMA_SQL);
    }

    fn foreign_keys(conn: &Connection) -> bool {
        conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_bulk_transaction_turns_foreign_keys_back_on_however_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bulk.db");
        let conn = open(&path).unwrap();
        assert!(foreign_keys(&conn));
        begin_bulk(&conn).unwrap();
        assert!(!foreign_keys(&conn));
        end_bulk(&conn, true).unwrap();
        assert!(foreign_keys(&conn));
        begin_bulk(&conn).unwrap();
        end_bulk(&conn, false).unwrap();
        assert!(foreign_keys(&conn));

        // Another writer holds the file: BEGIN fails and enforcement stays on.
        let other = open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.busy_timeout(std::time::Duration::ZERO).unwrap();
        assert!(begin_bulk(&conn).is_err());
        assert!(foreign_keys(&conn));
        other.execute_batch("ROLLBACK").unwrap();
    }
}
