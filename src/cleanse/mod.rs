//! The data_cleansing phase: apply each import's approved mappings and their
//! transformation_rules to every raw record, normalise the values (`values`),
//! and write cleansed_data, is_valid, validation_errors and is_processed. A
//! value that cannot be parsed stays out of cleansed_data and is kept raw in
//! the errors; a row that identifies no machine is invalid. Nothing stops the
//! run: the counts go to data_imports and the flow.

pub mod values;

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalogue::{self, Field, FieldKind};
use crate::db;

/// Records cleansed per transaction.
const BATCH: i64 = 5_000;

/// An approved mapping as cleansing applies it.
#[derive(Debug, Clone)]
pub struct AppliedMapping {
    pub source: String,
    pub field: &'static Field,
    pub rules: Value,
}

/// One problem with one value.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationError {
    pub field: String,
    pub column: String,
    pub raw_value: String,
    pub code: &'static str,
    pub message: String,
}

/// The cleansing of one import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportCleansing {
    pub data_import_id: String,
    pub file: String,
    pub sheet: Option<String>,
    pub records: u64,
    pub valid: u64,
    pub invalid: u64,
    pub errors_by_code: BTreeMap<String, u64>,
}

/// What the phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanseOutcome {
    pub imports: Vec<ImportCleansing>,
    pub records: u64,
    pub valid: u64,
    pub invalid: u64,
}

/// Cleanses every completed import of a master flow.
pub fn run(conn: &Connection, master_flow_id: &str) -> rusqlite::Result<CleanseOutcome> {
    let imports: Vec<(String, String, Option<String>)> = conn
        .prepare(
            "SELECT id, filename, sheet_name FROM data_imports
             WHERE master_flow_id = ?1 AND status = 'completed' ORDER BY created_at, id",
        )?
        .query_map([master_flow_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut outcome = CleanseOutcome::default();
    for (id, file, sheet) in imports {
        let mut result = cleanse_import(conn, &id)?;
        result.file = file;
        result.sheet = sheet;
        outcome.records += result.records;
        outcome.valid += result.valid;
        outcome.invalid += result.invalid;
        outcome.imports.push(result);
    }
    Ok(outcome)
}

/// The approved mappings of an import.
pub fn approved_mappings(
    conn: &Connection,
    data_import_id: &str,
) -> rusqlite::Result<Vec<AppliedMapping>> {
    let rows: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT source_field, target_field, transformation_rules FROM import_field_mappings
             WHERE data_import_id = ?1 AND status = 'approved' AND target_field IS NOT NULL ORDER BY rowid",
        )?
        .query_map([data_import_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(source, target, rules)| {
            Some(AppliedMapping {
                source,
                field: catalogue::field(&target)?,
                rules: serde_json::from_str(&rules).unwrap_or_default(),
            })
        })
        .collect())
}

fn cleanse_import(conn: &Connection, data_import_id: &str) -> rusqlite::Result<ImportCleansing> {
    let mappings = approved_mappings(conn, data_import_id)?;
    let mut result = ImportCleansing {
        data_import_id: data_import_id.to_string(),
        ..Default::default()
    };
    // Batches walk the (data_import_id, record_index) index, so each is a range scan.
    let mut last_index = i64::MIN;
    loop {
        let batch: Vec<(i64, i64, String)> = conn
            .prepare_cached(
                "SELECT rowid, record_index, raw_data FROM raw_import_records
                 WHERE data_import_id = ?1 AND record_index > ?2 ORDER BY record_index LIMIT ?3",
            )?
            .query_map(params![data_import_id, last_index, BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&(_, last, _)) = batch.last() else {
            break;
        };
        last_index = last;
        let tx = conn.unchecked_transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE raw_import_records SET cleansed_data = ?2, is_valid = ?3, validation_errors = ?4,
                   is_processed = 1 WHERE rowid = ?1",
            )?;
            for (rowid, _, raw) in &batch {
                let raw: Map<String, Value> = serde_json::from_str(raw).unwrap_or_default();
                let (cleansed, errors, valid) = cleanse_record(&raw, &mappings);
                result.records += 1;
                if valid {
                    result.valid += 1;
                } else {
                    result.invalid += 1;
                }
                for e in &errors {
                    *result.errors_by_code.entry(e.code.to_string()).or_default() += 1;
                }
                update.execute(params![
                    rowid,
                    Value::Object(cleansed).to_string(),
                    valid,
                    serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into())
                ])?;
            }
        }
        tx.commit()?;
    }
    conn.execute(
        "UPDATE data_imports SET failed_records = ?2, updated_at = ?3,
           read_metadata = json_set(read_metadata, '$.cleansing', json(?4))
         WHERE id = ?1",
        params![
            data_import_id,
            result.invalid as i64,
            db::now(),
            json!({ "valid": result.valid, "invalid": result.invalid, "errors_by_code": result.errors_by_code }).to_string()
        ],
    )?;
    Ok(result)
}

/// Cleanses one record: (cleansed_data, validation errors, identifies a machine).
pub fn cleanse_record(
    raw: &Map<String, Value>,
    mappings: &[AppliedMapping],
) -> (Map<String, Value>, Vec<ValidationError>, bool) {
    let mut out = Map::new();
    let mut extra: Map<String, Value> = Map::new();
    let mut errors = Vec::new();
    for m in mappings {
        let Some(Value::String(text)) = raw.get(&m.source) else {
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let mut fail = |code: &'static str, message: String| {
            errors.push(ValidationError {
                field: m.field.name.to_string(),
                column: m.source.clone(),
                raw_value: text.to_string(),
                code,
                message,
            })
        };
        let rule = |key: &str| m.rules.get(key);
        match m.field.kind {
            FieldKind::Name | FieldKind::Text | FieldKind::Version => {
                set(&mut out, m.field.name, json!(text));
            }
            FieldKind::Hostname | FieldKind::Fqdn => match values::normalise_host(text) {
                Some(host) => {
                    let short = values::short_name(&host);
                    if host.contains('.') && values::normalise_ip(&host).is_none() {
                        set(&mut out, "fqdn", json!(host));
                    }
                    set(&mut out, "hostname", json!(short));
                }
                None => fail("invalid_host_name", format!("'{text}' is not a host name")),
            },
            FieldKind::IpAddress | FieldKind::MacAddress => {
                let normalise = if m.field.kind == FieldKind::IpAddress {
                    values::normalise_ip
                } else {
                    values::normalise_mac
                };
                let mut all = Vec::new();
                for item in values::split_list(text) {
                    match normalise(item) {
                        Some(v) if !all.contains(&v) => all.push(v),
                        Some(_) => {}
                        None => fail(
                            if m.field.kind == FieldKind::IpAddress {
                                "invalid_ip"
                            } else {
                                "invalid_mac"
                            },
                            format!(
                                "'{item}' is not a valid {}",
                                if m.field.kind == FieldKind::IpAddress {
                                    "IP address"
                                } else {
                                    "MAC address"
                                }
                            ),
                        ),
                    }
                }
                if let Some((first, rest)) = all.split_first() {
                    set(&mut out, m.field.name, json!(first));
                    if !rest.is_empty() {
                        extra.insert(m.field.name.to_string(), json!(rest));
                    }
                }
            }
            FieldKind::Uuid => {
                let hex: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                if hex.len() == 32 {
                    let h = hex.to_ascii_lowercase();
                    set(
                        &mut out,
                        m.field.name,
                        json!(format!(
                            "{}-{}-{}-{}-{}",
                            &h[..8],
                            &h[8..12],
                            &h[12..16],
                            &h[16..20],
                            &h[20..]
                        )),
                    );
                } else {
                    fail("invalid_uuid", format!("'{text}' is not a UUID"));
                }
            }
            FieldKind::Integer => match values::parse_integer(text) {
                Some(n) => {
                    let factor = rule("multiply_by")
                        .and_then(|c| c.as_str())
                        .and_then(|c| raw.get(c))
                        .and_then(|v| v.as_str())
                        .and_then(values::parse_integer)
                        .filter(|f| *f > 0)
                        .unwrap_or(1);
                    set(&mut out, m.field.name, json!(n * factor));
                }
                None => fail(
                    "not_a_whole_number",
                    format!("'{text}' is not a whole number"),
                ),
            },
            FieldKind::Decimal => match values::parse_number(text) {
                Some(n) => set(&mut out, m.field.name, values::number_value(n)),
                None => fail("not_a_number", format!("'{text}' is not a number")),
            },
            FieldKind::Size => {
                let unit = rule("from_unit").and_then(|u| u.as_str());
                let flag = rule("flag_below").and_then(|f| f.as_f64());
                match values::parse_size(text, unit, flag) {
                    Ok((gb, warning)) => {
                        set(&mut out, m.field.name, values::number_value(gb));
                        if let Some((code, message)) = warning {
                            fail(code, message);
                        }
                    }
                    Err((code, message)) => fail(code, message),
                }
            }
            FieldKind::Percent => match values::parse_percent(text) {
                Some(p) if (0.0..=100.0).contains(&p) => {
                    set(&mut out, m.field.name, values::number_value(p))
                }
                Some(p) => fail(
                    "out_of_range",
                    format!("{p} is not a percentage between 0 and 100"),
                ),
                None => fail("not_a_number", format!("'{text}' is not a percentage")),
            },
            FieldKind::Boolean => match values::parse_bool(text) {
                Some(b) => {
                    let invert = rule("invert").and_then(|v| v.as_bool()).unwrap_or(false);
                    set(&mut out, m.field.name, json!(b != invert));
                }
                None => fail("not_a_boolean", format!("'{text}' is not yes/no")),
            },
            FieldKind::Date => match values::parse_date(text) {
                Some(d) => set(&mut out, m.field.name, json!(d)),
                None => fail("not_a_date", format!("'{text}' is not a date")),
            },
            FieldKind::OperatingSystem => {
                let (os, version) = values::split_os(text);
                set(&mut out, "operating_system", json!(os));
                if let Some(version) = version {
                    extra.insert("_os_version_from_name".into(), json!(version));
                }
            }
            FieldKind::Enumerated => {
                let normalised = match m.field.name {
                    "environment" => values::environment(text),
                    "criticality" => values::criticality(text),
                    "six_r_strategy" => values::six_r(text),
                    "asset_type" => values::asset_type(text),
                    _ => None,
                };
                match normalised {
                    Some(v) => set(&mut out, m.field.name, json!(v)),
                    None => fail(
                        "unknown_value",
                        format!("'{text}' is not one of {}", m.field.allowed.join(", ")),
                    ),
                }
            }
        }
    }
    // A version embedded in the OS name fills os_version when no column gave one.
    if let Some(version) = extra.remove("_os_version_from_name") {
        out.entry("os_version").or_insert(version);
    }
    if !extra.is_empty() {
        out.insert("_additional".into(), Value::Object(extra));
    }
    let identifies = |field: &str| field == "name" || catalogue::IDENTITY_KEYS.contains(&field);
    let valid = out.keys().any(|k| identifies(k));
    if !valid {
        errors.push(ValidationError {
            field: String::new(),
            column: String::new(),
            raw_value: String::new(),
            code: "no_identity",
            message: if mappings.iter().any(|m| identifies(m.field.name)) {
                "the row has no name, host name, address or id, so it identifies no machine".into()
            } else {
                "no column of this file is mapped to a name, host name, address or id; approve one with `intake mappings set`".into()
            },
        });
    }
    (out, errors, valid)
}

/// Sets a field unless an earlier column already set it (the first mapping wins).
fn set(out: &mut Map<String, Value>, field: &str, value: Value) {
    out.entry(field.to_string()).or_insert(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(source: &str, field: &str, rules: Value) -> AppliedMapping {
        AppliedMapping {
            source: source.into(),
            field: catalogue::field(field).unwrap(),
            rules,
        }
    }

    #[test]
    fn a_servicenow_row_is_cleansed() {
        let raw: Map<String, Value> = serde_json::from_value(json!({
            "name": "WIN-DAL-02", "fqdn": "Win-Dal-02.Corp.Example.com", "ip_address": "10.12.30.159, 10.12.30.160",
            "mac_address": "69-FE-DA-A0-EE-E8", "os": "Windows 2019 Datacenter", "cpu_count": "2", "cpu_core_count": "4",
            "ram": "16 GB", "disk_space": "1.024,5", "virtual": "true", "u_environment": "PROD", "bad_date": "soon"
        }))
        .unwrap();
        let mappings = vec![
            mapping("name", "name", json!({})),
            mapping("fqdn", "fqdn", json!({})),
            mapping(
                "ip_address",
                "ip_address",
                json!({"list": "first_is_primary"}),
            ),
            mapping("mac_address", "mac_address", json!({})),
            mapping("os", "operating_system", json!({})),
            mapping(
                "cpu_core_count",
                "cpu_cores",
                json!({"multiply_by": "cpu_count"}),
            ),
            mapping("ram", "memory_gb", json!({"from_unit": "MB"})),
            mapping("disk_space", "storage_gb", json!({"from_unit": "GB"})),
            mapping("virtual", "is_virtual", json!({})),
            mapping("u_environment", "environment", json!({})),
            mapping("bad_date", "last_discovered_at", json!({})),
        ];
        let (out, errors, valid) = cleanse_record(&raw, &mappings);
        assert!(valid);
        assert_eq!(out["fqdn"], "win-dal-02.corp.example.com");
        assert_eq!(out["hostname"], "win-dal-02");
        assert_eq!(out["ip_address"], "10.12.30.159");
        assert_eq!(out["_additional"]["ip_address"], json!(["10.12.30.160"]));
        assert_eq!(out["mac_address"], "69:fe:da:a0:ee:e8");
        assert_eq!(out["os_version"], "2019");
        assert_eq!(out["cpu_cores"], 8);
        assert_eq!(out["memory_gb"], 16);
        assert_eq!(out["storage_gb"], 1024.5);
        assert_eq!(out["is_virtual"], true);
        assert_eq!(out["environment"], "production");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "not_a_date");
        assert_eq!(errors[0].raw_value, "soon");
        assert!(out.get("last_discovered_at").is_none());
    }

    #[test]
    fn a_row_without_identity_is_invalid() {
        let raw: Map<String, Value> = serde_json::from_value(json!({"ram": "16"})).unwrap();
        let (_, errors, valid) = cleanse_record(&raw, &[mapping("ram", "memory_gb", json!({}))]);
        assert!(!valid);
        assert_eq!(errors.last().unwrap().code, "no_identity");
    }
}
