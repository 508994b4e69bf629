//! What a machine is comes from evidence about it, never from where its row
//! sits; end-user devices are kept apart from servers; and what the summary
//! and `--json` say is what was stored.

use serde_json::Value;

use crate::common::{count, fixture, Work};

/// Kind → machines, from the stored assets (asset_type, or end_user_device
/// where custom_attributes marks one).
fn stored_kinds(work: &Work) -> std::collections::BTreeMap<String, i64> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare(
            "SELECT CASE WHEN json_extract(custom_attributes, '$._device_class') = 'end_user_device'
                    THEN 'end_user_device' ELSE asset_type END AS k, count(*)
             FROM assets WHERE asset_type <> 'application' GROUP BY k",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows
}

fn as_counts(value: &Value) -> std::collections::BTreeMap<String, i64> {
    value
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn servers_described_on_compute_storage_and_network_sheets_stay_servers() {
    let work = Work::new();
    let book = fixture("machine_kinds/same_servers_on_compute_storage_network_sheets.xlsx");
    let (code, json) = work.import_json(&[book.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let kinds = stored_kinds(&work);
    assert_eq!(
        kinds,
        [("server".to_string(), 10)].into(),
        "ten Windows and Linux servers, whatever the sheets are called"
    );
    // The summary says what was stored: each sheet names the ten servers,
    // none calls them storage or network devices.
    assert_eq!(as_counts(&json["inventory"]["by_type"]), kinds, "{json}");
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    let mut sheets_with_machines = 0;
    for file in files {
        let Some(yields) = file.get("yields").filter(|y| !y.is_null()) else {
            continue;
        };
        if yields["kind"] != "machines" {
            continue;
        }
        sheets_with_machines += 1;
        assert_eq!(yields["assets"], 10, "{file}");
        assert_eq!(
            as_counts(&yields["by_type"]),
            kinds,
            "sheet {}: {file}",
            file["sheet"]
        );
    }
    assert!(sheets_with_machines >= 1, "{json}");
    // And in words, on a fresh database.
    let again = Work::new();
    let book = fixture("machine_kinds/same_servers_on_compute_storage_network_sheets.xlsx");
    let out = again.run_ok(&["import", book.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("10 servers"), "{said}");
    assert!(!said.contains("storage device"), "{said}");
    assert!(!said.contains("network device"), "{said}");
    assert!(
        said.contains("inventory: 10 machines: 10 servers"),
        "{said}"
    );
}

#[test]
fn a_switch_list_alone_is_typed_by_its_title_but_a_server_sheet_beside_it_wins() {
    let work = Work::new();
    // Nothing in the rows says what they are: the file's title does, and no
    // other table describes these machines.
    let switches = work.write(
        "network_switches.csv",
        "Device Name,Location\ncore-a,DC1\ncore-b,DC1\n",
    );
    let (code, json) = work.import_json(&[switches.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(stored_kinds(&work), [("network".to_string(), 2)].into());
    // A server list naming core-a too: core-a is described by a table that is
    // not a network list, so the title no longer types it.
    let servers = work.write("servers.csv", "Device Name,RAM GB\ncore-a,16\n");
    let (code, json) = work.import_json(&[servers.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let kind_of = |name: &str| -> String {
        conn.query_row(
            "SELECT asset_type FROM assets WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(kind_of("core-a"), "server");
    assert_eq!(kind_of("core-b"), "network");
}

#[test]
fn a_headerless_device_export_keeps_desktops_and_laptops_apart_from_servers() {
    let work = Work::new();
    let devices = fixture("machine_kinds/headerless_devices_servers_desktops_laptops.csv");
    let (code, json) = work.import_json(&[devices.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let kinds = stored_kinds(&work);
    assert_eq!(
        kinds,
        [
            ("end_user_device".to_string(), 8),
            ("server".to_string(), 4)
        ]
        .into(),
        "nothing is dropped, nothing is a server that is not one: {json}"
    );
    let conn = work.conn();
    // The seeds' asset_type keeps its five values: a laptop is stored as a
    // server marked in custom_attributes.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE json_extract(custom_attributes, '$._device_class') = 'end_user_device' AND asset_type = 'server'"
        ),
        8
    );
    // Not 6R candidates.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE sixr_ready = 'not_applicable'"
        ),
        8
    );
    assert_eq!(json["tech_debt"]["sixr_not_applicable"], 8, "{json}");
    assert_eq!(as_counts(&json["inventory"]["by_type"]), kinds);
    assert_eq!(
        as_counts(&json["files"][0]["yields"]["by_type"]),
        kinds,
        "{json}"
    );
    // The export names the kind beside asset_type.
    let out = work.run_ok(&["assets", "--format", "json"]);
    let assets: Value = serde_json::from_slice(&out.stdout).unwrap();
    let laptops = assets
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "end_user_device")
        .count();
    assert_eq!(laptops, 8);
    // The report counts them apart from the servers.
    work.run_ok(&["report", "-o", "report.html"]);
    let html = std::fs::read_to_string(work.path("report.html")).unwrap();
    assert!(html.contains("<b>4</b>Servers"), "servers tile");
    assert!(html.contains("<b>8</b>End-user devices"), "devices tile");
}

/// A ConfigMgr (SCCM) device export as it comes out of a console query,
/// with no header row: name, domain, last user, client flag, client version,
/// site, maker, model, serial, last activity (M/D/YYYY), OS caption, build.
/// The columns are recognised by their values (the catalogue's makers and
/// model families, serial shapes, DOMAIN\user, host-like names), and every
/// row becomes its machine.
#[test]
fn an_sccm_device_export_without_a_header_yields_its_machines() {
    let work = Work::new();
    let file = fixture("headerless/sccm_devices_no_header.csv");
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let approved: Vec<(String, String)> = conn
        .prepare(
            "SELECT source_field, target_field FROM import_field_mappings
             WHERE status = 'approved' AND target_field IS NOT NULL ORDER BY rowid",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let field_of = |column: &str| {
        approved
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, f)| f.as_str())
    };
    for (column, field) in [
        ("column_1", "name"),
        ("column_2", "domain"),
        ("column_7", "manufacturer"),
        ("column_8", "model"),
        ("column_9", "serial_number"),
        ("column_11", "operating_system"),
        ("column_12", "os_version"),
    ] {
        assert_eq!(field_of(column), Some(field), "{approved:?}");
    }
    // Nothing else approved: the user, flags, versions, site and date stay
    // in custom_attributes.
    assert_eq!(approved.len(), 7, "{approved:?}");
    assert_eq!(count(&conn, "SELECT count(*) FROM assets"), 12);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE name IN ('RECEPTION-PC', 'CEO-LAPTOP')"
        ),
        2,
        "names without a digit are names too"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE custom_attributes ->> '$._device_class' = 'end_user_device'"
        ),
        10
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM assets WHERE model = 'PowerEdge R640' AND manufacturer = 'Dell Inc.'"),
        1
    );
}

/// An Intune device export without its header row (device name, managed
/// by, ownership, compliance, OS, OS version, last check-in, primary user,
/// serial, model, maker): Windows, macOS and iOS devices, all end-user
/// devices, with their OS, version, model and maker read from the values.
#[test]
fn an_intune_device_export_without_a_header_yields_its_devices() {
    let work = Work::new();
    let file = fixture("headerless/intune_devices_no_header.csv");
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let approved: Vec<String> = conn
        .prepare(
            "SELECT source_field || '=' || target_field FROM import_field_mappings
             WHERE status = 'approved' AND target_field IS NOT NULL ORDER BY rowid",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        approved,
        [
            "column_1=name",
            "column_5=operating_system",
            "column_6=os_version",
            "column_10=model",
            "column_11=manufacturer"
        ]
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE custom_attributes ->> '$._device_class' = 'end_user_device'"
        ),
        6
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE operating_system = 'macOS'"
        ),
        1
    );
}
