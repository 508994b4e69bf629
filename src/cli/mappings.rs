//! `intake mappings`: review the column → field mappings of a flow, decide on
//! them, export the decisions as a rules file, list the asset fields.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use intake::map::memory;
use intake::map::review::{self, Decision, ReviewError};
use intake::pipeline::DecisionError;
use intake::{catalogue, console, db, flow, pipeline, tenant};

/// Review and decide the column → asset field mappings of a flow
///
/// Without a subcommand, shows the mapping table of the latest flow (or
/// --flow): source column, target field, confidence, match type, status and
/// sample values. Decisions record who made them and when, and are reused for
/// the same client on later imports (match type `learned`).
///
/// Examples:
///   intake mappings
///   intake mappings --flow 01935a2c --json
///   intake mappings approve "Srv Name" name
///   intake mappings reject "Owner" business_owner
///   intake mappings set "field3" mac_address
///   intake mappings set "Bemerkung" none
///   intake mappings export --output team-rules.toml
///   intake mappings fields
#[derive(Args, Debug)]
#[command(verbatim_doc_comment, args_conflicts_with_subcommands = false)]
pub struct MappingsArgs {
    /// A master or discovery flow id (or a unique prefix) [default: the latest]
    #[arg(long, value_name = "ID", global = true)]
    pub flow: Option<String>,

    /// Print JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Who decides (recorded as approved_by) [default: $USER]
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    #[command(subcommand)]
    pub action: Option<MappingsAction>,
}

#[derive(Subcommand, Debug)]
pub enum MappingsAction {
    /// Approve the suggested target of SOURCE (only where it is TARGET, if given)
    Approve {
        source: String,
        target: Option<String>,
    },
    /// Reject the suggested target of SOURCE (only where it is TARGET, if given)
    Reject {
        source: String,
        target: Option<String>,
    },
    /// Map SOURCE to TARGET (an asset field, or "none" to leave it unmapped)
    Set { source: String, target: String },
    /// Write this client's decisions as a rules file for `import --rules`
    Export {
        /// Client whose decisions to export [default: the flow's client]
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// Write here instead of stdout
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the asset fields a column can map to
    Fields,
}

use super::exit::{NOT_FOUND, SUCCESS};

pub fn run(args: MappingsArgs, db_path: &Path) -> anyhow::Result<i32> {
    if let Some(MappingsAction::Fields) = args.action {
        if args.json {
            super::print_json(catalogue::FIELDS)?;
        } else {
            super::print_text(&console::fields_table())?;
        }
        return Ok(SUCCESS);
    }
    if super::open_existing(db_path)?.is_none() {
        return Ok(NOT_FOUND);
    }
    let conn = db::open(db_path)?;
    let flow = match flow::find(&conn, args.flow.as_deref()) {
        Ok(flow) => flow,
        Err(error) => {
            super::say(&format!("error: {error}"));
            return Ok(NOT_FOUND);
        }
    };
    let user = args.user.clone().unwrap_or_else(tenant::default_user);
    let decision = match args.action {
        None | Some(MappingsAction::Fields) => None,
        Some(MappingsAction::Approve { source, target }) => {
            Some((source, Decision::Approve { target }))
        }
        Some(MappingsAction::Reject { source, target }) => {
            Some((source, Decision::Reject { target }))
        }
        Some(MappingsAction::Set { source, target }) => {
            let target = (!matches!(
                target.to_ascii_lowercase().as_str(),
                "none" | "ignore" | "-"
            ))
            .then_some(target);
            Some((source, Decision::Set { target }))
        }
        Some(MappingsAction::Export { client, output }) => {
            let Some(text) = memory::export_rules_of(&conn, client.as_deref(), &flow)? else {
                super::say(&format!(
                    "error: no client named '{}' in this database",
                    client.unwrap_or_default()
                ));
                return Ok(NOT_FOUND);
            };
            match output {
                Some(path) => std::fs::write(&path, text)?,
                None => super::print_text(&text)?,
            }
            return Ok(SUCCESS);
        }
    };
    if let Some((source, decision)) = decision {
        // A decision writes: one writer at a time, as for imports.
        let _lock = db::WriterLock::acquire(db_path)?;
        match pipeline::apply_mapping_decision(&conn, &flow, &source, &decision, &user) {
            Ok((changed, phases)) => {
                super::say(&format!(
                    "{changed} mapping(s) of '{source}' updated in flow {}",
                    flow.master_flow_id
                ));
                if let Some(inventory) = phases.inventory {
                    super::say(&format!(
                        "cleansing and inventory re-run: {} assets created, {} updated, {} unchanged",
                        inventory.created, inventory.updated, inventory.unchanged
                    ));
                }
            }
            Err(DecisionError::Review(
                error @ (ReviewError::UnknownSource { .. } | ReviewError::UnknownField(_)),
            )) => {
                super::say(&format!("error: {error}"));
                return Ok(NOT_FOUND);
            }
            Err(error) => return Err(error.into()),
        }
    }
    let rows = review::list(&conn, &flow)?;
    if args.json {
        super::print_json(&serde_json::json!({
            "master_flow_id": flow.master_flow_id,
            "discovery_flow_id": flow.discovery_flow_id,
            "mappings": rows,
        }))?;
    } else {
        super::print_text(&console::mapping_table(&flow.master_flow_id, &rows))?;
    }
    Ok(SUCCESS)
}
