//! `intake import` and `intake sniff` on workbooks: the real binary on real
//! .xlsx, .xls and .ods files, checked in the SQLite file it writes. Hostile
//! archives (zip bombs, absurd dimensions) are made by the tests themselves.

use std::io::Write;

use crate::common::{
    count, file_entry, fixture, import_field, raw_rows, sample, staged_rows, Work,
};
use serde_json::{json, Value};

fn wb(name: &str) -> String {
    fixture(&format!("workbooks/{name}")).display().to_string()
}

/// The entry of `--json` output for a sheet of a workbook.
fn sheet_entry<'a>(json: &'a Value, file: &str, sheet: &str) -> &'a Value {
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(file) && f["sheet"] == sheet)
        .unwrap_or_else(|| panic!("no entry for {file} [{sheet}] in {json}"))
}

/// The raw rows of one sheet's import.
fn sheet_rows(work: &Work, sheet: &str) -> Vec<(i64, Value)> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare(
            "SELECT r.record_index, r.raw_data FROM raw_import_records r
             JOIN data_imports d ON d.id = r.data_import_id
             WHERE d.sheet_name = ?1 ORDER BY r.record_index",
        )
        .unwrap();
    stmt.query_map([sheet], |r| {
        let raw: String = r.get(1)?;
        Ok((r.get(0)?, serde_json::from_str(&raw).unwrap()))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Writes a zip with the given entries (name, bytes), deflated.
fn write_zip(path: &std::path::Path, entries: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// The parts of a minimal .xlsx holding one sheet with `sheet_xml`.
fn xlsx_parts(sheet_xml: Vec<u8>) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("[Content_Types].xml", br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_vec()),
        ("_rels/.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_vec()),
        ("xl/workbook.xml", br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_vec()),
        ("xl/_rels/workbook.xml.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_vec()),
        ("xl/worksheets/sheet1.xml", sheet_xml),
    ]
}

fn sheet_xml(dimension: &str, rows: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>"#
    )
    .into_bytes()
}

const SMALL_ROWS: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c><c r="B1" t="inlineStr"><is><t>IP</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>web01</t></is></c><c r="B2" t="inlineStr"><is><t>10.0.0.1</t></is></c></row>"#;

#[test]
fn dates_become_iso_8601_in_both_date_systems() {
    let work = Work::new();
    let (code, _) =
        work.import_json(&[&wb("dates_1900_system.xlsx"), &wb("dates_1904_system.xlsx")]);
    assert_eq!(code, 0);
    let conn = work.conn();
    for file in ["dates_1900_system.xlsx", "dates_1904_system.xlsx"] {
        let rows = raw_rows(&conn, file);
        assert_eq!(rows.len(), 3, "{file}");
        let (index, first) = &rows[0];
        assert_eq!(*index, 2, "record_index is the sheet's row number");
        assert_eq!(first["Commissioned"], "2019-03-14", "{file}");
        assert_eq!(first["Last Seen"], "2024-11-02T14:30:05", "{file}");
        assert_eq!(first["Backup Window"], "22:15:00", "{file}");
        assert_eq!(first["Warranty Expiration"], "2026-12-31", "{file}");
        assert_eq!(
            rows[1].1["Commissioned"], "2016-02-29",
            "a leap day survives in {file}"
        );
    }
    let meta: String = import_field(&conn, "dates_1904_system.xlsx", "read_metadata");
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["uses_1904_dates"], true);
}

#[test]
fn text_keeps_leading_zeros_and_whole_numbers_stay_whole() {
    let work = Work::new();
    let (code, json) = work.import_json(&[&wb("leading_zeros_whole_numbers.xlsx")]);
    assert_eq!(code, 0, "{json}");
    let rows = raw_rows(&work.conn(), "leading_zeros_whole_numbers.xlsx");
    let first = &rows[0].1;
    assert_eq!(first["Asset Tag"], "00123");
    assert_eq!(first["Site Code"], "007");
    assert_eq!(first["CPU Cores"], "8", "8.0 reads 8");
    assert_eq!(first["RAM GB"], "16");
    assert_eq!(
        first["CPU %"], "0.3",
        "Excel's 15 digits, not 0.30000000000000004"
    );
    assert_eq!(first["Virtual"], "true");
    assert_eq!(first["Cost"], "1234.5");
    assert_eq!(rows[2].1["Asset Tag"], "01000");
    assert_eq!(rows[2].1["Cost"], "0");
}

#[test]
fn error_cells_and_formulas_without_values_become_null_with_warnings() {
    let work = Work::new();
    let (code, json) = work.import_json(&[&wb("formulas_without_cached_values.xlsx")]);
    assert_eq!(code, 0);
    let entry = sheet_entry(&json, "formulas_without_cached_values.xlsx", "Capacity");
    assert_eq!(entry["warnings"], 5);
    assert_eq!(entry["warnings_by_code"]["formula_without_value"], 3);
    assert_eq!(entry["warnings_by_code"]["error_cell"], 2);
    let rows = raw_rows(&work.conn(), "formulas_without_cached_values.xlsx");
    assert_eq!(rows[0].1["Total cores"], Value::Null);
    assert_eq!(rows[0].1["Lookup"], Value::Null);
    assert_eq!(rows[1].1["Lookup"], "ok");
    assert_eq!(rows[0].1["Sockets"], "2");
    let warnings = entry["first_warnings"].as_array().unwrap();
    let formula = warnings
        .iter()
        .find(|w| w["code"] == "formula_without_value")
        .unwrap();
    assert_eq!(formula["line"], 2);
    assert_eq!(formula["column"], "Total cores");
    assert!(formula["message"].as_str().unwrap().contains("D2"));
    assert!(formula["message"].as_str().unwrap().contains("=B2*C2"));
    let error = warnings.iter().find(|w| w["code"] == "error_cell").unwrap();
    assert!(error["message"].as_str().unwrap().contains("#N/A"));
    // --strict turns these row warnings into exit code 4.
    let strict = Work::new();
    let out = strict
        .intake()
        .args([
            "import",
            &wb("formulas_without_cached_values.xlsx"),
            "--strict",
            "-q",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn merged_ranges_are_reported_and_fill_the_cells_they_cover() {
    let work = Work::new();
    let (code, json) = work.import_json(&[&wb("merged_cells.xlsx")]);
    assert_eq!(code, 0);
    let entry = sheet_entry(&json, "merged_cells.xlsx", "Inventory");
    assert_eq!(
        entry["header_row"], 2,
        "the merged title above is not the header"
    );
    let rows = raw_rows(&work.conn(), "merged_cells.xlsx");
    let dcs: Vec<&str> = rows
        .iter()
        .map(|(_, r)| r["Datacenter"].as_str().unwrap())
        .collect();
    assert_eq!(
        dcs,
        ["DC-North", "DC-North", "DC-North", "DC-South", "DC-South"]
    );
    let meta: Value = serde_json::from_str(&import_field::<String>(
        &work.conn(),
        "merged_cells.xlsx",
        "read_metadata",
    ))
    .unwrap();
    let merged: Vec<&str> = meta["merged_ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for range in ["A1:E1", "A3:A5", "A6:A7"] {
        assert!(merged.contains(&range), "{range} in {merged:?}");
    }
    assert_eq!(
        meta["preamble"][0]["text"],
        "Data centre inventory, exported 2024-11-04"
    );
    assert!(entry["header_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("merged range")));
}

#[test]
fn hidden_and_empty_sheets_are_listed_and_skipped() {
    let work = Work::new();
    let (code, json) = work.import_json(&[&wb("hidden_and_empty_sheets.xlsx")]);
    assert_eq!(code, 0);
    assert_eq!(
        sheet_entry(&json, "hidden_and_empty_sheets.xlsx", "Servers")["status"],
        "completed"
    );
    for (sheet, reason) in [
        ("Lookup", "hidden"),
        ("Notes", "empty"),
        ("Internal", "hidden"),
    ] {
        let entry = sheet_entry(&json, "hidden_and_empty_sheets.xlsx", sheet);
        assert_eq!(entry["status"], "skipped", "{sheet}");
        assert!(
            entry["skipped_because"].as_str().unwrap().contains(reason),
            "{entry}"
        );
        assert_eq!(entry["data_import_id"], Value::Null);
    }
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM data_imports"), 1);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM data_imports WHERE sheet_name = 'Servers' AND import_name = 'hidden_and_empty_sheets.xlsx [Servers]'"),
        1
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 2);

    // --sheet picks a sheet by name, hidden ones included.
    let picked = Work::new();
    let (code, json) =
        picked.import_json(&[&wb("hidden_and_empty_sheets.xlsx"), "--sheet", "lookup"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        sheet_entry(&json, "hidden_and_empty_sheets.xlsx", "Lookup")["status"],
        "completed"
    );
    assert_eq!(
        sheet_entry(&json, "hidden_and_empty_sheets.xlsx", "Servers")["status"],
        "skipped"
    );
    assert_eq!(
        sheet_rows(&picked, "Lookup")[0].1,
        json!({"Code": "P", "Meaning": "Production"})
    );

    // A sheet name no workbook has is an error naming the sheets there are.
    let (code, json) =
        Work::new().import_json(&[&wb("hidden_and_empty_sheets.xlsx"), "--sheet", "Nope"]);
    assert_eq!(code, 3);
    let error = json["files"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("Nope") && error.contains("Servers, Lookup, Notes, Internal"),
        "{error}"
    );
}

#[test]
fn header_is_found_under_title_rows_and_a_sheet_without_one_is_reported() {
    let work = Work::new();
    let (code, json) = work.import_json(&[
        &wb("title_rows_offset_table.xlsx"),
        &wb("no_header_row.xlsx"),
    ]);
    assert_eq!(code, 0);
    let conn = work.conn();
    let rows = raw_rows(&conn, "title_rows_offset_table.xlsx");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].0, 5);
    assert_eq!(rows[0].1["Host Name"], "srv-001");
    assert_eq!(rows[0].1["RAM GB"], "32");
    assert_eq!(rows[2].1["Host Name"], "srv-003");
    assert_eq!(rows[2].1["O/S"], "", "short rows fill the header's columns");
    let meta: Value = serde_json::from_str(&import_field::<String>(
        &conn,
        "title_rows_offset_table.xlsx",
        "read_metadata",
    ))
    .unwrap();
    assert_eq!(meta["header_line"], 4);
    assert_eq!(meta["preamble"].as_array().unwrap().len(), 2);

    let entry = sheet_entry(&json, "no_header_row.xlsx", "Sheet1");
    assert!(entry["header_warnings"][0]
        .as_str()
        .unwrap()
        .contains("no header row found"));
    let rows = raw_rows(&conn, "no_header_row.xlsx");
    assert_eq!(rows.len(), 2, "no row is lost when there is no header");
    assert_eq!(rows[0].1["column_1"], "web01");
    assert_eq!(rows[0].1["column_4"], "2020-01-01");
}

#[test]
fn a_sheet_with_group_labels_over_its_header_and_a_sheet_with_no_header_become_assets() {
    let work = Work::new();
    let (code, json) = work.import_json(&[
        &wb("two_row_header_merged_groups.xlsx"),
        &wb("headerless_typed_cells.xlsx"),
    ]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    // The merged group row and the label row make one name per column.
    let rows = raw_rows(&conn, "two_row_header_merged_groups.xlsx");
    assert_eq!(rows.len(), 6, "the label row is a header, not a record");
    assert_eq!(rows[0].1["Server - Name"], "cldsrv00");
    assert_eq!(rows[0].1["Compute - RAM (GB)"], "8");
    assert_eq!(rows[0].1["Utilisation - Memory Peak %"], "60");
    let shape = |file: &str| {
        let meta: Value =
            serde_json::from_str(&import_field::<String>(&conn, file, "read_metadata")).unwrap();
        meta["header_shape"].clone()
    };
    assert_eq!(shape("two_row_header_merged_groups.xlsx"), "two_rows");
    // Every row of the headerless sheet is a record, mapped by its values.
    let rows = raw_rows(&conn, "headerless_typed_cells.xlsx");
    assert_eq!(rows.len(), 8, "the first row is data");
    assert_eq!(rows[0].1["column_2"], "PC-1000");
    assert_eq!(shape("headerless_typed_cells.xlsx"), "absent");
    let mapped = |sql: &str| count(&conn, sql);
    assert_eq!(
        mapped(
            "SELECT count(*) FROM assets a JOIN data_imports d ON d.engagement_id = a.engagement_id
             WHERE d.filename LIKE '%two_row%' AND a.name LIKE 'cldsrv%' AND a.memory_gb IS NOT NULL
               AND a.ip_address LIKE '10.60.0.%' AND a.operating_system IS NOT NULL"
        ),
        6,
        "{json}"
    );
    assert_eq!(
        mapped(
            "SELECT count(*) FROM assets WHERE name LIKE 'PC-10%' AND serial_number LIKE 'CZC%'
               AND operating_system LIKE 'Windows%'"
        ),
        8,
        "{json}"
    );
    for (file, sheet, assets) in [
        ("two_row_header_merged_groups.xlsx", "Servers", 6),
        ("headerless_typed_cells.xlsx", "Devices", 8),
    ] {
        let yields = &sheet_entry(&json, file, sheet)["yields"];
        assert_eq!(yields["kind"], "machines", "{file}: {yields}");
        assert_eq!(yields["assets"], assets, "{file}: {yields}");
    }
}

#[test]
fn xls_ods_and_text_saved_as_xls_are_read() {
    let work = Work::new();
    let (code, json) = work.import_json(&[
        &wb("legacy_excel97.xls"),
        &wb("opendocument.ods"),
        &wb("tab_separated_saved_as.xls"),
    ]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let xls = raw_rows(&conn, "legacy_excel97.xls");
    assert_eq!(
        xls[0].1,
        json!({"Name": "web01", "Asset Tag": "00123", "CPUs": "4", "Memory MB": "16384", "Installed": "2018-05-01"})
    );
    assert_eq!(
        sheet_entry(&json, "legacy_excel97.xls", "Empty")["status"],
        "skipped"
    );
    let ods = raw_rows(&conn, "opendocument.ods");
    assert_eq!(
        ods[1].1,
        json!({"Name": "db01", "Serial": "000982", "vCPU": "8", "RAM GB": "64.5", "Purchased": "2020-07-15"})
    );
    let text = file_entry(&json, "tab_separated_saved_as.xls");
    assert_eq!(text["delimiter"], "tab");
    assert!(text["notes"][0].as_str().unwrap().contains("read as CSV"));
    assert_eq!(
        raw_rows(&conn, "tab_separated_saved_as.xls")[1].1["OS"],
        "RHEL 9"
    );
}

#[test]
fn corrupt_and_password_protected_workbooks_fail_alone() {
    let work = Work::new();
    let (code, json) = work.import_json(&[
        &wb("truncated.xlsx"),
        &wb("password_protected.xlsx"),
        &wb("leading_zeros_whole_numbers.xlsx"),
    ]);
    assert_eq!(code, 3);
    let truncated = file_entry(&json, "truncated.xlsx");
    assert_eq!(truncated["status"], "failed");
    assert_eq!(truncated["error_code"], "unreadable_workbook");
    assert!(truncated["error"]
        .as_str()
        .unwrap()
        .contains("truncated.xlsx"));
    let locked = file_entry(&json, "password_protected.xlsx");
    assert_eq!(locked["error_code"], "password_protected");
    assert!(locked["error"]
        .as_str()
        .unwrap()
        .contains("remove the password"));
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE status = 'failed'"
        ),
        2
    );
    assert_eq!(
        raw_rows(&conn, "leading_zeros_whole_numbers.xlsx").len(),
        3,
        "the good file still imports"
    );
    let details: String = import_field(&conn, "password_protected.xlsx", "error_details");
    assert!(details.contains("password_protected"));
}

#[test]
fn zip_bombs_are_refused_before_calamine_opens_them() {
    let work = Work::new();
    // A sheet of 64 MiB of blanks deflates to ~64 KiB: a ratio no workbook has.
    let mut padded = sheet_xml("A1:B2", SMALL_ROWS);
    let tail = padded.split_off(padded.len() - "</worksheet>".len());
    padded.extend(std::iter::repeat_n(b' ', 64 << 20));
    padded.extend(tail);
    let ratio_bomb = work.path("ratio_bomb.xlsx");
    write_zip(&ratio_bomb, &xlsx_parts(padded));

    // A sheet whose central directory lies about its size (declares 4 KiB).
    let liar = work.path("lying_sizes.xlsx");
    let mut big = sheet_xml("A1:B2", SMALL_ROWS);
    let tail = big.split_off(big.len() - "</worksheet>".len());
    big.extend(std::iter::repeat_n(b' ', 2 << 20));
    big.extend(tail);
    write_zip(&liar, &xlsx_parts(big.clone()));
    let mut bytes = std::fs::read(&liar).unwrap();
    let real_size = (big.len() as u32).to_le_bytes();
    let lie = 4096u32.to_le_bytes();
    let mut patched = 0;
    for at in 0..bytes.len() - 4 {
        if bytes[at..at + 4] == real_size {
            bytes[at..at + 4].copy_from_slice(&lie);
            patched += 1;
        }
    }
    assert!(patched >= 1, "the declared size was found and patched");
    std::fs::write(&liar, bytes).unwrap();

    let (code, json) = work.import_json(&[
        ratio_bomb.to_str().unwrap(),
        liar.to_str().unwrap(),
        &wb("dates_1900_system.xlsx"),
    ]);
    assert_eq!(code, 3);
    let ratio = file_entry(&json, "ratio_bomb.xlsx");
    assert_eq!(ratio["error_code"], "refused_workbook", "{ratio}");
    assert!(ratio["error"].as_str().unwrap().contains("zip bomb"));
    let lying = file_entry(&json, "lying_sizes.xlsx");
    assert_eq!(lying["status"], "failed");
    assert!(
        ["refused_workbook", "unreadable_workbook"]
            .contains(&lying["error_code"].as_str().unwrap()),
        "{lying}"
    );
    assert_eq!(raw_rows(&work.conn(), "dates_1900_system.xlsx").len(), 3);
}

#[test]
fn an_absurd_declared_dimension_costs_the_cells_that_exist_and_repeat_bombs_are_refused() {
    let work = Work::new();
    let absurd = work.path("absurd_dimension.xlsx");
    write_zip(&absurd, &xlsx_parts(sheet_xml("A1:XFD1048576", SMALL_ROWS)));
    // An .ods row repeated a million times with a thousand filled cells.
    let content = br#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="Bomb"><table:table-row table:number-rows-repeated="1000000"><table:table-cell office:value-type="string" table:number-columns-repeated="1000"><text:p>x</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
    let ods = work.path("repeated_rows.ods");
    write_zip(
        &ods,
        &[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet".to_vec(),
            ),
            ("content.xml", content.to_vec()),
        ],
    );
    let (code, json) = work.import_json(&[absurd.to_str().unwrap(), ods.to_str().unwrap()]);
    assert_eq!(code, 3);
    // The declared A1:XFD1048576 is reported, never trusted: the sheet's
    // two rows are read as they are.
    let sheet = sheet_entry(&json, "absurd_dimension.xlsx", "Data");
    assert_eq!(sheet["status"], "completed", "{sheet}");
    assert_eq!(sheet["rows"], 1, "{sheet}");
    let bomb = file_entry(&json, "repeated_rows.ods");
    assert_eq!(bomb["error_code"], "refused_workbook");
    assert!(bomb["error"].as_str().unwrap().contains("Bomb"));
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE sheet_name = 'Data' AND status = 'completed'"
        ),
        1
    );
}

#[test]
fn rvtools_export_yields_vinfo_as_primary_and_other_sheets_as_supplementary() {
    let work = Work::new();
    let (code, json) = work.import_json(&[sample("RVTools_export_all.xlsx").to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM data_imports WHERE source_system = 'rvtools' AND status = 'completed'"),
        8
    );
    let vinfo = sheet_entry(&json, "RVTools_export_all.xlsx", "vInfo");
    assert_eq!(vinfo["layout"]["layout"], "rvtools");
    assert_eq!(vinfo["layout"]["role"], "primary");
    assert_eq!(vinfo["layout"]["describes"], "virtual_machine");
    for sheet in [
        "vCPU",
        "vMemory",
        "vDisk",
        "vPartition",
        "vNetwork",
        "vHost",
    ] {
        let entry = sheet_entry(&json, "RVTools_export_all.xlsx", sheet);
        assert_eq!(entry["layout"]["role"], "supplementary", "{sheet}");
    }
    assert_eq!(
        sheet_entry(&json, "RVTools_export_all.xlsx", "vHost")["layout"]["describes"],
        "esxi_host"
    );
    let roles: Vec<(String, String)> = conn
        .prepare("SELECT sheet_name, json_extract(read_metadata, '$.layout.role') FROM data_imports ORDER BY json_extract(read_metadata, '$.sheet_position')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(roles[0], ("vInfo".to_string(), "primary".to_string()));
    assert_eq!(
        roles.iter().filter(|(_, r)| r == "primary").count(),
        1,
        "only vInfo yields assets"
    );
    let description: String = conn
        .query_row(
            "SELECT description FROM data_imports WHERE sheet_name = 'vInfo'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(description.contains("one asset per virtual machine"));
    let vms = sheet_rows(&work, "vInfo");
    let first = &vms[0].1;
    assert!(
        !first["Memory"].as_str().unwrap().contains('.'),
        "MiB stay whole: {first}"
    );
    assert!(first["VM UUID"].as_str().unwrap().len() == 36);
    assert_eq!(first["Powerstate"], "poweredOn");
    assert!(first["Creation date"]
        .as_str()
        .unwrap()
        .starts_with("2021-03-01T09:00:00"));
    let stdout = work
        .intake()
        .args([
            "import",
            sample("RVTools_export_all.xlsx").to_str().unwrap(),
            "--force",
            "-v",
        ])
        .output()
        .unwrap()
        .stdout;
    let summary = String::from_utf8_lossy(&stdout);
    assert!(
        summary.contains("RVTools (assets)") && summary.contains("RVTools (supplementary)"),
        "{summary}"
    );
}

#[test]
fn servicenow_excel_export_with_labels_is_recognised() {
    let work = Work::new();
    let (code, json) = work.import_json(&[sample("servicenow_cmdb_ci_server_export.xlsx")
        .to_str()
        .unwrap()]);
    assert_eq!(code, 0);
    let entry = sheet_entry(&json, "servicenow_cmdb_ci_server_export.xlsx", "Page 1");
    assert_eq!(entry["layout"]["layout"], "servicenow");
    let rows = sheet_rows(&work, "Page 1");
    assert!(rows.len() >= 30);
    assert!(rows[0].1.get("RAM (MB)").is_some() && rows[0].1.get("Disk space (GB)").is_some());
    assert_eq!(
        import_field::<String>(
            &work.conn(),
            "servicenow_cmdb_ci_server_export.xlsx",
            "source_system"
        ),
        "servicenow"
    );
}

#[test]
fn reimporting_a_workbook_skips_every_sheet() {
    let work = Work::new();
    let path = sample("RVTools_export_all.xlsx").display().to_string();
    let (code, _) = work.import_json(&[&path]);
    assert_eq!(code, 0);
    let (code, json) = work.import_json(&[&path]);
    assert_eq!(code, 0);
    assert_eq!(json["master_flow_id"], Value::Null, "nothing new: no flow");
    assert!(json["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "skipped"
            && f["skipped_because"]
                .as_str()
                .unwrap()
                .contains("already imported")));
    assert_eq!(count(&work.conn(), "SELECT count(*) FROM data_imports"), 8);
}

#[test]
fn sniff_lists_sheets_and_reads_csv_settings_without_writing() {
    let work = Work::new();
    let out = work
        .intake()
        .args([
            "sniff",
            &wb("hidden_and_empty_sheets.xlsx"),
            &fixture("semicolon_cp1252.csv").display().to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sheets = json[0]["workbook"]["sheets"].as_array().unwrap();
    let names: Vec<(&str, &str, &str)> = sheets
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["visibility"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("Servers", "visible", "import"),
            ("Lookup", "hidden", "hidden"),
            ("Notes", "visible", "empty"),
            ("Internal", "very_hidden", "hidden")
        ]
    );
    assert_eq!(sheets[0]["header"]["row"], 1);
    assert_eq!(sheets[0]["declared_rows"], 3);
    assert_eq!(json[1]["text"]["encoding"], "windows-1252");
    assert_eq!(json[1]["text"]["delimiter"], "semicolon");
    assert!(!work.db().exists(), "sniff writes no database");

    let out = work
        .intake()
        .args(["sniff", &wb("title_rows_offset_table.xlsx")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Export") && text.contains("header row"),
        "{text}"
    );
    let out = work
        .intake()
        .args(["sniff", &wb("truncated.xlsx")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// A workbook's sheets are read side by side when there are readers to
/// spare (each part of the workbook opened once): the rows staged, and the
/// assets built from them, are the same as when one reader reads them all.
#[test]
fn the_sheets_of_one_workbook_read_side_by_side_stage_what_one_reader_stages() {
    let source = Work::new();
    let book = source.path("cmdb_pages.xlsx");
    intake::synth::write_cmdb_xlsx(&book, 4_500, 40, 3, 1.0, 9).unwrap();
    let book = book.to_str().unwrap();
    let imported = |threads: &str| {
        let work = Work::new();
        let (code, json) = work.import_json(&[book, "--threads", threads]);
        assert_eq!(code, 0, "{json}");
        assert_eq!(json["totals"]["completed"], 3, "{}", json["totals"]);
        let assets: i64 = count(
            &work.conn(),
            "SELECT count(*) FROM assets WHERE asset_type <> 'application'",
        );
        (
            staged_rows(&work),
            assets,
            json["inventory"]["assets"].clone(),
        )
    };
    let (one, one_assets, one_summary) = imported("1");
    let (three, three_assets, three_summary) = imported("3");
    assert!(one.len() > 4_400, "{}", one.len());
    assert_eq!(
        one.iter()
            .map(|r| &r.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "three sheets, three imports"
    );
    assert!(one == three, "the same rows, in the same order, per sheet");
    assert_eq!(one_assets, three_assets);
    assert_eq!(one_summary, three_summary);
}
