//! `intake report`: one self-contained HTML file a consultant can e-mail. It
//! has no scripts, fonts, images or links to fetch: styles are inline and the
//! charts are inline SVG, so it opens offline in any browser and prints.
//!
//! Sections: the flow and its files; the mapping table with confidence;
//! validation problems; assets by type, environment, operating system and
//! support status (charts); the worst tech debt; dependencies (by type,
//! clusters, most depended-on assets, unresolved ends).

mod chart;

use std::fmt::Write as _;

use rusqlite::Connection;
use serde_json::Value;

use crate::flow::{self, FindFlowError};

/// Validation problems listed in the report (all of them are counted).
const PROBLEMS_SHOWN: i64 = 200;
/// Dependencies listed (all of them are counted).
const EDGES_SHOWN: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no discovery flow in this database yet; run `intake import` first")]
    NoFlow,
    #[error("no flow {0}; `intake report` without --flow reports the latest")]
    UnknownFlow(String),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// What the report was built from, for the command's message.
#[derive(Debug, Clone)]
pub struct ReportFacts {
    pub master_flow_id: String,
    pub assets: i64,
    pub files: i64,
    /// Why the flow cannot be trusted yet and what finishes it, when it did
    /// not complete (the report says so at its top).
    pub unfinished: Option<String>,
}

/// Builds the report of `flow` (the latest when None) as one HTML document.
/// `running_now`: an intake run holds the database (a running flow is then
/// still going rather than interrupted).
pub fn build(
    conn: &Connection,
    flow: Option<&str>,
    running_now: bool,
) -> Result<(String, ReportFacts), ReportError> {
    let ids = flow::find(conn, flow).map_err(|e| match e {
        FindFlowError::NoFlow => ReportError::NoFlow,
        FindFlowError::Sql(e) => ReportError::Sql(e),
        FindFlowError::UnknownFlow(wanted) => ReportError::UnknownFlow(wanted),
    })?;
    let flow: FlowRow = conn.query_row(
        "SELECT f.status, c.name, e.name, f.engagement_id, f.created_at, f.completed_at, f.progress_percentage,
                f.error_phase, f.error_message, f.tech_debt_analysis, f.dependencies, f.phases_completed
         FROM discovery_flows f JOIN client_accounts c ON c.id = f.client_account_id
              JOIN engagements e ON e.id = f.engagement_id
         WHERE f.id = ?1",
        [&ids.discovery_flow_id],
        |r| {
            Ok(FlowRow {
                status: r.get(0)?,
                client: r.get(1)?,
                engagement: r.get(2)?,
                engagement_id: r.get(3)?,
                created_at: r.get(4)?,
                completed_at: r.get(5)?,
                progress: r.get(6)?,
                error_phase: r.get(7)?,
                error_message: r.get(8)?,
                tech_debt: json_column(r.get(9)?),
                dependencies: json_column(r.get(10)?),
                phases: json_column(r.get(11)?),
            })
        },
    )?;
    let unfinished = flow::unfinished(conn, &ids, running_now)?;
    let mut page = Page::default();
    let title = format!("Discovery report: {} / {}", flow.client, flow.engagement);
    page.header(&title, &flow, unfinished.as_deref());
    page.executive_summary(conn, &ids.master_flow_id, &flow)?;
    let assets = page.overview(conn, &flow)?;
    page.charts(conn, &flow.engagement_id)?;
    page.tech_debt(&flow);
    page.dependencies(conn, &flow)?;
    page.problems(conn, &ids.master_flow_id)?;
    let files = page.files(conn, &ids.master_flow_id)?;
    page.mappings(conn, &ids.master_flow_id)?;
    page.about(&ids.master_flow_id, &flow);
    let html = page.finish(&title);
    Ok((
        html,
        ReportFacts {
            master_flow_id: ids.master_flow_id,
            assets,
            files,
            unfinished,
        },
    ))
}

struct FlowRow {
    status: String,
    client: String,
    engagement: String,
    engagement_id: String,
    created_at: String,
    completed_at: Option<String>,
    progress: f64,
    error_phase: Option<String>,
    error_message: Option<String>,
    tech_debt: Value,
    dependencies: Value,
    phases: Value,
}

fn json_column(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// HTML text with &, <, >, " and ' escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #d6dde6;padding-bottom:.3rem;margin-top:2.2rem}
.meta{color:#5a6b7d;font-size:.9rem}.tiles{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.tile{border:1px solid #d6dde6;border-radius:6px;padding:.6rem 1rem;min-width:8rem}.tile b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.6rem 0}th,td{border:1px solid #d6dde6;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
.chart h3{font-size:.95rem;margin:.4rem 0}.bad{color:#a61b1b;font-weight:600}.warn{color:#8a5a00}.ok{color:#1f6f3a}
.note{color:#5a6b7d;font-size:.85rem}.summary li{margin:.25rem 0}.bar{display:inline-block;height:.6rem;background:#3b7dd8;vertical-align:middle;margin-right:.3rem}
.chart{break-inside:avoid;page-break-inside:avoid}
@media print{body{margin:0;max-width:none}h2,h3{break-after:avoid;page-break-after:avoid}table{break-inside:auto;width:100%}
td,th{overflow-wrap:break-word}thead{display:table-header-group}tr{break-inside:avoid;page-break-inside:avoid}.chart svg{max-width:100%;height:auto}}
";

#[derive(Default)]
struct Page {
    body: String,
}

impl Page {
    fn finish(self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"generator\" content=\"intake {}\"><title>{}</title><style>{STYLE}</style></head>\
             <body>{}</body></html>\n",
            env!("CARGO_PKG_VERSION"),
            escape(title),
            self.body
        )
    }

    fn section(&mut self, id: &str, heading: &str) {
        let _ = write!(self.body, "<h2 id=\"{id}\">{}</h2>", escape(heading));
    }

    fn note(&mut self, text: &str) {
        let _ = write!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table; cells are escaped, a cell starting with "\u{1}num:" is right-aligned.
    fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.body.push_str("<table><thead><tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr></thead><tbody>");
        for row in rows {
            self.body.push_str("<tr>");
            for cell in row {
                match cell.strip_prefix(NUM) {
                    Some(n) => {
                        let _ = write!(self.body, "<td class=\"num\">{}</td>", escape(n));
                    }
                    None => {
                        let _ = write!(self.body, "<td>{}</td>", escape(cell));
                    }
                }
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</tbody></table>");
    }

    fn header(&mut self, title: &str, flow: &FlowRow, unfinished: Option<&str>) {
        // Dates to the day: ids, phases and times are in the appendix.
        let day = |t: &str| t.get(..10).unwrap_or(t).to_string();
        let _ = write!(
            self.body,
            "<h1>{}</h1><p class=\"meta\">Discovery of {} · prepared {} with intake {}</p>",
            escape(title),
            escape(&day(&flow.created_at)),
            escape(&day(&crate::db::now())),
            env!("CARGO_PKG_VERSION"),
        );
        // The unfinished note names the failure too; say it once.
        match (unfinished, &flow.error_phase, &flow.error_message) {
            (Some(note), _, _) => {
                let _ = write!(
                    self.body,
                    "<p class=\"bad\">Incomplete: {}. The figures below are what was stored before it stopped.</p>",
                    escape(note.trim_end_matches('.'))
                );
            }
            (None, Some(phase), Some(message)) => {
                let _ = write!(
                    self.body,
                    "<p class=\"bad\">Failed in {}: {}</p>",
                    escape(phase),
                    escape(message)
                );
            }
            _ => {}
        }
    }

    /// What was received, what it describes, and the headline findings,
    /// in sentences a client reads first.
    fn executive_summary(
        &mut self,
        conn: &Connection,
        master_flow_id: &str,
        flow: &FlowRow,
    ) -> rusqlite::Result<()> {
        self.section("summary", "Summary");
        let one = |sql: &str, key: &str| -> rusqlite::Result<i64> {
            conn.query_row(sql, [key], |r| r.get(0))
        };
        let (files, rows): (i64, i64) = conn.query_row(
            "SELECT count(DISTINCT filename), coalesce(sum(total_records), 0) FROM data_imports
             WHERE master_flow_id = ?1 AND status = 'completed'",
            [master_flow_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let kind = crate::catalogue::KIND_SQL;
        let by_kind: Vec<(String, i64)> = conn
            .prepare(&format!(
                "SELECT {kind} AS k, count(*) FROM assets WHERE engagement_id = ?1 GROUP BY k ORDER BY count(*) DESC"
            ))?
            .query_map([&flow.engagement_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let machines: i64 = by_kind
            .iter()
            .filter(|(k, _)| k != "application")
            .map(|(_, n)| n)
            .sum();
        let described: Vec<String> = by_kind
            .iter()
            .map(|(k, n)| {
                let word = match (k.as_str(), *n == 1) {
                    ("end_user_device", true) => "end-user device",
                    ("end_user_device", false) => "end-user devices",
                    ("network", true) => "network device",
                    ("network", false) => "network devices",
                    ("storage", true) => "storage device",
                    ("storage", false) => "storage devices",
                    ("server", false) => "servers",
                    ("database", false) => "databases",
                    ("application", false) => "applications",
                    (other, _) => other,
                };
                format!("{} {word}", thousands(*n))
            })
            .collect();
        let engagement = &flow.engagement_id;
        let eol = one(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND support_status = 'end_of_life'",
            engagement,
        )?;
        let no_owner = one(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'
               AND business_owner IS NULL AND technical_owner IS NULL",
            engagement,
        )?;
        let no_environment = one(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application' AND environment IS NULL",
            engagement,
        )?;
        let share = |n: i64| {
            if machines > 0 {
                format!(
                    "{} ({:.0} %)",
                    thousands(n),
                    n as f64 * 100.0 / machines as f64
                )
            } else {
                thousands(n)
            }
        };
        self.body.push_str("<ul class=\"summary\">");
        let _ = write!(
            self.body,
            "<li><b>Received:</b> {} file(s) with {} rows.</li><li><b>Describes:</b> {}.</li>",
            thousands(files),
            thousands(rows),
            escape(&if described.is_empty() {
                "no assets".to_string()
            } else {
                described.join(", ")
            })
        );
        let _ = write!(
            self.body,
            "<li><b>End of life:</b> {} of {} machines run software whose support has ended.</li>\
             <li><b>Ownership:</b> {} machines name no business or technical owner; {} have no environment.</li>",
            share(eol),
            thousands(machines),
            share(no_owner),
            share(no_environment)
        );
        // Data quality per source: the share of rows that identify a machine.
        let quality: Vec<(String, i64, i64)> = conn
            .prepare(
                "SELECT d.filename, d.total_records,
                        (SELECT count(*) FROM raw_import_records r WHERE r.data_import_id = d.id AND r.is_valid = 0)
                 FROM data_imports d WHERE d.master_flow_id = ?1 AND d.status = 'completed' AND d.total_records > 0
                 ORDER BY d.created_at, d.id",
            )?
            .query_map([master_flow_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let weak: Vec<String> = quality
            .iter()
            .filter(|(_, _, invalid)| *invalid > 0)
            .map(|(file, total, invalid)| {
                format!(
                    "{} ({:.0} % of {} rows usable)",
                    crate::read::table_label(file, None),
                    (total - invalid) as f64 * 100.0 / *total as f64,
                    thousands(*total)
                )
            })
            .collect();
        let _ = write!(
            self.body,
            "<li><b>Data quality:</b> {}</li></ul>",
            escape(&if weak.is_empty() {
                "every row of every file identifies a machine.".to_string()
            } else {
                format!("rows that identify no machine in {}.", weak.join("; "))
            })
        );
        Ok(())
    }

    /// The appendix's facts about the run: ids, phases, times, the version.
    fn about(&mut self, master_flow_id: &str, flow: &FlowRow) {
        self.section("about", "Appendix: about this report");
        let phases: Vec<String> = flow
            .phases
            .as_array()
            .map(|a| a.iter().map(text_of).collect())
            .unwrap_or_default();
        let rows = vec![
            vec!["master flow".to_string(), master_flow_id.to_string()],
            vec![
                "status".to_string(),
                format!(
                    "{} ({}% of the discovery phases)",
                    flow.status, flow.progress
                ),
            ],
            vec!["phases completed".to_string(), phases.join(", ")],
            vec!["started".to_string(), flow.created_at.clone()],
            vec![
                "completed".to_string(),
                flow.completed_at
                    .clone()
                    .unwrap_or_else(|| "not completed".to_string()),
            ],
            vec!["written".to_string(), crate::db::now()],
            vec!["intake".to_string(), env!("CARGO_PKG_VERSION").to_string()],
        ];
        self.table(&["", ""], &rows);
    }

    fn overview(&mut self, conn: &Connection, flow: &FlowRow) -> rusqlite::Result<i64> {
        let count = |sql: &str| -> rusqlite::Result<i64> {
            conn.query_row(sql, [&flow.engagement_id], |r| r.get(0))
        };
        let assets = count("SELECT count(*) FROM assets WHERE engagement_id = ?1")?;
        let kind = crate::catalogue::KIND_SQL;
        let servers = count(&format!(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND {kind} = 'server'"
        ))?;
        let devices = count(&format!(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND {kind} = 'end_user_device'"
        ))?;
        let apps = count(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type = 'application'",
        )?;
        let edges = count("SELECT count(*) FROM asset_dependencies WHERE engagement_id = ?1")?;
        let eol = count("SELECT count(*) FROM assets WHERE engagement_id = ?1 AND support_status = 'end_of_life'")?;
        let ready =
            count("SELECT count(*) FROM assets WHERE engagement_id = ?1 AND sixr_ready = 'ready'")?;
        self.body.push_str("<div class=\"tiles\">");
        let mut tiles = vec![
            ("Assets", assets),
            ("Servers", servers),
            ("Applications", apps),
            ("Dependencies", edges),
            ("End of life", eol),
            ("Ready for 6R", ready),
        ];
        // Desktops and laptops are kept apart, never among the servers.
        if devices > 0 {
            tiles.insert(2, ("End-user devices", devices));
        }
        for (label, n) in tiles {
            let _ = write!(self.body, "<div class=\"tile\"><b>{n}</b>{label}</div>");
        }
        self.body.push_str("</div>");
        Ok(assets)
    }

    fn files(&mut self, conn: &Connection, master_flow_id: &str) -> rusqlite::Result<i64> {
        self.section("files", "Appendix: sources");
        let rows: Vec<Vec<String>> = conn
            .prepare(
                "SELECT filename, coalesce(sheet_name, ''), coalesce(json_extract(read_metadata, '$.layout.layout'), source_system, ''),
                        coalesce(json_extract(read_metadata, '$.layout.role'), ''), status, total_records,
                        (SELECT count(*) FROM raw_import_records r WHERE r.data_import_id = d.id AND r.is_valid = 0),
                        coalesce(error_message, '')
                 FROM data_imports d WHERE master_flow_id = ?1 ORDER BY created_at, id",
            )?
            .query_map([master_flow_id], |r| {
                Ok(vec![
                    crate::read::table_label(&r.get::<_, String>(0)?, None),
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    num(r.get::<_, i64>(5)?),
                    num(r.get::<_, i64>(6)?),
                    r.get(7)?,
                ])
            })?
            .collect::<rusqlite::Result<_>>()?;
        let n = rows.len() as i64;
        self.table(
            &[
                "file",
                "sheet",
                "recognised as",
                "role",
                "status",
                "rows",
                "invalid rows",
                "error",
            ],
            &rows,
        );
        Ok(n)
    }

    fn mappings(&mut self, conn: &Connection, master_flow_id: &str) -> rusqlite::Result<()> {
        self.section("mappings", "Appendix: column mappings");
        let rows: Vec<(String, String, Option<String>, f64, String, String)> = conn
            .prepare(
                "SELECT d.filename || coalesce(' [' || d.sheet_name || ']', ''), m.source_field, m.target_field,
                        coalesce(m.confidence_score, 0), coalesce(m.match_type, ''), m.status
                 FROM import_field_mappings m JOIN data_imports d ON d.id = m.data_import_id
                 WHERE m.master_flow_id = ?1 ORDER BY d.created_at, d.id, m.rowid",
            )?
            .query_map([master_flow_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if rows.is_empty() {
            self.note("No column of this flow was mapped (relationship exports are not mapped).");
            return Ok(());
        }
        // Mapped columns one per row; the columns mapped to nothing folded
        // into one line per file (they are kept in custom_attributes).
        let mut unmapped: Vec<(String, Vec<String>)> = Vec::new();
        self.body.push_str("<table><thead><tr><th>file</th><th>source column</th><th>asset field</th><th>confidence</th><th>match</th><th>state</th></tr></thead><tbody>");
        for (file, source, target, confidence, kind, status) in rows {
            let file = match file.split_once(" [") {
                Some((path, sheet)) => format!("{} [{sheet}", crate::read::table_label(path, None)),
                None => crate::read::table_label(&file, None),
            };
            let state = crate::map::review::state_of(&status, target.is_some());
            let Some(target) = target.filter(|_| state != "unmapped") else {
                match unmapped.last_mut() {
                    Some((f, columns)) if *f == file => columns.push(source),
                    _ => unmapped.push((file, vec![source])),
                }
                continue;
            };
            let width = (confidence * 60.0).round() as i64;
            let _ = write!(
                self.body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\"><span class=\"bar\" style=\"width:{width}px\"></span>{:.0}%</td><td>{}</td><td>{}</td></tr>",
                escape(&file),
                escape(&source),
                escape(&target),
                confidence * 100.0,
                escape(&kind),
                escape(state)
            );
        }
        self.body.push_str("</tbody></table>");
        for (file, columns) in unmapped {
            const NAMED: usize = 20;
            let mut names = columns
                .iter()
                .take(NAMED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if columns.len() > NAMED {
                names.push_str(&format!(" and {} more", columns.len() - NAMED));
            }
            self.note(&format!(
                "{file}: {} column(s) mapped to no field, kept in custom_attributes: {names}",
                columns.len()
            ));
        }
        Ok(())
    }

    fn problems(&mut self, conn: &Connection, master_flow_id: &str) -> rusqlite::Result<()> {
        self.section("problems", "Validation problems");
        let (invalid, with_errors): (i64, i64) = conn.query_row(
            "SELECT count(*) FILTER (WHERE is_valid = 0),
                    count(*) FILTER (WHERE validation_errors IS NOT NULL AND validation_errors <> '[]')
             FROM raw_import_records WHERE master_flow_id = ?1",
            [master_flow_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if with_errors == 0 {
            self.note("No row of this flow had a value that could not be read.");
            return Ok(());
        }
        self.note(&format!(
            "{invalid} invalid row(s); {with_errors} row(s) with at least one value kept raw. Each problem once per file, with how often it occurs and its first row as the example:"
        ));
        // SQLite gives the bare columns of a min() aggregate the values of
        // the row the minimum comes from: the example is the first row.
        let rows: Vec<Vec<String>> = conn
            .prepare(
                "SELECT d.filename, d.sheet_name, e.value ->> 'field', count(*), min(r.record_index),
                        e.value ->> 'raw_value', e.value ->> 'message',
                        CASE r.is_valid WHEN 0 THEN 'invalid' ELSE 'valid' END
                 FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id,
                      json_each(r.validation_errors) e
                 WHERE r.master_flow_id = ?1 AND r.validation_errors IS NOT NULL
                 GROUP BY d.id, e.value ->> 'code', e.value ->> 'field'
                 ORDER BY d.created_at, d.id, count(*) DESC LIMIT ?2",
            )?
            .query_map(rusqlite::params![master_flow_id, PROBLEMS_SHOWN], |r| {
                // The file as the client knows it: its name, not a local path.
                let sheet: Option<String> = r.get(1)?;
                Ok(vec![
                    crate::read::table_label(&r.get::<_, String>(0)?, sheet.as_deref()),
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    num(r.get::<_, i64>(3)?),
                    format!(
                        "row {}: {} ({})",
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        r.get::<_, String>(7)?
                    ),
                ])
            })?
            .collect::<rusqlite::Result<_>>()?;
        self.table(
            &["file", "column / field", "problem", "rows", "first example"],
            &rows,
        );
        Ok(())
    }

    fn charts(&mut self, conn: &Connection, engagement_id: &str) -> rusqlite::Result<()> {
        self.section("assets", "Assets");
        let group = |expr: &str| -> rusqlite::Result<Vec<(Option<String>, i64)>> {
            conn.prepare(&format!(
                "SELECT {expr} AS k, count(*) FROM assets WHERE engagement_id = ?1
                 GROUP BY k ORDER BY count(*) DESC, k"
            ))?
            .query_map([engagement_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        };
        // Operating systems as product and version, however each export
        // spelled them ("Microsoft Windows Server 2019 Datacenter" and
        // "Windows 2019" are one bar).
        let os: Vec<(Option<String>, i64)> = {
            let mut merged: std::collections::BTreeMap<String, i64> = Default::default();
            let mut unknown = 0;
            let rows: Vec<(Option<String>, Option<String>, i64)> = conn
                .prepare(
                    "SELECT operating_system, os_version, count(*) FROM assets
                     WHERE engagement_id = ?1 AND asset_type <> 'application' GROUP BY 1, 2",
                )?
                .query_map([engagement_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (system, version, n) in rows {
                let label = crate::tech_debt::os_label(system.as_deref(), version.as_deref())
                    .or_else(|| {
                        system
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                    });
                match label {
                    Some(label) => *merged.entry(label).or_default() += n,
                    None => unknown += n,
                }
            }
            let mut out: Vec<(Option<String>, i64)> =
                merged.into_iter().map(|(k, n)| (Some(k), n)).collect();
            out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            out.push((None, unknown));
            out
        };
        self.body.push_str("<div class=\"charts\">");
        for (heading, data, limit) in [
            ("By type", group(crate::catalogue::KIND_SQL)?, 10),
            ("By environment", group("environment")?, 10),
            ("By operating system (top 12)", os, 12),
            ("By support status", group("support_status")?, 10),
        ] {
            let _ = write!(
                self.body,
                "<div class=\"chart\"><h3>{}</h3>{}</div>",
                escape(heading),
                chart_of(heading, &data, limit)
            );
        }
        self.body.push_str("</div>");
        Ok(())
    }

    fn tech_debt(&mut self, flow: &FlowRow) {
        self.section("tech-debt", "Worst tech debt");
        let analysis = &flow.tech_debt;
        if analysis.is_null() {
            self.note("The tech_debt phase has not run for this flow.");
            return;
        }
        let status = |s: &str| analysis["by_status"][s].as_u64().unwrap_or(0);
        self.note(&format!(
            "Support judged on {} with the catalogue compiled {} ({}). {} end of life, {} in extended support, {} supported, {} unknown. Ready for 6R assessment: {} of {} candidates{}.",
            text_of(&analysis["as_of"]),
            text_of(&analysis["catalogue"]["compiled"]),
            text_of(&analysis["catalogue"]["source"]),
            status("end_of_life"),
            status("extended_support"),
            status("supported"),
            status("unknown"),
            analysis["sixr_ready"]["ready"].as_u64().unwrap_or(0),
            analysis["sixr_ready"]["ready"].as_u64().unwrap_or(0)
                + analysis["sixr_ready"]["not_ready"].as_u64().unwrap_or(0),
            match analysis["sixr_ready"]["not_applicable"].as_u64().unwrap_or(0) {
                0 => String::new(),
                n => format!(" ({n} end-user devices are not candidates)"),
            },
        ));
        let rows: Vec<Vec<String>> = analysis["worst"]
            .as_array()
            .map(|worst| {
                worst
                    .iter()
                    .map(|w| {
                        vec![
                            text_of(&w["name"]),
                            text_of(&w["asset_type"]),
                            text_of(&w["status"]).replace('_', " "),
                            text_of(&w["based_on"]),
                            text_of(&w["support_ends"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if rows.is_empty() {
            self.note("No asset is out of standard support.");
        } else {
            self.table(
                &["asset", "type", "status", "based on", "support ends"],
                &rows,
            );
        }
        if let Some(missing) = analysis["sixr_ready"]["missing_fields"].as_object() {
            if !missing.is_empty() {
                let list: Vec<String> = missing
                    .iter()
                    .map(|(field, n)| format!("{field} ({n})"))
                    .collect();
                self.note(&format!(
                    "Fields missing before a 6R assessment (assets): {}",
                    list.join(", ")
                ));
            }
        }
    }

    fn dependencies(&mut self, conn: &Connection, flow: &FlowRow) -> rusqlite::Result<()> {
        self.section("dependencies", "Dependencies");
        let graph = &flow.dependencies;
        let by_type: Vec<(String, i64)> = conn
            .prepare(
                "SELECT dependency_type, count(*) FROM asset_dependencies WHERE engagement_id = ?1
                 GROUP BY 1 ORDER BY 2 DESC, 1",
            )?
            .query_map([&flow.engagement_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let total: i64 = by_type.iter().map(|(_, n)| n).sum();
        if total == 0 {
            self.note("No dependency was found in the data.");
        } else {
            let _ = write!(
                self.body,
                "<div class=\"charts\"><div class=\"chart\"><h3>By type</h3>{}</div></div>",
                chart::bars("Dependencies by type", &by_type)
            );
        }
        if let Some(clusters) = graph["clusters"].as_array().filter(|c| !c.is_empty()) {
            let rows: Vec<Vec<String>> = clusters
                .iter()
                .map(|c| {
                    vec![
                        text_of(&c["cluster"]),
                        text_of(&c["datacenter"]),
                        c["hosts"]
                            .as_array()
                            .map(|h| h.iter().map(text_of).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                        num(c["machines"].as_i64().unwrap_or(0)),
                    ]
                })
                .collect();
            self.body.push_str("<h3>Clusters</h3>");
            self.table(&["cluster", "datacenter", "hosts", "machines"], &rows);
        }
        if let Some(top) = graph["most_depended_on"]
            .as_array()
            .filter(|t| !t.is_empty())
        {
            let rows: Vec<Vec<String>> = top
                .iter()
                .map(|t| {
                    vec![
                        text_of(&t["name"]),
                        text_of(&t["asset_type"]),
                        num(t["dependents"].as_i64().unwrap_or(0)),
                    ]
                })
                .collect();
            self.body.push_str("<h3>Most depended on</h3>");
            self.table(&["asset", "type", "dependents"], &rows);
        }
        if let Some(problems) = graph["problems"].as_array().filter(|p| !p.is_empty()) {
            let unresolved = graph["unresolved"].as_u64().unwrap_or(0);
            let _ = write!(
                self.body,
                "<h3 class=\"warn\">Unresolved relationship ends ({unresolved})</h3>"
            );
            let rows: Vec<Vec<String>> = problems
                .iter()
                .map(|p| {
                    vec![
                        text_of(&p["file"]),
                        num(p["row"].as_i64().unwrap_or(0)),
                        text_of(&p["column"]),
                        text_of(&p["value"]),
                        text_of(&p["message"]),
                    ]
                })
                .collect();
            self.table(&["file", "row", "column", "value", "problem"], &rows);
        }
        if total > 0 {
            let rows: Vec<Vec<String>> = conn
                .prepare(
                    "SELECT a.name, a.asset_type, d.dependency_type, b.name, b.asset_type, coalesce(d.source, ''),
                            coalesce(d.description, '')
                     FROM asset_dependencies d JOIN assets a ON a.id = d.asset_id JOIN assets b ON b.id = d.depends_on_asset_id
                     WHERE d.engagement_id = ?1 ORDER BY a.name, b.name LIMIT ?2",
                )?
                .query_map(rusqlite::params![&flow.engagement_id, EDGES_SHOWN], |r| {
                    (0..7).map(|i| r.get(i)).collect::<rusqlite::Result<Vec<String>>>()
                })?
                .collect::<rusqlite::Result<_>>()?;
            let _ = write!(
                self.body,
                "<h3>All dependencies{}</h3>",
                if total > EDGES_SHOWN {
                    format!(" (first {EDGES_SHOWN} of {total})")
                } else {
                    String::new()
                }
            );
            self.table(
                &[
                    "asset",
                    "type",
                    "relationship",
                    "depends on",
                    "type",
                    "source",
                    "detail",
                ],
                &rows,
            );
        }
        Ok(())
    }
}

/// Marks a table cell as a number (right-aligned).
const NUM: &str = "\u{1}num:";

/// A chart of the known values (at most `limit` bars, the rest as one
/// "other" bar); the unknown ones are a share said under it, never a bar.
fn chart_of(heading: &str, data: &[(Option<String>, i64)], limit: usize) -> String {
    let total: i64 = data.iter().map(|(_, n)| n).sum();
    let unknown: i64 = data
        .iter()
        .filter(|(k, _)| k.is_none())
        .map(|(_, n)| n)
        .sum();
    let known: Vec<(String, i64)> = data
        .iter()
        .filter_map(|(k, n)| k.clone().map(|k| (k, *n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut bars: Vec<(String, i64)> = known.iter().take(limit).cloned().collect();
    if known.len() > limit {
        let rest: i64 = known[limit..].iter().map(|(_, n)| n).sum();
        bars.push((format!("other ({} more)", known.len() - limit), rest));
    }
    let mut out = if bars.is_empty() {
        String::new()
    } else {
        chart::bars(heading, &bars)
    };
    if unknown > 0 && total > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">Not known for {unknown} of {total} assets ({:.0} %).</p>",
            unknown as f64 * 100.0 / total as f64
        );
    }
    if out.is_empty() {
        out.push_str("<p class=\"note\">No assets.</p>");
    }
    out
}

/// 14600 as "14,600", for sentences.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn num(n: i64) -> String {
    format!("{NUM}{n}")
}
