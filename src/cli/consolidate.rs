//! `intake consolidate`: bring a legacy platform database into the
//! consolidated schema.

use std::path::PathBuf;

use clap::Args;

use intake::consolidate::{self, ConsolidateError, ConsolidateRequest};

/// Bring a legacy platform PostgreSQL into the consolidated schema, losing nothing
///
/// Finds what the seeds' migration plan left behind (v3_ tables,
/// discovery_assets, data_import_sessions and the other removed tables,
/// old column names, is_mock, session_id, rows without a master flow),
/// then in one transaction: renames and adds columns, moves is_mock rows to
/// a test tenant, merges v3 rows into the original tables and
/// discovery_assets into assets (one asset per machine), turns
/// data_quality_issues into validation_errors, creates the master flows,
/// normalises values a CHECK refuses (the original kept in
/// custom_attributes), and moves every legacy table and dropped column to an
/// archive schema named with the date. Every legacy row is accounted for and
/// the schema checked before COMMIT; otherwise nothing changes. A second run
/// finds nothing to do.
///
/// Examples:
///   DATABASE_URL=postgres://admin@db:5432/platform intake consolidate --dry-run
///   intake consolidate --report consolidation.md
///   intake consolidate --json | jq '.steps[] | select(.rows > 0)'
///
/// Exit codes: 0 consolidated (or planned, or nothing to do), 1 a database
/// error (rolled back), 2 usage (no database URL, a malformed one), 4
/// verification failed (rolled back).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ConsolidateArgs {
    /// The platform database [default: $DATABASE_URL]
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Run every step and report it, then roll it all back
    #[arg(long)]
    pub dry_run: bool,

    /// Print the outcome as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Also write the report to FILE (Markdown; HTML when FILE ends in .html)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub fn run(args: ConsolidateArgs, quiet: bool) -> anyhow::Result<i32> {
    let Some(url) = args.database_url.as_deref() else {
        super::say("error: no platform database: set DATABASE_URL or pass --database-url");
        return Ok(super::exit::USAGE);
    };
    let request = ConsolidateRequest {
        database_url: url,
        dry_run: args.dry_run,
    };
    let outcome = match consolidate::run(&request) {
        Ok(outcome) => outcome,
        Err(error) => {
            let code = match &error {
                ConsolidateError::Url(_) => super::exit::USAGE,
                ConsolidateError::Verification(_) => super::exit::REFUSED,
                _ => super::exit::FAILED,
            };
            if args.json {
                super::print_json(
                    &serde_json::json!({ "outcome": "failed", "error": error.to_string() }),
                )?;
            }
            super::say(&format!("error: {error}"));
            return Ok(code);
        }
    };
    let markdown = outcome.markdown();
    if let Some(path) = &args.report {
        let is_html = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        let text = if is_html {
            format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Consolidation of {}</title></head><body><pre>{}</pre></body></html>\n",
                intake::report::escape(&outcome.target),
                intake::report::escape(&markdown)
            )
        } else {
            markdown.clone()
        };
        intake::export::Destination::of(path).write_stream(|out| {
            out.write_all(text.as_bytes())
                .map_err(|source| intake::export::ExportError::Io {
                    path: path.clone(),
                    source,
                })
        })?;
    }
    if args.json {
        super::print_json(&outcome)?;
    } else {
        super::print_text(&markdown)?;
    }
    if !quiet {
        super::say(&match outcome.outcome {
            "nothing_to_do" => format!("{}: nothing to consolidate", outcome.target),
            "planned" => format!(
                "{}: {} step(s) planned (dry run: everything was rolled back)",
                outcome.target,
                outcome.steps.len()
            ),
            _ => format!(
                "{}: consolidated in {:.1}s; legacy tables and columns are in {}",
                outcome.target,
                outcome.seconds,
                outcome.archive_schema.as_deref().unwrap_or("-")
            ),
        });
    }
    Ok(super::exit::SUCCESS)
}
