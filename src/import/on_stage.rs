//! Mapping and cleansing while a table is staged, so a million-row file is
//! written once rather than written and then rewritten. The writer holds back
//! a table's first `SAMPLE_ROWS` rows, profiles them, stores the mapping
//! suggestions, and from then on every row is inserted with its cleansing.
//! The cleanser is shared with the reader threads, which cleanse their later
//! batches themselves; a batch that arrives without its cleansing is cleansed
//! by the writer. What was done is recorded with a fingerprint of the
//! mappings (`cleanse::record_cleansing`), so the data_cleansing phase only
//! rewrites records whose mappings have changed since.

use std::sync::{Arc, OnceLock};

use crate::cleanse::{CleansedRecord, Cleanser, Tally};
use crate::map::profile::{self, SAMPLE_ROWS};
use crate::map::{ImportMapping, ImportToMap, MapError, Mapper};
use crate::read::Row;
use crate::stage::{HeaderInfo, Stager};

use super::Planned;

/// Where a reader finds the cleanser of its table once the writer has built it.
pub type SharedCleanser = Arc<OnceLock<Arc<Cleanser>>>;

enum State {
    /// The first rows, held until the mapping is known.
    Sampling(Vec<Row>),
    /// Mapped; rows are cleansed when a cleanser is present.
    Mapped(Option<Arc<Cleanser>>),
}

/// The writer's side: one state per table, and the mappings made so far.
pub struct OnStage<'o> {
    mapper: Mapper<'o>,
    client_account_id: String,
    engagement_id: String,
    cleanse: bool,
    states: Vec<State>,
    tallies: Vec<Tally>,
    mappings: Vec<ImportMapping>,
}

impl<'o> OnStage<'o> {
    pub fn new(
        mapper: Mapper<'o>,
        client_account_id: &str,
        engagement_id: &str,
        cleanse: bool,
        tables: usize,
    ) -> OnStage<'o> {
        OnStage {
            mapper,
            client_account_id: client_account_id.to_string(),
            engagement_id: engagement_id.to_string(),
            cleanse,
            states: (0..tables).map(|_| State::Sampling(Vec::new())).collect(),
            tallies: vec![Tally::default(); tables],
            mappings: Vec::new(),
        }
    }

    /// Takes a batch of rows of a table: held while its sample fills, then
    /// inserted with their cleansing.
    pub fn rows(
        &mut self,
        stager: &mut Stager,
        file: usize,
        table: &Planned,
        header: Option<&HeaderInfo>,
        rows: Vec<Row>,
        cleansed: Vec<CleansedRecord>,
    ) -> Result<(), MapError> {
        match &mut self.states[file] {
            State::Sampling(held) => {
                held.extend(rows);
                if held.len() >= SAMPLE_ROWS {
                    self.map_table(stager, file, table, header)?;
                }
                Ok(())
            }
            State::Mapped(cleanser) => {
                let cleanser = cleanser.clone();
                self.insert(stager, file, table, cleanser.as_deref(), &rows, cleansed)?;
                Ok(())
            }
        }
    }

    /// A table has been read to its end: a table shorter than the sample is
    /// mapped now. Returns its cleanser, whose counts go with the import.
    pub fn finish(
        &mut self,
        stager: &mut Stager,
        file: usize,
        table: &Planned,
        header: Option<&HeaderInfo>,
    ) -> Result<Option<(Arc<Cleanser>, Tally)>, MapError> {
        if matches!(self.states[file], State::Sampling(_)) {
            self.map_table(stager, file, table, header)?;
        }
        Ok(match &self.states[file] {
            State::Mapped(Some(cleanser)) => {
                Some((cleanser.clone(), std::mem::take(&mut self.tallies[file])))
            }
            _ => None,
        })
    }

    /// A table failed: its held rows and its mapping go with it.
    pub fn abandon(&mut self, file: usize, table: &Planned) {
        self.states[file] = State::Mapped(None);
        self.tallies[file] = Tally::default();
        self.mappings
            .retain(|m| m.data_import_id != table.data_import_id);
    }

    /// The mappings made, for the attribute_mapping phase to report.
    pub fn into_mappings(self) -> Vec<ImportMapping> {
        self.mappings
    }

    fn map_table(
        &mut self,
        stager: &mut Stager,
        file: usize,
        table: &Planned,
        header: Option<&HeaderInfo>,
    ) -> Result<(), MapError> {
        let State::Sampling(held) = std::mem::replace(&mut self.states[file], State::Mapped(None))
        else {
            return Ok(());
        };
        let columns = header.map(|h| h.columns.clone()).unwrap_or_default();
        let layout = header.and_then(|h| h.layout.as_ref()).map(|r| r.layout);
        if layout.is_some_and(|l| l.relationship_columns().is_some()) {
            // Edges, not machines: the dependencies phase reads them raw.
            self.insert(stager, file, table, None, &held, Vec::new())?;
            return Ok(());
        }
        let mut values = vec![Vec::with_capacity(held.len()); columns.len()];
        for row in &held {
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
        let cleanser = if self.cleanse {
            let cleanser = Arc::new(Cleanser::for_import(conn, &table.data_import_id)?);
            // Readers pick it up for the batches they send from now on.
            let _ = table.cleanser.set(cleanser.clone());
            Some(cleanser)
        } else {
            None
        };
        self.states[file] = State::Mapped(cleanser.clone());
        self.insert(stager, file, table, cleanser.as_deref(), &held, Vec::new())?;
        Ok(())
    }

    fn insert(
        &mut self,
        stager: &mut Stager,
        file: usize,
        table: &Planned,
        cleanser: Option<&Cleanser>,
        rows: &[Row],
        cleansed: Vec<CleansedRecord>,
    ) -> rusqlite::Result<()> {
        let Some(cleanser) = cleanser else {
            return stager.insert_rows(&table.data_import_id, rows, &[]);
        };
        let cleansed = if cleansed.len() == rows.len() {
            cleansed
        } else {
            rows.iter()
                .map(|r| cleanser.cleanse_json(&r.raw_data))
                .collect()
        };
        for record in &cleansed {
            self.tallies[file].add(record);
        }
        stager.insert_rows(&table.data_import_id, rows, &cleansed)
    }
}

/// A reader's side: cleanses a batch when its table's cleanser is ready.
pub fn cleanse_batch(shared: &SharedCleanser, rows: &[Row]) -> Vec<CleansedRecord> {
    match shared.get() {
        Some(cleanser) => rows
            .iter()
            .map(|r| cleanser.cleanse_json(&r.raw_data))
            .collect(),
        None => Vec::new(),
    }
}
