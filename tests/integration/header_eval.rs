//! The header evaluation set (tests/fixtures/header_eval): exports laid out as
//! the public documentation of their tools describes them (Intune,
//! Lansweeper, NetBox, Snipe-IT, GLPI, iTop, Device42, Aria Operations, AWS
//! Migration Evaluator, ServiceNow hardware CIs, Azure Migrate discovered
//! servers) and hand-made sheets (Italian, abbreviations and ServiceNow custom
//! fields, storage arrays, switches named only by the file), a headerless SCCM
//! export, a two-row Cloudamize header, NetBox network gear, application
//! lists in Spanish and in English (`Name`) and a server → application matrix. `expected.json` gives each column's field (null: no
//! field; "?": either is defensible, not scored), the machine assets each
//! file describes, and where given their types, the applications and runs_on edges. Each file is imported alone; the test
//! prints approved recall and precision, and the assets found.

use std::collections::BTreeMap;

use crate::common::*;
use serde_json::Value;

#[derive(Default)]
struct Score {
    wanted: usize,
    found: usize,
    approved: usize,
    right: usize,
    /// Non-empty cells of approved columns, and those kept raw with a problem.
    cells: usize,
    unparsed: usize,
}

#[test]
fn the_evaluation_set_maps_with_the_promised_precision_and_yields_its_assets() {
    let dir = fixture("header_eval");
    let expected: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut total = Score::default();
    let mut misses = Vec::new();
    let mut short = Vec::new();
    for (file, want) in &expected {
        let work = Work::new();
        let path = dir.join(file);
        let (code, json) = work.import_json(&[path.to_str().unwrap()]);
        assert_eq!(code, 0, "{file}: {json}");
        let out = work.run_ok(&["mappings", "--json"]);
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut score = Score::default();
        for (column, field) in want["columns"].as_object().unwrap() {
            let row = rows["mappings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["source_field"] == *column)
                .unwrap_or_else(|| panic!("{file}: no mapping row for '{column}'"));
            let target = row["target_field"].as_str();
            let approved = row["status"] == "approved" && target.is_some();
            let described = format!(
                "{file}: '{column}' → {target:?} ({}, {}), want {field}",
                row["status"], row["confidence_score"]
            );
            match field.as_str() {
                Some("?") => continue,
                Some(field) => {
                    score.wanted += 1;
                    if approved && target == Some(field) {
                        score.found += 1;
                    } else {
                        misses.push(described.clone());
                    }
                }
                None => {}
            }
            if approved {
                score.approved += 1;
                if target == field.as_str() {
                    score.right += 1;
                } else {
                    misses.push(format!("WRONG APPROVAL {described}"));
                }
            }
        }
        let conn = work.conn();
        let assets = count(
            &conn,
            "SELECT count(*) FROM assets WHERE asset_type <> 'application'",
        );
        let wanted_assets = want["assets"].as_i64().unwrap();
        eprintln!(
            "{file}: {}/{} fields approved, {}/{} approvals right, {assets}/{wanted_assets} assets",
            score.found, score.wanted, score.right, score.approved
        );
        if assets != wanted_assets {
            short.push(format!("{file}: {assets} assets, want {wanted_assets}"));
        }
        // Network gear and storage become assets of their own type.
        if let Some(types) = want["types"].as_object() {
            for (asset_type, wanted) in types {
                let found = count(
                    &conn,
                    &format!("SELECT count(*) FROM assets WHERE asset_type = '{asset_type}'"),
                );
                eprintln!("{file}: {found}/{wanted} {asset_type} assets");
                let said = &json["files"][0]["yields"]["by_type"][asset_type];
                assert_eq!(
                    said, wanted,
                    "{file}: the summary says what the rows became"
                );
                if Some(found) != wanted.as_i64() {
                    short.push(format!(
                        "{file}: {found} {asset_type} assets, want {wanted}"
                    ));
                }
            }
        }
        // What an application list or a server → application matrix becomes.
        for (what, sql) in [
            (
                "applications",
                "SELECT count(*) FROM assets WHERE asset_type = 'application'",
            ),
            (
                "edges",
                "SELECT count(*) FROM asset_dependencies WHERE dependency_type = 'runs_on'",
            ),
        ] {
            if let Some(wanted) = want[what].as_i64() {
                let found = count(&conn, sql);
                eprintln!("{file}: {found}/{wanted} {what}");
                if found != wanted {
                    short.push(format!("{file}: {found} {what}, want {wanted}"));
                }
            }
        }
        // Values of the approved columns that were parsed (not kept raw with
        // a problem); "unknown" markers count as read.
        let mapped_cells = count(
            &conn,
            "SELECT count(*) FROM raw_import_records r, json_each(r.raw_data) c
             JOIN import_field_mappings m ON m.data_import_id = r.data_import_id AND m.source_field = c.key
             WHERE m.status = 'approved' AND m.target_field IS NOT NULL AND trim(c.value) <> ''",
        );
        let unparsed = count(
            &conn,
            "SELECT count(*) FROM raw_import_records r, json_each(r.validation_errors) e
             WHERE e.value ->> 'column' IS NOT NULL AND e.value ->> 'code' <> 'missing_marker'",
        );
        total.cells += mapped_cells as usize;
        total.unparsed += unparsed as usize;
        total.wanted += score.wanted;
        total.found += score.found;
        total.approved += score.approved;
        total.right += score.right;
    }
    let recall = total.found as f64 / total.wanted as f64;
    let precision = total.right as f64 / total.approved as f64;
    eprintln!(
        "evaluation set: approved recall {:.3} ({}/{}), approved precision {:.3} ({}/{})",
        recall, total.found, total.wanted, precision, total.right, total.approved
    );
    let parsed = 1.0 - total.unparsed as f64 / total.cells.max(1) as f64;
    eprintln!(
        "evaluation set: parsed values {parsed:.4} ({} of {} cells of approved columns kept raw)",
        total.unparsed, total.cells
    );
    for miss in &misses {
        eprintln!("  {miss}");
    }
    assert!(short.is_empty(), "{}", short.join("\n"));
    assert!(precision >= 0.99, "approved precision {precision:.3}");
    assert!(recall >= 0.97, "approved recall {recall:.3}");
    assert!(parsed >= 0.98, "parsed values {parsed:.4}");
}

#[test]
fn each_file_says_what_it_became_and_a_file_that_yields_nothing_says_why() {
    let work = Work::new();
    let nothing = work.write("colours.csv", "Colour,Flavour\nred,sweet\nblue,sour\n");
    let dir = fixture("header_eval");
    let portfolio = dir.join("application_portfolio_spanish.csv");
    let matrix = dir.join("migration_planner_server_to_application.csv");
    let (code, json) = work.import_json(&[
        nothing.to_str().unwrap(),
        portfolio.to_str().unwrap(),
        matrix.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{json}");
    let yields = |name: &str| file_entry(&json, name)["yields"].clone();
    assert_eq!(yields("colours.csv")["kind"], "nothing", "{json}");
    assert!(yields("colours.csv")["why_nothing"]
        .as_str()
        .unwrap()
        .contains("intake mappings"));
    assert_eq!(
        yields("application_portfolio_spanish.csv")["kind"],
        "applications"
    );
    assert_eq!(yields("application_portfolio_spanish.csv")["rows"], 4);
    assert_eq!(yields("application_portfolio_spanish.csv")["assets"], 4);
    let matrix = yields("migration_planner_server_to_application.csv");
    assert_eq!(matrix["kind"], "machines");
    // Several rows name one server: it is one asset.
    assert_eq!(matrix["assets"], 3, "{matrix}");
    assert!(matrix["rows"].as_u64().unwrap() > 3, "{matrix}");
    // The console summary says the same, with the fix for the empty file.
    let out = work
        .intake()
        .args(["import", "--force", nothing.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        format!("{stdout}{stderr}").contains("yield no asset")
            && stdout.contains("intake mappings --file colours.csv"),
        "{stdout}{stderr}"
    );
}

#[test]
fn a_name_column_of_host_names_or_beside_machine_fields_stays_a_machine_name() {
    let work = Work::new();
    // Host names with nothing else naming a machine: still machines.
    let hosts = work.write(
        "applications_owners.csv",
        "Name,Description,Business Owner,Criticality\nweb01,Web tier,ana@example.com,High\nweb02,Web tier,ana@example.com,High\ndb01,Database,luis@example.com,Critical\n",
    );
    // Names with spaces, but an address beside them: machines.
    let spaced = work.write(
        "rooms.csv",
        "Name,IP Address,Description\nReception PC,10.1.0.5,front desk\nMeeting Room Panel,10.1.0.6,room 2\nLab Scanner,10.1.0.7,lab\n",
    );
    // The same spaced names alone, in a file titled as a portfolio: applications.
    let portfolio = work.write(
        "portfolio.csv",
        "Name,Description,Business Owner\nCustomer Portal,web shop,ana@example.com\nPayroll,salaries,luis@example.com\nData Warehouse,reporting,eva@example.com\n",
    );
    let (code, json) = work.import_json(&[
        hosts.to_str().unwrap(),
        spaced.to_str().unwrap(),
        portfolio.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{json}");
    let yields = |name: &str| file_entry(&json, name)["yields"].clone();
    assert_eq!(
        yields("applications_owners.csv")["kind"],
        "machines",
        "{json}"
    );
    assert_eq!(yields("applications_owners.csv")["assets"], 3);
    assert_eq!(yields("rooms.csv")["kind"], "machines", "{json}");
    assert_eq!(yields("portfolio.csv")["kind"], "applications", "{json}");
    let conn = work.conn();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM assets WHERE asset_type = 'application' AND name IN ('Customer Portal', 'Payroll', 'Data Warehouse')"),
        3
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM assets WHERE asset_type = 'server' AND name IN ('web01', 'web02', 'db01', 'Reception PC', 'Meeting Room Panel', 'Lab Scanner')"),
        6
    );
}
