//! The inventory phase: one asset per machine, however many files, sheets and
//! runs of the engagement mention it. The assets are rebuilt from every valid
//! cleansed record of the engagement's primary tables (supplementary sheets
//! such as RVTools' vDisk never create assets), matched to the assets already
//! stored so ids stay stable, and written only where something changed.
//!
//! Identity, in this order: ServiceNow sys_id, the source's external id,
//! VM UUID, BIOS UUID, serial number (strong keys), then FQDN, host name (a
//! short name matches the FQDN it starts), MAC, IP. The first key that finds
//! an asset decides, except that a candidate whose strong key of the same kind
//! differs is a different machine (two VMs named alike in two vCenters) and is
//! passed over. Keys are kept as 64-bit hashes, so memory stays small.
//!
//! Merging: records are applied oldest import first. A newer value from the
//! same source system replaces the older one (a newer export updates in
//! place). Between systems, live discovery (RVTools, cloud tools) wins for
//! infrastructure fields and the CMDB (ServiceNow), then hand-made sheets, win
//! for business fields; the losing value is kept in
//! custom_attributes._conflicts with its source, never dropped.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use rusqlite::{params, params_from_iter, Connection};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalogue::{self, FieldKind};
use crate::cleanse::values;
use crate::db;
use crate::flow::FlowIds;

/// Assets written per transaction.
const BATCH: usize = 10_000;

/// What the phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventoryOutcome {
    pub records: u64,
    pub assets: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub merged_records: u64,
    /// Assets where sources disagreed on a value (kept in custom_attributes._conflicts).
    pub conflicts: u64,
    pub by_type: BTreeMap<String, u64>,
}

/// Fields where the CMDB and hand-made sheets outrank discovery tools.
const BUSINESS_FIELDS: &[&str] = &[
    "business_owner",
    "technical_owner",
    "department",
    "cost_center",
    "support_group",
    "application_name",
    "technology_stack",
    "business_unit",
    "data_classification",
    "environment",
    "criticality",
    "six_r_strategy",
    "migration_wave",
    "migration_priority",
    "migration_complexity",
    "description",
    "location",
    "status",
    "asset_tag",
    "cmdb_record_id",
    "name",
];

fn rank(source: &str, field: &str) -> u8 {
    let business = BUSINESS_FIELDS.contains(&field);
    match (source, business) {
        ("servicenow", true) => 5,
        ("generic", true) => 4,
        (_, true) => 2,
        ("rvtools", false) => 5,
        ("google_migration_center" | "azure_migrate" | "aws_migration_hub", false) => 4,
        ("servicenow", false) => 3,
        _ => 2,
    }
}

/// The kinds of identity key, strongest first; the first `STRONG` identify a
/// machine on their own.
const KEY_KINDS: &[&str] = catalogue::IDENTITY_KEYS;
const STRONG: usize = 5;

struct SourceTable {
    data_import_id: String,
    label: String,
    source_system: String,
    unmapped: Vec<String>,
}

/// An asset being built: its stored id, strong keys, and merged values.
#[derive(Default)]
struct Slot {
    id: Option<String>,
    strong: [u64; STRONG],
}

#[derive(Default)]
struct Build {
    /// field → (value, source system, "file [sheet] row N" it came from)
    fields: BTreeMap<&'static str, (Value, String, String)>,
    custom: Map<String, Value>,
    conflicts: Map<String, Value>,
}

fn hash_key(kind: usize, value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    kind.hash(&mut h);
    value.hash(&mut h);
    h.finish() | 1 // never 0, which means "no key"
}

/// The identity keys of a cleansed record, by kind.
fn keys(c: &Map<String, Value>) -> Vec<(usize, u64)> {
    let text = |f: &str| c.get(f).and_then(|v| v.as_str()).map(str::to_string);
    let mut out = Vec::new();
    for (kind, field) in KEY_KINDS.iter().enumerate() {
        let value = match *field {
            "serial_number" => text(field)
                .map(|s| s.trim().to_uppercase())
                .filter(|s| s.len() >= 4 && !s.eq_ignore_ascii_case("none")),
            // A short name matches the FQDN it starts and a name that is a host name.
            "hostname" => text("hostname")
                .or_else(|| text("fqdn").map(|f| values::short_name(&f)))
                .or_else(|| {
                    text("name")
                        .and_then(|n| values::normalise_host(&n))
                        .map(|n| values::short_name(&n))
                }),
            "cmdb_record_id" | "external_id" => text(field).map(|s| s.trim().to_lowercase()),
            _ => text(field).map(|s| s.to_lowercase()),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push((kind, hash_key(kind, &v)));
        }
    }
    out
}

/// Rebuilds the engagement's assets from its valid records and writes the changes.
pub fn run(conn: &Connection, ids: &FlowIds) -> rusqlite::Result<InventoryOutcome> {
    let (client, engagement): (String, String) = conn.query_row(
        "SELECT client_account_id, engagement_id FROM discovery_flows WHERE id = ?1",
        [&ids.discovery_flow_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let tables = primary_tables(conn, &engagement)?;
    let mut slots: Vec<Slot> = Vec::new();
    let mut index: HashMap<u64, u32> = HashMap::new();
    seed_existing(conn, &engagement, &mut slots, &mut index)?;

    // Pass 1: which asset each record belongs to.
    let mut assignment: Vec<u32> = Vec::new();
    let mut outcome = InventoryOutcome::default();
    for table in &tables {
        for_each_record(conn, &table.data_import_id, false, &mut |_, cleansed, _| {
            let record_keys = keys(&cleansed);
            let slot = resolve(&record_keys, &slots, &index).unwrap_or_else(|| {
                slots.push(Slot::default());
                (slots.len() - 1) as u32
            });
            let strong = &mut slots[slot as usize].strong;
            for &(kind, key) in &record_keys {
                if kind < STRONG && strong[kind] == 0 {
                    strong[kind] = key;
                }
                index.entry(key).or_insert(slot);
            }
            assignment.push(slot);
        })?;
    }
    outcome.records = assignment.len() as u64;
    let mut remaining: Vec<u32> = vec![0; slots.len()];
    for &s in &assignment {
        remaining[s as usize] += 1;
    }
    outcome.merged_records = remaining
        .iter()
        .filter(|&&n| n > 1)
        .map(|&n| u64::from(n - 1))
        .sum();

    // Pass 2: merge each asset's records and write it once its last record is seen.
    let mut open: HashMap<u32, Build> = HashMap::new();
    let mut position = 0usize;
    let mut writer = Writer::new(conn, &client, &engagement, ids)?;
    for table in &tables {
        let mut failed: Option<rusqlite::Error> = None;
        for_each_record(
            conn,
            &table.data_import_id,
            true,
            &mut |record_index, cleansed, raw| {
                if failed.is_some() {
                    return;
                }
                let slot = assignment[position];
                position += 1;
                let build = open.entry(slot).or_default();
                merge(build, table, record_index, cleansed, raw);
                remaining[slot as usize] -= 1;
                if remaining[slot as usize] == 0 {
                    let build = open.remove(&slot).expect("present");
                    if let Err(e) =
                        writer.write(slots[slot as usize].id.as_deref(), build, &mut outcome)
                    {
                        failed = Some(e);
                    }
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    writer.finish()?;
    outcome.assets = outcome.created + outcome.updated + outcome.unchanged;
    Ok(outcome)
}

/// The first slot a key finds, passing over slots whose strong key of the same
/// kind differs from the record's.
fn resolve(record_keys: &[(usize, u64)], slots: &[Slot], index: &HashMap<u64, u32>) -> Option<u32> {
    for &(_, key) in record_keys {
        let Some(&slot) = index.get(&key) else {
            continue;
        };
        let existing = &slots[slot as usize].strong;
        let contradicts = record_keys
            .iter()
            .any(|&(kind, k)| kind < STRONG && existing[kind] != 0 && existing[kind] != k);
        if !contradicts {
            return Some(slot);
        }
    }
    None
}

fn seed_existing(
    conn: &Connection,
    engagement: &str,
    slots: &mut Vec<Slot>,
    index: &mut HashMap<u64, u32>,
) -> rusqlite::Result<()> {
    let columns = KEY_KINDS.join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT id, name, {columns} FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application' ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([engagement])?;
    while let Some(row) = rows.next()? {
        let mut c = Map::new();
        c.insert("name".into(), json!(row.get::<_, String>(1)?));
        for (i, kind) in KEY_KINDS.iter().enumerate() {
            if let Some(v) = row.get::<_, Option<String>>(i + 2)? {
                c.insert((*kind).into(), json!(v));
            }
        }
        let slot = slots.len() as u32;
        let mut s = Slot {
            id: Some(row.get(0)?),
            ..Default::default()
        };
        for (kind, key) in keys(&c) {
            if kind < STRONG {
                s.strong[kind] = key;
            }
            index.entry(key).or_insert(slot);
        }
        slots.push(s);
    }
    Ok(())
}

fn primary_tables(conn: &Connection, engagement: &str) -> rusqlite::Result<Vec<SourceTable>> {
    // (id, filename, sheet, source system)
    type Row = (String, String, Option<String>, Option<String>);
    let rows: Vec<Row> = conn
        .prepare(
            "SELECT id, filename, sheet_name, source_system
             FROM data_imports
             WHERE engagement_id = ?1 AND status = 'completed'
               AND coalesce(json_extract(read_metadata, '$.layout.role'), 'primary') = 'primary'
             ORDER BY created_at, id",
        )?
        .query_map([engagement], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut tables = Vec::new();
    for (id, file, sheet, source) in rows {
        let (columns, _) = crate::stage::table_shape(conn, &id)?;
        let mapped: Vec<String> = crate::cleanse::approved_mappings(conn, &id)?
            .into_iter()
            .map(|m| m.source)
            .collect();
        tables.push(SourceTable {
            label: crate::read::table_label(&file, sheet.as_deref()),
            source_system: source.unwrap_or_else(|| "generic".into()),
            unmapped: columns
                .into_iter()
                .filter(|c| !mapped.contains(c))
                .collect(),
            data_import_id: id,
        });
    }
    Ok(tables)
}

/// Streams the valid records of an import in rowid order: (record_index, cleansed, raw).
fn for_each_record(
    conn: &Connection,
    data_import_id: &str,
    with_raw: bool,
    f: &mut dyn FnMut(i64, Map<String, Value>, Map<String, Value>),
) -> rusqlite::Result<()> {
    // Batches walk the (data_import_id, record_index) index: each one is a range scan.
    let mut last = i64::MIN;
    loop {
        // Pass 1 needs only the identity fields: SQLite extracts them, so only a
        // small object is parsed here.
        let batch: Vec<(i64, Option<String>, Option<String>)> = conn
            .prepare_cached(
                "SELECT record_index,
                        CASE WHEN is_valid = 0 THEN NULL
                             WHEN ?4 THEN cleansed_data
                             ELSE json_object('cmdb_record_id', cleansed_data ->> 'cmdb_record_id',
                                  'external_id', cleansed_data ->> 'external_id', 'vm_uuid', cleansed_data ->> 'vm_uuid',
                                  'bios_uuid', cleansed_data ->> 'bios_uuid', 'serial_number', cleansed_data ->> 'serial_number',
                                  'fqdn', cleansed_data ->> 'fqdn', 'hostname', cleansed_data ->> 'hostname',
                                  'name', cleansed_data ->> 'name', 'mac_address', cleansed_data ->> 'mac_address',
                                  'ip_address', cleansed_data ->> 'ip_address') END,
                        CASE WHEN ?4 AND is_valid = 1 THEN raw_data END
                 FROM raw_import_records
                 WHERE data_import_id = ?1 AND record_index > ?2 ORDER BY record_index LIMIT ?3",
            )?
            .query_map(params![data_import_id, last, 10_000, with_raw], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&(end, ..)) = batch.last() else {
            return Ok(());
        };
        last = end;
        for (index, cleansed, raw) in batch {
            let Some(cleansed) = cleansed else { continue }; // invalid rows make no asset
            let cleansed = serde_json::from_str(&cleansed).unwrap_or_default();
            let raw = raw
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_default();
            f(index, cleansed, raw);
        }
    }
}

fn merge(
    build: &mut Build,
    table: &SourceTable,
    record_index: i64,
    mut cleansed: Map<String, Value>,
    raw: Map<String, Value>,
) {
    let source = format!("{} row {record_index}", table.label);
    if let Some(Value::Object(additional)) = cleansed.remove("_additional") {
        for (field, list) in additional {
            build
                .custom
                .entry(format!("additional_{field}"))
                .or_insert(list);
        }
    }
    for (field, value) in cleansed {
        let Some(field) = catalogue::field(&field) else {
            continue;
        };
        let name = field.name;
        match build.fields.get(name) {
            None => {
                build
                    .fields
                    .insert(name, (value, table.source_system.clone(), source.clone()));
            }
            Some((current, _, _)) if *current == value => {}
            Some((current, current_system, current_source)) => {
                let replace = *current_system == table.source_system
                    || rank(&table.source_system, name) > rank(current_system, name);
                if *current_system != table.source_system {
                    // The value that does not win is kept with where it came from.
                    let (value_out, source_out) = if replace {
                        (current.clone(), current_source.clone())
                    } else {
                        (value.clone(), source.clone())
                    };
                    let entry = json!({ "value": value_out, "source": source_out });
                    let list = build
                        .conflicts
                        .entry(name.to_string())
                        .or_insert_with(|| json!([]));
                    if let Value::Array(items) = list {
                        if items.len() < 10 && !items.contains(&entry) {
                            items.push(entry);
                        }
                    }
                }
                if replace {
                    build
                        .fields
                        .insert(name, (value, table.source_system.clone(), source.clone()));
                }
            }
        }
    }
    // Columns mapped to no field are kept under their original header.
    for header in &table.unmapped {
        if let Some(v) = raw
            .get(header)
            .filter(|v| !v.as_str().is_some_and(|s| s.trim().is_empty()) && !v.is_null())
        {
            build
                .custom
                .entry(header.clone())
                .or_insert_with(|| v.clone());
        }
    }
}

/// Writes assets: inserts new ones, updates changed ones, counts the rest.
struct Writer<'c> {
    conn: &'c Connection,
    client: String,
    engagement: String,
    ids: FlowIds,
    pending: usize,
    in_tx: bool,
    columns: Vec<&'static str>,
    select_sql: String,
    insert_sql: String,
    update_sql: String,
}

fn asset_columns() -> Vec<&'static str> {
    let mut columns = vec!["name", "asset_type"];
    columns.extend(
        catalogue::FIELDS
            .iter()
            .map(|f| f.name)
            .filter(|n| !["name", "asset_type"].contains(n)),
    );
    columns.push("custom_attributes");
    columns
}

impl<'c> Writer<'c> {
    fn new(
        conn: &'c Connection,
        client: &str,
        engagement: &str,
        ids: &FlowIds,
    ) -> rusqlite::Result<Writer<'c>> {
        let columns = asset_columns();
        let n = columns.len();
        let placeholders: Vec<String> = (1..=n + 7).map(|i| format!("?{i}")).collect();
        let sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        Ok(Writer {
            conn,
            client: client.to_string(),
            engagement: engagement.to_string(),
            ids: ids.clone(),
            pending: 0,
            in_tx: false,
            select_sql: format!("SELECT {} FROM assets WHERE id = ?1", columns.join(", ")),
            insert_sql: format!(
                "INSERT INTO assets ({}, id, client_account_id, engagement_id, master_flow_id, discovery_flow_id, created_at, updated_at)
                 VALUES ({})",
                columns.join(", "),
                placeholders.join(", ")
            ),
            update_sql: format!(
                "UPDATE assets SET {}, master_flow_id = ?{}, discovery_flow_id = ?{}, updated_at = ?{} WHERE id = ?1",
                sets.join(", "),
                n + 2,
                n + 3,
                n + 4
            ),
            columns,
        })
    }

    fn row(build: Build) -> Vec<rusqlite::types::Value> {
        use rusqlite::types::Value as Sql;
        let text = |f: &str| {
            build
                .fields
                .get(f)
                .and_then(|(v, _, _)| v.as_str())
                .map(str::to_string)
        };
        let name = text("name")
            .or_else(|| text("hostname"))
            .or_else(|| text("fqdn"))
            .or_else(|| text("ip_address"))
            .or_else(|| text("external_id"))
            .or_else(|| text("cmdb_record_id"))
            .or_else(|| text("vm_uuid"))
            .or_else(|| text("serial_number"))
            .or_else(|| text("mac_address"))
            .unwrap_or_else(|| "unnamed".into());
        let mut custom = build.custom;
        if !build.conflicts.is_empty() {
            custom.insert("_conflicts".into(), Value::Object(build.conflicts));
        }
        let mut out = Vec::new();
        for column in asset_columns() {
            let value = match column {
                "name" => Sql::Text(name.clone()),
                "asset_type" => Sql::Text(text("asset_type").unwrap_or_else(|| "server".into())),
                "custom_attributes" => Sql::Text(Value::Object(custom.clone()).to_string()),
                field => match (
                    build.fields.get(field),
                    catalogue::field(field).map(|f| f.kind),
                ) {
                    (None, _) => Sql::Null,
                    (Some((Value::Bool(b), _, _)), _) => Sql::Integer(i64::from(*b)),
                    (Some((Value::Number(n), _, _)), Some(FieldKind::Integer)) => {
                        Sql::Integer(n.as_i64().unwrap_or_default())
                    }
                    (Some((Value::Number(n), _, _)), _) => {
                        Sql::Real(n.as_f64().unwrap_or_default())
                    }
                    (Some((Value::String(s), _, _)), _) => Sql::Text(s.clone()),
                    (Some((other, _, _)), _) => Sql::Text(other.to_string()),
                },
            };
            out.push(value);
        }
        out
    }

    fn write(
        &mut self,
        existing: Option<&str>,
        build: Build,
        outcome: &mut InventoryOutcome,
    ) -> rusqlite::Result<()> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        if !build.conflicts.is_empty() {
            outcome.conflicts += 1;
        }
        let row = Writer::row(build);
        let asset_type = match &row[1] {
            rusqlite::types::Value::Text(t) => t.clone(),
            _ => "server".into(),
        };
        *outcome.by_type.entry(asset_type).or_default() += 1;
        let now = db::now();
        match existing {
            Some(id) => {
                let width = self.columns.len();
                let stored: Vec<rusqlite::types::Value> = self
                    .conn
                    .prepare_cached(&self.select_sql)?
                    .query_row([id], |r| (0..width).map(|i| r.get(i)).collect())?;
                if stored == row {
                    outcome.unchanged += 1;
                } else {
                    let mut values = vec![rusqlite::types::Value::Text(id.to_string())];
                    values.extend(row);
                    values.push(rusqlite::types::Value::Text(
                        self.ids.master_flow_id.clone(),
                    ));
                    values.push(rusqlite::types::Value::Text(
                        self.ids.discovery_flow_id.clone(),
                    ));
                    values.push(rusqlite::types::Value::Text(now));
                    self.conn
                        .prepare_cached(&self.update_sql)?
                        .execute(params_from_iter(values))?;
                    outcome.updated += 1;
                }
            }
            None => {
                let mut values = row;
                for v in [
                    db::new_id(),
                    self.client.clone(),
                    self.engagement.clone(),
                    self.ids.master_flow_id.clone(),
                    self.ids.discovery_flow_id.clone(),
                    now.clone(),
                    now,
                ] {
                    values.push(rusqlite::types::Value::Text(v));
                }
                self.conn
                    .prepare_cached(&self.insert_sql)?
                    .execute(params_from_iter(values))?;
                outcome.created += 1;
            }
        }
        self.pending += 1;
        if self.pending >= BATCH {
            self.conn.execute_batch("COMMIT")?;
            self.in_tx = false;
            self.pending = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> rusqlite::Result<()> {
        if self.in_tx {
            self.conn.execute_batch("COMMIT")?;
            self.in_tx = false;
        }
        Ok(())
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
