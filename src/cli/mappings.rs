//! `intake mappings`: review the column → field mappings of a flow, decide on
//! them, export the decisions as a rules file, list the asset fields.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use intake::map::decision::{self, Decision, Scope};
use intake::map::{memory, review};
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
///   intake mappings --status review
///   intake mappings --file RVTools.xlsx --status unmapped
///   intake mappings --flow 01935a2c --json
///   intake mappings approve "Srv Name" name
///   intake mappings reject "Owner" business_owner
///   intake mappings set "field3" mac_address
///   intake mappings set "Bemerkung" none
///   intake mappings set Host virtualization_host --file RVTools.xlsx --sheet vInfo --dry-run
///   intake mappings undo
///   intake mappings export --output team-rules.toml
///   intake mappings fields
///
/// A decision applies to every import of the flow that has the column. When
/// the column plays different roles there (RVTools' "Host" names the VM's
/// host in vInfo and the host itself in vHost), it is refused: name the
/// import with --file and/or --sheet, or add --all. Before anything changes,
/// the plan is printed: the mappings it changes, the columns it takes a
/// field from, and the rows whose values change, with examples; --dry-run
/// stops there. `undo` reverts the last decision of the flow exactly, the
/// mappings and the assets.
///
/// Exit codes: 0 done (or planned), 2 a column playing several roles without
/// --file/--sheet/--all, 3 no database, flow, column, field or decision to
/// undo (with the nearest names), 1 anything else.
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

    /// Show only the columns in this state
    #[arg(long, value_name = "STATE", value_parser = clap::builder::PossibleValuesParser::new(review::STATES))]
    pub status: Option<String>,

    /// Show only the columns of this file (its name as imported) or sheet
    #[arg(long = "file", value_name = "NAME")]
    pub only_file: Option<String>,

    #[command(subcommand)]
    pub action: Option<MappingsAction>,
}

/// Which imports a decision applies to, and whether to stop at the plan.
#[derive(Args, Debug, Clone)]
pub struct DecisionArgs {
    /// Only the imports of this file (its name as imported)
    #[arg(long, value_name = "NAME")]
    pub file: Option<String>,
    /// Only the imports of this sheet (of a workbook)
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Every import that has the column, whatever role it plays there
    #[arg(long)]
    pub all: bool,
    /// Print what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum MappingsAction {
    /// Approve the suggested target of SOURCE (only where it is TARGET, if given)
    Approve {
        source: String,
        target: Option<String>,
        #[command(flatten)]
        scope: DecisionArgs,
    },
    /// Reject the suggested target of SOURCE (only where it is TARGET, if given)
    Reject {
        source: String,
        target: Option<String>,
        #[command(flatten)]
        scope: DecisionArgs,
    },
    /// Map SOURCE to TARGET (an asset field, or "none" to leave it unmapped)
    Set {
        source: String,
        target: String,
        #[command(flatten)]
        scope: DecisionArgs,
    },
    /// Revert the flow's last approve, reject or set: mappings and assets
    Undo {
        /// Print what would change, change nothing
        #[arg(long)]
        dry_run: bool,
    },
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

use super::exit::{NOT_FOUND, SUCCESS, USAGE};

/// The exit code of a decision that was refused, its reason said.
fn refused(error: &decision::DecisionError) -> i32 {
    super::say(&format!("error: {error}"));
    match error {
        decision::DecisionError::Ambiguous { .. } => USAGE,
        decision::DecisionError::Sql(_) => super::exit::FAILED,
        _ => NOT_FOUND,
    }
}

/// `intake mappings undo`: the plan, then (without --dry-run) the undo.
fn undo(
    conn: &rusqlite::Connection,
    db_path: &Path,
    flow: &flow::FlowIds,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let _lock = db::WriterLock::acquire(db_path)?;
    let plan = match decision::plan_undo(conn, flow) {
        Ok(plan) => plan,
        Err(error) => return Ok(refused(&error)),
    };
    if json && dry_run {
        super::print_json(&plan)?;
        return Ok(SUCCESS);
    }
    super::say(plan.describe().trim_end());
    if dry_run {
        super::say("dry run: nothing was changed");
        return Ok(SUCCESS);
    }
    let phases = match pipeline::undo_mapping_decision(conn, flow, &plan) {
        Ok(phases) => phases,
        Err(DecisionError::Decision(error)) => return Ok(refused(&error)),
        Err(error) => return Err(error.into()),
    };
    super::say(&format!("undone: `{}`", plan.command));
    if let Some(inventory) = phases.inventory {
        super::say(&format!(
            "cleansing and inventory re-run: {} assets created, {} updated, {} unchanged",
            inventory.created, inventory.updated, inventory.unchanged
        ));
    }
    if json {
        super::print_json(&plan)?;
    }
    Ok(SUCCESS)
}

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
    let scope_of = |a: &DecisionArgs| Scope {
        file: a.file.clone(),
        sheet: a.sheet.clone(),
        all: a.all,
    };
    let decision = match args.action {
        None | Some(MappingsAction::Fields) => None,
        Some(MappingsAction::Approve {
            source,
            target,
            scope,
        }) => Some((source, Decision::Approve { target }, scope)),
        Some(MappingsAction::Reject {
            source,
            target,
            scope,
        }) => Some((source, Decision::Reject { target }, scope)),
        Some(MappingsAction::Set {
            source,
            target,
            scope,
        }) => {
            let target = (!matches!(
                target.to_ascii_lowercase().as_str(),
                "none" | "ignore" | "-"
            ))
            .then_some(target);
            Some((source, Decision::Set { target }, scope))
        }
        Some(MappingsAction::Undo { dry_run }) => {
            return undo(&conn, db_path, &flow, dry_run, args.json);
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
    if let Some((source, decision, scope)) = decision {
        // A decision writes: one writer at a time, as for imports.
        let _lock = db::WriterLock::acquire(db_path)?;
        let mut plan = match decision::plan(&conn, &flow, &source, &decision, &scope_of(&scope)) {
            Ok(plan) => plan,
            Err(error) => return Ok(refused(&error)),
        };
        decision::preview(&conn, &mut plan)?;
        if args.json && scope.dry_run {
            super::print_json(&plan)?;
            return Ok(SUCCESS);
        }
        super::say(plan.describe().trim_end());
        if scope.dry_run {
            super::say("dry run: nothing was changed");
            return Ok(SUCCESS);
        }
        match pipeline::apply_mapping_decision(&conn, &flow, &plan, &user) {
            Ok((_, phases)) => {
                super::say(&format!(
                    "{} mapping(s) changed in flow {}; `intake mappings undo` reverts it",
                    plan.changes.len(),
                    flow.master_flow_id
                ));
                if let Some(inventory) = phases.inventory {
                    super::say(&format!(
                        "cleansing and inventory re-run: {} assets created, {} updated, {} unchanged",
                        inventory.created, inventory.updated, inventory.unchanged
                    ));
                }
            }
            Err(DecisionError::Decision(error)) => return Ok(refused(&error)),
            Err(error) => return Err(error.into()),
        }
    }
    let mut rows = review::list(&conn, &flow)?;
    if let Some(state) = &args.status {
        rows.retain(|r| r.state == state.as_str());
    }
    if let Some(wanted) = &args.only_file {
        rows.retain(|r| {
            decision::file_matches(&r.file, wanted)
                || r.sheet
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(wanted))
        });
    }
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
