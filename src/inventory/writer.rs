//! The SQL side of the inventory: the asset row as the assets table stores it
//! (`RowShape`, `AssetRow`), and the `Writer` that inserts new assets,
//! updates changed ones and leaves unchanged ones alone, in transactions of
//! `BATCH` assets.

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Value};

use crate::catalogue::{self, FieldKind};
use crate::db;
use crate::flow::FlowIds;
use crate::no_copy_insert::NoCopyInsert;
use crate::tech_debt;

use super::merge::Build;
use super::InventoryOutcome;

/// Assets written per transaction: each commit syncs the journal and the
/// file, and at 10,000 per commit the syncs took a sixth of the phase.
const BATCH: usize = 50_000;

/// Writes assets: inserts new ones, updates changed ones, counts the rest.
pub(super) struct Writer<'c> {
    pub(super) conn: &'c Connection,
    pub(super) client: String,
    pub(super) engagement: String,
    pub(super) ids: FlowIds,
    pub(super) pending: usize,
    pub(super) in_tx: bool,
    /// Whether the writer begins and commits its own transactions; one
    /// that writes inside the staging transaction does neither.
    pub(super) owns_tx: bool,
    /// The time written into the rows of the open transaction.
    pub(super) now: String,
    pub(super) shape: RowShape,
    pub(super) select_sql: String,
    pub(super) insert: NoCopyInsert<'c>,
    pub(super) update_sql: String,
}

/// How a merged machine becomes the values of an `assets` row; built on the
/// merging thread, so the writing thread only binds and inserts.
#[derive(Clone)]
pub(super) struct RowShape {
    /// The asset columns the catalogue fills: name, asset_type, the other
    /// fields, the tech-debt verdict, custom_attributes.
    pub(super) columns: Vec<&'static str>,
    /// The position in `columns` of each catalogue field, by field index.
    pub(super) column_of_field: Vec<Option<usize>>,
    /// The day machines' support is judged on, written with each row.
    pub(super) as_of: String,
}

/// The tech-debt columns written with a machine's row, before custom_attributes.
const VERDICT_COLUMNS: [&str; 4] = [
    "support_status",
    "tech_debt_score",
    "sixr_ready",
    "tech_debt_details",
];

/// An asset's column values, its kind, and whether its sources disagreed.
pub(super) struct AssetRow {
    pub(super) values: Vec<rusqlite::types::Value>,
    /// One of `catalogue::MACHINE_KINDS`.
    pub(super) kind: &'static str,
    pub(super) conflicted: bool,
}

pub(super) fn asset_columns() -> Vec<&'static str> {
    let mut columns = vec!["name", "asset_type"];
    columns.extend(
        catalogue::FIELDS
            .iter()
            .map(|f| f.name)
            .filter(|n| !["name", "asset_type"].contains(n)),
    );
    columns.extend(VERDICT_COLUMNS);
    columns.push("custom_attributes");
    columns
}

impl RowShape {
    pub(super) fn row(&self, build: Build) -> AssetRow {
        use rusqlite::types::Value as Sql;
        let text = |name: &str| {
            let index = catalogue::field_index(name)?;
            let (_, value, _) = build.fields.iter().find(|f| f.0 == index)?;
            value.as_str().map(str::to_string)
        };
        let name = text("name")
            .or_else(|| text("hostname"))
            .or_else(|| text("fqdn"))
            .or_else(|| text("ip_address"))
            .or_else(|| text("external_id"))
            .or_else(|| text("cmdb_record_id"))
            .or_else(|| text("vm_uuid"))
            .or_else(|| text("serial_number"))
            .or_else(|| text("mac_address"))
            .unwrap_or_else(|| "unnamed".into());
        // The machine's own evidence, else its tables' title where no other
        // table describes it, else a server.
        let kind = text("asset_type")
            .and_then(|t| catalogue::MACHINE_KINDS.iter().find(|k| **k == t))
            .copied()
            .or_else(|| build.title.kind())
            .unwrap_or("server");
        let conflicted = !build.conflicts.is_empty();
        let mut custom = build.custom;
        // The seeds' asset_type has no end-user device: it is a server
        // marked as one (catalogue::MACHINE_KINDS).
        let asset_type = if kind == catalogue::END_USER_DEVICE {
            custom.insert(
                catalogue::DEVICE_CLASS_ATTRIBUTE.into(),
                Value::String(kind.into()),
            );
            "server"
        } else {
            custom.remove(catalogue::DEVICE_CLASS_ATTRIBUTE);
            kind
        };
        if conflicted {
            custom.insert("_conflicts".into(), Value::Object(build.conflicts));
        }
        // Cleansing keeps values out of their field's domain; records
        // cleansed by an older intake may still hold one. It is kept aside,
        // never written where the schema would refuse the whole row.
        let mut rejected = Map::new();
        // Columns: name, asset_type, the other fields, custom_attributes.
        let mut out = vec![Sql::Null; self.columns.len()];
        out[0] = Sql::Text(name);
        out[1] = Sql::Text(asset_type.into());
        for (index, value, _) in build.fields {
            // name and asset_type were chosen above.
            let Some(column) = self.column_of_field[index].filter(|c| *c > 1) else {
                continue;
            };
            let field = &catalogue::FIELDS[index];
            if !field.accepts(&value) {
                rejected.insert(field.name.to_string(), value);
                continue;
            }
            out[column] = match (value, catalogue::FIELDS[index].kind) {
                (Value::Null, _) => Sql::Null,
                (Value::Bool(b), _) => Sql::Integer(i64::from(b)),
                (Value::Number(n), FieldKind::Integer) => {
                    Sql::Integer(n.as_i64().unwrap_or_default())
                }
                (Value::Number(n), _) => Sql::Real(n.as_f64().unwrap_or_default()),
                (Value::String(s), _) => Sql::Text(s),
                (other, _) => Sql::Text(other.to_string()),
            };
        }
        if !rejected.is_empty() {
            custom.insert("_rejected".into(), Value::Object(rejected));
        }
        // The machine's tech debt, judged here on the merging thread so the
        // tech_debt phase finds it stored and rewrites nothing.
        let verdict = {
            let cell = |name: &str| {
                catalogue::field_index(name)
                    .and_then(|i| self.column_of_field[i])
                    .map(|c| &out[c])
            };
            let text = |name: &str| match cell(name) {
                Some(Sql::Text(t)) => Some(t.clone()),
                _ => None,
            };
            let is_written = |name: &str| cell(name).is_some_and(|v| *v != Sql::Null);
            let facts = tech_debt::AssetFacts {
                asset_type: kind.to_string(),
                name: text("name").unwrap_or_default(),
                operating_system: text("operating_system"),
                os_version: text("os_version"),
                technology_stack: text("technology_stack"),
                description: text("description"),
                model: text("model"),
                end_of_support_date: text("end_of_support_date"),
                end_of_life_date: text("end_of_life_date"),
                present: tech_debt::presence(is_written, false),
            };
            tech_debt::verdict_to_store(&facts, &self.as_of)
        };
        let at = self.columns.len() - 1 - VERDICT_COLUMNS.len();
        out[at] = Sql::Text(verdict.support_status.to_string());
        out[at + 1] = verdict.score.map_or(Sql::Null, Sql::Real);
        out[at + 2] = Sql::Text(verdict.sixr_ready.to_string());
        out[at + 3] = Sql::Text(verdict.details);
        // Straight to bytes: Value's Display goes through the formatter.
        let custom = serde_json::to_string(&custom).unwrap_or_else(|_| "{}".into());
        out[self.columns.len() - 1] = Sql::Text(custom);
        AssetRow {
            values: out,
            kind,
            conflicted,
        }
    }
}

impl<'c> Writer<'c> {
    pub(super) fn new(
        conn: &'c Connection,
        client: &str,
        engagement: &str,
        ids: &FlowIds,
    ) -> rusqlite::Result<Writer<'c>> {
        let columns = asset_columns();
        let n = columns.len();
        let placeholders: Vec<String> = (1..=n + 7).map(|i| format!("?{i}")).collect();
        let sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        Ok(Writer {
            conn,
            client: client.to_string(),
            engagement: engagement.to_string(),
            ids: ids.clone(),
            pending: 0,
            in_tx: false,
            owns_tx: true,
            now: db::now(),
            select_sql: format!("SELECT {} FROM assets WHERE id = ?1", columns.join(", ")),
            insert: NoCopyInsert::prepare(conn, &format!(
                "INSERT INTO assets ({}, id, client_account_id, engagement_id, master_flow_id, discovery_flow_id, created_at, updated_at)
                 VALUES ({})",
                columns.join(", "),
                placeholders.join(", ")
            ))?,
            update_sql: format!(
                "UPDATE assets SET {}, master_flow_id = ?{}, discovery_flow_id = ?{}, updated_at = ?{} WHERE id = ?1",
                sets.join(", "),
                n + 2,
                n + 3,
                n + 4
            ),
            shape: RowShape {
                column_of_field: catalogue::FIELDS
                    .iter()
                    .map(|f| columns.iter().position(|c| *c == f.name))
                    .collect(),
                columns,
                as_of: tech_debt::today(),
            },
        })
    }

    /// A writer inside a transaction its caller owns.
    pub(super) fn inside(
        conn: &'c Connection,
        client: &str,
        engagement: &str,
        ids: &FlowIds,
    ) -> rusqlite::Result<Writer<'c>> {
        let mut writer = Writer::new(conn, client, engagement, ids)?;
        writer.owns_tx = false;
        Ok(writer)
    }

    /// Writes a machine: updates the stored asset `existing` where it
    /// differs, or creates one and returns its id.
    pub(super) fn write(
        &mut self,
        existing: Option<&str>,
        row: AssetRow,
        outcome: &mut InventoryOutcome,
    ) -> rusqlite::Result<Option<String>> {
        if self.owns_tx && !self.in_tx {
            // Every asset references the flow and tenant read in `run`.
            db::begin_bulk(self.conn)?;
            self.in_tx = true;
            self.now = db::now();
        }
        if row.conflicted {
            outcome.conflicts += 1;
        }
        *outcome.by_type.entry(row.kind.to_string()).or_default() += 1;
        let row = row.values;
        let now = self.now.clone();
        let created = match existing {
            Some(id) => {
                // Compared in place: copying out the stored row's ninety
                // values was most of a forced re-import's comparison.
                let same = self
                    .conn
                    .prepare_cached(&self.select_sql)?
                    .query_row([id], |r| {
                        for (i, value) in row.iter().enumerate() {
                            if r.get_ref(i)? != ValueRef::from(value) {
                                return Ok(false);
                            }
                        }
                        Ok(true)
                    })?;
                if same {
                    outcome.unchanged += 1;
                } else {
                    let mut values = vec![rusqlite::types::Value::Text(id.to_string())];
                    values.extend(row);
                    values.push(rusqlite::types::Value::Text(
                        self.ids.master_flow_id.clone(),
                    ));
                    values.push(rusqlite::types::Value::Text(
                        self.ids.discovery_flow_id.clone(),
                    ));
                    values.push(rusqlite::types::Value::Text(now));
                    self.conn
                        .prepare_cached(&self.update_sql)?
                        .execute(params_from_iter(values))?;
                    outcome.updated += 1;
                }
                None
            }
            None => {
                // Bound without copies on a statement prepared once: a
                // million inserts of a ninety-parameter statement were
                // mostly statement-cache lookups and copies of the values.
                let id = db::new_id();
                let tenant_and_times = [
                    &id,
                    &self.client,
                    &self.engagement,
                    &self.ids.master_flow_id,
                    &self.ids.discovery_flow_id,
                    &now,
                    &now,
                ];
                self.insert.execute(
                    row.iter()
                        .map(ValueRef::from)
                        .chain(tenant_and_times.map(|v| ValueRef::from(v.as_str()))),
                )?;
                outcome.created += 1;
                Some(id)
            }
        };
        self.pending += 1;
        if self.owns_tx && self.pending >= BATCH {
            db::end_bulk(self.conn, true)?;
            self.in_tx = false;
            self.pending = 0;
        }
        Ok(created)
    }

    pub(super) fn finish(mut self) -> rusqlite::Result<()> {
        if self.in_tx {
            db::end_bulk(self.conn, true)?;
            self.in_tx = false;
        }
        Ok(())
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.in_tx {
            let _ = db::end_bulk(self.conn, false);
        }
    }
}
