//! Every integration test of intake, in one binary so the heavy crates
//! (polars, postgres) are linked once. Each module drives the real `intake`
//! binary in a temporary work dir (`common`). Tests that need a service say
//! what is missing and how to start it: PostgreSQL for `sync`
//! (`bash .ci/postgres.sh`), Chromium and pdftotext for `report`
//! (`bash .ci/browser.sh`).

mod common;

mod consolidate;
mod dependencies;
mod dialects;
mod exit_codes;
mod export;
mod header_eval;
mod hostile_inputs;
mod import_csv;
mod import_workbook;
mod inventory;
mod machine_kinds;
mod mapping;
mod properties;
mod recovery;
mod reimport;
mod report;
mod schema;
mod storage;
mod sync;
mod tech_debt;
