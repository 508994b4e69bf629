//! `intake consolidate` against the real PostgreSQL: a legacy database
//! written from the seeds (tests/fixtures/consolidate/legacy_untouched.sql)
//! is planned without change, consolidated losing nothing, found clean by a
//! second run, left exactly as it was by a killed run, and synced to after.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use serde_json::Value;

use crate::common::{fixture, postgres_server, sample, TestDatabase, Work};

fn server() -> String {
    postgres_server()
}

/// A legacy platform database: the seeds' fixture in a database of its own.
fn legacy_database() -> TestDatabase {
    let db = TestDatabase::create("intake_legacy");
    db.execute(&std::fs::read_to_string(fixture("consolidate/legacy_untouched.sql")).unwrap());
    db
}

/// Every table of the public schema with its columns and rows: what
/// "exactly as it was" compares.
fn snapshot(db: &TestDatabase) -> Vec<(String, String, i64)> {
    let mut client = db.client();
    let tables: Vec<(String, String)> = client
        .query(
            "SELECT table_name::text, string_agg(column_name::text, ',' ORDER BY ordinal_position)
             FROM information_schema.columns WHERE table_schema = 'public'
             GROUP BY table_name ORDER BY table_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    tables
        .into_iter()
        .map(|(t, cols)| {
            let rows: i64 = client
                .query_one(&format!("SELECT count(*) FROM \"{t}\""), &[])
                .unwrap()
                .get(0);
            (t, cols, rows)
        })
        .collect()
}

/// The schemas intake made (archive, scratch): none after a rolled-back run.
fn schemas(db: &TestDatabase) -> Vec<String> {
    db.client()
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'intake_%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn consolidate(work: &Work, legacy: &TestDatabase, args: &[&str]) -> (i32, Value, String) {
    let out = work
        .intake()
        .arg("consolidate")
        .args(args)
        .arg("--json")
        .env("DATABASE_URL", legacy.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rows_of(json: &Value, table: &str, action: &str) -> u64 {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["table"] == table && s["action"] == action)
        .map(|s| s["rows"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_legacy_database_is_consolidated_losing_nothing_and_a_second_run_has_nothing_to_do() {
    let work = Work::new();
    let legacy = legacy_database();
    let untouched = snapshot(&legacy);
    // Before: the schema check names what the seeds removed.
    let out = work
        .intake()
        .args(["schema", "check", "--json", "--database-url", &legacy.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "v3_table"),
        "{report}"
    );

    // The dry run reports the real counts and changes nothing.
    let (code, plan, said) = consolidate(&work, &legacy, &["--dry-run"]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(plan["outcome"], "planned", "{plan}");
    assert_eq!(
        rows_of(&plan, "data_imports", "migrated from v3"),
        1,
        "{plan}"
    );
    assert_eq!(snapshot(&legacy), untouched, "a dry run changes nothing");
    assert!(schemas(&legacy).is_empty(), "{:?}", schemas(&legacy));

    let report = work.path("consolidation.md");
    let (code, done, said) = consolidate(&work, &legacy, &["--report", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(done["outcome"], "consolidated", "{done}");
    let archive = done["archive_schema"].as_str().unwrap().to_string();

    // The working schema passes the schema check; every legacy table is in
    // the archive with all its rows.
    let mut client = legacy.client();
    let layout: Vec<(String, Vec<String>)> = client
        .query(
            "SELECT table_name::text, array_agg(column_name::text) FROM information_schema.columns
             WHERE table_schema = 'public' GROUP BY table_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        intake::schema_check::check_central_layout(&layout)
            .iter()
            .map(|p| p.message.clone())
            .collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    for (table, _, rows) in untouched.iter().filter(|(t, _, _)| {
        t.starts_with("v3_") || intake::schema_check::REMOVED_TABLES.contains(&t.as_str())
    }) {
        assert_eq!(
            legacy.count(&format!("SELECT count(*) FROM {archive}.{table}")),
            *rows,
            "{table} is archived whole"
        );
    }
    // Every flow-linked row has its master flow.
    for table in [
        "discovery_flows",
        "data_imports",
        "raw_import_records",
        "import_field_mappings",
        "assets",
    ] {
        assert_eq!(
            legacy.count(&format!(
                "SELECT count(*) FROM {table} x WHERE NOT EXISTS (SELECT 1 FROM crewai_flow_state_extensions c WHERE c.flow_id = x.master_flow_id)"
            )),
            0,
            "{table}"
        );
    }
    // The discovery flow whose legacy flow_id was a master keeps it.
    assert_eq!(
        legacy.count("SELECT count(*) FROM discovery_flows WHERE id = '00000000-0000-0000-0000-000000000051' AND master_flow_id = '00000000-0000-0000-0000-000000000041'"),
        1
    );
    // v3: the duplicate import is merged (its source_system filled), the new one migrated.
    assert_eq!(legacy.count("SELECT count(*) FROM data_imports WHERE id = '00000000-0000-0000-0000-000000000061' AND source_system = 'servicenow' AND filename = 'acme_cmdb.csv'"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM raw_import_records WHERE data_import_id = '00000000-0000-0000-0000-000000000064' AND record_index = 1"), 1);
    // discovery_assets: one asset per machine.
    assert_eq!(
        legacy.count("SELECT count(*) FROM assets WHERE lower(name) = 'acme-web01'"),
        1
    );
    assert_eq!(legacy.count("SELECT count(*) FROM assets WHERE name = 'globex-app02' AND custom_attributes->'_discovery_asset_ids' @> '[\"00000000-0000-0000-0000-0000000000a2\", \"00000000-0000-0000-0000-0000000000a3\"]'"), 1);
    assert_eq!(
        legacy.count(
            "SELECT count(*) FROM assets WHERE name = 'globex-sw01' AND asset_type = 'network'"
        ),
        1
    );
    // A renamed machine is found by its serial number, as the inventory finds it.
    assert_eq!(
        legacy.count("SELECT count(*) FROM assets WHERE name = 'gx-app-01'"),
        0
    );
    assert_eq!(legacy.count("SELECT count(*) FROM assets WHERE name = 'globex-app01' AND serial_number = 'SN-93' AND custom_attributes->'_discovery_asset_ids' @> '[\"00000000-0000-0000-0000-0000000000a5\"]' AND cpu_cores = 16"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM assets WHERE name = 'acme-web01' AND criticality = 'critical' AND six_r_strategy = 'rehost' AND custom_attributes->>'_legacy_criticality' = 'Tier 1'"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM assets WHERE name = 'globex-app01' AND criticality IS NULL AND custom_attributes->>'_legacy_criticality' = 'whenever'"), 1);
    // Values a CHECK refuses are normalised, the original kept.
    assert_eq!(legacy.count("SELECT count(*) FROM discovery_flows WHERE id = '00000000-0000-0000-0000-000000000052' AND status = 'running' AND flow_state->>'_legacy_status' = 'in_progress'"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM discovery_flows d JOIN crewai_flow_state_extensions c ON c.flow_id = d.master_flow_id WHERE d.id = '00000000-0000-0000-0000-000000000052' AND c.flow_status = 'running'"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM import_field_mappings WHERE id = '00000000-0000-0000-0000-000000000082' AND match_type = 'content' AND status = 'approved' AND transformation_rules->>'_legacy_match_type' = 'semantic'"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM assets WHERE name = 'acme-db01' AND asset_type = 'server' AND custom_attributes->>'_legacy_asset_type' = 'Virtual Machine' AND environment IS NULL AND custom_attributes->>'_legacy_environment' = 'Weird'"), 1);
    // is_mock rows live in a test tenant; the tenants' own rows stay theirs.
    assert_eq!(legacy.count("SELECT count(*) FROM assets a JOIN client_accounts c ON c.id = a.client_account_id WHERE c.name LIKE 'intake test data%'"), 1);
    assert_eq!(legacy.count("SELECT count(*) FROM assets a JOIN client_accounts c ON c.id = a.client_account_id WHERE c.name = 'Acme'"), 2);
    // A data quality issue is in its record's validation_errors.
    assert_eq!(legacy.count("SELECT count(*) FROM raw_import_records WHERE id = '00000000-0000-0000-0000-000000000072' AND validation_errors @> '[{\"code\": \"ambiguous_version\"}]'"), 1);
    // The orphan record kept its place under a recovered import.
    assert_eq!(legacy.count("SELECT count(*) FROM raw_import_records WHERE id = '00000000-0000-0000-0000-000000000079'"), 1);
    // Dropped columns that held data are reported and archived.
    let dropped = done["dropped_columns"].as_array().unwrap();
    assert!(
        dropped.iter().any(|d| d["table"] == "data_imports"
            && d["column"] == "file_hash"
            && d["rows_with_data"] == 1),
        "{done}"
    );
    assert_eq!(
        legacy.count(&format!(
            "SELECT count(*) FROM {archive}.data_imports__columns WHERE file_hash = 'abc123'"
        )),
        1
    );
    assert!(
        done["merged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["from"] == "discovery_assets"),
        "{done}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains("## Steps") && text.contains("discovery_assets"),
        "{text}"
    );

    // The schema check says so too.
    let out = work
        .intake()
        .args(["schema", "check", "--json", "--database-url", &legacy.url()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A second run finds nothing to do.
    let (code, again, said) = consolidate(&work, &legacy, &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(again["outcome"], "nothing_to_do", "{again}");

    // intake sync works against it, and the legacy tenants' rows are untouched.
    let acme_before = legacy.count("SELECT count(*) FROM assets a JOIN client_accounts c ON c.id = a.client_account_id WHERE c.name IN ('Acme', 'Globex')");
    work.run_ok(&[
        "import",
        "-q",
        sample("handmade_semicolon_cp1252.csv").to_str().unwrap(),
    ]);
    let out = work
        .intake()
        .args(["sync", "-q"])
        .env("DATABASE_URL", legacy.url())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        legacy.count("SELECT count(*) FROM assets a JOIN client_accounts c ON c.id = a.client_account_id WHERE c.name IN ('Acme', 'Globex')"),
        acme_before
    );
    assert!(legacy.count("SELECT count(*) FROM assets a JOIN client_accounts c ON c.id = a.client_account_id WHERE c.name = 'local'") > 0);
}

/// A consolidation killed while it waits for a table (here a platform
/// reader holds assets) leaves the database exactly as it was; the next
/// run does the whole job.
#[test]
fn a_killed_consolidation_leaves_the_database_as_it_was() {
    let work = Work::new();
    let legacy = legacy_database();
    let untouched = snapshot(&legacy);
    let mut reader = legacy.client();
    let mut held = reader.transaction().unwrap();
    held.batch_execute("LOCK TABLE assets IN ACCESS SHARE MODE")
        .unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("intake"))
        .args(["consolidate", "-q"])
        .env("DATABASE_URL", legacy.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its backend, waiting on the lock after its first steps.
    let mut admin = Client::connect(&format!("{}/postgres", server()), NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid: i32 = loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&legacy.name],
            )
            .unwrap();
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the consolidation ended before it waited"
        );
        assert!(
            Instant::now() < deadline,
            "the consolidation never waited on the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
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
    held.rollback().unwrap();
    drop(reader);
    assert_eq!(snapshot(&legacy), untouched, "exactly as it was");
    assert!(schemas(&legacy).is_empty(), "{:?}", schemas(&legacy));
    let (code, done, said) = consolidate(&work, &legacy, &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(done["outcome"], "consolidated");
}

/// A consolidation that fails (a platform trigger refuses a change) rolls
/// everything back and says why.
#[test]
fn a_failing_step_rolls_everything_back() {
    let said = rolled_back_by(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'assets are frozen'; END $$;
         CREATE TRIGGER frozen BEFORE UPDATE ON assets FOR EACH ROW EXECUTE FUNCTION refuse();",
        1,
    );
    assert!(
        said.contains("assets are frozen") && said.contains("rolled back"),
        "{said}"
    );
}

/// Consolidates the legacy database with `platform_sql` run on it first,
/// checks the exit code and that nothing changed; returns what was said.
fn rolled_back_by(platform_sql: &str, code: i32) -> String {
    let work = Work::new();
    let legacy = legacy_database();
    legacy.execute(platform_sql);
    let untouched = snapshot(&legacy);
    let (exit, json, said) = consolidate(&work, &legacy, &[]);
    assert_eq!(exit, code, "{said}");
    assert_eq!(json["outcome"], "failed", "{json}");
    assert_eq!(snapshot(&legacy), untouched, "exactly as it was");
    assert!(schemas(&legacy).is_empty(), "{:?}", schemas(&legacy));
    said
}

/// Half of the plan already done by hand (some v3 tables dropped, a column
/// renamed, is_mock gone from assets, one master flow filled): the rest is
/// done, nothing twice.
#[test]
fn a_half_migrated_database_is_finished() {
    let work = Work::new();
    let legacy = legacy_database();
    legacy
        .client()
        .batch_execute(
            "DROP TABLE v3_field_mappings; DROP TABLE v3_raw_import_records;
             ALTER TABLE data_imports RENAME COLUMN source_filename TO filename;
             ALTER TABLE assets DROP COLUMN is_mock;
             ALTER TABLE discovery_flows ADD COLUMN current_phase text NOT NULL DEFAULT 'data_import';
             UPDATE discovery_flows SET master_flow_id = '00000000-0000-0000-0000-000000000041'
               WHERE id = '00000000-0000-0000-0000-000000000051';",
        )
        .unwrap();
    let (code, done, said) = consolidate(&work, &legacy, &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(done["outcome"], "consolidated", "{done}");
    assert_eq!(
        rows_of(&done, "import_field_mappings", "migrated from v3"),
        0
    );
    assert_eq!(
        legacy.count("SELECT count(*) FROM crewai_flow_state_extensions WHERE flow_id = '00000000-0000-0000-0000-000000000041'"),
        1
    );
    assert_eq!(
        legacy.count("SELECT count(*) FROM data_imports WHERE filename = 'acme_cmdb.csv'"),
        1
    );
    let (code, again, _) = consolidate(&work, &legacy, &[]);
    assert_eq!(code, 0);
    assert_eq!(again["outcome"], "nothing_to_do", "{again}");
}

/// A database intake itself created (`sync --create-schema`) is already
/// consolidated: nothing to do, nothing touched.
#[test]
fn an_already_clean_database_has_nothing_to_do() {
    let work = Work::new();
    let clean = TestDatabase::create("intake_clean");
    clean.execute(intake::sync::POSTGRES_SCHEMA_SQL);
    let before = snapshot(&clean);
    let (code, json, said) = consolidate(&work, &clean, &[]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(json["outcome"], "nothing_to_do", "{json}");
    assert_eq!(snapshot(&clean), before);
    assert!(schemas(&clean).is_empty());
}

/// A check that fails before COMMIT (here a platform trigger deletes users
/// while the assets are updated) rolls everything back with exit 4.
#[test]
fn a_failed_verification_rolls_everything_back() {
    let said = rolled_back_by(
        "CREATE FUNCTION forget_users() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM users; RETURN NULL; END $$;
         CREATE TRIGGER forget AFTER UPDATE ON assets FOR EACH STATEMENT EXECUTE FUNCTION forget_users();",
        4,
    );
    assert!(
        said.contains("verification failed") && said.contains("users"),
        "{said}"
    );
}
