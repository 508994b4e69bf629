//! `intake sync` against the real PostgreSQL server: each test gets its own
//! database (dropped at the end). The server is INTAKE_TEST_POSTGRES
//! (default postgres://postgres@127.0.0.1:5432); .ci/run starts it if it is down.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use postgres::{Client, NoTls};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn server() -> String {
    postgres_server()
}

/// The central database of a test.
type Central = TestDatabase;

/// A new central database for one test.
fn central() -> Central {
    TestDatabase::create("intake_test")
}

/// `intake sync ARGS` on the work dir's database: (exit code, stdout, stderr).
fn sync(work: &Work, central: &Central, args: &[&str]) -> (i32, String, String) {
    let out = work
        .intake()
        .arg("sync")
        .args(args)
        .env("DATABASE_URL", central.url())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sync_json(work: &Work, central: &Central, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, stdout, stderr) = sync(work, central, &all);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, json)
}

fn imported(work: &Work, files: &[std::path::PathBuf]) {
    let mut args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    args.push("-q");
    let mut all = vec!["import"];
    all.extend(args);
    work.run_ok(&all);
}

fn big_export(work: &Work, rows: u64) -> std::path::PathBuf {
    let path = work.path("cmdb_export.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    intake::synth::write_cmdb_csv(&mut out, rows, 1.0, 5).unwrap();
    drop(out);
    path
}

/// One value as both sides should agree on it, whatever its type.
fn same(local: &rusqlite::types::Value, central: &Value) -> bool {
    use rusqlite::types::Value as L;
    match (local, central) {
        (L::Null, Value::Null) => true,
        (L::Integer(i), Value::Bool(b)) => (*i == 1) == *b,
        (L::Integer(i), Value::Number(n)) => n.as_f64() == Some(*i as f64),
        (L::Real(f), Value::Number(n)) => n.as_f64().is_some_and(|c| (c - f).abs() < 1e-9),
        (L::Text(t), Value::String(c)) => {
            if t == c {
                return true;
            }
            // A time without a zone is UTC, as the sync tells the server.
            let local = OffsetDateTime::parse(t, &Rfc3339)
                .or_else(|_| OffsetDateTime::parse(&format!("{t}Z"), &Rfc3339));
            match (local, OffsetDateTime::parse(c, &Rfc3339)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        (L::Text(t), Value::Object(_) | Value::Array(_)) => {
            serde_json::from_str::<Value>(t).ok().as_ref() == Some(central)
        }
        _ => false,
    }
}

/// Every synced table: the same keys locally and centrally, and every column equal.
fn assert_central_equals_local(work: &Work, central: &Central) {
    let conn = work.conn();
    let mut client = central.client();
    for spec in intake::sync::TABLES {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {}", spec.name))
            .unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let key = names.iter().position(|n| n == spec.key).unwrap();
        let local: BTreeMap<String, Vec<rusqlite::types::Value>> = stmt
            .query_map([], |r| {
                let values: Vec<rusqlite::types::Value> = (0..names.len())
                    .map(|i| r.get(i))
                    .collect::<Result<_, _>>()?;
                let id = match &values[key] {
                    rusqlite::types::Value::Text(t) => t.clone(),
                    other => panic!("{other:?}"),
                };
                Ok((id, values))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let rows = client
            .query(
                &format!("SELECT to_jsonb(t)::text FROM {} t", spec.name),
                &[],
            )
            .unwrap();
        let central_rows: BTreeMap<String, serde_json::Map<String, Value>> = rows
            .iter()
            .map(|r| {
                let row: Value = serde_json::from_str(&r.get::<_, String>(0)).unwrap();
                let row = row.as_object().unwrap().clone();
                (row[spec.key].as_str().unwrap().to_string(), row)
            })
            .collect();
        assert_eq!(
            local.keys().collect::<Vec<_>>(),
            central_rows.keys().collect::<Vec<_>>(),
            "{}: the keys differ",
            spec.name
        );
        for (id, values) in &local {
            let row = &central_rows[id];
            for (name, value) in names.iter().zip(values) {
                assert!(
                    same(value, &row[name]),
                    "{}.{name} of {id}: local {value:?}, central {}",
                    spec.name,
                    row[name]
                );
            }
        }
    }
}

#[test]
fn a_synced_flow_equals_the_local_tables_and_a_second_sync_changes_nothing() {
    let work = Work::new();
    let central = central();
    imported(
        &work,
        &[
            sample("servicenow_cmdb_ci_server.csv"),
            sample("RVTools_export_all.xlsx"),
            sample("handmade_semicolon_cp1252.csv"),
        ],
    );
    let (code, plan) = sync_json(&work, &central, &["--create-schema", "--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan["outcome"], "planned");
    let assets = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "assets")
        .unwrap()
        .clone();
    assert!(assets["inserts"].as_u64().unwrap() > 0, "{plan}");
    assert_eq!(
        central.count("SELECT count(*) FROM information_schema.tables WHERE table_name = 'assets'"),
        0,
        "a dry run writes nothing, not even the schema"
    );

    let (code, done) = sync_json(&work, &central, &["--create-schema"]);
    assert_eq!(code, 0, "{done}");
    assert_eq!(done["outcome"], "synced");
    assert_central_equals_local(&work, &central);
    assert_eq!(
        central.count("SELECT count(*) FROM assets"),
        assets["inserts"].as_i64().unwrap()
    );

    let (code, again) = sync_json(&work, &central, &[]);
    assert_eq!(code, 0, "nothing to do is success: {again}");
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(again["checksum"], done["checksum"]);
    for t in again["tables"].as_array().unwrap() {
        assert_eq!(
            t["inserts"].as_u64().unwrap()
                + t["updates"].as_u64().unwrap()
                + t["deletes"].as_u64().unwrap(),
            0,
            "{t}"
        );
    }
    assert_eq!(
        central
            .count("SELECT count(*) FROM intake_sync_log WHERE outcome IN ('synced', 'unchanged')"),
        2
    );
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sync_log WHERE outcome = 'synced'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sync_log WHERE outcome = 'unchanged'"
        ),
        1
    );
    // The connection string (and so any password) is never printed or logged.
    let (_, stdout, stderr) = sync(&work, &central, &[]);
    assert!(!stdout.contains("postgres://") && !stderr.contains("postgres://"));
    let target: String = conn
        .query_row("SELECT target FROM sync_log LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(!target.contains("postgres@"), "{target}");
}

#[test]
fn a_mapping_change_updates_and_removed_rows_are_deleted_on_resync() {
    let work = Work::new();
    let central = central();
    let file = work.write(
        "handmade.csv",
        "Server Name,Kiste,RAM GB\nweb01,DC-Nord,16\nweb02,DC-Sued,8\n",
    );
    imported(&work, &[file]);
    let (code, _, stderr) = sync(&work, &central, &["--create-schema"]);
    assert_eq!(code, 0, "{stderr}");

    work.run_ok(&["mappings", "set", "Kiste", "datacenter"]);
    // A suggestion the flow no longer has: its central row must go.
    let conn = work.conn();
    let gone: String = conn
        .query_row(
            "SELECT id FROM import_field_mappings WHERE source_field = 'RAM GB'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute("DELETE FROM import_field_mappings WHERE id = ?1", [&gone])
        .unwrap();
    drop(conn);

    let (code, plan) = sync_json(&work, &central, &["--dry-run"]);
    assert_eq!(code, 0);
    let table = |json: &Value, name: &str| {
        json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(table(&plan, "assets")["updates"], 2, "{plan}");
    assert_eq!(
        table(&plan, "import_field_mappings")["deletes"],
        1,
        "{plan}"
    );
    assert!(
        table(&plan, "import_field_mappings")["updates"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(table(&plan, "raw_import_records")["updates"], 2, "{plan}");

    let (code, done) = sync_json(&work, &central, &[]);
    assert_eq!(code, 0, "{done}");
    assert_eq!(table(&done, "import_field_mappings")["deletes"], 1);
    assert_central_equals_local(&work, &central);
    assert_eq!(
        central.count("SELECT count(*) FROM assets WHERE datacenter = 'DC-Nord'"),
        1
    );
}

#[test]
fn a_row_of_another_tenant_refuses_the_sync_and_changes_nothing() {
    let work = Work::new();
    let central = central();
    synced_sample_beside_another_tenant(&work, &central);
    // Centrally, one of the assets now belongs to another client's engagement.
    let mut client = central.client();
    let taken: String = client
        .query_one(
            "UPDATE assets SET client_account_id = '00000000-0000-7000-8000-000000000001',
               engagement_id = '00000000-0000-7000-8000-000000000002', name = 'theirs'
             WHERE id = (SELECT id FROM assets ORDER BY id LIMIT 1) RETURNING id::text",
            &[],
        )
        .unwrap()
        .get(0);
    let before = central.count("SELECT count(*) FROM intake_sync_log");
    // A local change that would otherwise be synced.
    work.conn()
        .execute("UPDATE assets SET description = 'changed'", [])
        .unwrap();

    let (code, _, stderr) = sync(&work, &central, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&taken) && stderr.contains("assets"),
        "{stderr}"
    );
    assert_eq!(
        central.count("SELECT count(*) FROM assets WHERE description = 'changed'"),
        0
    );
    assert_eq!(
        central.count("SELECT count(*) FROM assets WHERE name = 'theirs'"),
        1
    );
    assert_eq!(
        central.count("SELECT count(*) FROM intake_sync_log WHERE outcome = 'refused'"),
        1
    );
    assert_eq!(
        central.count("SELECT count(*) FROM intake_sync_log"),
        before + 1
    );
}

#[test]
fn a_central_schema_missing_a_column_is_named_and_nothing_is_synced() {
    let work = Work::new();
    let central = central();
    imported(&work, &[sample("servicenow_cmdb_ci_server.csv")]);
    central.execute(intake::sync::POSTGRES_SCHEMA_SQL);
    central.execute("ALTER TABLE assets DROP COLUMN fqdn");
    let (code, _, stderr) = sync(&work, &central, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("column assets.fqdn is missing"), "{stderr}");
    assert_eq!(central.count("SELECT count(*) FROM raw_import_records"), 0);
    // Without a central database at all the message says what to do.
    let out = work
        .intake()
        .args(["sync"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

#[test]
fn only_a_completed_flow_is_synced() {
    let work = Work::new();
    let central = central();
    let file = sample("servicenow_cmdb_ci_server.csv");
    work.run_ok(&[
        "import",
        file.to_str().unwrap(),
        "-q",
        "--stop-after",
        "data_cleansing",
    ]);
    let (code, _, stderr) = sync(&work, &central, &["--create-schema"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("only a completed flow"), "{stderr}");
}

/// The pid of a backend of `database` running a COPY, waiting up to a minute.
fn copying_backend(admin: &mut Client, database: &str, child: &mut std::process::Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY intake_stage_raw%'",
                &[&database],
            )
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before its COPY was seen"
        );
        assert!(Instant::now() < deadline, "no COPY seen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_sync(work: &Work, central: &Central) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("intake"))
        .args(["--db", work.db().to_str().unwrap(), "sync", "--quiet"])
        .env("DATABASE_URL", central.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_connection_killed_during_the_copy_leaves_the_central_database_unchanged() {
    let work = Work::new();
    let central = central();
    let export = big_export(&work, 120_000);
    imported(&work, &[export]);
    central.execute(intake::sync::POSTGRES_SCHEMA_SQL);
    let mut admin = Client::connect(&format!("{}/postgres", server()), NoTls).unwrap();
    let mut child = spawn_sync(&work, &central);
    let pid = copying_backend(&mut admin, &central.name, &mut child);
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for spec in intake::sync::TABLES {
        assert_eq!(
            central.count(&format!("SELECT count(*) FROM {}", spec.name)),
            0,
            "{} has rows after the killed sync",
            spec.name
        );
    }
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sync_log WHERE outcome = 'failed'"
        ),
        1
    );
    drop(conn);
    let (code, _, stderr) = sync(&work, &central, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        central.count("SELECT count(*) FROM raw_import_records"),
        120_000
    );
    assert_eq!(
        central.count("SELECT count(*) FROM assets"),
        count(&work.conn(), "SELECT count(*) FROM assets")
    );
}

#[test]
fn a_second_sync_of_the_engagement_is_locked_out_while_other_tenants_proceed() {
    let work = Work::new();
    let central = central();
    let export = big_export(&work, 120_000);
    imported(&work, &[export]);
    let other = Work::new();
    other.run_ok(&[
        "import",
        sample("servicenow_cmdb_ci_server.csv").to_str().unwrap(),
        "-q",
        "--client",
        "Other Client",
    ]);
    central.execute(intake::sync::POSTGRES_SCHEMA_SQL);
    let mut admin = Client::connect(&format!("{}/postgres", server()), NoTls).unwrap();
    let mut first = spawn_sync(&work, &central);
    copying_backend(&mut admin, &central.name, &mut first);
    // Same engagement (the same local file): locked out with a clear message.
    let (code, _, stderr) = sync(&work, &central, &[]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("another sync"), "{stderr}");
    // Another client's flow goes through meanwhile.
    let (code, _, stderr) = sync(&other, &central, &[]);
    assert_eq!(code, 0, "{stderr}");
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_central_equals_local_counts(&work, &central);
}

fn assert_central_equals_local_counts(work: &Work, central: &Central) {
    let conn = work.conn();
    let local = count(&conn, "SELECT count(*) FROM raw_import_records");
    let mut client = central.client();
    let flow: String = conn
        .query_row(
            "SELECT flow_id FROM crewai_flow_state_extensions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let central_count: i64 = client
        .query_one(
            "SELECT count(*) FROM raw_import_records WHERE master_flow_id = $1::text::uuid",
            &[&flow],
        )
        .unwrap()
        .get(0);
    assert_eq!(central_count, local);
}

#[test]
fn a_client_name_taken_centrally_by_another_id_refuses_the_sync() {
    let work = Work::new();
    let central = central();
    imported(&work, &[sample("servicenow_cmdb_ci_server.csv")]);
    let name: String = work
        .conn()
        .query_row("SELECT name FROM client_accounts", [], |r| r.get(0))
        .unwrap();
    central.execute(intake::sync::POSTGRES_SCHEMA_SQL);
    central
        .client()
        .execute(
            "INSERT INTO client_accounts (id, name, created_at, updated_at)
             VALUES ('00000000-0000-7000-8000-000000000009', $1, now(), now())",
            &[&name],
        )
        .unwrap();
    let (code, _, stderr) = sync(&work, &central, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("client_accounts") && stderr.contains("unique"),
        "{stderr}"
    );
    assert_eq!(central.count("SELECT count(*) FROM raw_import_records"), 0);
}

/// The sample CMDB export imported and synced once (the central schema
/// created), with another client and engagement present centrally.
fn synced_sample_beside_another_tenant(work: &Work, central: &Central) {
    imported(work, &[sample("servicenow_cmdb_ci_server.csv")]);
    let (code, _, stderr) = sync(work, central, &["--create-schema"]);
    assert_eq!(code, 0, "{stderr}");
    central.execute(OTHER_TENANT);
}

/// Another client and engagement, created centrally.
const OTHER_TENANT: &str = "INSERT INTO client_accounts (id, name, created_at, updated_at)
       VALUES ('00000000-0000-7000-8000-000000000001', 'Other', now(), now());
     INSERT INTO engagements (id, client_account_id, name, created_at, updated_at)
       VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'E', now(), now());";

/// Waits until a backend of `database` waits on a lock (the sync's upsert
/// blocked by another transaction's uncommitted row).
fn backend_waiting_on_a_lock(admin: &mut Client, database: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&database],
            )
            .unwrap();
        if waiting.is_some() {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it waited on the other tenant's row"
        );
        assert!(Instant::now() < deadline, "the sync never waited on a lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_row_another_tenant_inserts_mid_sync_is_refused_not_taken_over() {
    let work = Work::new();
    let central = central();
    synced_sample_beside_another_tenant(&work, &central);
    // Locally: a changed asset (so the sync updates) and a new one (so it inserts).
    let conn = work.conn();
    conn.execute("UPDATE assets SET description = 'changed'", [])
        .unwrap();
    let new_id = "019400aa-0000-7000-8000-0000000000aa";
    conn.execute(
        "INSERT INTO assets (id, client_account_id, engagement_id, master_flow_id, discovery_flow_id,
           asset_type, name, custom_attributes, created_at, updated_at)
         SELECT ?1, client_account_id, engagement_id, master_flow_id, discovery_flow_id,
           'server', 'new-machine', '{}', created_at, updated_at FROM assets LIMIT 1",
        [new_id],
    )
    .unwrap();
    drop(conn);
    // Another tenant inserts a row under that id and has not committed yet:
    // the sync's first tenant check cannot see it.
    let mut theirs = central.client();
    let mut tx = theirs.transaction().unwrap();
    tx.execute(
        "INSERT INTO assets (id, client_account_id, engagement_id, asset_type, name, created_at, updated_at)
         VALUES ($1::text::uuid, '00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000002',
                 'server', 'theirs', now(), now())",
        &[&new_id],
    )
    .unwrap();
    let mut admin = Client::connect(&format!("{}/postgres", server()), NoTls).unwrap();
    let mut child = spawn_sync(&work, &central);
    backend_waiting_on_a_lock(&mut admin, &central.name, &mut child);
    tx.commit().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(new_id), "{stderr}");
    // Their row is still theirs, and nothing of the sync was written.
    assert_eq!(
        central.count(
            "SELECT count(*) FROM assets WHERE name = 'theirs'
               AND client_account_id = '00000000-0000-7000-8000-000000000001'"
        ),
        1
    );
    assert_eq!(
        central.count("SELECT count(*) FROM assets WHERE description = 'changed'"),
        0
    );
}

#[test]
fn a_dependency_on_another_tenants_asset_is_refused() {
    let work = Work::new();
    let central = central();
    synced_sample_beside_another_tenant(&work, &central);
    let conn = work.conn();
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM assets ORDER BY id LIMIT 2")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Centrally the second asset now belongs to another tenant; locally it
    // is no longer this flow's, so only the dependency points at it.
    central.execute(&format!(
        "UPDATE assets SET client_account_id = '00000000-0000-7000-8000-000000000001',
           engagement_id = '00000000-0000-7000-8000-000000000002' WHERE id = '{}'",
        ids[1]
    ));
    conn.execute(
        "UPDATE assets SET master_flow_id = NULL WHERE id = ?1",
        [&ids[1]],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO asset_dependencies (id, client_account_id, engagement_id, master_flow_id, asset_id,
           depends_on_asset_id, dependency_type, created_at, updated_at)
         SELECT '019400bb-0000-7000-8000-0000000000bb', client_account_id, engagement_id, master_flow_id,
           ?1, ?2, 'depends_on', created_at, updated_at FROM assets WHERE id = ?1",
        [&ids[0], &ids[1]],
    )
    .unwrap();
    drop(conn);
    let (code, _, stderr) = sync(&work, &central, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("asset_dependencies") && stderr.contains(&ids[1]),
        "{stderr}"
    );
    assert_eq!(
        central.count(
            "SELECT count(*) FROM asset_dependencies WHERE id = '019400bb-0000-7000-8000-0000000000bb'"
        ),
        0,
        "nothing of the refused sync was written"
    );
}

#[test]
fn central_errors_say_their_cause_and_never_the_password() {
    let work = Work::new();
    imported(&work, &[sample("servicenow_cmdb_ci_server.csv")]);
    // A database that does not exist: the server's own words and SQLSTATE.
    let missing = format!("{}/intake_no_such_database", server());
    let out = work
        .intake()
        .arg("sync")
        .env("DATABASE_URL", &missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("3D000") && stderr.contains("intake_no_such_database"),
        "{stderr}"
    );
    // A password is never printed, whatever fails.
    let base = server();
    let (scheme, rest) = base.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let with_password = format!("{scheme}://someone:s3cr3t-pa55@{host}/postgres");
    let out = work
        .intake()
        .arg("sync")
        .env("DATABASE_URL", &with_password)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("s3cr3t-pa55"), "{stderr}");
    assert!(
        stderr.contains("someone") || stderr.contains("28"),
        "{stderr}"
    );
}

#[test]
fn a_nul_byte_in_a_source_file_does_not_make_the_flow_unsyncable() {
    let work = Work::new();
    let central = central();
    imported(&work, &[work.fixture("nul_bytes.csv")]);
    let (code, _, stderr) = sync(&work, &central, &["--create-schema"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        central.count(
            "SELECT count(*) FROM raw_import_records WHERE raw_data->>'notes' = 'ab' || chr(9216) || 'cd'"
        ),
        1
    );
    // A second sync finds nothing to change: what was sent is what is there.
    let (code, again) = sync_json(&work, &central, &[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["outcome"], "unchanged");
}

/// Reads `assets` every 20 ms with a 2 s statement timeout, as the
/// platform's own pages do, until told to stop: (reads, failures).
fn platform_reader(
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let mut client = Client::connect(&url, NoTls).unwrap();
        client
            .batch_execute("SET statement_timeout = '2s'")
            .unwrap();
        let (mut reads, mut failures) = (0, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match client.query("SELECT count(*) FROM assets", &[]) {
                Ok(_) => reads += 1,
                // Before the first sync creates it.
                Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => {}
                Err(e) => failures.push(e.to_string()),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (reads, failures)
    })
}

/// Starts `intake sync ARGS --json` for every work dir at once and waits
/// for all: (exit code, stdout, stderr) each.
fn sync_all_at_once(
    works: &[(Work, &'static [&'static str])],
    central: &Central,
) -> Vec<(i32, String, String)> {
    let children: Vec<_> = works
        .iter()
        .map(|(work, args)| {
            Command::new(assert_cmd::cargo::cargo_bin("intake"))
                .args(["--db", work.db().to_str().unwrap(), "sync", "--json"])
                .args(*args)
                .env("DATABASE_URL", central.url())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

#[test]
fn ten_tenants_syncing_at_once_neither_fail_each_other_nor_block_the_platforms_readers() {
    let tenant = |i: usize| {
        let work = Work::new();
        let export = big_export(&work, 1_500);
        let client = format!("tenant {i}");
        work.run_ok(&[
            "import",
            "-q",
            "--client",
            &client,
            export.to_str().unwrap(),
        ]);
        work
    };
    const CREATE: &[&str] = &["--create-schema"];
    const PLAIN: &[&str] = &[];
    // A fresh database: all ten create the schema if it is missing.
    let fresh = central();
    let works: Vec<(Work, &[&str])> = (0..10).map(|i| (tenant(i), CREATE)).collect();
    // A complete one: half ask for the schema, half do not.
    let complete = central();
    let first = tenant(10);
    let (code, _, stderr) = sync(&first, &complete, &["--create-schema"]);
    assert_eq!(code, 0, "{stderr}");
    let mixed: Vec<(Work, &[&str])> = (11..21)
        .map(|i| (tenant(i), if i % 2 == 0 { CREATE } else { PLAIN }))
        .collect();
    for (central, works) in [(&fresh, &works), (&complete, &mixed)] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = platform_reader(central.url(), stop.clone());
        let results = sync_all_at_once(works, central);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (reads, failures) = reader.join().unwrap();
        for (code, stdout, stderr) in &results {
            assert_eq!(*code, 0, "{stdout}\n{stderr}");
            let json: Value = serde_json::from_str(stdout).unwrap();
            assert_eq!(json["outcome"], "synced", "{json}");
        }
        assert!(
            failures.is_empty(),
            "the platform's reader failed: {failures:?}"
        );
        assert!(reads > 0, "the reader read while the syncs ran");
        assert_eq!(
            central.count("SELECT count(DISTINCT engagement_id) FROM assets"),
            if std::ptr::eq(central, &fresh) {
                10
            } else {
                11
            }
        );
    }
}

#[test]
fn a_password_is_never_printed_logged_or_stored_and_an_unencoded_one_is_refused_with_the_fix() {
    let work = Work::new();
    let central = central();
    imported(&work, &[sample("servicenow_cmdb_ci_server.csv")]);
    let with_password = |password: &str| {
        central.url().replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{password}@"),
            1,
        )
    };
    let run = |url: &str| {
        let out = work
            .intake()
            .args(["-vv", "sync", "--create-schema", "--json"])
            .env("DATABASE_URL", url)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let stored = || {
        let conn = work.conn();
        let local: Vec<String> = conn
            .prepare("SELECT coalesce(target, '') || ' ' || coalesce(message, '') FROM sync_log")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        local.join("\n")
    };
    // An '@' left in the password: refused before anything is sent.
    let (code, said) = run(&with_password("s3cr@tpass"));
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("%40"), "the fix is named: {said}");
    for part in ["s3cr", "tpass"] {
        assert!(!said.contains(part), "{part} shown: {said}");
        assert!(!stored().contains(part), "{part} stored: {}", stored());
    }
    // Percent-encoded, it is read (the test server trusts every password):
    // the sync goes through and the password appears nowhere.
    let (code, said) = run(&with_password("hunter2%40xyz"));
    assert_eq!(code, 0, "{said}");
    let central_log: String = central
        .client()
        .query_one(
            "SELECT string_agg(coalesce(message, '') || counts::text, ' ') FROM intake_sync_log",
            &[],
        )
        .unwrap()
        .get(0);
    for text in [said.as_str(), stored().as_str(), central_log.as_str()] {
        assert!(!text.contains("hunter2") && !text.contains("xyz"), "{text}");
    }
    assert!(
        stored().contains("127.0.0.1:5432/"),
        "the target is stored: {}",
        stored()
    );
}

/// An older flow whose dependencies point at machines a newer flow took over
/// is refused at once, naming the flow to sync first; in that order both go.
#[test]
fn an_older_flow_whose_machines_a_newer_flow_took_over_is_refused_with_the_order_to_sync_in() {
    let work = Work::new();
    let central = central();
    let servers = work.path("cmdb_ci_server.csv");
    let relationships = work.path("cmdb_rel_ci.csv");
    intake::synth::write_cmdb_csv(&mut std::fs::File::create(&servers).unwrap(), 400, 1.0, 3)
        .unwrap();
    intake::synth::write_relationships_csv(
        &mut std::fs::File::create(&relationships).unwrap(),
        400,
        1.0,
        3,
    )
    .unwrap();
    let (code, first) =
        work.import_json(&[servers.to_str().unwrap(), relationships.to_str().unwrap()]);
    assert_eq!(code, 0, "{first}");
    let older = first["master_flow_id"].as_str().unwrap().to_string();
    // The next export of the same CMDB, every machine changed.
    let next = work.path("cmdb_ci_server_next.csv");
    intake::synth::write_records_csv(
        &mut std::fs::File::create(&next).unwrap(),
        intake::synth::CmdbRecords::new(400, 1.0, 3).with_changed(100.0, 9),
    )
    .unwrap();
    let (code, second) = work.import_json(&[next.to_str().unwrap()]);
    assert_eq!(code, 0, "{second}");
    let newer = second["master_flow_id"].as_str().unwrap().to_string();
    let taken_over = count(
        &work.conn(),
        &format!(
            "SELECT count(*) FROM asset_dependencies d JOIN assets a ON a.id = d.asset_id
             WHERE d.master_flow_id = '{older}' AND a.master_flow_id = '{newer}'"
        ),
    );
    assert!(
        taken_over > 0,
        "the scenario: edges of the older flow at machines of the newer"
    );

    let started = Instant::now();
    let (code, _, stderr) = sync(&work, &central, &["--flow", &older, "--create-schema"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!("intake sync --flow {newer}")),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(central.count("SELECT count(*) FROM asset_dependencies"), 0);

    let (code, _, stderr) = sync(&work, &central, &["--flow", &newer]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = sync(&work, &central, &["--flow", &older]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        central.count("SELECT count(*) FROM asset_dependencies"),
        count(&work.conn(), "SELECT count(*) FROM asset_dependencies")
    );
}

/// End-user devices reach the platform where the README documents them:
/// asset_type `server` (the seeds' five values) marked in custom_attributes.
#[test]
fn end_user_devices_are_synced_marked_in_custom_attributes() {
    let work = Work::new();
    let central = central();
    imported(
        &work,
        &[crate::common::fixture(
            "machine_kinds/headerless_devices_servers_desktops_laptops.csv",
        )],
    );
    let (code, _, stderr) = sync(&work, &central, &["--create-schema"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        central.count(
            "SELECT count(*) FROM assets WHERE custom_attributes->>'_device_class' = 'end_user_device' AND asset_type = 'server'"
        ),
        8
    );
    assert_eq!(
        central.count(
            "SELECT count(*) FROM assets WHERE custom_attributes->>'_device_class' IS NULL AND asset_type = 'server'"
        ),
        4
    );
}
