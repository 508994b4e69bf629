//! Mapping memory: what people approved, set or ignored earlier for the same
//! client is reused on the next import (match type `learned`), and can be
//! written out as a rules file a team keeps in git (`intake mappings export`).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};

use crate::catalogue;

/// A decision a person made about a source column.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub source: String,
    /// None: the column is to be ignored.
    pub target: Option<String>,
    pub transformation_rules: serde_json::Value,
    /// When it was decided (approved_at).
    pub decided_at: String,
}

/// The latest human decision per normalised source header for a client.
pub fn decisions(conn: &Connection, client_account_id: &str) -> rusqlite::Result<Vec<Remembered>> {
    let mut stmt = conn.prepare(
        "SELECT source_field, target_field, transformation_rules, status, approved_at FROM import_field_mappings
         WHERE client_account_id = ?1 AND approved_by IS NOT NULL
           AND (status = 'approved' OR status = 'ignored')
         ORDER BY approved_at, updated_at",
    )?;
    let rows = stmt.query_map(params![client_account_id], |r| {
        let rules: String = r.get(2)?;
        let status: String = r.get(3)?;
        let target: Option<String> = r.get(1)?;
        Ok(Remembered {
            source: r.get(0)?,
            target: if status == "ignored" { None } else { target },
            transformation_rules: serde_json::from_str(&rules).unwrap_or_default(),
            decided_at: r.get(4)?,
        })
    })?;
    // Later decisions replace earlier ones for the same header.
    let mut latest: BTreeMap<String, Remembered> = BTreeMap::new();
    for row in rows {
        let row = row?;
        latest.insert(catalogue::normalise_header(&row.source), row);
    }
    Ok(latest.into_values().collect())
}

/// Normalised header → field, from the approvals of a client.
pub fn learned(
    conn: &Connection,
    client_account_id: &str,
) -> rusqlite::Result<HashMap<String, String>> {
    Ok(decisions(conn, client_account_id)?
        .into_iter()
        .filter_map(|d| Some((catalogue::normalise_header(&d.source), d.target?)))
        .collect())
}

/// The client's decisions as a rules file (see `map::rules` for the format).
/// The rules file of the client named `client`, or of the client of the flow
/// `ids` when None; None when no client has that name.
pub fn export_rules_of(
    conn: &Connection,
    client: Option<&str>,
    ids: &crate::flow::FlowIds,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    let found: Option<(String, String)> = match client {
        Some(name) => conn
            .query_row(
                "SELECT id, name FROM client_accounts WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
        None => conn
            .query_row(
                "SELECT c.id, c.name FROM discovery_flows f JOIN client_accounts c ON c.id = f.client_account_id
                 WHERE f.id = ?1",
                [&ids.discovery_flow_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
    };
    found
        .map(|(id, name)| export_rules(conn, &id, &name))
        .transpose()
}

pub fn export_rules(
    conn: &Connection,
    client_account_id: &str,
    client_name: &str,
) -> rusqlite::Result<String> {
    let decisions = decisions(conn, client_account_id)?;
    let left_out = two_columns_on_one_field(conn, client_account_id, &decisions)?;
    let mut out = format!(
        "# intake mapping rules for client '{client_name}', exported {}.\n# Use with: intake import FILES --rules THIS_FILE\n\n[columns]\n",
        crate::db::now()
    );
    for d in &decisions {
        let key = toml_string(&d.source);
        if let Some(kept) = left_out.get(&catalogue::normalise_header(&d.source)) {
            // Both columns of one file on one field would make the import
            // choose between them: the later decision is kept.
            out.push_str(&format!(
                "# {key} = {} left out: {} of the same file maps to it, decided later\n",
                toml_string(d.target.as_deref().unwrap_or_default()),
                toml_string(kept)
            ));
            continue;
        }
        match &d.target {
            None => out.push_str(&format!("{key} = \"ignore\"\n")),
            Some(target) => {
                let mut extras = Vec::new();
                if let Some(unit) = d
                    .transformation_rules
                    .get("from_unit")
                    .and_then(|u| u.as_str())
                {
                    extras.push(format!("unit = {}", toml_string(unit)));
                }
                if let Some(col) = d
                    .transformation_rules
                    .get("multiply_by")
                    .and_then(|u| u.as_str())
                {
                    extras.push(format!("multiply_by = {}", toml_string(col)));
                }
                if d.transformation_rules
                    .get("invert")
                    .and_then(|v| v.as_bool())
                    == Some(true)
                {
                    extras.push("invert = true".into());
                }
                if extras.is_empty() {
                    out.push_str(&format!("{key} = {}\n", toml_string(target)));
                } else {
                    out.push_str(&format!(
                        "{key} = {{ field = {}, {} }}\n",
                        toml_string(target),
                        extras.join(", ")
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Decisions that would put two columns of one file on one field, by the
/// normalised header of the one left out, with the column kept (the later
/// decision).
fn two_columns_on_one_field(
    conn: &Connection,
    client_account_id: &str,
    decisions: &[Remembered],
) -> rusqlite::Result<HashMap<String, String>> {
    let mut columns_of_import: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT data_import_id, source_field FROM import_field_mappings WHERE client_account_id = ?1",
    )?;
    for row in stmt.query_map([client_account_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (import, column) = row?;
        columns_of_import
            .entry(import)
            .or_default()
            .insert(catalogue::normalise_header(&column));
    }
    let mut latest_first: Vec<&Remembered> =
        decisions.iter().filter(|d| d.target.is_some()).collect();
    latest_first.sort_by(|a, b| b.decided_at.cmp(&a.decided_at));
    let mut kept: Vec<&Remembered> = Vec::new();
    let mut left_out = HashMap::new();
    for d in latest_first {
        let header = catalogue::normalise_header(&d.source);
        let clash = kept.iter().find(|k| {
            k.target == d.target && {
                let other = catalogue::normalise_header(&k.source);
                columns_of_import
                    .values()
                    .any(|cols| cols.contains(&header) && cols.contains(&other))
            }
        });
        match clash {
            Some(k) => {
                left_out.insert(header, k.source.clone());
            }
            None => kept.push(d),
        }
    }
    Ok(left_out)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
