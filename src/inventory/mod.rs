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
//!
//! An engagement's first build of a single file is made while the file is
//! staged (`on_stage`); this phase then merges only the machines that
//! several of its records describe.

use std::borrow::Cow;
use std::collections::BTreeMap;

use std::hash::Hasher;
use std::time::Duration;

use crossbeam_channel::TrySendError;
use foldhash::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{params, params_from_iter, Connection};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalogue::{self, FieldKind};
use crate::cleanse::values;
use crate::db;
use crate::flow::FlowIds;
use crate::json_entries::{Entries, Key};
use crate::static_insert::StaticInsert;

mod on_stage;
pub use on_stage::{AssetsOnStage, MachineShaper, StagedMachine};

/// Assets written per transaction: each commit syncs the journal and the
/// file, and at 10,000 per commit the syncs took a sixth of the phase.
const BATCH: usize = 50_000;
/// Records read per query; with the queues' depth this bounds what is held in memory.
const READ_BATCH: i64 = 2_000;
const QUEUE_DEPTH: usize = 2;

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
    /// Its records, valid or not: used to size memory up front.
    records: usize,
    /// Imported by the flow being built (its machines may be new).
    in_this_flow: bool,
}

/// A machine found so far: its strong keys (its stored id, if it has one, is
/// kept apart, since most machines of a large first import have none). A
/// key is kept as the low half of its hash, which is never 0: it only tells
/// two keys of one kind apart (a miss is one in four billion), and a
/// million machines take 20 MB rather than 40.
#[derive(Default)]
struct Slot {
    strong: [u32; STRONG],
}

/// The part of a key's hash a slot keeps.
fn fingerprint(key: u64) -> u32 {
    key as u32 // hash_key sets the lowest bit, so this is never 0
}

#[derive(Default)]
struct Build {
    /// (index into catalogue::FIELDS, value, where it came from): a record
    /// fills some forty fields, each looked up once, so a list beats a map.
    fields: Vec<(usize, Value, Origin)>,
    custom: Map<String, Value>,
    conflicts: Map<String, Value>,
}

impl Build {
    /// The extra values of a record's list fields (its IPs and MACs after
    /// the first), kept among the custom attributes.
    fn keep_additional(&mut self, additional: Map<String, Value>) {
        for (field, list) in additional {
            self.custom
                .entry(format!("additional_{field}"))
                .or_insert(list);
        }
    }
}

/// A value's record: the table (an index into the run's tables) and its row.
#[derive(Clone, Copy)]
struct Origin {
    table: usize,
    record_index: i64,
}

impl Origin {
    fn describe(self, tables: &[SourceTable]) -> String {
        format!("{} row {}", tables[self.table].label, self.record_index)
    }
}

/// The identity fields of a cleansed record, read without parsing the rest.
#[derive(Default, serde::Deserialize)]
struct IdentityFields<'a> {
    #[serde(borrow)]
    cmdb_record_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    external_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    vm_uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    bios_uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    serial_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    fqdn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    mac_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ip_address: Option<Cow<'a, str>>,
}

impl IdentityFields<'_> {
    /// Cleansing writes identity values as strings; a record that does not
    /// parse has no keys and so becomes a machine of its own.
    fn parse(cleansed: &str) -> IdentityFields<'_> {
        serde_json::from_str(cleansed).unwrap_or_default()
    }

    fn get(&self, field: &str) -> Option<&str> {
        match field {
            "cmdb_record_id" => self.cmdb_record_id.as_deref(),
            "external_id" => self.external_id.as_deref(),
            "vm_uuid" => self.vm_uuid.as_deref(),
            "bios_uuid" => self.bios_uuid.as_deref(),
            "serial_number" => self.serial_number.as_deref(),
            "fqdn" => self.fqdn.as_deref(),
            "hostname" => self.hostname.as_deref(),
            "name" => self.name.as_deref(),
            "mac_address" => self.mac_address.as_deref(),
            "ip_address" => self.ip_address.as_deref(),
            _ => None,
        }
    }
}

/// Identity keys to the machine (slot) they found first. A key is stored as
/// two 32-bit halves so an entry takes 12 bytes, not 16: at a million
/// records (six million keys) that is 32 MB less at the phase's peak.
type KeyIndex = HashMap<[u32; 2], u32>;

fn halves(key: u64) -> [u32; 2] {
    [(key >> 32) as u32, key as u32]
}

/// A key's 64-bit hash: fixed-seeded (stable within and across runs) and
/// taken over the value lower-cased, without allocating for ASCII values.
fn hash_key(kind: usize, value: &str) -> u64 {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::with_seed(0x1d_e7_17_7e);
    let mut h = state.build_hasher();
    h.write_usize(kind);
    let mut buffer = [0u8; 128];
    if value.is_ascii() && value.len() <= buffer.len() {
        let lower = &mut buffer[..value.len()];
        lower.copy_from_slice(value.as_bytes());
        lower.make_ascii_lowercase();
        h.write(lower);
    } else {
        h.write(value.to_lowercase().as_bytes());
    }
    h.finish() | 1 // never 0, which means "no key"
}

/// The identity keys of a cleansed record (its fields by name), by kind.
fn keys<'r>(field: impl Fn(&str) -> Option<&'r str>) -> Vec<(usize, u64)> {
    let mut out = Vec::with_capacity(KEY_KINDS.len());
    for (kind, name) in KEY_KINDS.iter().enumerate() {
        let key = match *name {
            "serial_number" => field(name)
                .map(|s| s.trim().to_uppercase())
                .filter(|s| s.len() >= 4 && !s.eq_ignore_ascii_case("none"))
                .map(|s| hash_key(kind, &s)),
            // A short name matches the FQDN it starts and a name that is a host name.
            "hostname" => field("hostname")
                .map(str::to_string)
                .or_else(|| field("fqdn").map(values::short_name))
                .or_else(|| {
                    field("name")
                        .and_then(values::normalise_host)
                        .map(|n| values::short_name(&n))
                })
                .filter(|v| !v.is_empty())
                .map(|v| hash_key(kind, &v)),
            "cmdb_record_id" | "external_id" => field(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| hash_key(kind, v)),
            _ => field(name)
                .filter(|v| !v.is_empty())
                .map(|v| hash_key(kind, v)),
        };
        if let Some(key) = key {
            out.push((kind, key));
        }
    }
    out
}

/// Rebuilds the engagement's assets from its valid records and writes the
/// changes. `staged` holds the assets built while this flow's file was
/// staged; they are accepted when that table is still the engagement's only
/// one and was not cleansed again since.
pub fn run(
    conn: &Connection,
    ids: &FlowIds,
    staged: Option<AssetsOnStage>,
) -> rusqlite::Result<InventoryOutcome> {
    let (client, engagement): (String, String) = conn.query_row(
        "SELECT client_account_id, engagement_id FROM discovery_flows WHERE id = ?1",
        [&ids.discovery_flow_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let started = std::time::Instant::now();
    let tables = primary_tables(conn, &engagement, &ids.master_flow_id)?;
    if let Some(staged) = staged {
        let (matched, asset_rowids, outcome, data_import_id, fingerprint) = staged.into_matched();
        let recorded: Option<String> = conn.query_row(
            "SELECT json_extract(read_metadata, '$.cleansing.fingerprint') FROM data_imports WHERE id = ?1",
            [&data_import_id],
            |r| r.get(0),
        )?;
        let current = tables.len() == 1
            && tables[0].data_import_id == data_import_id
            && recorded.as_deref() == Some(fingerprint.as_str());
        if current {
            let writer = Writer::new(conn, &client, &engagement, ids)?;
            return finish_staged(conn, &tables, writer, matched, &asset_rowids, outcome);
        }
        // Otherwise the staged assets are stored assets to the build below.
    }
    // Sized once: growing these by doubling is what made the memory peak.
    // The machines are about the stored ones or this flow's records,
    // whichever is more (a re-import describes the stored machines again);
    // a machine carries about four to six identity keys.
    let records: usize = tables.iter().map(|t| t.records).sum();
    let stored: usize = conn.query_row(
        "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'",
        [&engagement],
        |r| r.get::<_, i64>(0),
    )? as usize;
    let new_records: usize = tables
        .iter()
        .filter(|t| t.in_this_flow)
        .map(|t| t.records)
        .sum();
    let machines = stored.max(new_records);
    let mut slots: Vec<Slot> = Vec::with_capacity(machines);
    let mut index: KeyIndex = HashMap::with_capacity_and_hasher(machines * 4, Default::default());
    let stored_ids = seed_existing(conn, &engagement, &mut slots, &mut index)?;

    // Pass 1: which asset each record belongs to. This thread reads the
    // records; a second one parses their identity fields and matches them.
    let mut outcome = InventoryOutcome::default();
    let table_count = tables.len();
    let (slots, index, matched) = std::thread::scope(|scope| {
        let (to_match, match_queue) =
            crossbeam_channel::bounded::<(usize, RecordBatch)>(QUEUE_DEPTH);
        let matcher = scope.spawn(move || {
            let mut matched = Matched {
                assignment: Vec::with_capacity(records),
                rowids: Vec::with_capacity(records),
                starts: Vec::new(),
            };
            for (table, batch) in match_queue.iter() {
                while matched.starts.len() <= table {
                    matched.starts.push(matched.assignment.len());
                }
                for record in &batch {
                    let Some(cleansed) = record.cleansed.as_deref() else {
                        continue;
                    };
                    let identity = IdentityFields::parse(cleansed);
                    let record_keys = keys(|f| identity.get(f));
                    let (slot, _) = assign(&record_keys, &mut slots, &mut index);
                    matched.assignment.push(slot);
                    matched.rowids.push(record.rowid);
                }
            }
            // Tables with no valid record after the last one read start at the end.
            while matched.starts.len() < table_count {
                matched.starts.push(matched.assignment.len());
            }
            (slots, index, matched)
        });
        // `to_match` belongs to this closure: an early return drops it and the matcher stops.
        for (number, table) in tables.iter().enumerate() {
            let mut last = i64::MIN;
            while let Some(batch) = read_records(conn, &table.data_import_id, false, &mut last)? {
                if to_match.send((number, batch)).is_err() {
                    break; // the matcher panicked; joining it below says so
                }
            }
        }
        drop(to_match);
        Ok::<_, rusqlite::Error>(
            matcher
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    })?;
    let Matched {
        assignment,
        rowids,
        starts,
    } = matched;
    outcome.records = assignment.len() as u64;
    tracing::debug!(
        "inventory: {} records matched to {} machines ({} keys) in {:.2}s",
        assignment.len(),
        slots.len(),
        index.len(),
        started.elapsed().as_secs_f64()
    );
    // Pass 2 needs only the assignment: the identity index (the largest
    // allocation of the phase) is returned before it starts.
    let machines = slots.len();
    drop(index);
    drop(slots);
    let Shared {
        total,
        several,
        merged_records,
    } = Shared::of(&assignment, machines);
    outcome.merged_records = merged_records;
    let single = |position: usize| total[assignment[position] as usize] == 1;
    let table_of = |position: usize| starts.partition_point(|&s| s <= position) - 1;

    // Pass 2: merge each asset's records and write it once its last record is
    // seen. This thread reads and writes SQLite; a second one parses and
    // merges, so the two kinds of work overlap. Machines of one record are
    // read table by table; the others by rowid in machine order.
    let mut writer = Writer::new(conn, &client, &engagement, ids)?;
    let (to_merge, merge_queue) = crossbeam_channel::bounded::<Vec<Merging>>(QUEUE_DEPTH);
    let (to_write, write_queue) = crossbeam_channel::bounded::<Vec<(u32, AssetRow)>>(QUEUE_DEPTH);
    let shape = writer.shape.clone();
    let tables_ref = &tables;
    let mut remaining = total.clone();
    std::thread::scope(|scope| -> rusqlite::Result<()> {
        scope.spawn(move || {
            let mut open: HashMap<u32, Build> = HashMap::default();
            for batch in merge_queue.iter() {
                let mut done = Vec::with_capacity(batch.len());
                for record in batch {
                    let slot = record.slot;
                    remaining[slot as usize] -= 1;
                    let raw = record.raw.as_deref();
                    if remaining[slot as usize] == 0 {
                        // The asset's last record: most assets have only this one.
                        let mut build = open.remove(&slot).unwrap_or_default();
                        merge(&mut build, tables_ref, record.origin, &record.cleansed, raw);
                        done.push((slot, shape.row(build)));
                    } else {
                        let build = open.entry(slot).or_default();
                        merge(build, tables_ref, record.origin, &record.cleansed, raw);
                    }
                }
                if to_write.send(done).is_err() {
                    break; // the writer failed
                }
            }
        });
        // Owned by this closure, so an early return drops both ends and the
        // merging thread stops instead of waiting for more work forever.
        let (to_merge, write_queue) = (to_merge, write_queue);
        let mut write = |batch: Vec<(u32, AssetRow)>| -> rusqlite::Result<()> {
            for (slot, row) in batch {
                let stored = stored_ids.get(slot);
                writer.write(stored, row, &mut outcome)?;
            }
            Ok(())
        };
        // Both queues are bounded: while the merging thread is busy, write
        // what it has merged rather than wait on it.
        let mut hand_over = |batch: Vec<Merging>| -> rusqlite::Result<()> {
            let mut item = batch;
            loop {
                match to_merge.try_send(item) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                    Err(TrySendError::Full(back)) => item = back,
                }
                if let Ok(merged) = write_queue.recv_timeout(Duration::from_millis(5)) {
                    write(merged)?;
                }
            }
            while let Ok(merged) = write_queue.try_recv() {
                write(merged)?;
            }
            Ok(())
        };
        for (number, table) in tables_ref.iter().enumerate() {
            let end = starts.get(number + 1).copied().unwrap_or(assignment.len());
            if !(starts[number]..end).any(single) {
                continue; // all of its records are merged below
            }
            let mut position = starts[number];
            let mut last = i64::MIN;
            // raw_data is read only for the columns mapped to no field.
            let with_raw = !table.unmapped.is_empty();
            while let Some(batch) = read_records(conn, &table.data_import_id, with_raw, &mut last)?
            {
                let mut singles = Vec::with_capacity(batch.len());
                for record in batch {
                    let Some(cleansed) = record.cleansed else {
                        continue; // invalid rows make no asset
                    };
                    if single(position) {
                        singles.push(Merging {
                            slot: assignment[position],
                            origin: Origin {
                                table: number,
                                record_index: record.record_index,
                            },
                            cleansed,
                            raw: record.raw,
                        });
                    }
                    position += 1;
                }
                hand_over(singles)?;
            }
        }
        let mut by_rowid = conn.prepare(BY_ROWID)?;
        for chunk in several.chunks(READ_BATCH as usize) {
            let mut batch = Vec::with_capacity(chunk.len());
            for &position in chunk {
                let position = position as usize;
                let table = table_of(position);
                let with_raw = !tables_ref[table].unmapped.is_empty();
                let (record_index, cleansed, raw) =
                    record_by_rowid(&mut by_rowid, rowids[position], with_raw)?;
                batch.push(Merging {
                    slot: assignment[position],
                    origin: Origin {
                        table,
                        record_index,
                    },
                    cleansed: cleansed.unwrap_or_default(),
                    raw,
                });
            }
            hand_over(batch)?;
        }
        drop(to_merge);
        for merged in write_queue.iter() {
            write(merged)?;
        }
        Ok(())
    })?;
    writer.finish()?;
    outcome.assets = outcome.created + outcome.updated + outcome.unchanged;
    Ok(outcome)
}

/// Machines that several records describe, from the machine of each record.
struct Shared {
    /// Records per machine.
    total: Vec<u32>,
    /// The positions of those machines' records, in machine order: merged
    /// one machine at a time, so memory does not hold every machine of a
    /// re-import open until its last table is read.
    several: Vec<u32>,
    /// Records merged into a machine another record made.
    merged_records: u64,
}

impl Shared {
    fn of(assignment: &[u32], machines: usize) -> Shared {
        let mut total: Vec<u32> = vec![0; machines];
        for &s in assignment {
            total[s as usize] += 1;
        }
        let mut several: Vec<u32> = (0..assignment.len() as u32)
            .filter(|&p| total[assignment[p as usize] as usize] > 1)
            .collect();
        several.sort_unstable_by_key(|&p| (assignment[p as usize], p));
        let merged_records = total
            .iter()
            .filter(|&&n| n > 1)
            .map(|&n| u64::from(n - 1))
            .sum();
        Shared {
            total,
            several,
            merged_records,
        }
    }
}

/// A record read back by rowid: its index, cleansed_data and (when asked) raw_data.
const BY_ROWID: &str = "SELECT record_index, cleansed_data, CASE WHEN ?2 THEN raw_data END
                        FROM raw_import_records WHERE rowid = ?1";

fn record_by_rowid(
    stmt: &mut rusqlite::Statement,
    rowid: i64,
    with_raw: bool,
) -> rusqlite::Result<(i64, Option<String>, Option<String>)> {
    stmt.query_row(params![rowid, with_raw], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// Completes the assets built while the only table was staged: machines
/// that several of its records describe are merged from all of them now.
fn finish_staged(
    conn: &Connection,
    tables: &[SourceTable],
    mut writer: Writer,
    matched: Matched,
    asset_rowids: &on_stage::AssetRowids,
    mut outcome: InventoryOutcome,
) -> rusqlite::Result<InventoryOutcome> {
    let Matched {
        assignment, rowids, ..
    } = matched;
    outcome.records = assignment.len() as u64;
    let Shared {
        total,
        several,
        merged_records,
    } = Shared::of(&assignment, asset_rowids.len());
    outcome.merged_records = merged_records;
    let with_raw = !tables[0].unmapped.is_empty();
    let mut by_rowid = conn.prepare(BY_ROWID)?;
    let mut stored = conn.prepare("SELECT id, asset_type FROM assets WHERE rowid = ?1")?;
    let shape = writer.shape.clone();
    for machine in several.chunk_by(|&a, &b| assignment[a as usize] == assignment[b as usize]) {
        let mut build = Build::default();
        for &position in machine {
            let (record_index, cleansed, raw) =
                record_by_rowid(&mut by_rowid, rowids[position as usize], with_raw)?;
            let origin = Origin {
                table: 0,
                record_index,
            };
            merge(
                &mut build,
                tables,
                origin,
                cleansed.as_deref().unwrap_or_default(),
                raw.as_deref(),
            );
        }
        let slot = assignment[machine[0] as usize] as usize;
        let (id, staged_type): (String, String) =
            stored.query_row([asset_rowids.get(slot)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        // The asset was counted by the type its first record gave it.
        if let Some(n) = outcome.by_type.get_mut(&staged_type) {
            *n -= 1;
        }
        writer.write(Some(&id), shape.row(build), &mut outcome)?;
    }
    writer.finish()?;
    outcome.by_type.retain(|_, n| *n > 0);
    // Every asset was created by this build, merged or not.
    outcome.updated = 0;
    outcome.unchanged = 0;
    outcome.assets = outcome.created;
    tracing::debug!(
        "inventory: {} assets were built as the file was staged; {} of them merged from {} records",
        outcome.created,
        total.iter().filter(|&&n| n > 1).count(),
        several.len()
    );
    Ok(outcome)
}

/// The machine (slot) a record belongs to: the one its keys find, or a new
/// one (then `true`). Its keys lead to that machine from now on.
fn assign(
    record_keys: &[(usize, u64)],
    slots: &mut Vec<Slot>,
    index: &mut KeyIndex,
) -> (u32, bool) {
    let (slot, new) = match resolve(record_keys, slots, index) {
        Some(slot) => (slot, false),
        None => {
            slots.push(Slot::default());
            ((slots.len() - 1) as u32, true)
        }
    };
    let strong = &mut slots[slot as usize].strong;
    for &(kind, key) in record_keys {
        if kind < STRONG && strong[kind] == 0 {
            strong[kind] = fingerprint(key);
        }
        index.entry(halves(key)).or_insert(slot);
    }
    (slot, new)
}

/// The first slot a key finds, passing over slots whose strong key of the same
/// kind differs from the record's.
fn resolve(record_keys: &[(usize, u64)], slots: &[Slot], index: &KeyIndex) -> Option<u32> {
    for &(_, key) in record_keys {
        let Some(&slot) = index.get(&halves(key)) else {
            continue;
        };
        let existing = &slots[slot as usize].strong;
        let contradicts = record_keys.iter().any(|&(kind, k)| {
            kind < STRONG && existing[kind] != 0 && existing[kind] != fingerprint(k)
        });
        if !contradicts {
            return Some(slot);
        }
    }
    None
}

/// The engagement's stored machines as slots and keys; returns their ids by slot.
fn seed_existing(
    conn: &Connection,
    engagement: &str,
    slots: &mut Vec<Slot>,
    index: &mut KeyIndex,
) -> rusqlite::Result<StoredIds> {
    let mut stored_ids = StoredIds::default();
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
        stored_ids.push(row.get_ref(0)?.as_str()?);
        let mut s = Slot::default();
        for (kind, key) in keys(|f| c.get(f).and_then(Value::as_str)) {
            if kind < STRONG {
                s.strong[kind] = fingerprint(key);
            }
            index.entry(halves(key)).or_insert(slot);
        }
        slots.push(s);
    }
    Ok(stored_ids)
}

/// The ids of the stored machines, by slot: the stored machines take the
/// first slots, in order. One text buffer rather than a string per asset: a
/// million of those took 90 MB for the whole phase.
#[derive(Default)]
struct StoredIds {
    text: String,
    ends: Vec<usize>,
}

impl StoredIds {
    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    fn get(&self, slot: u32) -> Option<&str> {
        let slot = slot as usize;
        let end = *self.ends.get(slot)?;
        let start = if slot == 0 { 0 } else { self.ends[slot - 1] };
        Some(&self.text[start..end])
    }
}

fn primary_tables(
    conn: &Connection,
    engagement: &str,
    master_flow_id: &str,
) -> rusqlite::Result<Vec<SourceTable>> {
    // (id, filename, sheet, source system, records, of this flow)
    type Row = (String, String, Option<String>, Option<String>, i64, bool);
    let rows: Vec<Row> = conn
        .prepare(
            "SELECT id, filename, sheet_name, source_system, total_records, master_flow_id = ?2
             FROM data_imports
             WHERE engagement_id = ?1 AND status = 'completed'
               AND coalesce(json_extract(read_metadata, '$.layout.role'), 'primary') = 'primary'
             ORDER BY created_at, id",
        )?
        .query_map([engagement, master_flow_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, Option<bool>>(5)?.unwrap_or(false),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(id, file, sheet, source, records, in_this_flow)| {
            describe_table(
                conn,
                id,
                &file,
                sheet.as_deref(),
                source,
                records,
                in_this_flow,
            )
        })
        .collect()
}

/// A table as the phase reads it: its label, source and unmapped columns.
fn describe_table(
    conn: &Connection,
    id: String,
    file: &str,
    sheet: Option<&str>,
    source: Option<String>,
    records: i64,
    in_this_flow: bool,
) -> rusqlite::Result<SourceTable> {
    let (columns, _) = crate::stage::table_shape(conn, &id)?;
    let mapped: Vec<String> = crate::cleanse::approved_mappings(conn, &id)?
        .into_iter()
        .map(|m| m.source)
        .collect();
    Ok(SourceTable {
        label: crate::read::table_label(file, sheet),
        source_system: source.unwrap_or_else(|| "generic".into()),
        unmapped: columns
            .into_iter()
            .filter(|c| !mapped.contains(c))
            .collect(),
        data_import_id: id,
        records: usize::try_from(records).unwrap_or(0),
        in_this_flow,
    })
}

/// An import's record as the phase reads it.
struct Record {
    rowid: i64,
    record_index: i64,
    /// cleansed_data, for a valid record only.
    cleansed: Option<String>,
    /// raw_data of a valid record, when asked for.
    raw: Option<String>,
}

type RecordBatch = Vec<Record>;

/// Pass 1's answer: the machine (slot) of each valid record, in the order
/// the tables and their records were read, with the record's rowid, and the
/// position where each table's records start.
struct Matched {
    assignment: Vec<u32>,
    rowids: Vec<i64>,
    starts: Vec<usize>,
}

/// A valid record on its way to being merged into its machine.
struct Merging {
    slot: u32,
    origin: Origin,
    cleansed: String,
    raw: Option<String>,
}

/// The next batch of an import's records after record `last`, in record order.
fn read_records(
    conn: &Connection,
    data_import_id: &str,
    with_raw: bool,
    last: &mut i64,
) -> rusqlite::Result<Option<RecordBatch>> {
    // Each batch is a range scan of the (data_import_id, record_index) index.
    let batch: RecordBatch = conn
        .prepare_cached(
            "SELECT rowid, record_index, CASE WHEN is_valid = 1 THEN cleansed_data END,
                    CASE WHEN ?4 AND is_valid = 1 THEN raw_data END
             FROM raw_import_records
             WHERE data_import_id = ?1 AND record_index > ?2 ORDER BY record_index LIMIT ?3",
        )?
        .query_map(params![data_import_id, *last, READ_BATCH, with_raw], |r| {
            Ok(Record {
                rowid: r.get(0)?,
                record_index: r.get(1)?,
                cleansed: r.get(2)?,
                raw: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(batch.last().map(|r| r.record_index).map(|end| {
        *last = end;
        batch
    }))
}

fn merge(
    build: &mut Build,
    tables: &[SourceTable],
    origin: Origin,
    cleansed: &str,
    raw: Option<&str>,
) {
    let Entries(cleansed): Entries<Value> = serde_json::from_str(cleansed).unwrap_or_default();
    merge_fields(build, tables, origin, cleansed);
    // Columns mapped to no field are kept under their original header.
    if tables[origin.table].unmapped.is_empty() {
        return;
    }
    let unmapped = unmapped_values(raw.unwrap_or("{}"), &tables[origin.table].unmapped);
    for (header, value) in unmapped {
        if !build.custom.contains_key(header) {
            build.custom.insert(header.to_string(), json!(value));
        }
    }
}

/// Merges a record's cleansed fields into its machine (see the module notes
/// for which value wins).
fn merge_fields<K: AsRef<str>>(
    build: &mut Build,
    tables: &[SourceTable],
    origin: Origin,
    cleansed: impl IntoIterator<Item = (K, Value)>,
) {
    let table = &tables[origin.table];
    for (key, value) in cleansed {
        let key = key.as_ref();
        if key == "_additional" {
            if let Value::Object(additional) = value {
                build.keep_additional(additional);
            }
            continue;
        }
        let Some(index) = catalogue::field_index(key) else {
            continue;
        };
        let Some(at) = build.fields.iter().position(|f| f.0 == index) else {
            build.fields.push((index, value, origin));
            continue;
        };
        let (_, current, current_origin) = &build.fields[at];
        if *current == value {
            continue;
        }
        let name = catalogue::FIELDS[index].name;
        let current_system = &tables[current_origin.table].source_system;
        let replace = *current_system == table.source_system
            || rank(&table.source_system, name) > rank(current_system, name);
        if *current_system != table.source_system {
            // The value that does not win is kept with where it came from.
            let (value_out, origin_out) = if replace {
                (current.clone(), *current_origin)
            } else {
                (value.clone(), origin)
            };
            let entry = json!({ "value": value_out, "source": origin_out.describe(tables) });
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
            build.fields[at] = (index, value, origin);
        }
    }
}

/// The non-blank values of the unmapped columns of a raw_data object; every
/// other value is skipped unparsed.
fn unmapped_values<'r, 'h>(raw: &'r str, unmapped: &'h [String]) -> Vec<(&'h str, Cow<'r, str>)> {
    let mut de = serde_json::Deserializer::from_str(raw);
    de.deserialize_map(UnmappedVisitor { unmapped })
        .unwrap_or_default()
}

struct UnmappedVisitor<'h> {
    unmapped: &'h [String],
}

impl<'de, 'h> Visitor<'de> for UnmappedVisitor<'h> {
    type Value = Vec<(&'h str, Cow<'de, str>)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Vec::new();
        // The keys come in column order, as the unmapped headers are listed:
        // a search resumes where the last one ended, so a file ten thousand
        // columns wide is read in linear time.
        let mut next = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let (earlier, from_next) = self.unmapped.split_at(next.min(self.unmapped.len()));
            let at = from_next
                .iter()
                .position(|h| *h == key)
                .map(|i| next + i)
                .or_else(|| earlier.iter().position(|h| *h == key));
            match at.map(|i| (i, &self.unmapped[i])) {
                Some((i, header)) => {
                    next = i + 1;
                    if let Some(Key(value)) = map.next_value::<Option<Key<'de>>>()? {
                        if !value.trim().is_empty() {
                            found.push((header.as_str(), value));
                        }
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
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
    /// Whether the writer begins and commits its own transactions; one
    /// that writes inside the staging transaction does neither.
    owns_tx: bool,
    /// The time written into the rows of the open transaction.
    now: String,
    shape: RowShape,
    select_sql: String,
    insert: StaticInsert<'c>,
    update_sql: String,
}

/// How a merged machine becomes the values of an `assets` row; built on the
/// merging thread, so the writing thread only binds and inserts.
#[derive(Clone)]
struct RowShape {
    /// The asset columns the catalogue fills: name, asset_type, the other
    /// fields, custom_attributes.
    columns: Vec<&'static str>,
    /// The position in `columns` of each catalogue field, by field index.
    column_of_field: Vec<Option<usize>>,
}

/// An asset's column values, and whether its sources disagreed.
struct AssetRow {
    values: Vec<rusqlite::types::Value>,
    conflicted: bool,
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

impl RowShape {
    fn row(&self, build: Build) -> AssetRow {
        use rusqlite::types::Value as Sql;
        let text = |name: &str| {
            let index = catalogue::field_index(name)?;
            let (_, value, _) = build.fields.iter().find(|f| f.0 == index)?;
            value.as_str().map(str::to_string)
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
        let asset_type = text("asset_type")
            .filter(|t| catalogue::ASSET_TYPES.contains(&t.as_str()))
            .unwrap_or_else(|| "server".into());
        let conflicted = !build.conflicts.is_empty();
        let mut custom = build.custom;
        if conflicted {
            custom.insert("_conflicts".into(), Value::Object(build.conflicts));
        }
        // Cleansing keeps values out of their field's domain; records
        // cleansed by an older intake may still hold one. It is kept aside,
        // never written where the schema would refuse the whole row.
        let mut rejected = Map::new();
        // Columns: name, asset_type, the other fields, custom_attributes.
        let mut out = vec![Sql::Null; self.columns.len()];
        out[0] = Sql::Text(name);
        out[1] = Sql::Text(asset_type);
        for (index, value, _) in build.fields {
            // name and asset_type were chosen above.
            let Some(column) = self.column_of_field[index].filter(|c| *c > 1) else {
                continue;
            };
            let field = &catalogue::FIELDS[index];
            if !field.accepts(&value) {
                rejected.insert(field.name.to_string(), value);
                continue;
            }
            out[column] = match (value, catalogue::FIELDS[index].kind) {
                (Value::Null, _) => Sql::Null,
                (Value::Bool(b), _) => Sql::Integer(i64::from(b)),
                (Value::Number(n), FieldKind::Integer) => {
                    Sql::Integer(n.as_i64().unwrap_or_default())
                }
                (Value::Number(n), _) => Sql::Real(n.as_f64().unwrap_or_default()),
                (Value::String(s), _) => Sql::Text(s),
                (other, _) => Sql::Text(other.to_string()),
            };
        }
        if !rejected.is_empty() {
            custom.insert("_rejected".into(), Value::Object(rejected));
        }
        // Straight to bytes: Value's Display goes through the formatter.
        let custom = serde_json::to_string(&custom).unwrap_or_else(|_| "{}".into());
        out[self.columns.len() - 1] = Sql::Text(custom);
        AssetRow {
            values: out,
            conflicted,
        }
    }
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
            owns_tx: true,
            now: db::now(),
            select_sql: format!("SELECT {} FROM assets WHERE id = ?1", columns.join(", ")),
            insert: StaticInsert::prepare(conn, &format!(
                "INSERT INTO assets ({}, id, client_account_id, engagement_id, master_flow_id, discovery_flow_id, created_at, updated_at)
                 VALUES ({})",
                columns.join(", "),
                placeholders.join(", ")
            ))?,
            update_sql: format!(
                "UPDATE assets SET {}, master_flow_id = ?{}, discovery_flow_id = ?{}, updated_at = ?{} WHERE id = ?1",
                sets.join(", "),
                n + 2,
                n + 3,
                n + 4
            ),
            shape: RowShape {
                column_of_field: catalogue::FIELDS
                    .iter()
                    .map(|f| columns.iter().position(|c| *c == f.name))
                    .collect(),
                columns,
            },
        })
    }

    /// A writer inside a transaction its caller owns.
    fn inside(
        conn: &'c Connection,
        client: &str,
        engagement: &str,
        ids: &FlowIds,
    ) -> rusqlite::Result<Writer<'c>> {
        let mut writer = Writer::new(conn, client, engagement, ids)?;
        writer.owns_tx = false;
        Ok(writer)
    }

    fn write(
        &mut self,
        existing: Option<&str>,
        row: AssetRow,
        outcome: &mut InventoryOutcome,
    ) -> rusqlite::Result<()> {
        if self.owns_tx && !self.in_tx {
            // Every asset references the flow and tenant read in `run`.
            db::begin_bulk(self.conn)?;
            self.in_tx = true;
            self.now = db::now();
        }
        if row.conflicted {
            outcome.conflicts += 1;
        }
        let row = row.values;
        if let rusqlite::types::Value::Text(asset_type) = &row[1] {
            match outcome.by_type.get_mut(asset_type) {
                Some(n) => *n += 1,
                None => {
                    outcome.by_type.insert(asset_type.clone(), 1);
                }
            }
        }
        let now = self.now.clone();
        match existing {
            Some(id) => {
                let width = self.shape.columns.len();
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
                // Bound without copies on a statement prepared once: a
                // million inserts of a ninety-parameter statement were
                // mostly statement-cache lookups and copies of the values.
                let id = db::new_id();
                let tenant_and_times = [
                    &id,
                    &self.client,
                    &self.engagement,
                    &self.ids.master_flow_id,
                    &self.ids.discovery_flow_id,
                    &now,
                    &now,
                ];
                self.insert.execute(
                    row.iter()
                        .map(ValueRef::from)
                        .chain(tenant_and_times.map(|v| ValueRef::from(v.as_str()))),
                )?;
                outcome.created += 1;
            }
        }
        self.pending += 1;
        if self.owns_tx && self.pending >= BATCH {
            db::end_bulk(self.conn, true)?;
            self.in_tx = false;
            self.pending = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> rusqlite::Result<()> {
        if self.in_tx {
            db::end_bulk(self.conn, true)?;
            self.in_tx = false;
        }
        Ok(())
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.in_tx {
            let _ = db::end_bulk(self.conn, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identity_key_is_read_from_cleansed_data() {
        let mut cleansed = Map::new();
        for key in KEY_KINDS.iter().chain(&["name"]) {
            cleansed.insert((*key).to_string(), json!(format!("{key}-value")));
        }
        let text = Value::Object(cleansed).to_string();
        let identity = IdentityFields::parse(&text);
        for key in KEY_KINDS.iter().chain(&["name"]) {
            assert_eq!(
                identity.get(key),
                Some(format!("{key}-value").as_str()),
                "{key}"
            );
        }
    }
}
