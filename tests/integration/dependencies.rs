//! The dependencies phase through the real binary: RVTools VMs run on their
//! ESXi hosts (hosts become server assets filled from vHost), applications
//! named on servers become application assets, ServiceNow cmdb_rel_ci and a
//! source,target,type list become edges with unresolvable ends reported on
//! their rows, and re-runs change nothing or follow the data.

use crate::common::{sample, Work};
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/dependencies/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// (asset name, dependency type, depends-on name, source) of every edge.
fn edges(work: &Work) -> Vec<(String, String, String, String)> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare(
            "SELECT a.name, d.dependency_type, b.name, coalesce(d.source, '') FROM asset_dependencies d
             JOIN assets a ON a.id = d.asset_id JOIN assets b ON b.id = d.depends_on_asset_id
             ORDER BY 1, 2, 3",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// name, cluster, cpu_model, is_virtual, memory_gb, operating_system
type HostRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<f64>,
    String,
);

fn has_edge(all: &[(String, String, String, String)], from: &str, kind: &str, to: &str) -> bool {
    all.iter()
        .any(|(a, k, b, _)| a.eq_ignore_ascii_case(from) && k == kind && b.eq_ignore_ascii_case(to))
}

#[test]
fn rvtools_vms_run_on_their_hosts_and_hosts_are_filled_from_vhost() {
    let work = Work::new();
    let rv = sample("RVTools_export_all.xlsx").display().to_string();
    let (code, json) = work.import_json(&[&rv]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let vms: Vec<(String, String, Option<String>)> = conn
        .prepare(
            "SELECT name, virtualization_host, cluster FROM assets
             WHERE virtualization_host IS NOT NULL AND asset_type = 'server'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        vms.len() >= 30,
        "RVTools names the host of its VMs: {vms:?}"
    );
    let all = edges(&work);
    for (vm, host, _) in &vms {
        assert!(
            has_edge(&all, vm, "runs_on", host),
            "{vm} runs on {host}: {all:?}"
        );
    }
    // The four ESXi hosts are server assets, described by the vHost sheet.
    let hosts: Vec<HostRow> = conn
        .prepare(
            "SELECT name, cluster, cpu_model, is_virtual, memory_gb, operating_system FROM assets
             WHERE discovery_source = 'rvtools_host' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut distinct: Vec<String> = vms.iter().map(|(_, h, _)| h.to_lowercase()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(hosts.len(), distinct.len(), "{hosts:?}");
    for (name, cluster, cpu, is_virtual, memory, os) in &hosts {
        assert!(cluster.is_some(), "{name} has its cluster");
        assert!(
            cpu.as_deref().is_some_and(|c| c.contains("Xeon")),
            "{name}: vHost CPU model"
        );
        assert_eq!(*is_virtual, Some(0));
        assert!(
            memory.is_some_and(|m| m > 100.0),
            "{name}: vHost memory in GB: {memory:?}"
        );
        assert_eq!(os, "VMware ESXi");
    }
    // The flow records the phase and the graph summary with the clusters.
    let (done, graph): (i64, String) = conn
        .query_row(
            "SELECT dependencies_completed, dependencies FROM discovery_flows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(done, 1);
    let graph: Value = serde_json::from_str(&graph).unwrap();
    let clusters = graph["clusters"].as_array().unwrap();
    assert!(!clusters.is_empty(), "{graph}");
    let machines: u64 = clusters
        .iter()
        .map(|c| c["machines"].as_u64().unwrap())
        .sum();
    let clustered = vms.iter().filter(|(_, _, c)| c.is_some()).count() as u64;
    assert_eq!(machines, clustered, "{graph}");
    assert_eq!(json["dependencies"]["hosts_created"], hosts.len() as u64);

    // Importing the same content again changes nothing.
    let (_, again) = work.import_json(&[&rv, "--force"]);
    assert_eq!(
        again["dependencies"]["created"], 0,
        "{}",
        again["dependencies"]
    );
    assert_eq!(again["dependencies"]["removed"], 0);
    assert_eq!(again["dependencies"]["hosts_created"], 0);
    assert_eq!(edges(&work), all);
}

#[test]
fn applications_named_on_servers_become_assets_that_run_on_them() {
    let work = Work::new();
    let file = fixture("servers_with_application_lists.csv");
    let (code, json) = work.import_json(&[&file]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let apps: Vec<String> = conn
        .prepare("SELECT name FROM assets WHERE asset_type = 'application' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // "n/a" names no application.
    assert_eq!(apps, ["Billing", "Web Shop"]);
    let all = edges(&work);
    assert!(has_edge(&all, "Web Shop", "runs_on", "app-host-01"));
    assert!(has_edge(&all, "Web Shop", "runs_on", "app-host-02"));
    assert!(has_edge(&all, "Billing", "runs_on", "app-host-01"));
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(json["dependencies"]["applications_created"], 2);
    let environment: Option<String> = conn
        .query_row(
            "SELECT environment FROM assets WHERE name = 'Web Shop'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        environment.as_deref(),
        Some("production"),
        "both servers are production"
    );

    // A newer export moves app-host-02 from Web Shop to Billing: the edge follows.
    let newer = work.write(
        "servers_newer.csv",
        "Server Name,FQDN,Operating System,Environment,Applications\n\
         app-host-01,app-host-01.corp.example.com,Microsoft Windows Server 2008 R2 Standard,Production,\"Billing, Web Shop\"\n\
         app-host-02,app-host-02.corp.example.com,Red Hat Enterprise Linux 9.2,Production,Billing\n",
    );
    let (code, json) = work.import_json(&[newer.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let all = edges(&work);
    assert!(
        !has_edge(&all, "Web Shop", "runs_on", "app-host-02"),
        "{all:?}"
    );
    assert!(has_edge(&all, "Billing", "runs_on", "app-host-02"));
    assert_eq!(
        json["dependencies"]["removed"], 1,
        "{}",
        json["dependencies"]
    );
    assert_eq!(json["dependencies"]["created"], 1);
    assert_eq!(json["dependencies"]["applications_created"], 0);
}

#[test]
fn servicenow_relationships_resolve_by_name_fqdn_and_sys_id_and_report_unknown_ends() {
    let work = Work::new();
    let sn = sample("servicenow_cmdb_ci_server.csv")
        .display()
        .to_string();
    let rv = sample("RVTools_export_all.xlsx").display().to_string();
    let (code, _) = work.import_json(&[&sn, &rv]);
    assert_eq!(code, 0);
    let before = edges(&work).len();
    let rel = fixture("cmdb_rel_ci_display_values.csv");
    let (code, json) = work.import_json(&[&rel]);
    assert_eq!(code, 0, "{json}");
    let file = &json["files"][0];
    assert_eq!(
        file["layout"]["layout"], "servicenow_relationships",
        "{file}"
    );
    assert_eq!(file["layout"]["role"], "relationships");
    // Relationship exports create no asset and are not mapped.
    assert_eq!(json["inventory"]["created"], 0);
    let conn = work.conn();
    let mapped: i64 = conn
        .query_row(
            "SELECT count(*) FROM import_field_mappings m JOIN data_imports d ON d.id = m.data_import_id
             WHERE d.filename LIKE '%cmdb_rel_ci%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mapped, 0);

    let all = edges(&work);
    // CRM (an application from u_application) depends on lnx-fra-11.
    assert!(has_edge(&all, "CRM", "depends_on", "lnx-fra-11"), "{all:?}");
    // "Used by::Depends on" turns the edge round: Billing depends on lnx-fra-11 (named by FQDN).
    assert!(has_edge(&all, "Billing", "depends_on", "lnx-fra-11"));
    // A sys_id resolves through cmdb_record_id (WIN-AMS-07).
    assert!(has_edge(&all, "WIN-AMS-07", "depends_on", "lnx-ams-29"));
    // Runs on::Runs: the same edge RVTools gave; kept once.
    assert!(has_edge(
        &all,
        "WIN-DAL-23",
        "runs_on",
        "esx01.corp.example.com"
    ));
    assert_eq!(all.len(), before + 3, "{all:?}");
    let source: String = conn
        .query_row(
            "SELECT d.source FROM asset_dependencies d JOIN assets a ON a.id = d.asset_id
             WHERE a.name = 'CRM' AND d.dependency_type = 'depends_on'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(source, "cmdb_rel_ci");

    // The unknown child and the empty parent are reported, on their rows too.
    assert_eq!(
        json["dependencies"]["unresolved"], 2,
        "{}",
        json["dependencies"]
    );
    let problems = json["dependencies"]["problems"].as_array().unwrap();
    assert_eq!(problems[0]["row"], 6);
    assert_eq!(problems[0]["column"], "child");
    assert_eq!(problems[0]["value"], "ora-payroll-db");
    assert_eq!(problems[0]["code"], "unknown_end");
    assert_eq!(problems[1]["row"], 7);
    assert_eq!(problems[1]["code"], "missing_end");
    let (valid, invalid): (i64, i64) = conn
        .query_row(
            "SELECT count(*) FILTER (WHERE is_valid = 1), count(*) FILTER (WHERE is_valid = 0)
             FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id
             WHERE d.filename LIKE '%cmdb_rel_ci%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((valid, invalid), (4, 2));
    let errors: String = conn
        .query_row(
            "SELECT validation_errors FROM raw_import_records WHERE record_index = 6
               AND data_import_id = (SELECT id FROM data_imports WHERE filename LIKE '%cmdb_rel_ci%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        errors.contains("ora-payroll-db") && errors.contains("unknown_end"),
        "{errors}"
    );

    // The summary counts the unresolved ends and points at the report; -v
    // names file, row and column.
    let out = work.run_ok(&["import", &rel, "--force"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("relationship end(s) name no known machine"),
        "{summary}"
    );
    let out = work.run_ok(&["import", &rel, "--force", "-v"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("cmdb_rel_ci_display_values.csv row 6 column child"),
        "{summary}"
    );
    assert_eq!(edges(&work), all, "a re-import changes no edge");
}

#[test]
fn a_source_target_type_list_matches_short_names_and_keeps_extra_columns() {
    let work = Work::new();
    let sn = sample("servicenow_cmdb_ci_server.csv")
        .display()
        .to_string();
    let list = fixture("source_target_type_short_names.csv");
    let (code, json) = work.import_json(&[&sn, &list]);
    assert_eq!(code, 0, "{json}");
    let all = edges(&work);
    assert!(
        has_edge(&all, "WIN-AMS-24", "database_connection", "lnx-ams-18"),
        "{all:?}"
    );
    // An empty type is depends_on; case does not matter.
    assert!(has_edge(&all, "lnx-fra-01", "depends_on", "lnx-fra-14"));
    let description: String = work
        .conn()
        .query_row(
            "SELECT d.description FROM asset_dependencies d JOIN assets a ON a.id = d.asset_id
             WHERE a.name = 'WIN-AMS-24' AND d.dependency_type = 'database_connection'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(description, "port: 1433");
    assert_eq!(json["dependencies"]["unresolved"], 1);
    assert_eq!(
        json["dependencies"]["problems"][0]["value"],
        "lnx-unknown-77"
    );
    assert_eq!(json["dependencies"]["by_source"]["relationship_list"], 2);
}

/// A generated CMDB export with its cmdb_rel_ci export beside it, large
/// enough for the phase's bulk path (edges appended then sorted, the
/// depends_on index built again after the insert): every relationship row
/// whose ends exist becomes exactly the edge its type says, in its direction.
#[test]
fn a_relationship_export_of_thousands_of_rows_becomes_exactly_its_edges() {
    let work = Work::new();
    let rows = 25_000;
    let servers = work.path("cmdb_ci_server.csv");
    let relationships = work.path("cmdb_rel_ci.csv");
    let mut out = std::fs::File::create(&servers).unwrap();
    intake::synth::write_cmdb_csv(&mut out, rows, 1.0, 3).unwrap();
    let mut out = std::fs::File::create(&relationships).unwrap();
    intake::synth::write_relationships_csv(&mut out, rows, 1.0, 3).unwrap();
    drop(out);

    // What the export says: (depending, kind, depended on) by name.
    let mut expected = std::collections::BTreeSet::new();
    let mut decommissioned = 0;
    let mut reader = csv::Reader::from_path(&relationships).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let (parent, kind, child) = (&record[0], &record[1], &record[2]);
        if parent.starts_with("DECOM") {
            decommissioned += 1;
            continue;
        }
        let edge = match kind {
            "Depends on::Used by" => (parent, "depends_on", child),
            "Used by::Depends on" => (child, "depends_on", parent),
            "Connects to::Connected by" => (parent, "connects_to", child),
            "Sends data to::Receives data from" => (parent, "sends_data_to", child),
            other => panic!("the generator wrote a type this test does not know: {other}"),
        };
        if edge.0 != edge.2 {
            expected.insert((edge.0.to_string(), edge.1.to_string(), edge.2.to_string()));
        }
    }
    assert!(expected.len() > 20_000, "{}", expected.len());

    let files = [servers.to_str().unwrap(), relationships.to_str().unwrap()];
    let (code, json) = work.import_json(&files);
    assert_eq!(code, 0, "{json}");
    let found = &json["dependencies"];
    assert_eq!(found["unresolved"], decommissioned, "{found}");
    let from_relationships: std::collections::BTreeSet<(String, String, String)> = edges(&work)
        .into_iter()
        .filter(|(_, kind, _, _)| kind != "runs_on")
        .map(|(from, kind, to, _)| (from, kind, to))
        .collect();
    assert_eq!(from_relationships.len(), expected.len());
    assert!(
        from_relationships == expected,
        "the edges differ from what the export says"
    );
    // Every server names its application: one runs_on edge per server row.
    let runs_on = found["by_type"]["runs_on"].as_u64().unwrap();
    assert!(runs_on > 24_000, "{found}");
    assert_eq!(
        found["edges"].as_u64().unwrap(),
        runs_on + expected.len() as u64,
        "{found}"
    );

    let conn = work.conn();
    let index: i64 = crate::common::count(
        &conn,
        "SELECT count(*) FROM sqlite_master WHERE name = 'ix_asset_dependencies_depends_on'",
    );
    assert_eq!(
        index, 1,
        "the index dropped for the bulk insert is built again"
    );
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(conn);

    let mut args = files.to_vec();
    args.push("--force");
    let (code, again) = work.import_json(&args);
    assert_eq!(code, 0, "{again}");
    let again = &again["dependencies"];
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["removed"], 0, "{again}");
    assert_eq!(again["edges"], found["edges"], "{again}");
}

/// The same edge derived from the inventory (a guest on its host) and named
/// by a relationship list is stored once, as the inventory made it (derived
/// first), though the two are written differently before the
/// reconciliation; the list's other rows are edges of their own.
#[test]
fn an_edge_named_twice_is_stored_once_as_it_was_first_derived() {
    let work = Work::new();
    let servers = work.write(
        "guests_and_hosts.csv",
        "Server Name,Virtualization Host,Operating System\n\
         vm-01,esx-01,Red Hat Enterprise Linux 9.2\n\
         vm-02,esx-01,Red Hat Enterprise Linux 9.2\n",
    );
    let list = work.write(
        "guest_runs_on_list.csv",
        "source,target,type\n\
         vm-01,esx-01,runs on\n\
         vm-01,vm-02,depends on\n",
    );
    let (code, json) = work.import_json(&[servers.to_str().unwrap(), list.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let all = edges(&work);
    let on_host: Vec<_> = all
        .iter()
        .filter(|(from, kind, to, _)| from == "vm-01" && kind == "runs_on" && to == "esx-01")
        .collect();
    assert_eq!(on_host.len(), 1, "{all:?}");
    assert_eq!(on_host[0].3, "virtualization_host", "{all:?}");
    assert!(has_edge(&all, "vm-02", "runs_on", "esx-01"), "{all:?}");
    assert!(has_edge(&all, "vm-01", "depends_on", "vm-02"), "{all:?}");
    assert_eq!(all.len(), 3, "{all:?}");
    // Both list rows were resolved: the first was the inventory's edge.
    assert_eq!(
        json["dependencies"]["unresolved"], 0,
        "{}",
        json["dependencies"]
    );
    assert_eq!(json["dependencies"]["by_source"]["relationship_list"], 1);
}
