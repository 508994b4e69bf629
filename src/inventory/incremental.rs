//! The inventory of a run that adds few records to an engagement whose older
//! tables all have current links (`links`): the next export of a source,
//! whose unchanged rows were seen again rather than stored. Only this flow's
//! stored records are matched; the machines they touch are merged from all
//! their records (this flow's, and the older ones the links name) in the
//! order a full build merges them, and written. Every other stored asset is
//! what its unchanged records gave last time, so it is counted unchanged.
//!
//! Anything the links cannot vouch for (an older table without current
//! links, an asset they name that is gone, more new records than a quarter
//! of the linked ones) leaves the run to the full build.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::Connection;

use super::identity::{assign, keys, seed_existing, IdentityFields, KeyIndex, Slot};
use super::links::{self, asset_key, TableLinks};
use super::merge::Build;
use super::writer::Writer;
use super::{read_records, InventoryOutcome, RecordReader, SourceTable};
use crate::phase::PhaseCtx;

/// New records per linked record beyond which the full build is cheaper.
const MAX_NEW_SHARE: usize = 4;

/// A record of a touched machine: where it is and which machine.
struct Touching {
    slot: u32,
    table: usize,
    record_index: i64,
    /// None: an older record, found by its import and index.
    rowid: Option<i64>,
}

/// Builds the inventory incrementally, or returns None (having written
/// nothing) when the full build must run.
pub(super) fn run(
    ctx: &PhaseCtx,
    tables: &[SourceTable],
) -> rusqlite::Result<Option<InventoryOutcome>> {
    let conn = ctx.conn;
    let engagement = &ctx.tenant.engagement_id;
    let started = std::time::Instant::now();
    let step = |what: &str| {
        tracing::debug!(
            "inventory (incremental): {what} at {:.2}s",
            started.elapsed().as_secs_f64()
        )
    };
    if tables.iter().all(|t| t.in_this_flow) || tables.iter().all(|t| !t.in_this_flow) {
        return Ok(None);
    }
    // The links of every older table, current.
    let mut older: Vec<Option<TableLinks>> = Vec::with_capacity(tables.len());
    let mut linked = 0;
    for table in tables {
        if table.in_this_flow {
            older.push(None);
            continue;
        }
        match links::current(conn, &table.data_import_id)? {
            Some(l) => {
                linked += l.pairs.len();
                older.push(Some(l));
            }
            None => return Ok(None),
        }
    }
    // Stored records: the rows an import saw again are not among them.
    let mut new_records = 0usize;
    for table in tables.iter().filter(|t| t.in_this_flow) {
        new_records += conn.query_row(
            "SELECT count(*) FROM raw_records WHERE data_import_id = ?1",
            [&table.data_import_id],
            |r| r.get::<_, i64>(0),
        )? as usize;
    }
    if new_records.saturating_mul(MAX_NEW_SHARE) > linked {
        return Ok(None);
    }
    step("links read");
    let mut slots: Vec<Slot> = Vec::new();
    let mut index: KeyIndex = HashMap::default();
    let stored_ids = seed_existing(conn, engagement, &mut slots, &mut index)?;
    let stored = slots.len();
    let slot_of_key: HashMap<u64, u32> = (0..stored as u32)
        .filter_map(|slot| Some((asset_key(stored_ids.get(slot)?), slot)))
        .collect();
    let all_named = older
        .iter()
        .flatten()
        .all(|l| l.pairs.iter().all(|(_, key)| slot_of_key.contains_key(key)));
    if !all_named {
        tracing::debug!("inventory: an asset the links name is gone; building in full");
        return Ok(None);
    }

    step("stored machines seeded");
    // This flow's records, matched as the full build matches them (after
    // every older record, whose machines are the stored ones).
    let mut touching: Vec<Touching> = Vec::new();
    let mut touched: HashSet<u32> = HashSet::new();
    for (number, table) in tables.iter().enumerate().filter(|(_, t)| t.in_this_flow) {
        // Machines its records went to before (it is cleansed again) may lose them.
        if let Some(before) = links::stored(conn, &table.data_import_id)? {
            touched.extend(before.pairs.iter().filter_map(|(_, k)| slot_of_key.get(k)));
        }
        let mut last = i64::MIN;
        while let Some(batch) = read_records(conn, &table.data_import_id, None, &mut last)? {
            ctx.progress.inc(batch.len() as u64);
            for record in batch {
                let Some(cleansed) = record.cleansed.as_deref() else {
                    continue;
                };
                let identity = IdentityFields::parse(cleansed);
                let (slot, _) = assign(&keys(|f| identity.get(f)), &mut slots, &mut index);
                touched.insert(slot);
                touching.push(Touching {
                    slot,
                    table: number,
                    record_index: record.record_index,
                    rowid: Some(record.rowid),
                });
            }
        }
    }
    drop(index);
    let new_in_flow = touching.len();
    // The older records of the machines touched.
    let touched_keys: HashSet<u64> = touched
        .iter()
        .filter(|&&slot| (slot as usize) < stored)
        .filter_map(|&slot| stored_ids.get(slot).map(asset_key))
        .collect();
    for (number, table_links) in older.iter().enumerate() {
        let Some(table_links) = table_links else {
            continue;
        };
        for &(record_index, key) in &table_links.pairs {
            if touched_keys.contains(&key) {
                touching.push(Touching {
                    slot: slot_of_key[&key],
                    table: number,
                    record_index,
                    rowid: None,
                });
            }
        }
    }
    touching.sort_unstable_by_key(|t| (t.slot, t.table, t.record_index));
    tracing::debug!(
        "inventory: {new_in_flow} new records touch {} machines, merged with {} older records",
        touched.len(),
        touching.len() - new_in_flow
    );

    step("older records found");
    // Merge and write each touched machine.
    let mut outcome = InventoryOutcome::default();
    let mut writer = Writer::new(conn, &ctx.tenant.client_account_id, engagement, &ctx.ids)?;
    let shape = writer.shape.clone();
    let mut reader = RecordReader::new(conn, tables.len())?;
    let mut rowid_of = conn
        .prepare("SELECT rowid FROM raw_records WHERE data_import_id = ?1 AND record_index = ?2")?;
    let mut key_of_slot: HashMap<u32, u64> = HashMap::new();
    for machine in touching.chunk_by(|a, b| a.slot == b.slot) {
        let mut build = Build::default();
        for record in machine {
            let table = &tables[record.table];
            let rowid = match record.rowid {
                Some(rowid) => rowid,
                None => rowid_of.query_row(
                    rusqlite::params![table.data_import_id, record.record_index],
                    |r| r.get(0),
                )?,
            };
            reader.merge_into(&mut build, tables, record.table, rowid)?;
        }
        let slot = machine[0].slot;
        let stored_id = stored_ids.get(slot);
        let created = writer.write(stored_id, shape.row(build), &mut outcome)?;
        if let Some(key) = stored_id
            .map(asset_key)
            .or_else(|| created.as_deref().map(asset_key))
        {
            key_of_slot.insert(slot, key);
        }
    }
    writer.finish()?;
    outcome.machines_merged = outcome.created + outcome.updated + outcome.unchanged;
    step("touched machines written");

    // This flow's links, and what the phase reports.
    for (number, table) in tables.iter().enumerate().filter(|(_, t)| t.in_this_flow) {
        let pairs = touching
            .iter()
            .filter(|t| t.table == number && t.rowid.is_some())
            .filter_map(|t| Some((t.record_index, *key_of_slot.get(&t.slot)?)))
            .collect();
        links::store(conn, &table.data_import_id, pairs)?;
    }
    // The machines of every record: the linked ones and those written now
    // (an asset no record describes, such as a host the dependencies phase
    // made, is not one, as in the full build).
    let mut machines: HashSet<u64> = older
        .iter()
        .flatten()
        .flat_map(|l| l.pairs.iter().map(|p| p.1))
        .collect();
    let linked_machines = machines.len() as u64;
    machines.extend(key_of_slot.values());
    outcome.unchanged += linked_machines - touched_keys.len() as u64;
    outcome.records = (linked + new_in_flow) as u64;
    outcome.merged_records = outcome.records.saturating_sub(machines.len() as u64);
    step("links stored");
    let kind_of_key = stored_kinds(conn, engagement)?;
    step("kinds read");
    outcome.by_type.clear();
    outcome.conflicts = 0;
    for key in &machines {
        if let Some((kind, conflicted)) = kind_of_key.get(key) {
            *outcome.by_type.entry(kind.clone()).or_default() += 1;
            outcome.conflicts += u64::from(*conflicted);
        }
    }
    outcome.assets = outcome.created + outcome.updated + outcome.unchanged;
    for (number, table) in tables.iter().enumerate().filter(|(_, t)| t.in_this_flow) {
        let mut keys_here: HashSet<u64> = touching
            .iter()
            .filter(|t| t.table == number && t.rowid.is_some())
            .filter_map(|t| key_of_slot.get(&t.slot).copied())
            .collect();
        keys_here.extend(sighted_keys(conn, tables, &older, &table.data_import_id)?);
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for key in &keys_here {
            if let Some((kind, _)) = kind_of_key.get(key) {
                *kinds.entry(kind.clone()).or_default() += 1;
            }
        }
        outcome
            .machines_by_import
            .insert(table.data_import_id.clone(), keys_here.len() as u64);
        outcome
            .kinds_by_import
            .insert(table.data_import_id.clone(), kinds);
    }
    step("sightings counted");
    Ok(Some(outcome))
}

/// The assets of the valid records an import saw again (`stage::sightings`),
/// from the links of the tables that stored them.
fn sighted_keys(
    conn: &Connection,
    tables: &[SourceTable],
    older: &[Option<TableLinks>],
    data_import_id: &str,
) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seen_import_id, seen_index FROM raw_record_sightings WHERE data_import_id = ?1",
    )?;
    let mut rows = stmt.query([data_import_id])?;
    let mut out = Vec::new();
    let mut last: Option<(String, Option<usize>)> = None;
    while let Some(row) = rows.next()? {
        let seen_import = row.get_ref(0)?.as_str()?;
        let table = match &last {
            Some((id, table)) if id == seen_import => *table,
            _ => {
                let table = tables.iter().position(|t| t.data_import_id == seen_import);
                last = Some((seen_import.to_string(), table));
                table
            }
        };
        if let Some(key) = table
            .and_then(|t| older[t].as_ref())
            .and_then(|l| l.asset_of(row.get(1).unwrap_or(i64::MIN)))
        {
            out.push(key);
        }
    }
    Ok(out)
}

/// The kind of each of the engagement's machines, and whether it keeps a
/// conflict, by its link key.
fn stored_kinds(
    conn: &Connection,
    engagement: &str,
) -> rusqlite::Result<HashMap<u64, (String, bool)>> {
    let mut kind_of_key = HashMap::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT id, {}, json_type(custom_attributes, '$._conflicts') IS NOT NULL FROM assets
         WHERE +engagement_id = ?1 AND asset_type <> 'application'",
        crate::catalogue::KIND_SQL
    ))?;
    let mut rows = stmt.query([engagement])?;
    while let Some(row) = rows.next()? {
        kind_of_key.insert(
            asset_key(row.get_ref(0)?.as_str()?),
            (row.get(1)?, row.get(2)?),
        );
    }
    Ok(kind_of_key)
}
