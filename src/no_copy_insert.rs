//! An INSERT that a bulk import runs once per row, binding its text values
//! without SQLite copying them. rusqlite binds every text as
//! `SQLITE_TRANSIENT`, so SQLite copies it before the statement runs; for the
//! raw records and assets of a million-row import those copies, and the
//! allocations behind them, were about 5% of the run. Here the values are
//! bound as `SQLITE_STATIC`, which is sound because they are borrowed for the
//! whole call and every binding is cleared before `execute` returns.

use std::ffi::{c_int, CStr, CString};
use std::ptr::NonNull;

use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// A prepared INSERT (or any statement that returns no rows), finalized
/// when dropped; it borrows its connection, which therefore outlives it.
pub struct NoCopyInsert<'c> {
    conn: &'c Connection,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl<'c> NoCopyInsert<'c> {
    pub fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<NoCopyInsert<'c>> {
        let sql = CString::new(sql)?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: the handle is the live connection's; the SQL is NUL-terminated.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                conn.handle(),
                sql.as_ptr(),
                -1,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(failure(conn, rc));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| {
            rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_MISUSE),
                Some("the statement is empty".into()),
            )
        })?;
        Ok(NoCopyInsert { conn, stmt })
    }

    /// Binds `values` to parameters 1, 2, … and runs the statement once.
    pub fn execute<'v>(
        &mut self,
        values: impl IntoIterator<Item = ValueRef<'v>>,
    ) -> rusqlite::Result<()> {
        let result = self.bind_and_step(values);
        let stmt = self.stmt.as_ptr();
        // SAFETY: stmt is live. Clearing the bindings means no pointer to a
        // borrowed value is kept once this call returns.
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        result
    }

    fn bind_and_step<'v>(
        &self,
        values: impl IntoIterator<Item = ValueRef<'v>>,
    ) -> rusqlite::Result<()> {
        let stmt = self.stmt.as_ptr();
        for (i, value) in values.into_iter().enumerate() {
            let index = c_int::try_from(i + 1)
                .map_err(|_| rusqlite::Error::InvalidParameterCount(i + 1, 0))?;
            // SQLite's own message would be that of an earlier error.
            let too_big = |len: usize| {
                c_int::try_from(len).map_err(|_| {
                    rusqlite::Error::SqliteFailure(
                        ffi::Error::new(ffi::SQLITE_TOOBIG),
                        Some(format!(
                            "parameter {index} is {len} bytes, more than SQLite takes"
                        )),
                    )
                })
            };
            // SAFETY: stmt is live; a text or blob pointer stays valid until
            // `execute` clears the bindings (the value is borrowed for 'v).
            let rc = unsafe {
                match value {
                    // Cleared bindings are NULL already (an asset leaves
                    // most of its sixty columns empty).
                    ValueRef::Null => ffi::SQLITE_OK,
                    ValueRef::Integer(n) => ffi::sqlite3_bind_int64(stmt, index, n),
                    ValueRef::Real(r) => ffi::sqlite3_bind_double(stmt, index, r),
                    ValueRef::Text(text) => ffi::sqlite3_bind_text(
                        stmt,
                        index,
                        text.as_ptr().cast(),
                        too_big(text.len())?,
                        ffi::SQLITE_STATIC(),
                    ),
                    ValueRef::Blob(blob) => ffi::sqlite3_bind_blob(
                        stmt,
                        index,
                        blob.as_ptr().cast(),
                        too_big(blob.len())?,
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(failure(self.conn, rc));
            }
        }
        // SAFETY: stmt is live and bound.
        match unsafe { ffi::sqlite3_step(stmt) } {
            ffi::SQLITE_DONE | ffi::SQLITE_ROW => Ok(()),
            rc => Err(failure(self.conn, rc)),
        }
    }
}

impl Drop for NoCopyInsert<'_> {
    fn drop(&mut self) {
        // SAFETY: stmt was prepared on this connection and is finalized once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// The error SQLite reported, with its message, as rusqlite reports errors.
fn failure(conn: &Connection, rc: c_int) -> rusqlite::Error {
    // SAFETY: the handle is the live connection's; the message is copied at once.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(conn.handle());
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_bound_and_a_failed_row_says_why() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (a TEXT NOT NULL, b INTEGER, c REAL, d BLOB, CHECK (a <> 'bad')) STRICT",
        )
        .unwrap();
        let mut insert =
            NoCopyInsert::prepare(&conn, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)").unwrap();
        for i in 0..3 {
            let text = format!("row {i} ünïcode");
            insert
                .execute([
                    ValueRef::Text(text.as_bytes()),
                    ValueRef::Integer(i),
                    ValueRef::Real(i as f64 / 2.0),
                    ValueRef::Blob(&[1, 2, 3]),
                ])
                .unwrap();
            drop(text); // the row was stored before the text went
        }
        insert
            .execute([
                ValueRef::Text(b"short"),
                ValueRef::Null,
                ValueRef::Null,
                ValueRef::Null,
            ])
            .unwrap();
        let error = insert
            .execute([
                ValueRef::Text(b"bad"),
                ValueRef::Null,
                ValueRef::Null,
                ValueRef::Null,
            ])
            .unwrap_err();
        assert_eq!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        assert!(
            error.to_string().contains("CHECK constraint failed"),
            "{error}"
        );
        // Parameters not given are NULL, not the previous row's.
        let error = insert.execute([ValueRef::Text(b"partial")]);
        assert!(error.is_ok());
        type Stored = (String, Option<i64>, Option<f64>, Option<Vec<u8>>);
        let rows: Vec<Stored> = conn
            .prepare("SELECT a, b, c, d FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[1],
            (
                "row 1 ünïcode".into(),
                Some(1),
                Some(0.5),
                Some(vec![1, 2, 3])
            )
        );
        // A NULL after a row of values is NULL (bindings are cleared, not rebound).
        assert_eq!(rows[3], ("short".into(), None, None, None));
        assert_eq!(rows[4], ("partial".into(), None, None, None));
    }
}
