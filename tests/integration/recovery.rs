//! A run killed in the middle leaves a consistent file, and the next run finishes
//! the job: same rows as an uninterrupted run, nothing half-counted.

use std::time::{Duration, Instant};

use crate::common::*;
use rusqlite::{Connection, OpenFlags};

fn write_export(work: &Work, rows: u64) -> std::path::PathBuf {
    let path = work.path("cmdb_export.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    intake::synth::write_cmdb_csv(&mut out, rows, 1.0, 7).unwrap();
    drop(out);
    path
}

fn committed_rows(db: &std::path::Path) -> i64 {
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM raw_import_records", [], |r| r.get(0))
        .unwrap_or(0)
}

fn digest(conn: &Connection, import_status: &str) -> (i64, String) {
    let mut stmt = conn
        .prepare(
            "SELECT r.record_index, r.raw_data FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id
             WHERE d.status = ?1 ORDER BY r.record_index",
        )
        .unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut n = 0;
    let rows = stmt
        .query_map([import_status], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap();
    for row in rows {
        let (index, raw) = row.unwrap();
        hasher.update(&index.to_le_bytes());
        hasher.update(raw.as_bytes());
        n += 1;
    }
    (n, hasher.finalize().to_hex().to_string())
}

/// Every asset's identifying and derived columns, in a stable order, and
/// the dependencies between them by name: what a finished import built.
fn asset_digest(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT asset_type, name, hostname, ip_address, memory_gb, cpu_cores, environment,
                    custom_attributes, support_status, sixr_ready
             FROM assets ORDER BY asset_type, name, ip_address, custom_attributes",
        )
        .unwrap();
    let mut rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<f64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut edges = conn
        .prepare(
            "SELECT a.name || ' -' || d.dependency_type || '-> ' || b.name FROM asset_dependencies d
             JOIN assets a ON a.id = d.asset_id JOIN assets b ON b.id = d.depends_on_asset_id
             ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.append(&mut edges);
    rows
}

/// How many phases of the latest flow are recorded complete (0 when none
/// or the file cannot be read yet).
/// Every edge by its ends' names, type and source, sorted; and whether the
/// depends_on index is there.
fn edge_digest(conn: &Connection) -> Vec<String> {
    let mut edges: Vec<String> = conn
        .prepare(
            "SELECT a.name || ' ' || d.dependency_type || ' ' || b.name || ' ' || coalesce(d.source, '')
             FROM asset_dependencies d JOIN assets a ON a.id = d.asset_id
             JOIN assets b ON b.id = d.depends_on_asset_id ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let index = count(
        conn,
        "SELECT count(*) FROM sqlite_master WHERE name = 'ix_asset_dependencies_depends_on'",
    );
    edges.push(format!("depends_on index: {index}"));
    edges
}

fn completed_phases(db: &std::path::Path) -> i64 {
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.query_row(
        "SELECT data_import_completed + attribute_mapping_completed + data_cleansing_completed
                + inventory_completed + dependencies_completed + tech_debt_completed
         FROM discovery_flows ORDER BY created_at DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[test]
fn a_kill_in_any_phase_is_finished_by_the_next_run() {
    let source = Work::new();
    // Every server names its application and a cmdb_rel_ci export relates
    // them: the dependencies phase has work enough for its bulk path (the
    // depends_on index dropped and built again). Several files in one run:
    // the inventory phase builds them (not staging).
    let export = write_export(&source, 30_000);
    let relationships = source.path("cmdb_rel_ci.csv");
    let mut out = std::fs::File::create(&relationships).unwrap();
    intake::synth::write_relationships_csv(&mut out, 30_000, 1.0, 7).unwrap();
    drop(out);
    let cmdb = sample("servicenow_cmdb_ci_server.csv");
    let files = [
        export.to_str().unwrap(),
        relationships.to_str().unwrap(),
        cmdb.to_str().unwrap(),
    ];
    let clean = Work::new();
    let (code, out) = clean.import_json(&files);
    assert_eq!(code, 0, "{out}");
    let expected = asset_digest(&clean.conn());
    let expected_edges = edge_digest(&clean.conn());
    assert!(expected_edges.len() > 50_000, "{}", expected_edges.len());
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for phase in 0..6 {
        for attempt in 0..2 {
            // A random moment after the phases before this one completed. A
            // short phase (tech_debt on 30,000 assets) may end before the
            // moment comes: the run is then started again with a shorter
            // wait, down to none.
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut delay = Duration::from_millis(u64::from(seed >> 16) % 60);
            let mut killed = None;
            for _ in 0..4 {
                let work = Work::new();
                let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("intake"))
                    .args(["--db", work.db().to_str().unwrap(), "import", "--quiet"])
                    .args(files)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(120);
                while completed_phases(&work.db()) < phase
                    && child.try_wait().unwrap().is_none()
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                std::thread::sleep(delay);
                let done = completed_phases(&work.db());
                if child.try_wait().unwrap().is_some() {
                    delay /= 4;
                    continue;
                }
                child.kill().unwrap(); // SIGKILL: no cleanup code runs
                child.wait().unwrap();
                killed = Some((work, done));
                break;
            }
            let (work, done) = killed.unwrap_or_else(|| {
                panic!("the run ended before it could be killed after {phase} phases, four times")
            });
            let context = format!(
                "killed {delay:?} after phase {phase} began, with {done} phases done (attempt {attempt})"
            );

            let (code, out) = work.import_json(&files);
            assert_eq!(code, 0, "{context}: {out}");
            let conn = work.conn();
            let integrity: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(integrity, "ok", "{context}");
            assert_eq!(
                count(&conn, "SELECT count(*) FROM discovery_flows WHERE status NOT IN ('completed', 'failed')"),
                0,
                "{context}: no flow is left half done"
            );
            assert_eq!(
                asset_digest(&conn),
                expected,
                "{context}: the same assets as an uninterrupted run"
            );
            assert_eq!(
                edge_digest(&conn),
                expected_edges,
                "{context}: the same edges as an uninterrupted run"
            );
        }
    }
}

const HOSTNAME_INDEX: &str =
    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'ix_assets_hostname'";

/// Rows of the killed import: staging commits every 100,000, so after the first
/// commit is seen three more remain, time enough to kill the run mid-import.
const KILLED_ROWS: i64 = 400_000;

#[test]
fn a_killed_import_is_redone_by_the_next_run() {
    let work = Work::new();
    let export = write_export(&work, KILLED_ROWS as u64);
    let db = work.db();
    // Parsed on three threads: the kill may come while chunks are in flight.
    let mut child = work.spawn_import_with(&export, &["--threads", "3"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_rows(&db) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no batch was committed in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup code runs
    child.wait().unwrap();

    {
        let conn = work.conn();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let (status, processed): (String, i64) = conn
            .query_row(
                "SELECT status, processed_records FROM data_imports",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(status, "processing", "killed mid-import");
        let stored = committed_rows(&db);
        assert!(stored > 0 && stored < KILLED_ROWS);
        assert_eq!(processed, stored, "the counts were committed with the rows");
        // A first build makes its assets as the rows are staged, committed with them.
        assert!(count(&conn, "SELECT count(*) FROM assets") > 0);
        // A table this large goes in without the host-name index...
        assert_eq!(
            count(&conn, HOSTNAME_INDEX),
            0,
            "the index was dropped for the bulk build"
        );
    }

    // The next run says once what it recovered, by file name.
    let rerun = work
        .intake()
        .args(["import", "--json", export.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&rerun.stderr);
    let file_name = export.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        said.lines()
            .filter(|l| l.contains("recovered") && l.contains(&file_name))
            .count(),
        1,
        "{said}"
    );
    let out: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    let code = rerun.status.code().unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["files"][0]["status"], "completed");
    assert_eq!(
        out["recovered_imports"].as_array().unwrap().len(),
        1,
        "{out}"
    );
    assert_eq!(out["recovered_flows"].as_array().unwrap().len(), 1, "{out}");

    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE status = 'failed' AND processed_records = 0"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE status = 'completed'"
        ),
        1
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM discovery_flows WHERE status = 'failed' AND error_phase = 'data_import'"), 1);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets a JOIN discovery_flows f ON f.id = a.discovery_flow_id WHERE f.status = 'failed'"
        ),
        0,
        "the assets staged by the killed run went with its rows"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM crewai_flow_state_extensions WHERE flow_status = 'failed'"
        ),
        1
    );
    // ... which the next run builds again.
    assert_eq!(
        count(&conn, HOSTNAME_INDEX),
        1,
        "the index is back after the next run"
    );
    let resumed = digest(&conn, "completed");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM raw_import_records"),
        resumed.0,
        "no rows of the killed run remain"
    );

    // The same file imported without interruption gives the same rows and assets.
    let clean = Work::new();
    let (code, _) = clean.import_json(&[export.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(digest(&clean.conn(), "completed"), resumed);
    let resumed_assets = asset_digest(&conn);
    assert!(!resumed_assets.is_empty());
    assert_eq!(
        asset_digest(&clean.conn()),
        resumed_assets,
        "the re-run built the same assets"
    );
}

#[test]
fn two_runs_on_one_database_take_turns() {
    let work = Work::new();
    let big = write_export(&work, 20_000);
    let small = work.fixture("pipe_delimited.csv");
    let mut a = work.spawn_import(&big);
    let mut b = work.spawn_import(&small);
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE status = 'completed'"
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM crewai_flow_state_extensions WHERE flow_status = 'completed'"
        ),
        2
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM raw_import_records"),
        20_000 + 2
    );
}

#[test]
fn a_read_only_command_rolls_back_what_a_killed_commit_left() {
    let work = Work::new();
    let export = write_export(&work, 2_000);
    work.run_ok(&["import", export.to_str().unwrap(), "-q"]);
    let assets = count(&work.conn(), "SELECT count(*) FROM assets");
    assert!(assets > 1_000);
    // A writer part-way through a commit: with a one-page cache its changes
    // spill into the file while the journal holds the pages they replaced. A
    // copy of both files taken now is what a kill at that moment leaves.
    let writer = work.conn();
    writer.pragma_update(None, "cache_size", 1).unwrap();
    writer.execute_batch("BEGIN").unwrap();
    writer
        .execute("UPDATE assets SET name = 'half-written'", [])
        .unwrap();
    let killed = work.path("killed.db");
    std::fs::copy(work.db(), &killed).unwrap();
    let journal = std::fs::read(work.path("intake.db-journal")).expect("a journal mid-commit");
    assert!(!journal.is_empty());
    std::fs::write(work.path("killed.db-journal"), journal).unwrap();
    writer.execute_batch("ROLLBACK").unwrap();

    let out = work.run_ok(&["--db", "killed.db", "assets", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed.as_array().expect("a JSON array of assets");
    assert_eq!(listed.len() as i64, assets);
    assert!(listed.iter().all(|a| a["name"] != "half-written"));
    let conn = Connection::open(&killed).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE name = 'half-written'"
        ),
        0
    );
}

/// A flow that failed in a phase after its import (here the dependencies
/// phase, made to fail as a full disk does) is finished by the next run once
/// the cause is gone, from that phase; sync refuses it until then and says
/// how to finish it.
#[test]
fn a_flow_that_failed_in_a_later_phase_is_finished_by_the_next_run() {
    let work = Work::new();
    // The database exists before the run that fails (another engagement).
    work.run_ok(&[
        "import",
        "-q",
        "--engagement",
        "other",
        sample("handmade_semicolon_cp1252.csv").to_str().unwrap(),
    ]);
    work.conn()
        .execute_batch(
            "CREATE TRIGGER disk_full BEFORE INSERT ON asset_dependencies
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let rvtools = sample("RVTools_export_all.xlsx");
    let out = work
        .intake()
        .args(["import", rvtools.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.matches("dependencies").count(), 1, "{said}");
    assert!(said.contains("disk is full"), "{said}");
    let conn = work.conn();
    let (status, phase, message): (String, String, String) = conn
        .query_row(
            "SELECT status, error_phase, error_message FROM discovery_flows ORDER BY created_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), phase.as_str()),
        ("failed", "dependencies")
    );
    assert_eq!(
        message.matches("dependencies").count(),
        1,
        "the phase is named once: {message}"
    );
    let out = work
        .intake()
        .args([
            "sync",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(said.contains("intake import"), "{said}");
    assert!(said.contains("RVTools_export_all.xlsx"), "{said}");
    // What reads the flow says it did not complete, naming the command that
    // finishes it; the report says so at its top.
    let out = work.run_ok(&["assets", "--format", "csv", "-o", "assets.csv"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did not complete"), "{said}");
    assert!(said.contains("failed in dependencies"), "{said}");
    assert!(
        said.contains(&format!("intake import {}", rvtools.display())),
        "{said}"
    );
    let out = work.run_ok(&["report", "-o", "report.html"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did not complete"), "{said}");
    let html = std::fs::read_to_string(work.path("report.html")).unwrap();
    assert!(html.contains("Incomplete:"), "the report says so");

    // The space is back: the same command finishes the flow.
    conn.execute_batch("DROP TRIGGER disk_full").unwrap();
    let (code, json) = work.import_json(&[rvtools.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["resumed_flows"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM discovery_flows WHERE status <> 'completed'"
        ),
        0
    );
    assert!(count(&conn, "SELECT count(*) FROM asset_dependencies") > 0);
}

/// A small tmpfs mounted for one test, unmounted when it drops.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None (with a note) where mounting is not allowed.
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// The database's disk fills up during an import: the run fails naming what
/// failed, the file stays consistent, and once space is freed the same
/// command finishes the job.
#[test]
fn a_full_disk_fails_the_run_and_the_same_command_finishes_it_once_space_is_freed() {
    // 5,000 rows make a file of about 28 MB.
    let Some(disk) = SmallDisk::mount(96) else {
        return;
    };
    let work = Work::new();
    let export = write_export(&work, 5_000);
    let db = disk.dir.path().join("intake.db");
    // Leave about 12 MB: enough to start, not to finish.
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 84 << 20]).unwrap();
    let run = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("intake"))
            .args(["--db", db.to_str().unwrap(), "import", "-q"])
            .arg(&export)
            .output()
            .unwrap()
    };
    let out = run();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the import could not fit: {said}"
    );
    assert_ne!(out.status.code(), Some(101), "{said}");
    assert!(said.contains("full"), "{said}");
    std::fs::remove_file(&filler).unwrap();
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM discovery_flows WHERE status = 'completed'"
        ),
        1
    );
    // The same rows as a run that had room all along.
    work.run_ok(&["import", "-q", export.to_str().unwrap()]);
    let staged = "SELECT count(*) FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id WHERE d.status = 'completed'";
    assert_eq!(count(&conn, staged), count(&work.conn(), staged));
    assert_eq!(
        count(&conn, "SELECT count(*) FROM assets"),
        count(&work.conn(), "SELECT count(*) FROM assets")
    );
    assert_eq!(
        conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    drop(conn);
}

/// A reader that holds the file (a paused `intake assets | less`) makes an
/// import wait, saying so, for as long as it reads; the import then finishes.
#[test]
fn an_import_waits_for_a_reader_saying_so_and_finishes_when_it_ends() {
    let work = Work::new();
    work.run_ok(&[
        "import",
        "-q",
        sample("handmade_semicolon_cp1252.csv").to_str().unwrap(),
    ]);
    let reader = Connection::open(work.db()).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM assets", [], |r| r.get(0))
        .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("intake"))
        .args(["--db", work.db().to_str().unwrap(), "import"])
        .arg(sample("servicenow_cmdb_ci_server.csv"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Longer than the 30 s a busy timeout used to give up after.
    std::thread::sleep(Duration::from_secs(35));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import waits while the reader holds the file"
    );
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("waiting for another process"), "{said}");
    assert_eq!(
        count(
            &work.conn(),
            "SELECT count(*) FROM discovery_flows WHERE status <> 'completed'"
        ),
        0
    );
}

/// The next export of a source, killed at random moments in each of its
/// phases (while it records sightings, merges the machines its changed rows
/// touch, writes its links): the next run finishes it with the rows, the
/// sightings and the assets of an uninterrupted re-import.
#[test]
fn a_killed_re_import_is_finished_by_the_next_run() {
    let rows = 20_000;
    let source = Work::new();
    let write = |name: &str, changed: f64| {
        let path = source.path(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let records = intake::synth::CmdbRecords::new(rows, 1.0, 41).with_changed(changed, 42);
        intake::synth::write_records_csv(&mut out, records).unwrap();
        drop(out);
        path
    };
    let monday = write("cmdb_monday.csv", 0.0);
    let tuesday = write("cmdb_tuesday.csv", 3.0);
    let first = Work::new();
    let (code, out) = first.import_json(&[monday.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let clean = Work::new();
    std::fs::copy(first.db(), clean.db()).unwrap();
    let (code, out) = clean.import_json(&[tuesday.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let seen = |conn: &Connection| count(conn, "SELECT count(*) FROM raw_record_sightings");
    let expected = (asset_digest(&clean.conn()), seen(&clean.conn()));
    assert!(expected.1 > 0);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut kills = 0;
    for phase in 0..6 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let mut delay = Duration::from_millis(u64::from(seed >> 16) % 40);
        let mut killed = None;
        for _ in 0..4 {
            let work = Work::new();
            std::fs::copy(first.db(), work.db()).unwrap();
            let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("intake"))
                .args(["--db", work.db().to_str().unwrap(), "import", "--quiet"])
                .arg(&tuesday)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            // Phases of the re-import's flow, which is the latest.
            while completed_phases(&work.db()) < phase
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_some() {
                delay /= 4;
                continue;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            killed = Some(work);
            break;
        }
        let Some(work) = killed else {
            continue; // the phase was too short to be caught four times
        };
        kills += 1;
        let (code, out) = work.import_json(&[tuesday.to_str().unwrap()]);
        assert_eq!(code, 0, "killed in phase {phase}: {out}");
        let conn = work.conn();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM raw_record_sightings s JOIN data_imports d ON d.id = s.data_import_id
                 WHERE d.status <> 'completed'"
            ),
            0,
            "killed in phase {phase}: no sighting of an unfinished import is left"
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id
                 WHERE d.status = 'completed' AND d.filename LIKE '%cmdb_tuesday.csv'"
            ),
            rows as i64,
            "killed in phase {phase}"
        );
        assert_eq!(
            (asset_digest(&conn), seen(&conn)),
            expected,
            "killed in phase {phase}: the assets and sightings of an uninterrupted re-import"
        );
    }
    assert!(
        kills >= 3,
        "only {kills} runs were killed before they ended"
    );
}
