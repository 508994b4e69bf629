//! intake turns the inventory exports a migration consultant is handed into a
//! clean asset inventory in the platform's consolidated discovery schema, kept in
//! one local SQLite file. Each pipeline phase is a module with one entry point:
//! `read` (files to rows), `stage` (rows into SQLite), `map` (columns to asset
//! fields), `cleanse` (values), `inventory` (assets), `dependencies`
//! (asset_dependencies), `tech_debt` (support status and 6R readiness),
//! `export` (assets to files), `pipeline` (the phases
//! after the import, in order), `import` (the run that drives them as one
//! discovery flow), `sync` (a finished flow to the central PostgreSQL);
//! `catalogue` is the asset field table every phase uses; `db`, `tenant` and
//! `flow` hold the shared bookkeeping, `record_store` how a record's raw and
//! cleansed values are stored and read back, `phase` the shape every phase shares,
//! `schema_check` validates a database, `console` prints outcomes as tables,
//! `report` writes `intake report` (HTML, Markdown, PDF), `printable` keeps data's control
//! characters off the terminal. ARCHITECTURE.md draws the map.

// Every unsafe operation sits in a block whose SAFETY comment says why it
// holds (write_behind and no_copy_insert are the crate's FFI).
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod catalogue;
pub mod cleanse;
pub mod console;
pub mod consolidate;
pub mod db;
pub mod dependencies;
pub mod export;
pub mod flow;
pub mod import;
pub mod inventory;
pub mod json_entries;
pub mod map;
mod no_copy_insert;
pub mod phase;
pub mod phase_cost;
pub mod pipeline;
pub mod printable;
pub mod progress;
pub mod read;
pub mod record_store;
pub mod report;
pub mod schema_check;
pub mod stage;
pub mod sync;
pub mod synth;
pub mod tech_debt;
pub mod tenant;
mod work_queue;
mod write_behind;
