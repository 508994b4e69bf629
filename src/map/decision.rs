//! A person's decision on the mappings of one source column (`intake
//! mappings approve|reject|set`) and its undo. A decision is planned before
//! anything is written: which imports it touches (scoped by file and sheet;
//! a column that plays different roles in several imports is refused unless
//! the user names one or says `--all`), the mapping rows it changes, the
//! columns it takes a field from, and what the cleansed values of the rows
//! become (`preview`). Applying it logs the rows before and after in
//! `mapping_decisions`, so `undo` puts back exactly what it changed.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalogue;
use crate::cleanse::Cleanser;
use crate::db;
use crate::flow::FlowIds;

/// What a decision does to a column's mapping.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Approve the current target (optionally only where it is `target`).
    Approve {
        target: Option<String>,
    },
    Reject {
        target: Option<String>,
    },
    /// Map to `target`, or leave unmapped when None.
    Set {
        target: Option<String>,
    },
}

/// Which imports of the flow a decision applies to.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The file's name (as imported, or its last path component).
    pub file: Option<String>,
    /// The sheet's name, for a workbook.
    pub sheet: Option<String>,
    /// Every import that has the column, whatever role it plays there.
    pub all: bool,
}

/// Why a decision could not be planned or undone. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("flow {flow} has no column '{column}'{scope}{target}; {hint}")]
    UnknownColumn {
        flow: String,
        column: String,
        scope: String,
        target: String,
        hint: String,
    },
    #[error("no import of flow {flow} is {wanted}; its files and sheets are: {known}")]
    UnknownScope {
        flow: String,
        wanted: String,
        known: String,
    },
    #[error("'{field}' is not an asset field; {hint} (use \"none\" to leave a column unmapped)")]
    UnknownField { field: String, hint: String },
    #[error("column '{column}' plays different roles in {} imports:\n  {}\nName one with --file NAME and/or --sheet NAME, or add --all to change every one of them", .roles.len(), .roles.join("\n  "))]
    Ambiguous { column: String, roles: Vec<String> },
    #[error("flow {0} has no mapping decision to undo")]
    NothingToUndo(String),
    #[error("the last decision ({command}, {decided_at}) cannot be undone exactly: the mapping of '{column}' in {table} changed since. Set it back with `intake mappings set`")]
    ChangedSince {
        command: String,
        decided_at: String,
        column: String,
        table: String,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// One mapping row as a decision changes it.
#[derive(Debug, Clone, Serialize)]
pub struct MappingChange {
    pub id: String,
    pub data_import_id: String,
    pub file: String,
    pub sheet: Option<String>,
    pub column: String,
    pub from_target: Option<String>,
    pub from_status: String,
    pub to_target: Option<String>,
    pub to_status: String,
    /// Set when this column loses its field to the decided one (one column
    /// per field within an import): the column that takes it.
    pub taken_by: Option<String>,
}

impl MappingChange {
    /// "RVTools.xlsx [vInfo]: 'Host' → name (approved), was virtualization_host (approved)".
    pub fn describe(&self) -> String {
        let table = crate::read::table_label(&self.file, self.sheet.as_deref());
        let target = |t: &Option<String>| t.clone().unwrap_or_else(|| "(none)".into());
        match &self.taken_by {
            Some(by) => format!(
                "{table}: '{}' gives up {} to '{by}' ({} again)",
                self.column,
                target(&self.from_target),
                self.to_status
            ),
            None => format!(
                "{table}: '{}' → {} ({}), was {} ({})",
                self.column,
                target(&self.to_target),
                self.to_status,
                target(&self.from_target),
                self.from_status
            ),
        }
    }
}

/// What the rows of one import become under the decision.
#[derive(Debug, Clone, Serialize)]
pub struct ValueChange {
    pub file: String,
    pub sheet: Option<String>,
    pub rows: u64,
    /// Rows whose cleansed values change.
    pub rows_changed: u64,
    /// Rows whose value of each field changes.
    pub fields: BTreeMap<String, u64>,
    /// A few of them: "vm-app01: name 'vm-app01' → 'esx01'".
    pub examples: Vec<String>,
}

/// A decision planned, not yet written.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionPlan {
    pub master_flow_id: String,
    /// The command as the user would type it.
    pub command: String,
    pub changes: Vec<MappingChange>,
    /// Filled by `preview`.
    pub values: Vec<ValueChange>,
    /// A `set` (match type manual, transforms for the new field).
    #[serde(skip)]
    manual: bool,
}

impl DecisionPlan {
    /// The plan in words, for a person to read before it is applied.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{}: {} mapping(s) change in flow {}\n",
            self.command,
            self.changes.len(),
            self.master_flow_id
        );
        for change in &self.changes {
            out.push_str(&format!("  {}\n", change.describe()));
        }
        for v in &self.values {
            let table = crate::read::table_label(&v.file, v.sheet.as_deref());
            if v.rows_changed == 0 {
                out.push_str(&format!(
                    "  {table}: no value of its {} rows changes\n",
                    v.rows
                ));
                continue;
            }
            let fields: Vec<String> = v.fields.iter().map(|(f, n)| format!("{f} ({n})")).collect();
            out.push_str(&format!(
                "  {table}: {} of {} rows change: {}\n",
                v.rows_changed,
                v.rows,
                fields.join(", ")
            ));
            for example in &v.examples {
                out.push_str(&format!("    {example}\n"));
            }
        }
        out
    }
}

/// A mapping row with its import, as read for planning.
struct Candidate {
    id: String,
    data_import_id: String,
    file: String,
    sheet: Option<String>,
    column: String,
    target: Option<String>,
    status: String,
    role: Option<String>,
}

/// Plans `decision` on column `column` of the flow within `scope`.
pub fn plan(
    conn: &Connection,
    ids: &FlowIds,
    column: &str,
    decision: &Decision,
    scope: &Scope,
) -> Result<DecisionPlan, DecisionError> {
    if let Decision::Set { target: Some(t) } = decision {
        if catalogue::field(t).is_none() {
            let near = nearest(t, catalogue::FIELDS.iter().map(|f| f.name));
            return Err(DecisionError::UnknownField {
                field: t.clone(),
                hint: if near.is_empty() {
                    "`intake mappings fields` lists them".into()
                } else {
                    format!("did you mean {}?", near.join(" or "))
                },
            });
        }
    }
    let all = candidates(conn, ids)?;
    let in_scope: Vec<&Candidate> = all.iter().filter(|c| scope_matches(scope, c)).collect();
    if in_scope.is_empty() && (scope.file.is_some() || scope.sheet.is_some()) {
        return Err(unknown_scope(ids, scope, &all));
    }
    let wanted_target = match decision {
        Decision::Approve { target } | Decision::Reject { target } => target.clone(),
        Decision::Set { .. } => None,
    };
    let matching: Vec<&Candidate> = in_scope
        .iter()
        .copied()
        .filter(|c| c.column == column)
        .filter(|c| wanted_target.is_none() || c.target == wanted_target)
        .collect();
    if matching.is_empty() {
        return Err(unknown_column(ids, column, scope, wanted_target, &in_scope));
    }
    let narrowed = scope.all || scope.file.is_some() || scope.sheet.is_some();
    if !narrowed {
        let role = |c: &Candidate| {
            (
                c.target.clone().unwrap_or_else(|| "(none)".into()),
                c.role.clone().unwrap_or_else(|| "primary".into()),
            )
        };
        let mut roles: Vec<(String, String)> = matching.iter().map(|c| role(c)).collect();
        roles.sort();
        roles.dedup();
        if roles.len() > 1 {
            return Err(DecisionError::Ambiguous {
                column: column.to_string(),
                roles: matching
                    .iter()
                    .map(|c| {
                        let (target, table_role) = role(c);
                        format!(
                            "{}: maps to {target} (a {table_role} table)",
                            crate::read::table_label(&c.file, c.sheet.as_deref())
                        )
                    })
                    .collect(),
            });
        }
    }
    let mut changes = Vec::new();
    for c in &matching {
        let to_target = match decision {
            Decision::Set { target } => target.clone(),
            _ => c.target.clone(),
        };
        let to_status = match decision {
            Decision::Approve { .. } if to_target.is_some() => "approved",
            Decision::Approve { .. } => "ignored",
            Decision::Reject { .. } => "rejected",
            Decision::Set { target: Some(_) } => "approved",
            Decision::Set { target: None } => "ignored",
        };
        if to_status == "approved" {
            // One column per field within an import: whoever held it is
            // suggested again.
            for other in all.iter().filter(|o| {
                o.data_import_id == c.data_import_id
                    && o.id != c.id
                    && o.status == "approved"
                    && o.target == to_target
            }) {
                changes.push(change_of(
                    other,
                    other.target.clone(),
                    "suggested",
                    Some(column),
                ));
            }
        }
        changes.push(change_of(c, to_target, to_status, None));
    }
    Ok(DecisionPlan {
        master_flow_id: ids.master_flow_id.clone(),
        command: command_text(column, decision, scope),
        changes,
        values: Vec::new(),
        manual: matches!(decision, Decision::Set { .. }),
    })
}

fn change_of(
    c: &Candidate,
    to_target: Option<String>,
    to_status: &str,
    taken_by: Option<&str>,
) -> MappingChange {
    MappingChange {
        id: c.id.clone(),
        data_import_id: c.data_import_id.clone(),
        file: c.file.clone(),
        sheet: c.sheet.clone(),
        column: c.column.clone(),
        from_target: c.target.clone(),
        from_status: c.status.clone(),
        to_target,
        to_status: to_status.to_string(),
        taken_by: taken_by.map(str::to_string),
    }
}

fn command_text(column: &str, decision: &Decision, scope: &Scope) -> String {
    let quoted = |s: &str| {
        if s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.is_empty() {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    let mut out = match decision {
        Decision::Approve { target } => format!(
            "intake mappings approve {}{}",
            quoted(column),
            target
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default()
        ),
        Decision::Reject { target } => format!(
            "intake mappings reject {}{}",
            quoted(column),
            target
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default()
        ),
        Decision::Set { target } => format!(
            "intake mappings set {} {}",
            quoted(column),
            target.as_deref().unwrap_or("none")
        ),
    };
    if let Some(file) = &scope.file {
        out.push_str(&format!(" --file {}", quoted(file)));
    }
    if let Some(sheet) = &scope.sheet {
        out.push_str(&format!(" --sheet {}", quoted(sheet)));
    }
    if scope.all {
        out.push_str(" --all");
    }
    out
}

/// Every mapping row of the flow with its import, in file and column order.
fn candidates(conn: &Connection, ids: &FlowIds) -> rusqlite::Result<Vec<Candidate>> {
    conn.prepare(
        "SELECT m.id, m.data_import_id, d.filename, d.sheet_name, m.source_field, m.target_field,
                m.status, json_extract(d.read_metadata, '$.layout.role')
         FROM import_field_mappings m JOIN data_imports d ON d.id = m.data_import_id
         WHERE m.master_flow_id = ?1
         ORDER BY d.created_at, d.id, m.created_at, m.rowid",
    )?
    .query_map([&ids.master_flow_id], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            data_import_id: r.get(1)?,
            file: r.get(2)?,
            sheet: r.get(3)?,
            column: r.get(4)?,
            target: r.get(5)?,
            status: r.get(6)?,
            role: r.get(7)?,
        })
    })?
    .collect()
}

/// Whether an import's `file` (as imported) is the one a user named: the
/// path as given, or its file name in any case.
pub fn file_matches(file: &str, wanted: &str) -> bool {
    let base = std::path::Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file == wanted || base.eq_ignore_ascii_case(wanted)
}

fn scope_matches(scope: &Scope, c: &Candidate) -> bool {
    let file_ok = scope
        .file
        .as_deref()
        .is_none_or(|wanted| file_matches(&c.file, wanted));
    let sheet_ok = scope.sheet.as_deref().is_none_or(|wanted| {
        c.sheet
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case(wanted.trim()))
    });
    file_ok && sheet_ok
}

fn unknown_scope(ids: &FlowIds, scope: &Scope, all: &[Candidate]) -> DecisionError {
    let mut known: Vec<String> = all
        .iter()
        .map(|c| crate::read::table_label(&c.file, c.sheet.as_deref()))
        .collect();
    known.dedup();
    let wanted = match (&scope.file, &scope.sheet) {
        (Some(f), Some(s)) => format!("file '{f}' sheet '{s}'"),
        (Some(f), None) => format!("file '{f}'"),
        (None, Some(s)) => format!("sheet '{s}'"),
        (None, None) => "in scope".into(),
    };
    DecisionError::UnknownScope {
        flow: ids.master_flow_id.clone(),
        wanted,
        known: known.join(", "),
    }
}

/// The error for a column not found, with the nearest names ("did you mean").
fn unknown_column(
    ids: &FlowIds,
    column: &str,
    scope: &Scope,
    wanted_target: Option<String>,
    in_scope: &[&Candidate],
) -> DecisionError {
    let names: Vec<&str> = in_scope.iter().map(|c| c.column.as_str()).collect();
    let near = nearest(column, names.iter().copied());
    let hint = if wanted_target.is_some() && names.contains(&column) {
        "`intake mappings` shows where it maps".to_string()
    } else if near.is_empty() {
        "`intake mappings` lists the columns of this flow".to_string()
    } else {
        format!("did you mean {}?", near.join(" or "))
    };
    let scope_text = match (&scope.file, &scope.sheet) {
        (None, None) => String::new(),
        _ => format!(
            " in {}",
            command_text("", &Decision::Set { target: None }, scope)
                .split(" --")
                .skip(1)
                .map(|s| format!("--{s}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    DecisionError::UnknownColumn {
        flow: ids.master_flow_id.clone(),
        column: column.to_string(),
        scope: scope_text,
        target: wanted_target
            .map(|t| format!(" mapped to {t}"))
            .unwrap_or_default(),
        hint,
    }
}

/// Up to three of `names` nearest to `wanted` (Jaro-Winkler, case and
/// surrounding spaces ignored), quoted, nearest first.
fn nearest<'n>(wanted: &str, names: impl Iterator<Item = &'n str>) -> Vec<String> {
    let wanted = wanted.trim().to_lowercase();
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.dedup();
    let mut near: Vec<(f64, &str)> = names
        .into_iter()
        .map(|n| (strsim::jaro_winkler(&wanted, &n.trim().to_lowercase()), n))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    near.into_iter()
        .take(3)
        .map(|(_, n)| format!("'{n}'"))
        .collect()
}

/// What the rows of each import the plan touches would become: each row is
/// cleansed with the mappings as they are and as they would be, and the
/// fields compared. Nothing is written (the plan is applied in a savepoint
/// that is rolled back).
pub fn preview(conn: &Connection, plan: &mut DecisionPlan) -> Result<(), DecisionError> {
    let mut imports: Vec<(String, String, Option<String>)> = Vec::new();
    for c in &plan.changes {
        if !imports.iter().any(|(id, _, _)| *id == c.data_import_id) {
            imports.push((c.data_import_id.clone(), c.file.clone(), c.sheet.clone()));
        }
    }
    let before: Vec<Cleanser> = imports
        .iter()
        .map(|(id, _, _)| Cleanser::for_import(conn, id))
        .collect::<rusqlite::Result<_>>()?;
    conn.execute_batch("SAVEPOINT intake_preview")?;
    let after = write_changes(conn, plan, "preview", &db::now()).and_then(|()| {
        imports
            .iter()
            .map(|(id, _, _)| Cleanser::for_import(conn, id))
            .collect::<rusqlite::Result<Vec<_>>>()
    });
    conn.execute_batch("ROLLBACK TO intake_preview; RELEASE intake_preview")?;
    let after = after?;
    plan.values.clear();
    for (((id, file, sheet), old), new) in imports.iter().zip(&before).zip(&after) {
        let mut change = ValueChange {
            file: file.clone(),
            sheet: sheet.clone(),
            rows: 0,
            rows_changed: 0,
            fields: BTreeMap::new(),
            examples: Vec::new(),
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT raw_values FROM {} ORDER BY record_index",
            crate::record_store::records_of("?1")
        ))?;
        let keys = crate::record_store::ColumnKeys::of_import(conn, id)?;
        let mut rows = stmt.query([id])?;
        while let Some(row) = rows.next()? {
            let stored: String = row.get(0)?;
            let raw = keys.object(&stored);
            change.rows += 1;
            let was = old.cleanse_json(&raw);
            let will = new.cleanse_json(&raw);
            if was.cleansed_data == will.cleansed_data && was.is_valid == will.is_valid {
                continue;
            }
            change.rows_changed += 1;
            let parse = |text: &str| -> Map<String, Value> {
                serde_json::from_str(text).unwrap_or_default()
            };
            let (was_fields, will_fields) = (parse(&was.cleansed_data), parse(&will.cleansed_data));
            let label = was_fields
                .get("name")
                .or_else(|| was_fields.get("hostname"))
                .or_else(|| will_fields.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("(unnamed)")
                .to_string();
            let mut keys: Vec<&String> = was_fields.keys().chain(will_fields.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (a, b) = (was_fields.get(key), will_fields.get(key));
                if a == b || key.starts_with('_') {
                    continue;
                }
                *change.fields.entry(key.clone()).or_default() += 1;
                if change.examples.len() < 5 {
                    let shown = |v: Option<&Value>| match v {
                        None | Some(Value::Null) => "(empty)".to_string(),
                        Some(Value::String(s)) => format!("'{s}'"),
                        Some(other) => other.to_string(),
                    };
                    change
                        .examples
                        .push(format!("{label}: {key} {} → {}", shown(a), shown(b)));
                }
            }
        }
        plan.values.push(change);
    }
    Ok(())
}

/// The mapping columns a decision changes and `undo` puts back.
const KEPT: &str = "target_field, status, match_type, confidence_score, transformation_rules, evidence, approved_by, approved_at, updated_at";

/// The rows of `ids` as JSON objects of the `KEPT` columns, by id.
fn snapshot(conn: &Connection, ids: &[&str]) -> rusqlite::Result<Value> {
    let mut out = Map::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT json_object('id', id, {}) FROM import_field_mappings WHERE id = ?1",
        KEPT.split(", ")
            .map(|c| format!("'{c}', {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    for id in ids {
        if let Some(text) = stmt.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            out.insert(
                (*id).to_string(),
                serde_json::from_str(&text).unwrap_or_default(),
            );
        }
    }
    Ok(Value::Object(out))
}

/// Writes the plan's mapping changes (inside the caller's transaction).
fn write_changes(
    conn: &Connection,
    plan: &DecisionPlan,
    user: &str,
    now: &str,
) -> rusqlite::Result<()> {
    for change in &plan.changes {
        if change.taken_by.is_some() {
            conn.execute(
                "UPDATE import_field_mappings SET status = 'suggested', approved_by = NULL, approved_at = NULL,
                   updated_at = ?2 WHERE id = ?1",
                params![change.id, now],
            )?;
            continue;
        }
        let manual = plan.manual;
        let match_type_sql = if manual { "'manual'" } else { "match_type" };
        // A new target gets the transforms its field needs for this import's layout.
        let new_rules = match &change.to_target {
            Some(target) if manual && change.to_target != change.from_target => {
                let (columns, layout) = crate::stage::tables::shape(conn, &change.data_import_id)?;
                let field = catalogue::field(target).expect("checked when planned");
                Some(super::suggest::rules_for(field, &change.column, layout, &columns).to_string())
            }
            None if manual => Some("{}".to_string()),
            _ => None,
        };
        conn.execute(
            &format!(
                "UPDATE import_field_mappings SET target_field = ?2, status = ?3, match_type = {match_type_sql},
                   confidence_score = CASE WHEN {match_type_sql} = 'manual' THEN 1.0 ELSE confidence_score END,
                   transformation_rules = coalesce(?7, transformation_rules),
                   evidence = json_insert(evidence, '$[#]', ?6),
                   approved_by = ?4, approved_at = ?5, updated_at = ?5
                 WHERE id = ?1"
            ),
            params![
                change.id,
                change.to_target,
                change.to_status,
                user,
                now,
                format!("{} by {user} on {now}", change.to_status),
                new_rules
            ],
        )?;
    }
    Ok(())
}

/// Writes the plan, logged for `undo`; returns the decision's id. The
/// caller re-runs the phases, then `record_created_assets`.
pub fn apply(
    conn: &Connection,
    ids: &FlowIds,
    plan: &DecisionPlan,
    user: &str,
) -> Result<String, DecisionError> {
    let now = db::now();
    let changed: Vec<&str> = plan.changes.iter().map(|c| c.id.as_str()).collect();
    let tx = conn.unchecked_transaction()?;
    let before = snapshot(&tx, &changed)?;
    write_changes(&tx, plan, user, &now)?;
    let after = snapshot(&tx, &changed)?;
    let id = db::new_id();
    let last_asset: i64 = tx.query_row("SELECT coalesce(max(rowid), 0) FROM assets", [], |r| {
        r.get(0)
    })?;
    tx.execute(
        "INSERT INTO mapping_decisions (id, master_flow_id, decided_by, decided_at, command, before, after, last_asset_rowid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            ids.master_flow_id,
            user,
            now,
            plan.command,
            before.to_string(),
            after.to_string(),
            last_asset
        ],
    )?;
    super::record_field_mappings(&tx, ids)?;
    tx.commit()?;
    Ok(id)
}

/// Records the assets the decision's re-run created (its undo removes them).
pub fn record_created_assets(conn: &Connection, decision_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE mapping_decisions SET created_assets = (
           SELECT json_group_array(a.id) FROM assets a, mapping_decisions d
           WHERE d.id = ?1 AND a.rowid > d.last_asset_rowid
             AND a.engagement_id = (SELECT engagement_id FROM discovery_flows WHERE master_flow_id = d.master_flow_id))
         WHERE id = ?1",
        [decision_id],
    )?;
    Ok(())
}

/// The last decision of a flow not undone yet, as `undo` would revert it.
#[derive(Debug, Clone, Serialize)]
pub struct UndoPlan {
    pub decision_id: String,
    pub command: String,
    pub decided_by: String,
    pub decided_at: String,
    /// The mappings as they will be again.
    pub changes: Vec<MappingChange>,
    /// Assets the decision's re-run created, removed by the undo.
    pub created_assets: Vec<String>,
}

impl UndoPlan {
    pub fn describe(&self) -> String {
        let mut out = format!(
            "undo of `{}` ({} by {}): {} mapping(s) go back",
            self.command,
            self.decided_at,
            self.decided_by,
            self.changes.len()
        );
        if !self.created_assets.is_empty() {
            out.push_str(&format!(
                ", {} asset(s) it created are removed",
                self.created_assets.len()
            ));
        }
        out.push('\n');
        for change in &self.changes {
            out.push_str(&format!("  {}\n", change.describe()));
        }
        out
    }
}

/// Plans the undo of the flow's last decision; refused when its mappings
/// changed since (then it could not be undone exactly).
pub fn plan_undo(conn: &Connection, ids: &FlowIds) -> Result<UndoPlan, DecisionError> {
    let last: Option<(String, String, String, String, String, String, String)> = conn
        .query_row(
            "SELECT id, command, decided_by, decided_at, before, after, created_assets FROM mapping_decisions
             WHERE master_flow_id = ?1 AND undone_at IS NULL ORDER BY decided_at DESC, rowid DESC LIMIT 1",
            [&ids.master_flow_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .optional()?;
    let Some((decision_id, command, decided_by, decided_at, before, after, created)) = last else {
        return Err(DecisionError::NothingToUndo(ids.master_flow_id.clone()));
    };
    let before: Map<String, Value> = serde_json::from_str(&before).unwrap_or_default();
    let after: Map<String, Value> = serde_json::from_str(&after).unwrap_or_default();
    let ids_changed: Vec<&str> = after.keys().map(String::as_str).collect();
    let now = snapshot(conn, &ids_changed)?;
    let all = candidates(conn, ids)?;
    let mut changes = Vec::new();
    for (id, was) in &after {
        let Some(candidate) = all.iter().find(|c| c.id == *id) else {
            continue;
        };
        // Only what the decision set is compared: a later import may add
        // evidence lines, never a decision.
        let same = |field: &str| now.get(id).and_then(|n| n.get(field)) == was.get(field);
        if !(same("target_field") && same("status") && same("transformation_rules")) {
            return Err(DecisionError::ChangedSince {
                command,
                decided_at,
                column: candidate.column.clone(),
                table: crate::read::table_label(&candidate.file, candidate.sheet.as_deref()),
            });
        }
        let old = before.get(id).cloned().unwrap_or(json!({}));
        let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
        changes.push(MappingChange {
            id: id.clone(),
            data_import_id: candidate.data_import_id.clone(),
            file: candidate.file.clone(),
            sheet: candidate.sheet.clone(),
            column: candidate.column.clone(),
            from_target: text(was, "target_field"),
            from_status: text(was, "status").unwrap_or_default(),
            to_target: text(&old, "target_field"),
            to_status: text(&old, "status").unwrap_or_default(),
            taken_by: None,
        });
    }
    Ok(UndoPlan {
        decision_id,
        command,
        decided_by,
        decided_at,
        changes,
        created_assets: serde_json::from_str(&created).unwrap_or_default(),
    })
}

/// Puts the mappings back as they were before the decision and removes the
/// assets its re-run created; the caller re-runs the phases.
pub fn undo(conn: &Connection, ids: &FlowIds, plan: &UndoPlan) -> Result<(), DecisionError> {
    let before: String = conn.query_row(
        "SELECT before FROM mapping_decisions WHERE id = ?1",
        [&plan.decision_id],
        |r| r.get(0),
    )?;
    let before: Map<String, Value> = serde_json::from_str(&before).unwrap_or_default();
    let tx = conn.unchecked_transaction()?;
    let columns: Vec<&str> = KEPT.split(", ").collect();
    let set = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let mut update = tx.prepare(&format!(
        "UPDATE import_field_mappings SET {set} WHERE id = ?1"
    ))?;
    for (id, row) in &before {
        let mut values: Vec<rusqlite::types::Value> =
            vec![rusqlite::types::Value::Text(id.clone())];
        for c in &columns {
            values.push(match row.get(*c) {
                None | Some(Value::Null) => rusqlite::types::Value::Null,
                Some(Value::String(s)) => rusqlite::types::Value::Text(s.clone()),
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(i) => rusqlite::types::Value::Integer(i),
                    None => rusqlite::types::Value::Real(n.as_f64().unwrap_or_default()),
                },
                Some(other) => rusqlite::types::Value::Text(other.to_string()),
            });
        }
        update.execute(rusqlite::params_from_iter(values))?;
    }
    drop(update);
    for asset in &plan.created_assets {
        tx.execute("DELETE FROM assets WHERE id = ?1", [asset])?;
    }
    tx.execute(
        "UPDATE mapping_decisions SET undone_at = ?2 WHERE id = ?1",
        params![plan.decision_id, db::now()],
    )?;
    super::record_field_mappings(&tx, ids)?;
    tx.commit()?;
    Ok(())
}
