//! `intake schema check|print`.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use intake::{console, db, schema_check};

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// Validate a database against the consolidated schema
    ///
    /// Checks that no v3_* table exists, that every required table and column is
    /// present, and that none of the removed tables and columns (is_mock,
    /// session_id, workflow_states, discovery_assets, ...) is there. Exits 1 and
    /// lists the problems when the schema is not valid, 3 when there is no
    /// database.
    ///
    /// Examples:
    ///   intake schema check --db intake.db
    ///   intake schema check --database-url "$DATABASE_URL"
    #[command(verbatim_doc_comment)]
    Check {
        /// Print the report as JSON on stdout
        #[arg(long)]
        json: bool,
        /// Check this central PostgreSQL instead of the local file
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Print the SQLite DDL of the schema this build writes
    ///
    /// Example:
    ///   intake schema print > schema.sql
    #[command(verbatim_doc_comment)]
    Print,
}

pub fn run(command: SchemaCommand, db_path: &Path) -> anyhow::Result<i32> {
    match command {
        SchemaCommand::Print => {
            super::print_text(db::SCHEMA_SQL)?;
            Ok(super::exit::SUCCESS)
        }
        SchemaCommand::Check { json, database_url } => {
            let result = match database_url {
                Some(url) => {
                    let config = match intake::sync::central_url::parse(&url) {
                        Ok(config) => config,
                        Err(error) => {
                            super::say(&format!("error: {error}"));
                            return Ok(super::exit::USAGE);
                        }
                    };
                    let target = intake::sync::central_url::target(&config);
                    let mut client = config
                        .connect(postgres::NoTls)
                        .map_err(intake::sync::CentralError)
                        .with_context(|| format!("connecting to {target}"))?;
                    schema_check::validate_central(&mut client)
                        .map_err(intake::sync::CentralError)
                        .with_context(|| format!("reading the schema of {target}"))?
                }
                None => {
                    let Some(conn) = super::open_existing(db_path)? else {
                        return Ok(super::exit::NOT_FOUND);
                    };
                    schema_check::validate_schema(&conn)
                        .with_context(|| format!("reading the schema of {}", db_path.display()))?
                }
            };
            if json {
                super::print_json(&result)?;
            } else {
                super::print_text(&console::schema_report(&result))?;
            }
            Ok(if result.is_valid() {
                super::exit::SUCCESS
            } else {
                super::exit::FAILED
            })
        }
    }
}
