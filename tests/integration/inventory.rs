//! The data_cleansing and inventory phases through the real binary: cleansed
//! values, one asset per machine across a ServiceNow CSV and an RVTools
//! workbook, re-import idempotence, a newer export updating in place, invalid
//! rows counted, unmapped columns kept, and mapping decisions re-running both.

use crate::common::{count, sample, Work};
use serde_json::Value;

fn asset(work: &Work, name: &str) -> serde_json::Map<String, Value> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare("SELECT * FROM assets WHERE lower(name) = lower(?1)")
        .unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_row([name], |r| {
        let mut m = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            let v: rusqlite::types::Value = r.get(i)?;
            let v = match v {
                rusqlite::types::Value::Null => Value::Null,
                rusqlite::types::Value::Integer(i) => Value::from(i),
                rusqlite::types::Value::Real(f) => Value::from(f),
                rusqlite::types::Value::Text(t) => Value::from(t),
                rusqlite::types::Value::Blob(_) => Value::Null,
            };
            m.insert(n.clone(), v);
        }
        Ok(m)
    })
    .unwrap_or_else(|e| panic!("no asset {name}: {e}"))
}

#[test]
fn servicenow_and_rvtools_describe_overlapping_machines_once() {
    let work = Work::new();
    let sn = sample("servicenow_cmdb_ci_server.csv")
        .display()
        .to_string();
    let rv = sample("RVTools_export_all.xlsx").display().to_string();
    let (code, json) = work.import_json(&[&sn, &rv]);
    assert_eq!(code, 0, "{json}");
    let inventory = &json["inventory"];
    let conn = work.conn();
    let sn_rows = count(&conn, "SELECT count(*) FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id WHERE d.filename LIKE '%servicenow%'");
    let vms = count(&conn, "SELECT count(*) FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id WHERE d.sheet_name = 'vInfo'");
    let virtual_in_cmdb = count(&conn, "SELECT count(*) FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id WHERE d.filename LIKE '%servicenow%' AND json_extract(raw_data, '$.virtual') = 'true'");
    // Every VM the CMDB knows is merged; the four VMs it does not know are new.
    let expected = sn_rows + (vms - virtual_in_cmdb);
    // Machines only: the ESXi hosts and the applications come from the dependencies phase.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE coalesce(discovery_source, '') NOT IN ('rvtools_host', 'application_column')"
        ),
        expected
    );
    assert_eq!(inventory["created"], expected);
    assert_eq!(inventory["merged_records"], virtual_in_cmdb);
    // Supplementary sheets (vDisk, vHost, ...) made no assets.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE name LIKE 'esx%' AND discovery_source <> 'rvtools_host'"
        ),
        0
    );

    // A merged machine carries the CMDB's id and business fields and RVTools' VM facts.
    let merged = asset(&work, "WIN-DAL-02");
    assert!(merged["cmdb_record_id"].is_string());
    assert!(merged["vm_uuid"].as_str().unwrap().len() == 36);
    assert_eq!(
        merged["virtualization_host"]
            .as_str()
            .map(|h| h.starts_with("esx")),
        Some(true)
    );
    assert_eq!(merged["hostname"], "win-dal-02");
    assert_eq!(merged["fqdn"], "win-dal-02.corp.example.com");
    assert_eq!(merged["environment"], "development");
    assert_eq!(merged["master_flow_id"], json["master_flow_id"]);
    // Columns mapped to no field stay, under their original header.
    let custom: Value =
        serde_json::from_str(merged["custom_attributes"].as_str().unwrap()).unwrap();
    assert!(custom.get("cpu_manufacturer").is_some(), "{custom}");
    assert!(custom.get("Resource pool").is_some(), "{custom}");

    // Both phases are recorded and the flow is completed.
    let (cleansing, inventory_done, status, discovered): (i64, i64, String, String) = conn
        .query_row(
            "SELECT data_cleansing_completed, inventory_completed, status, discovered_assets FROM discovery_flows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (cleansing, inventory_done, status.as_str()),
        (1, 1, "completed")
    );
    let discovered: Value = serde_json::from_str(&discovered).unwrap();
    assert_eq!(discovered["assets"], expected);

    // Importing again changes nothing; forcing the same data in changes nothing either.
    let (code, again) = work.import_json(&[&sn, &rv]);
    assert_eq!(code, 0);
    assert_eq!(again["master_flow_id"], Value::Null);
    let (code, forced) = work.import_json(&[&sn, &rv, "--force"]);
    assert_eq!(code, 0);
    assert_eq!(forced["inventory"]["created"], 0, "{}", forced["inventory"]);
    assert_eq!(forced["inventory"]["updated"], 0, "{}", forced["inventory"]);
    assert_eq!(forced["inventory"]["unchanged"], expected);
    assert_eq!(
        count(
            &work.conn(),
            "SELECT count(*) FROM assets WHERE coalesce(discovery_source, '') NOT IN ('rvtools_host', 'application_column')"
        ),
        expected
    );
    assert_eq!(
        forced["dependencies"]["created"], 0,
        "{}",
        forced["dependencies"]
    );
    assert_eq!(forced["tech_debt"]["updated"], 0, "{}", forced["tech_debt"]);
}

#[test]
fn a_newer_export_updates_assets_in_place() {
    let work = Work::new();
    let first = work.write(
        "cmdb_monday.csv",
        "sys_id,name,ip_address,ram,os,u_environment\n\
         a1,web01,10.0.0.1,8192,Windows Server 2019 Standard,PROD\n\
         a2,web02,10.0.0.2,8192,RHEL 8.6,Test\n",
    );
    let (code, json) = work.import_json(&[first.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["inventory"]["created"], 2);
    let id_before = asset(&work, "web01")["id"].clone();
    assert_eq!(asset(&work, "web01")["memory_gb"], 8.0);
    assert_eq!(asset(&work, "web01")["os_version"], "2019");

    let second = work.write(
        "cmdb_tuesday.csv",
        "sys_id,name,ip_address,ram,os,u_environment\n\
         a1,web01,10.0.0.1,16384,Windows Server 2019 Standard,PROD\n\
         a2,web02,10.0.0.2,8192,RHEL 8.6,Test\n\
         a3,web03,10.0.0.3,4096,Ubuntu 22.04,Dev\n",
    );
    let (code, json) = work.import_json(&[second.to_str().unwrap()]);
    assert_eq!(code, 0);
    let inv = &json["inventory"];
    assert_eq!(
        (
            inv["created"].as_u64(),
            inv["updated"].as_u64(),
            inv["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{inv}"
    );
    let web01 = asset(&work, "web01");
    assert_eq!(web01["id"], id_before, "the same asset, updated in place");
    assert_eq!(web01["memory_gb"], 16.0);
    assert_eq!(count(&work.conn(), "SELECT count(*) FROM assets"), 3);
}

#[test]
fn rows_that_identify_no_machine_are_invalid_and_counted() {
    let work = Work::new();
    let file = work.write(
        "gaps.csv",
        "Server Name,IP Address,RAM GB,Environment\n\
         web01,10.0.0.1,16,Production\n\
         ,,32,Production\n\
         web03,10.0.0.999,lots,Moon\n",
    );
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "invalid rows never stop the run: {json}");
    assert_eq!(json["cleansing"]["invalid"], 1);
    assert_eq!(json["cleansing"]["valid"], 2);
    assert_eq!(json["inventory"]["created"], 2);
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT failed_records FROM data_imports"), 1);
    let errors: String = conn
        .query_row(
            "SELECT validation_errors FROM raw_import_records WHERE record_index = 4",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let errors: Value = serde_json::from_str(&errors).unwrap();
    let codes: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    for code in ["invalid_ip", "not_a_size", "unknown_value"] {
        assert!(codes.contains(&code), "{code} in {errors}");
    }
    let bad_ip = errors
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "invalid_ip")
        .unwrap();
    assert_eq!(bad_ip["raw_value"], "10.0.0.999");
    assert_eq!(bad_ip["column"], "IP Address");
    let (valid, processed): (i64, i64) = conn
        .query_row(
            "SELECT is_valid, is_processed FROM raw_import_records WHERE record_index = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((valid, processed), (0, 1));
    let web03 = asset(&work, "web03");
    assert_eq!(
        web03["ip_address"],
        Value::Null,
        "an unparsable value leaves the field empty"
    );
}

#[test]
fn a_mapping_decision_re_runs_cleansing_and_inventory() {
    let work = Work::new();
    let file = work.write(
        "handmade.csv",
        "Server Name,Kiste,RAM GB\nweb01,DC-Nord,16\nweb02,DC-Sued,8\n",
    );
    let (code, _) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let custom: Value =
        serde_json::from_str(asset(&work, "web01")["custom_attributes"].as_str().unwrap()).unwrap();
    assert_eq!(custom["Kiste"], "DC-Nord");
    let out = work.run_ok(&["mappings", "set", "Kiste", "datacenter"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 updated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web01 = asset(&work, "web01");
    assert_eq!(web01["datacenter"], "DC-Nord");
    let custom: Value = serde_json::from_str(web01["custom_attributes"].as_str().unwrap()).unwrap();
    assert!(custom.get("Kiste").is_none(), "{custom}");
}

#[test]
fn two_vms_with_one_name_in_two_vcenters_stay_two_assets() {
    let work = Work::new();
    let file = work.write(
        "two_vcenters.csv",
        "VM,Powerstate,DNS Name,CPUs,Memory,VM UUID,VI SDK Server\n\
         app01,poweredOn,app01.eu.example.com,2,4096,4211aaaa-0000-0000-0000-000000000001,vc-eu\n\
         app01,poweredOn,app01.us.example.com,2,4096,4211bbbb-0000-0000-0000-000000000002,vc-us\n",
    );
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["inventory"]["created"], 2);
    assert_eq!(
        count(
            &work.conn(),
            "SELECT count(*) FROM assets WHERE name = 'app01'"
        ),
        2
    );
    assert_eq!(
        count(
            &work.conn(),
            "SELECT count(*) FROM assets WHERE memory_gb = 4"
        ),
        2,
        "RVTools memory is MiB"
    );
}

/// (record_index, cleansed_data, is_valid, validation_errors) of every record.
fn cleansing_of(work: &Work) -> Vec<(i64, String, i64, String)> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare(
            "SELECT record_index, cleansed_data, is_valid, validation_errors
             FROM raw_import_records WHERE is_processed = 1 ORDER BY record_index",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn rows_cleansed_while_staged_equal_rows_cleansed_afterwards() {
    // More rows than the mapping sample, so the held rows, rows cleansed by the
    // reader and rows cleansed by the writer all occur.
    let rows = 40_000;
    let staged = Work::new();
    let export = staged.path("cmdb.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&export).unwrap());
    intake::synth::write_cmdb_csv(&mut out, rows, 1.0, 11).unwrap();
    drop(out);
    let (code, json) = staged.import_json(&[export.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["cleansing"]["records"], rows);

    // The same file staged only, then cleansed by the data_cleansing phase of the next run.
    let later = Work::new();
    let (code, _) = later.import_json(&[export.to_str().unwrap(), "--stop-after", "data_import"]);
    assert_eq!(code, 0);
    assert_eq!(
        count(
            &later.conn(),
            "SELECT count(*) FROM raw_import_records WHERE is_processed = 1"
        ),
        0
    );
    later.run_ok(&["import", export.to_str().unwrap(), "--quiet"]);

    let a = cleansing_of(&staged);
    let b = cleansing_of(&later);
    assert_eq!(a.len(), rows as usize);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "record {} differs", x.0);
    }
    let assets = |w: &Work| count(&w.conn(), "SELECT count(*) FROM assets");
    assert_eq!(assets(&staged), assets(&later));
}

#[test]
fn machines_in_two_files_of_one_run_merge_in_import_order_whatever_their_row_order() {
    let work = Work::new();
    let dir = work.path("exports");
    std::fs::create_dir_all(&dir).unwrap();
    // Imported in name order: a_ before b_. b_ lists the shared machines in
    // the opposite order, with a lone machine between them.
    std::fs::write(
        dir.join("a_cmdb_first.csv"),
        "sys_id,name,ip_address,ram\nm1,alpha,10.1.0.1,8192\nm2,beta,10.1.0.2,4096\nm5,epsilon,10.1.0.5,1024\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b_cmdb_reversed.csv"),
        "sys_id,name,ip_address,ram\nm2,beta,10.1.0.2,6144\nm9,lone,10.1.0.9,2048\nm1,alpha,10.1.0.1,16384\n",
    )
    .unwrap();
    let (code, json) = work.import_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let inv = &json["inventory"];
    assert_eq!(inv["created"], 4, "{inv}");
    assert_eq!(inv["merged_records"], 2, "{inv}");
    // The later import of the same source system wins.
    assert_eq!(asset(&work, "alpha")["memory_gb"], 16.0);
    assert_eq!(asset(&work, "beta")["memory_gb"], 6.0);
    assert_eq!(asset(&work, "lone")["memory_gb"], 2.0);
    assert_eq!(asset(&work, "epsilon")["memory_gb"], 1.0);
    let (_, again) = work.import_json(&[dir.to_str().unwrap(), "--force"]);
    assert_eq!(again["inventory"]["unchanged"], 4, "{}", again["inventory"]);
    assert_eq!(count(&work.conn(), "SELECT count(*) FROM assets"), 4);
}

/// Every machine's columns but the ids, the flow links and the times, in a
/// stable order.
fn asset_contents(work: &Work) -> Vec<String> {
    asset_contents_without(work, &[])
}

/// Every asset's columns but its ids, times and `without`, one JSON array a row.
pub(crate) fn asset_contents_without(work: &Work, without: &[&str]) -> Vec<String> {
    let conn = work.conn();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('assets') WHERE name NOT IN ('id', 'client_account_id', 'engagement_id', 'master_flow_id', 'discovery_flow_id', 'created_at', 'updated_at')")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|c| !without.contains(&c.as_str()))
        .collect();
    let sql = format!(
        // Applications the dependencies phase derives carry the time they were found.
        "SELECT json_array({}) FROM assets WHERE asset_type <> 'application' ORDER BY cmdb_record_id, name",
        columns.join(", ")
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

#[test]
fn assets_built_while_staging_equal_assets_built_by_the_inventory_phase() {
    // A first build of one file is done while the file is staged; the same
    // file stopped after cleansing is built by the inventory phase of the
    // next run. More rows than the mapping sample, and 300 machines listed
    // twice with a newer memory size and location, so both merge.
    let first = Work::new();
    let export = first.path("cmdb_with_duplicates.csv");
    let mut generated = Vec::new();
    intake::synth::write_cmdb_csv(&mut generated, 30_000, 1.0, 17).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(generated.as_slice());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (ram, location) = (column("ram"), column("location"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_path(&export)
        .unwrap();
    out.write_record(&header).unwrap();
    for record in &records {
        out.write_record(record).unwrap();
    }
    for record in records
        .iter()
        .step_by(97)
        .filter(|r| r.len() == header.len())
        .take(300)
    {
        let mut again: Vec<String> = record.iter().map(str::to_string).collect();
        again[ram] = "65536".into();
        again[location] = "Amsterdam DC2".into();
        out.write_record(&again).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let path = export.to_str().unwrap();

    let (code, json) = first.import_json(&[path]);
    assert_eq!(code, 0, "{json}");
    let later = Work::new();
    let (code, _) = later.import_json(&[path, "--stop-after", "data_cleansing"]);
    assert_eq!(code, 0);
    assert_eq!(count(&later.conn(), "SELECT count(*) FROM assets"), 0);
    later.run_ok(&["import", path, "--quiet"]);
    let staged =
        "SELECT count(*) FROM data_imports WHERE json_extract(read_metadata, '$.assets_on_stage')";
    assert_eq!(count(&first.conn(), staged), 1);
    assert_eq!(count(&later.conn(), staged), 0);

    let summary = |w: &Work| -> Value {
        let text: String = w
            .conn()
            .query_row("SELECT discovered_assets FROM discovery_flows", [], |r| {
                r.get(0)
            })
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (a, b) = (summary(&first), summary(&later));
    assert_eq!(a, b);
    assert!(a["merged_records"].as_u64().unwrap() >= 300, "{a}");
    assert_eq!(a["created"], a["assets"]);
    assert_eq!(json["inventory"]["created"], a["created"]);
    let (a, b) = (asset_contents(&first), asset_contents(&later));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    // The later listing wins: 300 machines now have 64 GB in Amsterdam.
    assert_eq!(
        count(
            &first.conn(),
            "SELECT count(*) FROM assets WHERE memory_gb = 64 AND location = 'Amsterdam DC2'"
        ),
        300
    );
}

#[test]
fn a_file_that_fails_after_its_machines_were_staged_leaves_no_asset() {
    // Past the mapping sample the machines are being written as the rows are
    // staged; then an unclosed quote runs past the record limit.
    let work = Work::new();
    let export = work.path("unclosed_quote_after_30000_rows.csv");
    let mut text = Vec::new();
    intake::synth::write_cmdb_csv(&mut text, 30_000, 0.0, 5).unwrap();
    text.extend_from_slice(b"broken,\"this quote is never closed");
    text.extend(std::iter::repeat_n(b'x', 4_096));
    text.push(b'\n');
    std::fs::write(&export, text).unwrap();
    let (_, json) = work.import_json(&[export.to_str().unwrap(), "--max-record-bytes", "2048"]);
    assert_eq!(json["files"][0]["status"], "failed", "{json}");
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 0);
    assert_eq!(count(&conn, "SELECT count(*) FROM assets"), 0);
}

/// A forced re-import repeats every row (recorded as seen, not merged again);
/// the next export of the same CMDB changes some. Machines whose records are
/// all alike are merged from their first record alone (no read-back by
/// rowid): the assets
/// must be exactly those a full merge gives, which for one source system are
/// those of the newest export on its own, but for the columns mapped to no
/// field: those keep their first value (custom_attributes is first come).
#[test]
fn re_imported_machines_whose_records_are_alike_merge_as_a_full_rebuild_would() {
    let rows = 5_000;
    let write = |work: &Work, name: &str, changed: f64| {
        let path = work.path(name);
        let mut out = std::fs::File::create(&path).unwrap();
        let records = intake::synth::CmdbRecords::new(rows, 1.0, 21).with_changed(changed, 22);
        intake::synth::write_records_csv(&mut out, records).unwrap();
        path
    };
    let work = Work::new();
    let monday = write(&work, "cmdb_monday.csv", 0.0);
    let tuesday = write(&work, "cmdb_tuesday.csv", 5.0);
    let (code, first) = work.import_json(&[monday.to_str().unwrap()]);
    assert_eq!(code, 0, "{first}");
    let built = asset_contents(&work);

    let (code, forced) = work.import_json(&[monday.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{forced}");
    let inventory = &forced["inventory"];
    assert_eq!(inventory["updated"], 0, "{inventory}");
    assert_eq!(inventory["created"], 0, "{inventory}");
    // Every row repeats one the first import stored: recorded as seen, none
    // is stored or merged again.
    assert_eq!(forced["files"][0]["unchanged_rows"], rows);
    assert_eq!(inventory["merged_records"], 0, "{inventory}");
    assert_eq!(
        asset_contents(&work),
        built,
        "a forced re-import changes no asset"
    );

    let (code, next) = work.import_json(&[tuesday.to_str().unwrap()]);
    assert_eq!(code, 0, "{next}");
    let inventory = &next["inventory"];
    let updated = inventory["updated"].as_u64().unwrap();
    assert!(
        (150..=350).contains(&updated),
        "about 5 % of 5,000 machines changed: {inventory}"
    );
    assert_eq!(inventory["created"], 0, "{inventory}");

    let alone = Work::new();
    let tuesday_alone = write(&alone, "cmdb_tuesday.csv", 5.0);
    let (code, json) = alone.import_json(&[tuesday_alone.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert!(
        asset_contents_without(&work, &["custom_attributes"])
            == asset_contents_without(&alone, &["custom_attributes"]),
        "three imports of one CMDB give the assets of its newest export"
    );
    // The changed machines' unmapped operational_status keeps its first value.
    let differ = asset_contents(&work)
        .iter()
        .zip(asset_contents(&alone).iter())
        .filter(|(a, b)| a != b)
        .count() as u64;
    assert!(differ > 0 && differ <= updated, "{differ} of {updated}");
}
