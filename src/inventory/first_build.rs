//! Assets built while a file is staged, for the common first build: one
//! primary table imported into an engagement that has no assets and no
//! earlier imports. Each valid record is matched as the inventory's first
//! pass would match it (same keys, same order); a record that finds no
//! machine becomes an asset at once, in the staging transaction, from the
//! fields its cleansing produced, so the inventory phase reads the table
//! again only for machines that several records describe.
//!
//! What is written here is provisional until the inventory phase accepts it
//! (`super::run`): a staging that fails or is killed removes these assets
//! with the table's records, and an inventory that finds the table's
//! mappings changed since staging rebuilds them as stored assets.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::{
    assign, keys, Build, InventoryOutcome, KeyIndex, Matched, Origin, RowShape, Slot, SourceTable,
    Writer,
};
use crate::cleanse::{CleansedFields, RawRecord};
use crate::flow::FlowIds;
use crate::map::profile::SAMPLE_ROWS;
use crate::stage;

/// A valid record made ready on a reader thread: its identity keys and the
/// asset it makes if no other record describes the same machine.
pub struct StagedMachine {
    keys: Vec<(usize, u64)>,
    row: super::AssetRow,
    record_index: i64,
}

/// What a reader thread needs to turn a cleansed record into a machine.
pub struct MachineShaper {
    table: [SourceTable; 1],
    shape: RowShape,
}

impl MachineShaper {
    /// The machine of one valid record, from its cleansed fields and its raw
    /// values (for the columns mapped to no field).
    pub fn machine(
        &self,
        record_index: i64,
        fields: CleansedFields,
        raw: &RawRecord,
    ) -> StagedMachine {
        let record_keys = keys(|f| fields.get(f).and_then(Value::as_str));
        let origin = Origin {
            table: 0,
            record_index,
        };
        let (values, additional) = fields.into_parts();
        // Cleansing set each field once, so there is nothing to merge
        // (`merge_fields` is for the values of several records).
        let mut build = Build {
            fields: values
                .into_iter()
                .map(|(index, value)| (index, value, origin))
                .collect(),
            ..Build::default()
        };
        build.keep_additional(additional);
        build.title.see(self.table[0].title_kind);
        for header in &self.table[0].unmapped {
            if let Some(value) = raw.get(header).filter(|v| !v.trim().is_empty()) {
                build
                    .custom
                    .entry(header.clone())
                    .or_insert_with(|| json!(value));
            }
        }
        StagedMachine {
            keys: record_keys,
            row: self.shape.row(build),
            record_index,
        }
    }
}

/// The machines found so far in the staged table, and the assets written.
pub struct FirstBuild<'c> {
    pub(super) data_import_id: String,
    /// The cleansing the assets were built from.
    pub(super) fingerprint: String,
    pub(super) discovery_flow_id: String,
    slots: Vec<Slot>,
    index: KeyIndex,
    pub(super) matched: Matched,
    /// The rowid of each machine's asset, by slot.
    asset_rowids: AssetRowids,
    writer: Writer<'c>,
    pub(super) outcome: InventoryOutcome,
    /// About how many records the table has.
    expected_records: usize,
}

/// Identity keys a record has at most, about (six of the ten kinds are
/// usual): what the index is sized for.
const KEYS_PER_RECORD: usize = 6;

/// The index on assets' host names, dropped while a large first build is staged.
const HOSTNAME_INDEX: &str = "ix_assets_hostname";
/// Rows from which a first build goes in without that index.
const BULK_ASSETS: u64 = 20_000;

impl<'c> FirstBuild<'c> {
    /// Starts building the assets of a table while it is staged, when this is
    /// an engagement's first build; `None` when the inventory phase must
    /// build them from the stored records.
    pub fn begin(
        conn: &'c Connection,
        ids: &FlowIds,
        (data_import_id, expected_records): (&str, usize),
        fingerprint: &str,
    ) -> rusqlite::Result<Option<(FirstBuild<'c>, MachineShaper)>> {
        let (client, engagement, file, sheet, source): (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        ) = conn.query_row(
            "SELECT client_account_id, engagement_id, filename, sheet_name, source_system
             FROM data_imports WHERE id = ?1",
            [data_import_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let first_build: bool = conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM assets WHERE engagement_id = ?1)
                AND NOT EXISTS (SELECT 1 FROM data_imports WHERE engagement_id = ?1 AND status = 'completed')",
            [&engagement],
            |r| r.get(0),
        )?;
        if !first_build {
            return Ok(None);
        }
        // Read by a recovery of an interrupted run: these assets go with the table's rows.
        stage::tables::mark_assets_built_on_stage(conn, data_import_id)?;
        // Host names come in file order, not the index's: a large table goes
        // in without the index, which the import builds again after staging
        // (or the next open, after a kill).
        crate::db::drop_index_for_bulk(
            conn,
            "assets",
            HOSTNAME_INDEX,
            expected_records as u64,
            BULK_ASSETS,
        )?;
        let table = super::describe_table(
            conn,
            data_import_id.to_string(),
            &file,
            sheet.as_deref(),
            source,
            0,
            true,
        )?;
        let writer = Writer::inside(conn, &client, &engagement, ids)?;
        let shaper = MachineShaper {
            table: [table],
            shape: writer.shape.clone(),
        };
        let staged = FirstBuild {
            data_import_id: data_import_id.to_string(),
            fingerprint: fingerprint.to_string(),
            discovery_flow_id: ids.discovery_flow_id.clone(),
            // Sized for the held sample now, for the whole table by
            // `reserve_rest` once the sample is freed.
            slots: Vec::with_capacity(SAMPLE_ROWS),
            index: KeyIndex::with_capacity_and_hasher(
                SAMPLE_ROWS * KEYS_PER_RECORD,
                Default::default(),
            ),
            matched: Matched {
                assignment: Vec::with_capacity(SAMPLE_ROWS),
                rowids: Vec::with_capacity(SAMPLE_ROWS),
                record_indexes: Vec::with_capacity(SAMPLE_ROWS),
                starts: vec![0],
            },
            expected_records,
            asset_rowids: AssetRowids::Consecutive { first: 0, count: 0 },
            writer,
            outcome: InventoryOutcome::default(),
        };
        Ok(Some((staged, shaper)))
    }

    /// Sizes memory for the whole table once, when the held sample has gone:
    /// growing by doubling would hold both sizes at the peak, and sizing
    /// while the sample is held would add the two. The index is touched
    /// all over as soon as keys land in it (their hashes are spread), so it
    /// costs its whole size from the start.
    pub fn reserve_rest(&mut self) {
        let more = self.expected_records.saturating_sub(self.slots.len());
        self.slots.reserve(more);
        self.matched.assignment.reserve(more);
        self.matched.rowids.reserve(more);
        self.matched.record_indexes.reserve(more);
        self.index.reserve(more * KEYS_PER_RECORD);
    }

    /// Takes a staged valid record (by its rowid): a machine seen for the
    /// first time is written as an asset; a record of a machine already
    /// seen is left for the inventory phase to merge.
    pub fn add(&mut self, rowid: i64, machine: StagedMachine) -> rusqlite::Result<()> {
        let (slot, new) = assign(&machine.keys, &mut self.slots, &mut self.index);
        if new {
            self.writer.write(None, machine.row, &mut self.outcome)?;
            self.asset_rowids.push(self.writer.conn.last_insert_rowid());
        }
        self.matched.assignment.push(slot);
        self.matched.rowids.push(rowid);
        self.matched.record_indexes.push(machine.record_index);
        Ok(())
    }

    /// Frees the identity index and the machines' keys once the table is
    /// staged, before the indexes dropped for the build are made again:
    /// that sort was the import's memory peak with them still held.
    pub fn staged(&mut self) {
        self.index = KeyIndex::default();
        self.slots = Vec::new();
        // mimalloc would return the freed pages only after its purge delay,
        // by when the index rebuild's sort has grown on top of them.
        // SAFETY: mi_collect takes no pointers; it only releases free pages.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }

    /// The identity index is not needed once the table is staged.
    pub(super) fn into_matched(self) -> (Matched, AssetRowids, InventoryOutcome, String, String) {
        (
            self.matched,
            self.asset_rowids,
            self.outcome,
            self.data_import_id,
            self.fingerprint,
        )
    }

    /// The staged table failed: the assets built from it go with its records
    /// (every asset of the flow, as the engagement had none before).
    pub fn abandon(self, conn: &Connection) -> rusqlite::Result<()> {
        drop(self.writer);
        conn.execute(
            "DELETE FROM assets WHERE discovery_flow_id = ?1",
            [&self.discovery_flow_id],
        )?;
        Ok(())
    }
}

/// The rowids of the assets written, by slot. SQLite gives each new row the
/// next rowid, and nothing else writes assets while a file is staged, so
/// they are a range (8 MB less for a million machines); a list only if not.
pub(super) enum AssetRowids {
    Consecutive { first: i64, count: usize },
    Listed(Vec<i64>),
}

impl AssetRowids {
    fn push(&mut self, rowid: i64) {
        match self {
            AssetRowids::Consecutive { first, count } if *count == 0 => {
                *first = rowid;
                *count = 1;
            }
            AssetRowids::Consecutive { first, count } if *first + *count as i64 == rowid => {
                *count += 1;
            }
            AssetRowids::Consecutive { first, count } => {
                let mut listed: Vec<i64> = (*first..*first + *count as i64).collect();
                listed.push(rowid);
                *self = AssetRowids::Listed(listed);
            }
            AssetRowids::Listed(listed) => listed.push(rowid),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            AssetRowids::Consecutive { count, .. } => *count,
            AssetRowids::Listed(listed) => listed.len(),
        }
    }

    /// The least and greatest rowid written (None: none).
    pub(super) fn bounds(&self) -> Option<(i64, i64)> {
        match self {
            AssetRowids::Consecutive { count: 0, .. } => None,
            AssetRowids::Consecutive { first, count } => Some((*first, *first + *count as i64 - 1)),
            AssetRowids::Listed(listed) => Some((*listed.iter().min()?, *listed.iter().max()?)),
        }
    }

    pub(super) fn get(&self, slot: usize) -> i64 {
        match self {
            AssetRowids::Consecutive { first, .. } => *first + slot as i64,
            AssetRowids::Listed(listed) => listed[slot],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AssetRowids;

    #[test]
    fn asset_rowids_stay_a_range_until_a_rowid_breaks_it() {
        let mut rowids = AssetRowids::Consecutive { first: 0, count: 0 };
        for rowid in [41, 42, 43] {
            rowids.push(rowid);
        }
        assert!(matches!(
            rowids,
            AssetRowids::Consecutive {
                first: 41,
                count: 3
            }
        ));
        rowids.push(90);
        rowids.push(91);
        assert!(matches!(rowids, AssetRowids::Listed(_)));
        let got: Vec<i64> = (0..rowids.len()).map(|slot| rowids.get(slot)).collect();
        assert_eq!(got, [41, 42, 43, 90, 91]);
    }
}
