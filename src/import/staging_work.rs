//! Mapping and cleansing while a table is staged, so a million-row file is
//! written once rather than written and then rewritten. The writer holds back
//! a table's first rows (`profile::sample_rows`), profiles them, stores the mapping
//! suggestions, and from then on every row is inserted with its cleansing.
//! The cleanser is shared with the reader threads, which cleanse their later
//! batches themselves; a batch that arrives without its cleansing is cleansed
//! by the writer. What was done is recorded with a fingerprint of the
//! mappings (`cleanse::record_cleansing`), so the data_cleansing phase only
//! rewrites records whose mappings have changed since. When the run is an
//! engagement's first build of one primary table, each valid row's machine
//! is made with its cleansing and its asset written with it
//! (`inventory::FirstBuild`).

use std::sync::{Arc, OnceLock};

use crate::catalogue::Describes;
use crate::cleanse::Cleanser;
use crate::flow::FlowIds;
use crate::inventory::{FirstBuild, MachineShaper, StagedMachine};
use crate::map::profile::{self, SAMPLE_BYTES};
use crate::map::{ImportMapping, ImportToMap, MapError, Mapper};
use crate::read::header::HeaderShape;
use crate::read::layout::Role;
use crate::read::{Row, TableHeader};
use crate::stage::sightings::{self, SeenRows};
use crate::stage::tables::CleansingTally;
use crate::stage::{CleansedRow, StagedRow, Stager};

use super::staging::Planned;

/// What a table's rows go through once it is mapped: cleansing and, for an
/// engagement's first build, the making of its machines.
pub struct TableWork {
    cleanser: Cleanser,
    machines: Option<MachineShaper>,
    /// The rows of the previous import of the same source: a row that
    /// repeats one is recorded as seen, not cleansed.
    seen: Option<Arc<SeenRows>>,
}

impl TableWork {
    pub fn cleanser(&self) -> &Cleanser {
        &self.cleanser
    }

    fn process(&self, rows: &[Row]) -> Cleansed {
        let mut cleansed = Cleansed::default();
        for row in rows {
            // Hashed here, on the reader's thread, once: the stager stores it.
            let hash = sightings::row_hash(&row.raw_data);
            cleansed.hashes.push(hash);
            let repeated = self
                .seen
                .as_ref()
                .is_some_and(|seen| seen.find(&hash).is_some());
            if repeated {
                // The stager records it as seen; this stands in for its cleansing.
                cleansed.records.push(CleansedRow::seen());
                cleansed.machines.push(None);
                continue;
            }
            let (record, machine) = match &self.machines {
                Some(shaper) => self.cleanser.cleanse_with(&row.raw_data, |fields, raw| {
                    shaper.machine(row.record_index, fields, raw)
                }),
                None => (self.cleanser.cleanse_json(&row.raw_data), None),
            };
            cleansed.records.push(record);
            cleansed.machines.push(machine);
        }
        cleansed
    }
}

/// Where a reader finds its table's work once the writer has mapped it.
pub type SharedWork = Arc<OnceLock<Arc<TableWork>>>;

/// A batch's cleansing, one per row (empty when the reader left it to the
/// writer), with each valid row's machine when machines are being made.
#[derive(Default)]
pub struct Cleansed {
    records: Vec<CleansedRow>,
    machines: Vec<Option<StagedMachine>>,
    /// Each row's hash (`stage::sightings::row_hash`).
    hashes: Vec<sightings::RowHash>,
}

enum State {
    /// The first rows, held until the mapping is known, and their raw text's
    /// length in bytes.
    Sampling(Vec<Row>, usize),
    /// Mapped; rows are cleansed when there is work.
    Mapped(Option<Arc<TableWork>>),
}

/// The writer's side: one state per table, and the mappings made so far.
pub struct StagingWork<'o> {
    mapper: Mapper<'o>,
    ids: FlowIds,
    client_account_id: String,
    engagement_id: String,
    cleanse: bool,
    /// The inventory phase follows in this run, so machines may be made now.
    inventory_follows: bool,
    states: Vec<State>,
    tallies: Vec<CleansingTally>,
    mappings: Vec<ImportMapping>,
    assets: Option<FirstBuild<'o>>,
}

impl<'o> StagingWork<'o> {
    pub fn new(
        mapper: Mapper<'o>,
        ids: &FlowIds,
        (client_account_id, engagement_id): (&str, &str),
        (cleanse, inventory_follows): (bool, bool),
        tables: usize,
    ) -> StagingWork<'o> {
        StagingWork {
            mapper,
            ids: ids.clone(),
            client_account_id: client_account_id.to_string(),
            engagement_id: engagement_id.to_string(),
            cleanse,
            inventory_follows: cleanse && inventory_follows,
            states: (0..tables)
                .map(|_| State::Sampling(Vec::new(), 0))
                .collect(),
            tallies: vec![CleansingTally::default(); tables],
            mappings: Vec::new(),
            assets: None,
        }
    }

    /// Takes a batch of rows of a table: held while its sample fills, then
    /// inserted with their cleansing.
    pub fn rows(
        &mut self,
        stager: &mut Stager<'o>,
        file: usize,
        table: &Planned,
        header: Option<&TableHeader>,
        rows: Vec<Row>,
        cleansed: Cleansed,
    ) -> Result<(), MapError> {
        match &mut self.states[file] {
            State::Sampling(held, bytes) => {
                *bytes += rows.iter().map(|r| r.raw_data.len()).sum::<usize>();
                held.extend(rows);
                // Rows enough to profile, or as much text as a sample may hold.
                let columns = header.map_or(0, |h| h.columns.len());
                let full = held.len() >= profile::sample_rows(columns) || *bytes >= SAMPLE_BYTES;
                if full {
                    self.map_table(stager, file, table, header)?;
                }
                Ok(())
            }
            State::Mapped(work) => {
                let work = work.clone();
                self.insert(stager, file, table, work.as_deref(), &rows, cleansed)?;
                Ok(())
            }
        }
    }

    /// A table has been read to its end: a table shorter than the sample is
    /// mapped now. Returns its work (the cleanser), whose counts go with the import.
    pub fn finish(
        &mut self,
        stager: &mut Stager<'o>,
        file: usize,
        table: &Planned,
        header: Option<&TableHeader>,
    ) -> Result<Option<(Arc<TableWork>, CleansingTally)>, MapError> {
        if matches!(self.states[file], State::Sampling(..)) {
            self.map_table(stager, file, table, header)?;
        }
        Ok(match &self.states[file] {
            State::Mapped(Some(work)) => {
                Some((work.clone(), std::mem::take(&mut self.tallies[file])))
            }
            _ => None,
        })
    }

    /// A table failed: its held rows, its mapping and the machines made
    /// from it go with it.
    pub fn abandon(
        &mut self,
        stager: &mut Stager<'o>,
        file: usize,
        table: &Planned,
    ) -> rusqlite::Result<()> {
        self.states[file] = State::Mapped(None);
        self.tallies[file] = CleansingTally::default();
        self.mappings
            .retain(|m| m.data_import_id != table.data_import_id);
        match self.assets.take() {
            Some(assets) => assets.abandon(stager.conn()),
            None => Ok(()),
        }
    }

    /// The mappings made, for the attribute_mapping phase to report, and
    /// the assets built, for the inventory phase to complete.
    pub fn into_staged_work(self) -> crate::pipeline::StagedWork<'o> {
        crate::pipeline::StagedWork {
            mappings: self.mappings,
            assets: self.assets,
        }
    }

    fn map_table(
        &mut self,
        stager: &mut Stager<'o>,
        file: usize,
        table: &Planned,
        header: Option<&TableHeader>,
    ) -> Result<(), MapError> {
        let State::Sampling(held, _) =
            std::mem::replace(&mut self.states[file], State::Mapped(None))
        else {
            return Ok(());
        };
        let columns = header.map(|h| h.columns.clone()).unwrap_or_default();
        let layout = header.and_then(|h| h.layout.as_ref()).map(|r| r.layout);
        if layout.is_some_and(|l| l.relationship_columns().is_some()) {
            // Edges, not machines: the dependencies phase reads them raw.
            if let Some(seen) = SeenRows::of_previous(stager.conn(), &table.data_import_id, None)? {
                stager.record_sightings(&table.data_import_id, Arc::new(seen));
            }
            self.insert(stager, file, table, None, &held, Cleansed::default())?;
            return Ok(());
        }
        let sampled = held.len().min(profile::sample_rows(columns.len()));
        let mut values = vec![Vec::with_capacity(sampled); columns.len()];
        for row in &held[..sampled] {
            profile::push_values(&mut values, &columns, &row.raw_data);
        }
        let profiles = profile::profile_values(&columns, values)?;
        // The suggestions are stored in their own transaction.
        stager.commit()?;
        let conn = stager.conn();
        let mapping = self.mapper.map(
            conn,
            &ImportToMap {
                id: table.data_import_id.clone(),
                filename: table.candidate.input.display.clone(),
                sheet: super::sheet_of(&table.candidate).map(str::to_string),
                client_account_id: self.client_account_id.clone(),
                engagement_id: self.engagement_id.clone(),
                columns,
                layout,
                headerless: header.is_some_and(|h| h.shape == HeaderShape::Absent),
            },
            &profiles,
        )?;
        tracing::debug!(
            "{}: mapped {} columns from its first {} rows",
            table.candidate.input.display,
            mapping.suggestions.len(),
            held.len()
        );
        self.mappings.push(mapping);
        let work = if self.cleanse {
            let cleanser = Cleanser::for_import(conn, &table.data_import_id)?
                .storing_copies(conn, &table.data_import_id)?;
            // Machines are made while staging only for a run of one primary table.
            let primary = header
                .and_then(|h| h.layout.as_ref())
                .is_none_or(|role| role.role == Role::Primary);
            let machines = if self.inventory_follows
                && self.states.len() == 1
                && primary
                && cleanser.describes() == Describes::Machines
            {
                FirstBuild::begin(
                    conn,
                    &self.ids,
                    (&table.data_import_id, table.expected_rows()),
                    cleanser.fingerprint(),
                )?
            } else {
                None
            };
            let machines = machines.map(|(assets, shaper)| {
                self.assets = Some(assets);
                shaper
            });
            let seen =
                SeenRows::of_previous(conn, &table.data_import_id, Some(cleanser.fingerprint()))?
                    .map(Arc::new);
            if let Some(seen) = &seen {
                tracing::debug!(
                    "{}: rows repeating those of import {} are recorded as seen",
                    table.candidate.input.display,
                    seen.previous
                );
                stager.record_sightings(&table.data_import_id, seen.clone());
            }
            let work = Arc::new(TableWork {
                cleanser,
                machines,
                seen,
            });
            // Readers pick it up for the batches they send from now on.
            let _ = table.work.set(work.clone());
            Some(work)
        } else {
            None
        };
        self.states[file] = State::Mapped(work.clone());
        self.insert(
            stager,
            file,
            table,
            work.as_deref(),
            &held,
            Cleansed::default(),
        )?;
        drop(held);
        if let Some(assets) = self.assets.as_mut() {
            assets.reserve_rest();
        }
        Ok(())
    }

    fn insert(
        &mut self,
        stager: &mut Stager<'o>,
        file: usize,
        table: &Planned,
        work: Option<&TableWork>,
        rows: &[Row],
        cleansed: Cleansed,
    ) -> rusqlite::Result<()> {
        let Some(work) = work else {
            stager.insert_rows(&table.data_import_id, rows, &[], &[])?;
            return Ok(());
        };
        if cleansed.records.len() != rows.len() {
            // Cleansed here a reader's batch at a time: the held sample at
            // once would hold its machines and their rows all together.
            for chunk in rows.chunks(super::staging::BATCH_ROWS) {
                self.insert(stager, file, table, Some(work), chunk, work.process(chunk))?;
            }
            return Ok(());
        }
        let staged = stager.insert_rows(
            &table.data_import_id,
            rows,
            &cleansed.records,
            &cleansed.hashes,
        )?;
        for (record, staged) in cleansed.records.iter().zip(&staged) {
            match (staged, &work.seen) {
                (StagedRow::Seen(seen), Some(seen_rows)) => {
                    let verdict = seen_rows.verdict_of(seen);
                    let becomes = verdict
                        .is_valid
                        .unwrap_or(false)
                        .then(|| work.cleanser.becomes_named(verdict.asset_type.as_deref()));
                    self.tallies[file].add_seen(verdict, becomes);
                }
                _ => self.tallies[file].add(record),
            }
        }
        if let Some(assets) = self.assets.as_mut() {
            for (staged, machine) in staged.into_iter().zip(cleansed.machines) {
                if let (StagedRow::Stored(rowid), Some(machine)) = (staged, machine) {
                    assets.add(rowid, machine)?;
                }
            }
        }
        Ok(())
    }
}

/// A reader's side: cleanses a batch when its table's work is ready.
pub fn cleanse_batch(shared: &SharedWork, rows: &[Row]) -> Cleansed {
    match shared.get() {
        Some(work) => work.process(rows),
        None => Cleansed::default(),
    }
}
