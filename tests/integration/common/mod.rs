//! Helpers for the integration tests: run the real `intake` binary in a
//! temporary work directory and read the SQLite file it wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rusqlite::Connection;
use serde_json::Value;

pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("intake.db")
    }

    /// `intake` in the work dir, with logging quiet unless the test asks.
    pub fn intake(&self) -> Command {
        let mut cmd = Command::cargo_bin("intake").expect("the intake binary");
        cmd.current_dir(self.dir.path()).env_remove("RUST_LOG");
        cmd
    }

    /// Writes `text` to a file in the work dir and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// Runs `intake ARGS`, checks that it exits 0 (showing stderr if not), and
    /// returns its output.
    pub fn run_ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.intake().args(args).output().expect("run intake");
        assert_eq!(
            out.status.code(),
            Some(0),
            "intake {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Copies a fixture into the work dir and returns its path there.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        std::fs::copy(fixture(name), &to).expect("copy fixture");
        to
    }

    /// Runs `intake import ARGS --json` and returns (exit code, parsed JSON).
    pub fn import_json(&self, args: &[&str]) -> (i32, Value) {
        let out = self
            .intake()
            .arg("import")
            .args(args)
            .arg("--json")
            .output()
            .expect("run intake");
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit {code}\nstdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, json)
    }

    pub fn conn(&self) -> Connection {
        Connection::open(self.db()).expect("open the database")
    }

    /// Starts `intake import FILE --quiet` in the background on this work dir's database.
    pub fn spawn_import(&self, file: &Path) -> std::process::Child {
        self.spawn_import_with(file, &[])
    }

    /// Starts `intake import FILE --quiet ARGS...` in the background.
    pub fn spawn_import_with(&self, file: &Path, args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("intake"))
            .arg("import")
            .arg(file)
            .args(args)
            .arg("--quiet")
            .arg("--db")
            .arg(self.db())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start intake")
    }
}

/// Runs `intake ARGS`, checks the exit code and that stderr mentions `text`.
pub fn expect_failure(work: &Work, args: &[&str], code: i32, text: &str) {
    let out = work.intake().args(args).output().expect("run intake");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(text), "stderr lacks '{text}': {stderr}");
}

/// The single integer a query returns.
pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// The raw_data of every record of the import of `filename_like`, in file order.
pub fn raw_rows(conn: &Connection, filename_like: &str) -> Vec<(i64, Value)> {
    let mut stmt = conn
        .prepare(
            "SELECT r.record_index, r.raw_data FROM raw_import_records r
             JOIN data_imports d ON d.id = r.data_import_id
             WHERE d.filename LIKE ?1 ORDER BY r.record_index",
        )
        .unwrap();
    stmt.query_map([format!("%{filename_like}%")], |r| {
        let raw: String = r.get(1)?;
        Ok((r.get(0)?, serde_json::from_str(&raw).unwrap()))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// One column of the data_imports row of `filename_like`.
pub fn import_field<T: rusqlite::types::FromSql>(
    conn: &Connection,
    filename_like: &str,
    column: &str,
) -> T {
    conn.query_row(
        &format!("SELECT {column} FROM data_imports WHERE filename LIKE ?1 ORDER BY created_at DESC LIMIT 1"),
        [format!("%{filename_like}%")],
        |r| r.get(0),
    )
    .unwrap()
}

/// The file entry of `--json` output whose path ends with `name`.
pub fn file_entry<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no file entry for {name} in {json}"))
}

/// Every staged row, in order, with the name of its import.
pub fn staged_rows(work: &Work) -> Vec<(String, i64, String)> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare(
            "SELECT d.import_name, r.record_index, r.raw_data FROM raw_import_records r
             JOIN data_imports d ON d.id = r.data_import_id ORDER BY 1, 2",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The PostgreSQL server the tests use: INTAKE_TEST_POSTGRES, a URL without
/// the database (default postgres://postgres@127.0.0.1:5432).
pub fn postgres_server() -> String {
    std::env::var("INTAKE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own on the test server, dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    /// A new empty database named `<prefix>_<uuid>`.
    pub fn create(prefix: &str) -> TestDatabase {
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let mut admin = postgres::Client::connect(
            &format!("{}/postgres", postgres_server()),
            postgres::NoTls,
        )
        .unwrap_or_else(|e| panic!("no test PostgreSQL server at {} ({e}): start it with `bash .ci/postgres.sh`, or name another with INTAKE_TEST_POSTGRES", postgres_server()));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", postgres_server(), self.name)
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }

    /// Runs SQL statements on the test database.
    pub fn execute(&self, sql: &str) {
        self.client().batch_execute(sql).unwrap();
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin =
            postgres::Client::connect(&format!("{}/postgres", postgres_server()), postgres::NoTls);
        if let Ok(mut admin) = admin {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
