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
//! staged (`first_build`); this phase then merges only the machines that
//! several of its records describe. Every build records which asset each
//! record went to (`links`); a later run that adds few records merges only
//! the machines they touch (`incremental`), with the full build's result.

use std::collections::BTreeMap;

use foldhash::HashMap;
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::catalogue::Describes;
use crate::flow::{self, Phase};
use crate::phase::{PhaseCtx, PhaseOutcome};
use crate::stage;
use crate::work_queue;

mod first_build;
mod identity;
mod incremental;
mod links;
mod merge;
mod writer;
pub use first_build::{FirstBuild, MachineShaper, StagedMachine};

use identity::{assign, keys, seed_existing, IdentityFields, KeyIndex, Slot};
use merge::{merge, Build, Origin};
use writer::{AssetRow, RowShape, Writer};

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
    /// Machines whose records were read and merged by this run: every one,
    /// or only those its new records touch (`incremental`).
    pub machines_merged: u64,
    pub by_type: BTreeMap<String, u64>,
    /// Per import: the distinct machines its valid rows describe (several
    /// rows of one machine count once; a machine in two files counts in each).
    #[serde(skip)]
    pub machines_by_import: BTreeMap<String, u64>,
    /// Per import: those machines by the kind they were stored with.
    #[serde(skip)]
    pub kinds_by_import: BTreeMap<String, BTreeMap<String, u64>>,
}

impl PhaseOutcome for InventoryOutcome {
    const PHASE: Phase = Phase::Inventory;

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "assets": self.assets, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "records": self.records, "merged_records": self.merged_records,
            "machines_merged": self.machines_merged, "by_type": self.by_type,
        })
    }

    /// The summary is also the flow's discovered_assets.
    fn record(&self, ctx: &PhaseCtx) -> rusqlite::Result<()> {
        let summary = self.summary();
        flow::complete_phase(ctx.conn, &ctx.ids, Self::PHASE, &summary)?;
        flow::record_discovered(ctx.conn, &ctx.ids, &summary)
    }
}

struct SourceTable {
    data_import_id: String,
    label: String,
    source_system: String,
    unmapped: Vec<String>,
    /// Its records, valid or not: used to size memory up front.
    records: usize,
    /// Imported by the flow being built (its machines may be new).
    in_this_flow: bool,
    /// The kind its title names ("switches.csv", a sheet "Storage"): given
    /// only to machines no other table describes (`merge::TitleEvidence`).
    title_kind: Option<&'static str>,
}

/// Rebuilds the engagement's assets from its valid records and writes the
/// changes. `staged` holds the assets built while this flow's file was
/// staged; they are accepted when that table is still the engagement's only
/// one and was not cleansed again since.
pub fn run(ctx: &PhaseCtx, staged: Option<FirstBuild>) -> rusqlite::Result<InventoryOutcome> {
    let (conn, ids) = (ctx.conn, &ctx.ids);
    let client = &ctx.tenant.client_account_id;
    let engagement = &ctx.tenant.engagement_id;
    let started = std::time::Instant::now();
    let tables = primary_tables(conn, engagement, &ids.master_flow_id)?;
    if let Some(staged) = staged {
        let (matched, asset_rowids, outcome, data_import_id, fingerprint) = staged.into_matched();
        let recorded = stage::tables::cleansing_fingerprint(conn, &data_import_id)?;
        let current = tables.len() == 1
            && tables[0].data_import_id == data_import_id
            && recorded.as_deref() == Some(fingerprint.as_str());
        if current {
            let writer = Writer::new(conn, client, engagement, ids)?;
            return finish_staged(conn, &tables, writer, matched, &asset_rowids, outcome);
        }
        // Otherwise the staged assets are stored assets to the build below.
    }
    if let Some(outcome) = incremental::run(ctx, &tables)? {
        return Ok(outcome);
    }
    links::forget(conn, tables.iter().map(|t| t.data_import_id.as_str()))?;
    // Sized once: growing these by doubling is what made the memory peak.
    // The machines are about the stored ones or this flow's records,
    // whichever is more (a re-import describes the stored machines again);
    // a machine carries about four to six identity keys.
    let records: usize = tables.iter().map(|t| t.records).sum();
    let stored: usize = conn.query_row(
        "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'",
        [engagement],
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
    let stored_ids = seed_existing(conn, engagement, &mut slots, &mut index)?;

    // Pass 1: which asset each record belongs to. This thread reads the
    // records; a second one parses their identity fields and matches them.
    let mut outcome = InventoryOutcome::default();
    let table_count = tables.len();
    let tables_ref = &tables;
    let progress = ctx.progress.clone();
    let (slots, index, matched, contents) = std::thread::scope(|scope| {
        let (to_match, match_queue) =
            crossbeam_channel::bounded::<(usize, RecordBatch)>(QUEUE_DEPTH);
        let matcher = scope.spawn(move || {
            let mut matched = Matched {
                assignment: Vec::with_capacity(records),
                rowids: Vec::with_capacity(records),
                record_indexes: Vec::with_capacity(records),
                starts: Vec::new(),
            };
            let mut contents = Contents::default();
            for (table, batch) in match_queue.iter() {
                progress.inc(batch.len() as u64);
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
                    matched.record_indexes.push(record.record_index);
                    contents.see(
                        slot,
                        content_hash(&tables_ref[table], cleansed, record.raw.as_deref()),
                    );
                }
            }
            // Tables with no valid record after the last one read start at the end.
            while matched.starts.len() < table_count {
                matched.starts.push(matched.assignment.len());
            }
            (slots, index, matched, contents)
        });
        // `to_match` belongs to this closure: an early return drops it and the matcher stops.
        for (number, table) in tables.iter().enumerate() {
            let mut last = i64::MIN;
            // raw_data is read only for the columns mapped to no field, which
            // merging keeps, and only where records of several tables may
            // describe one machine alike (a re-import); a single table's
            // repeated machines are merged from all their records.
            let with_raw = !table.unmapped.is_empty() && tables.len() > 1;
            let raw_keys = raw_keys_of(conn, &table.data_import_id, with_raw)?;
            while let Some(batch) =
                read_records(conn, &table.data_import_id, raw_keys.as_ref(), &mut last)?
            {
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
        record_indexes,
        starts,
    } = matched;
    outcome.records = assignment.len() as u64;
    let sighted = sighted_slots(conn, &tables, &rowids, &assignment)?;
    outcome.machines_by_import =
        machines_per_table(&assignment, &starts, &sighted, &tables, slots.len());
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
    // A machine whose records all say the same (a forced re-import, the
    // unchanged machines of a newer export) merges to what its first record
    // alone gives: an equal value keeps its first origin and custom values
    // are first come. Its first record is merged as if it were its only one.
    let mut all_alike = contents.all_alike;
    all_alike.resize(machines, false);
    let Shared {
        total,
        several,
        merged_records,
    } = Shared::of(&assignment, machines, &all_alike);
    outcome.merged_records = merged_records;
    tracing::debug!(
        "inventory: {} machines described by several records all alike, merged from their first",
        total
            .iter()
            .zip(&all_alike)
            .filter(|(&n, &a)| a && n > 1)
            .count()
    );
    let taken = first_records(&assignment, &total, &all_alike);
    let single = |position: usize| taken[position];
    let table_of = |position: usize| starts.partition_point(|&s| s <= position) - 1;

    // Pass 2: merge each asset's records and write it once its last record is
    // seen. This thread reads and writes SQLite; a second one parses and
    // merges, so the two kinds of work overlap. Machines of one record are
    // read table by table; the others by rowid in machine order.
    let mut writer = Writer::new(conn, client, engagement, ids)?;
    // The kind each machine was stored with (an index into MACHINE_KINDS).
    let mut kind_of_slot = vec![0u8; machines];
    // The link key of each machine created (stored ones have theirs by id).
    let mut created_keys: HashMap<u32, u64> = HashMap::default();
    let (to_merge, merge_queue) = crossbeam_channel::bounded::<Vec<Merging>>(QUEUE_DEPTH);
    let (to_write, write_queue) = crossbeam_channel::bounded::<Vec<(u32, AssetRow)>>(QUEUE_DEPTH);
    let shape = writer.shape.clone();
    let tables_ref = &tables;
    // Records merged per machine: one for a machine whose records are alike.
    let mut remaining: Vec<u32> = total
        .iter()
        .zip(&all_alike)
        .map(|(&n, &alike)| if alike { 1 } else { n })
        .collect();
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
                kind_of_slot[slot as usize] = kind_index(row.kind);
                let stored = stored_ids.get(slot);
                if let Some(id) = writer.write(stored, row, &mut outcome)? {
                    created_keys.insert(slot, links::asset_key(&id));
                }
            }
            Ok(())
        };
        // Both queues are bounded: while the merging thread is busy, write
        // what it has merged rather than wait on it.
        let mut hand_over = |batch: Vec<Merging>| -> rusqlite::Result<()> {
            work_queue::hand_over(&to_merge, &write_queue, batch, &mut write)
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
            let raw_keys = raw_keys_of(conn, &table.data_import_id, with_raw)?;
            while let Some(batch) =
                read_records(conn, &table.data_import_id, raw_keys.as_ref(), &mut last)?
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
        let mut reader = RecordReader::new(conn, tables_ref.len())?;
        for chunk in several.chunks(READ_BATCH as usize) {
            let mut batch = Vec::with_capacity(chunk.len());
            for &position in chunk {
                let position = position as usize;
                let (origin, cleansed, raw) =
                    reader.read(tables_ref, table_of(position), rowids[position])?;
                batch.push(Merging {
                    slot: assignment[position],
                    origin,
                    cleansed,
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
    outcome.machines_merged = outcome.created + outcome.updated + outcome.unchanged;
    let key_of_slot = |slot: u32| {
        stored_ids
            .get(slot)
            .map(links::asset_key)
            .or_else(|| created_keys.get(&slot).copied())
    };
    for (number, table) in tables.iter().enumerate() {
        let end = starts.get(number + 1).copied().unwrap_or(assignment.len());
        let pairs = (starts[number]..end)
            .filter_map(|p| Some((record_indexes[p], key_of_slot(assignment[p])?)))
            .collect();
        links::store(conn, &table.data_import_id, pairs)?;
    }
    outcome.assets = outcome.created + outcome.updated + outcome.unchanged;
    outcome.kinds_by_import =
        kinds_per_table(&assignment, &starts, &sighted, &tables, &kind_of_slot);
    Ok(outcome)
}

/// Per table, the machines of the valid records it saw again rather than
/// stored (`stage::sightings`): those records are another table's, read
/// once there, but the table describes their machines too.
fn sighted_slots(
    conn: &Connection,
    tables: &[SourceTable],
    rowids: &[i64],
    assignment: &[u32],
) -> rusqlite::Result<Vec<Vec<u32>>> {
    let mut stmt = conn.prepare(
        "SELECT r.rowid FROM raw_record_sightings s
         JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
         WHERE s.data_import_id = ?1 AND r.is_valid = 1",
    )?;
    let mut position_of: Option<HashMap<i64, u32>> = None;
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        let seen: Vec<i64> = stmt
            .query_map([&table.data_import_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let position_of = match (&mut position_of, seen.is_empty()) {
            (_, true) => {
                out.push(Vec::new());
                continue;
            }
            (Some(map), false) => map,
            (none, false) => none.insert(
                rowids
                    .iter()
                    .enumerate()
                    .map(|(p, &rowid)| (rowid, p as u32))
                    .collect(),
            ),
        };
        out.push(
            seen.iter()
                .filter_map(|rowid| position_of.get(rowid))
                .map(|&p| assignment[p as usize])
                .collect(),
        );
    }
    Ok(out)
}

fn kind_index(kind: &str) -> u8 {
    crate::catalogue::MACHINE_KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0) as u8
}

/// The distinct machines of each table by the kind each was stored with:
/// a machine three sheets describe counts once in each, under one kind.
fn kinds_per_table(
    assignment: &[u32],
    starts: &[usize],
    sighted: &[Vec<u32>],
    tables: &[SourceTable],
    kind_of_slot: &[u8],
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut counted_for = vec![0u32; kind_of_slot.len()];
    let mut out = BTreeMap::new();
    for (number, table) in tables.iter().enumerate() {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for &slot in slots_of_table(assignment, starts, sighted, number) {
            let seen = &mut counted_for[slot as usize];
            if *seen != number as u32 + 1 {
                *seen = number as u32 + 1;
                let kind = crate::catalogue::MACHINE_KINDS[kind_of_slot[slot as usize] as usize];
                *kinds.entry(kind.to_string()).or_default() += 1;
            }
        }
        out.insert(table.data_import_id.clone(), kinds);
    }
    out
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
    /// `all_alike` (by machine; may be empty) marks the machines whose
    /// records are alike: they are merged from their first record alone and
    /// are not among `several`.
    fn of(assignment: &[u32], machines: usize, all_alike: &[bool]) -> Shared {
        let mut total: Vec<u32> = vec![0; machines];
        for &s in assignment {
            total[s as usize] += 1;
        }
        let alike = |slot: u32| all_alike.get(slot as usize).copied().unwrap_or(false);
        let mut several: Vec<u32> = (0..assignment.len() as u32)
            .filter(|&p| {
                let slot = assignment[p as usize];
                total[slot as usize] > 1 && !alike(slot)
            })
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

/// Per machine, the content of its first record and whether every later
/// record says exactly the same (cleansed fields and, where the table keeps
/// unmapped columns, its raw row).
#[derive(Default)]
struct Contents {
    first: Vec<u64>,
    /// Per machine: a record was seen, and every one so far was alike.
    seen: Vec<bool>,
    all_alike: Vec<bool>,
}

impl Contents {
    fn see(&mut self, slot: u32, content: Option<u64>) {
        let slot = slot as usize;
        if slot >= self.first.len() {
            self.first.resize(slot + 1, 0);
            self.seen.resize(slot + 1, false);
            self.all_alike.resize(slot + 1, false);
        }
        let Some(content) = content else {
            self.seen[slot] = true;
            self.all_alike[slot] = false;
            return;
        };
        if !self.seen[slot] {
            self.seen[slot] = true;
            self.first[slot] = content;
            self.all_alike[slot] = true;
        } else if self.first[slot] != content {
            self.all_alike[slot] = false;
        }
    }
}

/// What merging reads of a record: its cleansed fields and, when the table
/// has unmapped columns, those columns' names and its raw row. Two records
/// with the same hash merge alike (a 64-bit hash: as the identity keys).
/// None when the raw row was not read but is needed: such a record is never
/// taken for alike.
fn content_hash(table: &SourceTable, cleansed: &str, raw: Option<&str>) -> Option<u64> {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::with_seed(0xc0_47e7);
    // The title's kind is part of what a record says of its machine.
    let title = table.title_kind.unwrap_or_default();
    if table.unmapped.is_empty() {
        Some(state.hash_one((cleansed, title)))
    } else {
        raw.map(|raw| state.hash_one((cleansed, title, &table.unmapped, raw)))
    }
}

/// Whether each record is merged in the table pass: the only record of its
/// machine, or the first of a machine whose records are all alike.
fn first_records(assignment: &[u32], total: &[u32], all_alike: &[bool]) -> Vec<bool> {
    let mut seen = vec![false; total.len()];
    assignment
        .iter()
        .map(|&slot| {
            let slot = slot as usize;
            match total[slot] {
                1 => true,
                _ if all_alike.get(slot).copied().unwrap_or(false) && !seen[slot] => {
                    seen[slot] = true;
                    true
                }
                _ => false,
            }
        })
        .collect()
}

/// Reads records back by rowid: each one's index, cleansed_data and, for a
/// table with unmapped columns, raw_data made with that table's columns,
/// read once per table (not the import's metadata parsed per record).
struct RecordReader<'c> {
    conn: &'c Connection,
    by_rowid: rusqlite::Statement<'c>,
    /// Per table number, once read: its columns when its raw_data is read.
    raw_keys: Vec<Option<Option<crate::record_store::ColumnKeys>>>,
}

impl<'c> RecordReader<'c> {
    fn new(conn: &'c Connection, tables: usize) -> rusqlite::Result<RecordReader<'c>> {
        Ok(RecordReader {
            conn,
            by_rowid: conn.prepare(&format!(
                "SELECT record_index, {}, raw_values FROM raw_records r WHERE rowid = ?1",
                crate::record_store::WHOLE_CLEANSED
            ))?,
            raw_keys: (0..tables).map(|_| None).collect(),
        })
    }

    /// The record `rowid` of `tables[number]`, on its way to being merged.
    fn read(
        &mut self,
        tables: &[SourceTable],
        number: usize,
        rowid: i64,
    ) -> rusqlite::Result<(Origin, String, Option<String>)> {
        let keys = match &mut self.raw_keys[number] {
            Some(keys) => keys,
            unread => {
                let table = &tables[number];
                unread.insert(raw_keys_of(
                    self.conn,
                    &table.data_import_id,
                    !table.unmapped.is_empty(),
                )?)
            }
        };
        let (record_index, cleansed, raw): (i64, Option<String>, String) = self
            .by_rowid
            .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let origin = Origin {
            table: number,
            record_index,
        };
        let raw = keys.as_ref().map(|k| k.object(&raw).into_owned());
        Ok((origin, cleansed.unwrap_or_default(), raw))
    }

    /// Reads the record `rowid` of `tables[number]` and merges it into `build`.
    fn merge_into(
        &mut self,
        build: &mut Build,
        tables: &[SourceTable],
        number: usize,
        rowid: i64,
    ) -> rusqlite::Result<()> {
        let (origin, cleansed, raw) = self.read(tables, number, rowid)?;
        merge(build, tables, origin, &cleansed, raw.as_deref());
        Ok(())
    }
}

/// The distinct machines of each table: `starts[t]` is where table t's
/// records begin in `assignment`, the machine of each record.
fn machines_per_table(
    assignment: &[u32],
    starts: &[usize],
    sighted: &[Vec<u32>],
    tables: &[SourceTable],
    machines: usize,
) -> BTreeMap<String, u64> {
    // The last table each machine was counted for, plus one.
    let mut counted_for = vec![0u32; machines];
    let mut out = BTreeMap::new();
    for (number, table) in tables.iter().enumerate() {
        let mut distinct = 0;
        for &slot in slots_of_table(assignment, starts, sighted, number) {
            let seen = &mut counted_for[slot as usize];
            if *seen != number as u32 + 1 {
                *seen = number as u32 + 1;
                distinct += 1;
            }
        }
        out.insert(table.data_import_id.clone(), distinct);
    }
    out
}

/// The machines of table `number`'s records: those it stored (from
/// `starts[number]` in `assignment`), then those it saw again (`sighted`).
fn slots_of_table<'a>(
    assignment: &'a [u32],
    starts: &[usize],
    sighted: &'a [Vec<u32>],
    number: usize,
) -> impl Iterator<Item = &'a u32> {
    let start = starts.get(number).copied().unwrap_or(assignment.len());
    let end = starts.get(number + 1).copied().unwrap_or(assignment.len());
    assignment[start..end.max(start)]
        .iter()
        .chain(sighted.get(number).into_iter().flatten())
}

/// Completes the assets built while the only table was staged: machines
/// that several of its records describe are merged from all of them now.
fn finish_staged(
    conn: &Connection,
    tables: &[SourceTable],
    mut writer: Writer,
    matched: Matched,
    asset_rowids: &first_build::AssetRowids,
    mut outcome: InventoryOutcome,
) -> rusqlite::Result<InventoryOutcome> {
    let Matched {
        assignment,
        rowids,
        record_indexes,
        ..
    } = matched;
    outcome.records = assignment.len() as u64;
    outcome.machines_by_import =
        machines_per_table(&assignment, &[0], &[], tables, asset_rowids.len());
    let Shared {
        total,
        several,
        merged_records,
    } = Shared::of(&assignment, asset_rowids.len(), &[]);
    outcome.merged_records = merged_records;
    let mut reader = RecordReader::new(conn, tables.len())?;
    let mut stored = conn.prepare(&format!(
        "SELECT id, {} FROM assets WHERE rowid = ?1",
        crate::catalogue::KIND_SQL
    ))?;
    let shape = writer.shape.clone();
    for machine in several.chunk_by(|&a, &b| assignment[a as usize] == assignment[b as usize]) {
        let mut build = Build::default();
        for &position in machine {
            reader.merge_into(&mut build, tables, 0, rowids[position as usize])?;
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
    // The table's links: every asset was written while it was staged.
    let (least, greatest) = asset_rowids.bounds().unwrap_or((1, 0));
    let key_of_rowid: HashMap<i64, u64> = conn
        .prepare("SELECT rowid, id FROM assets WHERE rowid BETWEEN ?1 AND ?2")?
        .query_map([least, greatest], |r| {
            Ok((r.get(0)?, links::asset_key(r.get_ref(1)?.as_str()?)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let pairs = assignment
        .iter()
        .zip(&record_indexes)
        .filter_map(|(&slot, &index)| {
            Some((index, *key_of_rowid.get(&asset_rowids.get(slot as usize))?))
        })
        .collect();
    links::store(conn, &tables[0].data_import_id, pairs)?;
    outcome.by_type.retain(|_, n| *n > 0);
    // One table: its machines are every asset built.
    outcome.kinds_by_import =
        BTreeMap::from([(tables[0].data_import_id.clone(), outcome.by_type.clone())]);
    // Every asset was created by this build, merged or not.
    outcome.machines_merged = outcome.created;
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

fn primary_tables(
    conn: &Connection,
    engagement: &str,
    master_flow_id: &str,
) -> rusqlite::Result<Vec<SourceTable>> {
    let scope = stage::tables::Scope::Engagement {
        engagement_id: engagement,
    };
    let mut tables = Vec::new();
    for table in stage::tables::completed(conn, scope)?
        .into_iter()
        .filter(stage::tables::StagedTable::holds_machines)
    {
        // An application list's rows are applications (the dependencies phase
        // makes them), not machines.
        if crate::cleanse::describes_import(conn, &table.data_import_id)? == Describes::Applications
        {
            continue;
        }
        tables.push(table);
    }
    tables
        .into_iter()
        .map(|table| {
            let in_this_flow = table.master_flow_id == master_flow_id;
            describe_table(
                conn,
                table.data_import_id,
                &table.filename,
                table.sheet.as_deref(),
                table.source_system,
                table.records,
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
    let (columns, _) = stage::tables::shape(conn, &id)?;
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
        title_kind: crate::cleanse::values::table_kind(&stage::tables::title(file, sheet)),
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
    /// The record_index of each record, for its table's links.
    record_indexes: Vec<i64>,
    starts: Vec<usize>,
}

/// A valid record on its way to being merged into its machine.
struct Merging {
    slot: u32,
    origin: Origin,
    cleansed: String,
    raw: Option<String>,
}

/// The columns of an import's raw values, when its raw_data is read.
fn raw_keys_of(
    conn: &Connection,
    data_import_id: &str,
    with_raw: bool,
) -> rusqlite::Result<Option<crate::record_store::ColumnKeys>> {
    with_raw
        .then(|| crate::record_store::ColumnKeys::of_import(conn, data_import_id))
        .transpose()
}

/// The next batch of an import's records after record `last`, in record
/// order, with raw_data when `raw_keys` (the import's columns) is given.
fn read_records(
    conn: &Connection,
    data_import_id: &str,
    raw_keys: Option<&crate::record_store::ColumnKeys>,
    last: &mut i64,
) -> rusqlite::Result<Option<RecordBatch>> {
    // Each batch is a range scan of the (data_import_id, record_index) index.
    let with_raw = raw_keys.is_some();
    let batch: RecordBatch = conn
        .prepare_cached(&format!(
            "SELECT rowid, record_index, CASE WHEN is_valid = 1 THEN {} END,
                        CASE WHEN ?4 AND is_valid = 1 THEN raw_values END
                 FROM raw_records r
                 WHERE data_import_id = ?1 AND record_index > ?2 ORDER BY record_index LIMIT ?3",
            crate::record_store::WHOLE_CLEANSED
        ))?
        .query_map(params![data_import_id, *last, READ_BATCH, with_raw], |r| {
            Ok(Record {
                rowid: r.get(0)?,
                record_index: r.get(1)?,
                cleansed: r.get(2)?,
                raw: r
                    .get::<_, Option<String>>(3)?
                    .and_then(|stored| raw_keys.map(|k| k.object(&stored).into_owned())),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(batch.last().map(|r| r.record_index).map(|end| {
        *last = end;
        batch
    }))
}
