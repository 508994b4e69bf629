//! `intake report`: the deliverable a consultant hands to the client, built
//! once as a [`Document`] and written as a self-contained HTML page, as
//! Markdown, or as a PDF printed by a headless Chromium.
//!
//! In order: a summary (what was received, what it describes, the headline
//! findings), the inventory (by type, environment, operating system and
//! location), the applications with their machines, tech debt by product,
//! dependencies, data quality per source, and an appendix with the sources,
//! the column mappings, every dependency and the run's ids. Flow ids, local
//! paths and phase names appear only in the appendix.

mod chart;
pub mod document;
pub mod html;
pub mod markdown;
pub mod pdf;

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::Value;

use crate::flow::{self, FindFlowError};
pub use document::Document;
use document::{share_of, thousands, Block, Cell, Chart, Section};
pub use html::escape;

/// Problems listed per source (all of them are counted).
const PROBLEMS_PER_SOURCE: i64 = 5;
/// Dependencies listed in the appendix (all of them are counted).
const EDGES_SHOWN: i64 = 300;
/// Applications listed (all of them are counted).
const APPLICATIONS_SHOWN: usize = 150;
/// Products listed in the tech-debt table.
const PRODUCTS_SHOWN: usize = 40;
/// Machine names listed per application.
const MACHINES_NAMED: usize = 6;

/// The formats `intake report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Md,
    Pdf,
}

impl Format {
    /// The format an output file's extension asks for (`.md`, `.pdf`), HTML otherwise.
    pub fn from_path(path: &std::path::Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("md" | "markdown") => Format::Md,
            Some("pdf") => Format::Pdf,
            _ => Format::Html,
        }
    }
}

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

/// Builds the report of `flow` (the latest when None). `running_now`: an
/// intake run holds the database (a running flow is then still going
/// rather than interrupted).
pub fn build(
    conn: &Connection,
    flow: Option<&str>,
    running_now: bool,
) -> Result<(Document, ReportFacts), ReportError> {
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
    let source = Source::read(conn, &ids.master_flow_id, &flow)?;
    // Dates to the day: ids, phases and times are in the appendix.
    let day = |t: &str| t.get(..10).unwrap_or(t).to_string();
    let alert = match (&unfinished, &flow.error_phase, &flow.error_message) {
        (Some(note), _, _) => Some(format!(
            "Incomplete: {}. The figures below are what was stored before it stopped.",
            note.trim_end_matches('.')
        )),
        (None, Some(_), Some(message)) => Some(format!("The run failed: {message}")),
        _ => None,
    };
    let (inventory, assets) = source.inventory()?;
    let (files_section, files) = source.sources()?;
    let document = Document {
        title: format!("Discovery report: {} / {}", flow.client, flow.engagement),
        subtitle: format!(
            "Discovery of {} · prepared {} with intake {}",
            day(&flow.created_at),
            day(&crate::db::now()),
            env!("CARGO_PKG_VERSION")
        ),
        alert,
        sections: vec![
            source.summary()?,
            inventory,
            source.applications()?,
            source.tech_debt()?,
            source.dependencies()?,
            source.data_quality()?,
            files_section,
            source.mappings()?,
            source.all_dependencies()?,
            source.about(),
        ],
    };
    Ok((
        document,
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

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What each section reads: the database, the flow and its row, and the
/// counts more than one section shows (read once).
struct Source<'a> {
    conn: &'a Connection,
    master_flow_id: &'a str,
    flow: &'a FlowRow,
    /// Assets by kind, largest first.
    kinds: Vec<(String, i64)>,
    /// Machines whose support has ended.
    machines_eol: i64,
    /// Each completed import's rows and unusable rows.
    sources: Vec<SourceQuality>,
}

impl<'a> Source<'a> {
    fn read(
        conn: &'a Connection,
        master_flow_id: &'a str,
        flow: &'a FlowRow,
    ) -> rusqlite::Result<Source<'a>> {
        let mut source = Source {
            conn,
            master_flow_id,
            flow,
            kinds: Vec::new(),
            machines_eol: 0,
            sources: Vec::new(),
        };
        source.kinds = source.kinds()?;
        source.machines_eol = source.count(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'
               AND support_status = 'end_of_life'",
        )?;
        source.sources = source.per_source()?;
        Ok(source)
    }

    fn engagement_id(&self) -> &str {
        &self.flow.engagement_id
    }

    fn count(&self, sql: &str) -> rusqlite::Result<i64> {
        self.conn
            .query_row(sql, [self.engagement_id()], |r| r.get(0))
    }

    /// Machines (everything but applications) by kind, largest first.
    fn kinds(&self) -> rusqlite::Result<Vec<(String, i64)>> {
        let kind = crate::catalogue::KIND_SQL;
        self.conn
            .prepare(&format!(
                "SELECT {kind} AS k, count(*) FROM assets WHERE engagement_id = ?1 GROUP BY k ORDER BY count(*) DESC, k"
            ))?
            .query_map([self.engagement_id()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }

    /// What was received, what it describes, and the headline findings, in
    /// sentences a client reads first.
    fn summary(&self) -> rusqlite::Result<Section> {
        let mut section = Section::new("summary", "Summary");
        let (files, tables, rows): (i64, i64, i64) = self.conn.query_row(
            "SELECT count(DISTINCT filename), count(*), coalesce(sum(total_records), 0) FROM data_imports
             WHERE master_flow_id = ?1 AND status = 'completed'",
            [self.master_flow_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let by_kind = &self.kinds;
        let machines: i64 = by_kind
            .iter()
            .filter(|(k, _)| k != "application")
            .map(|(_, n)| n)
            .sum();
        let described: Vec<String> = by_kind
            .iter()
            .map(|(k, n)| {
                format!(
                    "{} {}",
                    thousands(*n),
                    crate::catalogue::kind_words(k, n.unsigned_abs())
                )
            })
            .collect();
        let eol = self.machines_eol;
        let extended = self.count(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'
               AND support_status = 'extended_support'",
        )?;
        let no_owner = self.count(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'
               AND business_owner IS NULL AND technical_owner IS NULL",
        )?;
        let no_environment = self.count(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application' AND environment IS NULL",
        )?;
        let mut findings = vec![
            (
                "Received".to_string(),
                format!(
                    "{} with {} rows{}.",
                    plural(files, "file"),
                    thousands(rows),
                    if tables > files {
                        format!(" in {}", plural(tables, "table"))
                    } else {
                        String::new()
                    }
                ),
            ),
            (
                "Describes".to_string(),
                if described.is_empty() {
                    "no assets.".to_string()
                } else {
                    format!("{}.", described.join(", "))
                },
            ),
            (
                "End of life".to_string(),
                format!(
                    "{} of {} machines run an operating system or database whose support has ended; {} more are in extended (paid) support.",
                    share_of(eol, machines),
                    thousands(machines),
                    thousands(extended)
                ),
            ),
            (
                "Ownership".to_string(),
                format!(
                    "{} machines name no business or technical owner; {} have no environment.",
                    share_of(no_owner, machines),
                    share_of(no_environment, machines)
                ),
            ),
        ];
        // Data quality per source: the share of rows that identify a machine.
        let weak: Vec<String> = self
            .sources
            .iter()
            .filter(|s| s.invalid > 0)
            .map(|s| {
                format!(
                    "{} ({:.0} % of {} rows usable)",
                    s.label,
                    (s.rows - s.invalid) as f64 * 100.0 / s.rows as f64,
                    thousands(s.rows)
                )
            })
            .collect();
        findings.push((
            "Data quality".to_string(),
            if weak.is_empty() {
                "every row of every file identifies a machine.".to_string()
            } else {
                format!("rows that identify no machine in {}.", weak.join("; "))
            },
        ));
        section.blocks.push(Block::Findings(findings));
        Ok(section)
    }

    /// Headline tiles and the charts by type, environment, operating system
    /// and location. Returns the section and the number of assets.
    fn inventory(&self) -> rusqlite::Result<(Section, i64)> {
        let mut section = Section::new("inventory", "Inventory");
        let kinds = &self.kinds;
        let of_kind = |wanted: &str| {
            kinds
                .iter()
                .find(|(k, _)| k == wanted)
                .map_or(0, |(_, n)| *n)
        };
        let assets: i64 = kinds.iter().map(|(_, n)| n).sum();
        let edges =
            self.count("SELECT count(*) FROM asset_dependencies WHERE engagement_id = ?1")?;
        // Machines, as the summary counts them (an application inherits its machines' status).
        let eol = self.machines_eol;
        let ready = self.count(
            "SELECT count(*) FROM assets WHERE engagement_id = ?1 AND sixr_ready = 'ready'",
        )?;
        let mut tiles = vec![
            ("Assets".to_string(), assets),
            ("Servers".to_string(), of_kind("server")),
            ("Applications".to_string(), of_kind("application")),
            ("Dependencies".to_string(), edges),
            ("Machines at end of life".to_string(), eol),
            ("Ready for 6R".to_string(), ready),
        ];
        // Desktops and laptops are kept apart, never among the servers.
        if of_kind("end_user_device") > 0 {
            tiles.insert(
                2,
                ("End-user devices".to_string(), of_kind("end_user_device")),
            );
        }
        section.blocks.push(Block::Tiles(tiles));
        let group =
            |expr: &str, machines_only: bool| -> rusqlite::Result<Vec<(Option<String>, i64)>> {
                let only = if machines_only {
                    "AND asset_type <> 'application'"
                } else {
                    ""
                };
                self.conn
                    .prepare(&format!(
                        "SELECT {expr} AS k, count(*) FROM assets WHERE engagement_id = ?1 {only}
                     GROUP BY k ORDER BY count(*) DESC, k"
                    ))?
                    .query_map([self.engagement_id()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            };
        let by_type: Vec<(Option<String>, i64)> =
            kinds.iter().map(|(k, n)| (Some(k.clone()), *n)).collect();
        section.blocks.push(Block::Charts(vec![
            chart_of("By type", &by_type, 10, "assets"),
            chart_of(
                "By environment",
                &group("environment", true)?,
                10,
                "machines",
            ),
            chart_of(
                "By operating system",
                &self.operating_systems()?,
                12,
                "machines",
            ),
            chart_of(
                "By location",
                &group(
                    "coalesce(nullif(trim(location), ''), nullif(trim(datacenter), ''))",
                    true,
                )?,
                12,
                "machines",
            ),
        ]));
        Ok((section, assets))
    }

    /// Machines by operating system as product and version, however each
    /// export spelled it ("Microsoft Windows Server 2019 Datacenter" and
    /// "Windows 2019" are one bar); None counts the unknown ones.
    fn operating_systems(&self) -> rusqlite::Result<Vec<(Option<String>, i64)>> {
        let mut merged: BTreeMap<String, i64> = BTreeMap::new();
        let mut unknown = 0;
        let rows: Vec<(Option<String>, Option<String>, i64)> = self
            .conn
            .prepare(
                "SELECT operating_system, os_version, count(*) FROM assets
                 WHERE engagement_id = ?1 AND asset_type <> 'application' GROUP BY 1, 2",
            )?
            .query_map([self.engagement_id()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (system, version, n) in rows {
            match os_name(system.as_deref(), version.as_deref()) {
                Some(label) => *merged.entry(label).or_default() += n,
                None => unknown += n,
            }
        }
        let mut out: Vec<(Option<String>, i64)> =
            merged.into_iter().map(|(k, n)| (Some(k), n)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.push((None, unknown));
        Ok(out)
    }

    /// Each application with the machines it runs on, their operating
    /// systems and support, and whether it is ready for a 6R assessment.
    fn applications(&self) -> rusqlite::Result<Section> {
        let mut section = Section::new("applications", "Applications");
        #[derive(Default)]
        struct App {
            name: String,
            ready: Option<String>,
            missing: Vec<String>,
            machines: i64,
            named: Vec<String>,
            systems: BTreeMap<String, i64>,
            support: BTreeMap<String, i64>,
            machines_ready: i64,
        }
        let mut apps: Vec<App> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut statement = self.conn.prepare(
            "SELECT id, name, sixr_ready, tech_debt_details ->> '$.sixr_missing' FROM assets
             WHERE engagement_id = ?1 AND asset_type = 'application' ORDER BY name COLLATE NOCASE, id",
        )?;
        let mut rows = statement.query([self.engagement_id()])?;
        while let Some(r) = rows.next()? {
            index.insert(r.get(0)?, apps.len());
            let missing: Option<String> = r.get(3)?;
            apps.push(App {
                name: r.get(1)?,
                ready: r.get(2)?,
                missing: missing
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or_default(),
                ..App::default()
            });
        }
        if apps.is_empty() {
            section.text("No application was named in the data: no column of the exports maps to application_name and no application list was given.");
            return Ok(section);
        }
        let mut statement = self.conn.prepare(
            "SELECT d.asset_id, m.name, m.operating_system, m.os_version, m.support_status, m.sixr_ready
             FROM asset_dependencies d JOIN assets m ON m.id = d.depends_on_asset_id
             WHERE d.engagement_id = ?1 AND d.dependency_type = 'runs_on' AND m.asset_type <> 'application'
             ORDER BY m.name COLLATE NOCASE",
        )?;
        let mut rows = statement.query([self.engagement_id()])?;
        while let Some(r) = rows.next()? {
            let Some(&at) = index.get(&r.get::<_, String>(0)?) else {
                continue;
            };
            let app = &mut apps[at];
            app.machines += 1;
            if app.named.len() < MACHINES_NAMED {
                app.named.push(r.get(1)?);
            }
            let system = os_name(
                r.get::<_, Option<String>>(2)?.as_deref(),
                r.get::<_, Option<String>>(3)?.as_deref(),
            )
            .unwrap_or_else(|| "not known".to_string());
            *app.systems.entry(system).or_default() += 1;
            let support: Option<String> = r.get(4)?;
            *app.support
                .entry(
                    support
                        .unwrap_or_else(|| "unknown".into())
                        .replace('_', " "),
                )
                .or_default() += 1;
            if r.get::<_, Option<String>>(5)?.as_deref() == Some("ready") {
                app.machines_ready += 1;
            }
        }
        let total = apps.len();
        let without_machines = apps.iter().filter(|a| a.machines == 0).count();
        apps.sort_by(|a, b| {
            b.machines
                .cmp(&a.machines)
                .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
        });
        section.text(format!(
            "{}{}. Support is that of the machines; 6R readiness is the application's own record and how many of its machines are ready.",
            plural(total as i64, "application"),
            match without_machines {
                0 => ", each with the machines it runs on".to_string(),
                n => format!("; {} name no machine", plural(n as i64, "application")),
            }
        ));
        let counted = |map: &BTreeMap<String, i64>| {
            let mut pairs: Vec<(&String, &i64)> = map.iter().collect();
            pairs.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            pairs
                .iter()
                .map(|(k, n)| {
                    if **n == 1 {
                        k.to_string()
                    } else {
                        format!("{k} ×{n}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rows: Vec<Vec<Cell>> = apps
            .iter()
            .take(APPLICATIONS_SHOWN)
            .map(|a| {
                let mut names = a.named.join(", ");
                if a.machines > a.named.len() as i64 {
                    names.push_str(&format!(" and {} more", a.machines - a.named.len() as i64));
                }
                let readiness = match a.ready.as_deref() {
                    Some("ready") => "ready".to_string(),
                    _ if a.missing.is_empty() => "not assessed".to_string(),
                    _ => format!("needs {}", a.missing.join(", ").replace('_', " ")),
                };
                let readiness = if a.machines > 0 {
                    format!(
                        "{readiness}; {} of {} machines ready",
                        a.machines_ready, a.machines
                    )
                } else {
                    readiness
                };
                vec![
                    Cell::from(a.name.as_str()),
                    Cell::Count(a.machines),
                    Cell::Text(names),
                    Cell::Text(counted(&a.systems)),
                    Cell::Text(counted(&a.support)),
                    Cell::Text(readiness),
                ]
            })
            .collect();
        section.table(
            &[
                "application",
                "machines",
                "runs on",
                "operating systems",
                "support",
                "6R readiness",
            ],
            rows,
        );
        if total > APPLICATIONS_SHOWN {
            section.note(format!(
                "The {APPLICATIONS_SHOWN} applications with the most machines of {}; `intake assets --type application` lists them all.",
                thousands(total as i64)
            ));
        }
        Ok(section)
    }

    /// Support status by product (the operating system or database each
    /// verdict rests on) with how many machines run it and when support ends.
    fn tech_debt(&self) -> rusqlite::Result<Section> {
        let mut section = Section::new("tech-debt", "Tech debt");
        let analysis = &self.flow.tech_debt;
        if analysis.is_null() {
            section
                .text("Support status was not assessed for this flow (the run stopped before it).");
            return Ok(section);
        }
        let status = |s: &str| analysis["by_status"][s].as_u64().unwrap_or(0);
        section.text(format!(
            "Support judged on {} against the product catalogue compiled {} ({}): {} end of life, {} in extended support, {} supported, {} not known. Ready for a 6R assessment: {} of {} candidates{}.",
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
        let products: Vec<(String, String, Option<String>, i64)> = self
            .conn
            .prepare(
                "SELECT coalesce(tech_debt_details ->> '$.based_on', ''), support_status,
                        tech_debt_details ->> '$.support_ends', count(*)
                 FROM assets WHERE engagement_id = ?1 AND asset_type <> 'application'
                   AND support_status IN ('end_of_life', 'extended_support', 'supported')
                 GROUP BY 1, 2, 3
                 ORDER BY CASE support_status WHEN 'end_of_life' THEN 0 WHEN 'extended_support' THEN 1 ELSE 2 END,
                          count(*) DESC, 3, 1",
            )?
            .query_map([self.engagement_id()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if products.is_empty() {
            section.note("No machine runs an operating system or database the catalogue knows.");
        } else {
            let rows: Vec<Vec<Cell>> = products
                .iter()
                .take(PRODUCTS_SHOWN)
                .map(|(product, status, ends, n)| {
                    let product = if product.ends_with("from the source") {
                        "support date given in the export".to_string()
                    } else {
                        product.clone()
                    };
                    vec![
                        Cell::Text(product),
                        Cell::Text(status.replace('_', " ")),
                        Cell::Text(ends.clone().unwrap_or_else(|| "not known".into())),
                        Cell::Count(*n),
                    ]
                })
                .collect();
            section.table(&["product", "support", "support ends", "machines"], rows);
            if products.len() > PRODUCTS_SHOWN {
                let rest: i64 = products[PRODUCTS_SHOWN..].iter().map(|p| p.3).sum();
                section.note(format!(
                    "{} more products on {} machines, all supported or later in this order.",
                    products.len() - PRODUCTS_SHOWN,
                    thousands(rest)
                ));
            }
        }
        if let Some(missing) = analysis["sixr_ready"]["missing_fields"].as_object() {
            if !missing.is_empty() {
                let list: Vec<String> = missing
                    .iter()
                    .map(|(field, n)| format!("{} ({n})", field.replace('_', " ")))
                    .collect();
                section.note(format!(
                    "What a 6R assessment still needs, by field (assets missing it): {}.",
                    list.join(", ")
                ));
            }
        }
        Ok(section)
    }

    fn dependencies(&self) -> rusqlite::Result<Section> {
        let mut section = Section::new("dependencies", "Dependencies");
        let graph = &self.flow.dependencies;
        let by_type: Vec<(String, i64)> = self
            .conn
            .prepare(
                "SELECT replace(dependency_type, '_', ' '), count(*) FROM asset_dependencies WHERE engagement_id = ?1
                 GROUP BY 1 ORDER BY 2 DESC, 1",
            )?
            .query_map([self.engagement_id()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let total: i64 = by_type.iter().map(|(_, n)| n).sum();
        if total == 0 {
            section.text("No dependency was found in the data.");
        } else {
            section.text(format!(
                "{} dependencies between assets; the appendix lists them.",
                thousands(total)
            ));
            section.blocks.push(Block::Charts(vec![Chart {
                heading: "By type".into(),
                bars: by_type,
                unknown: None,
            }]));
        }
        if let Some(top) = graph["most_depended_on"]
            .as_array()
            .filter(|t| !t.is_empty())
        {
            let rows: Vec<Vec<Cell>> = top
                .iter()
                .map(|t| {
                    vec![
                        Cell::Text(text_of(&t["name"])),
                        Cell::Text(text_of(&t["asset_type"])),
                        Cell::Count(t["dependents"].as_i64().unwrap_or(0)),
                    ]
                })
                .collect();
            section.subheading("Most depended on");
            section.table(&["asset", "type", "dependents"], rows);
        }
        if let Some(clusters) = graph["clusters"].as_array().filter(|c| !c.is_empty()) {
            let rows: Vec<Vec<Cell>> = clusters
                .iter()
                .map(|c| {
                    vec![
                        Cell::Text(text_of(&c["cluster"])),
                        Cell::Text(text_of(&c["datacenter"])),
                        Cell::Text(
                            c["hosts"]
                                .as_array()
                                .map(|h| h.iter().map(text_of).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default(),
                        ),
                        Cell::Count(c["machines"].as_i64().unwrap_or(0)),
                    ]
                })
                .collect();
            section.subheading("Clusters");
            section.table(&["cluster", "datacenter", "hosts", "machines"], rows);
        }
        if let Some(problems) = graph["problems"].as_array().filter(|p| !p.is_empty()) {
            let unresolved = graph["unresolved"].as_u64().unwrap_or(0);
            section.subheading(format!(
                "Relationship ends that name no known asset ({unresolved})"
            ));
            let rows: Vec<Vec<Cell>> = problems
                .iter()
                .map(|p| {
                    vec![
                        Cell::Text(crate::read::table_label(&text_of(&p["file"]), None)),
                        Cell::Count(p["row"].as_i64().unwrap_or(0)),
                        Cell::Text(text_of(&p["column"])),
                        Cell::Text(text_of(&p["value"])),
                        Cell::Text(text_of(&p["message"])),
                    ]
                })
                .collect();
            section.table(&["file", "row", "column", "value", "problem"], rows);
        }
        Ok(section)
    }

    /// Each completed import's rows and the rows that identify no machine.
    fn per_source(&self) -> rusqlite::Result<Vec<SourceQuality>> {
        self.conn
            .prepare(&format!(
                "SELECT d.filename, d.sheet_name, d.total_records,
                        (SELECT count(*) FROM {records} r WHERE r.is_valid = 0),
                        (SELECT count(*) FROM {records} r
                           WHERE r.validation_errors IS NOT NULL AND r.validation_errors <> '[]')
                 FROM data_imports d WHERE d.master_flow_id = ?1 AND d.status = 'completed' AND d.total_records > 0
                 ORDER BY d.created_at, d.id",
                records = crate::record_store::records_of("d.id")
            ))?
            .query_map([self.master_flow_id], |r| {
                Ok(SourceQuality {
                    label: crate::read::table_label(
                        &r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?.as_deref(),
                    ),
                    rows: r.get(2)?,
                    invalid: r.get(3)?,
                    with_problems: r.get(4)?,
                })
            })?
            .collect()
    }

    /// Per source file: its rows, the share that is usable, and its most
    /// frequent problems grouped with a count and one example each.
    fn data_quality(&self) -> rusqlite::Result<Section> {
        let mut section = Section::new("quality", "Data quality by source");
        let sources = &self.sources;
        if sources.is_empty() {
            section.text("No file of this flow held rows.");
            return Ok(section);
        }
        let rows: Vec<Vec<Cell>> = sources
            .iter()
            .map(|s| {
                vec![
                    Cell::Text(s.label.clone()),
                    Cell::Count(s.rows),
                    Cell::Share((s.rows - s.invalid) as f64 / s.rows.max(1) as f64),
                    Cell::Count(s.with_problems),
                ]
            })
            .collect();
        section.text("Usable rows identify a machine; a value that could not be read is kept as written and listed here.");
        section.table(
            &[
                "source",
                "rows",
                "usable",
                "rows with a value kept as written",
            ],
            rows,
        );
        // SQLite gives the bare columns of a min() aggregate the values of
        // the row the minimum comes from: the example is the first row.
        let problems: Vec<Vec<Cell>> = self
            .conn
            .prepare(
                "WITH flagged AS (
                   SELECT d.id AS import_id, d.created_at, d.filename, d.sheet_name, r.record_index,
                          r.is_valid, r.validation_errors
                   FROM raw_records r JOIN data_imports d ON d.id = r.data_import_id
                   WHERE d.master_flow_id = ?1 AND r.validation_errors IS NOT NULL AND r.validation_errors <> '[]'
                   UNION ALL
                   SELECT d.id, d.created_at, d.filename, d.sheet_name, s.record_index, r.is_valid, r.validation_errors
                   FROM data_imports d JOIN raw_record_sightings s ON s.data_import_id = d.id
                   JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
                   WHERE d.master_flow_id = ?1 AND r.validation_errors IS NOT NULL AND r.validation_errors <> '[]'),
                 p AS (
                   SELECT import_id, created_at, filename, sheet_name, e.value ->> 'field' AS field,
                          count(*) AS n, min(record_index) AS first_row, e.value ->> 'raw_value' AS raw,
                          e.value ->> 'message' AS message, is_valid AS valid
                   FROM flagged, json_each(flagged.validation_errors) e
                   GROUP BY import_id, e.value ->> 'code', e.value ->> 'field')
                 SELECT filename, sheet_name, field, message, n, first_row, raw, valid FROM (
                   SELECT *, row_number() OVER (PARTITION BY import_id ORDER BY n DESC, field) AS rank FROM p)
                 WHERE rank <= ?2 ORDER BY created_at, import_id, rank",
            )?
            .query_map(rusqlite::params![self.master_flow_id, PROBLEMS_PER_SOURCE], |r| {
                let sheet: Option<String> = r.get(1)?;
                let valid: bool = r.get(7)?;
                Ok(vec![
                    Cell::Text(crate::read::table_label(&r.get::<_, String>(0)?, sheet.as_deref())),
                    Cell::Text(r.get::<_, Option<String>>(2)?.unwrap_or_default()),
                    Cell::Text(r.get::<_, Option<String>>(3)?.unwrap_or_default()),
                    Cell::Count(r.get(4)?),
                    Cell::Text(format!(
                        "row {}: {}{}",
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                        if valid { "" } else { " (row not usable)" }
                    )),
                ])
            })?
            .collect::<rusqlite::Result<_>>()?;
        if problems.is_empty() {
            section.note("No value of any row had to be kept as written.");
        } else {
            section.subheading("Most frequent problems");
            section.table(
                &[
                    "source",
                    "column / field",
                    "problem",
                    "rows",
                    "first example",
                ],
                problems,
            );
            section.note(format!(
                "At most {PROBLEMS_PER_SOURCE} problems per source; `intake import -v` lists every row."
            ));
        }
        Ok(section)
    }

    /// The files and sheets as received (file names, never local paths).
    fn sources(&self) -> rusqlite::Result<(Section, i64)> {
        let mut section = Section::appendix("files", "Appendix: sources");
        let mut rows: Vec<Vec<Cell>> = self
            .conn
            .prepare(&format!(
                "SELECT filename, sheet_name, coalesce(json_extract(read_metadata, '$.layout.layout'), source_system, ''),
                        coalesce(json_extract(read_metadata, '$.layout.role'), ''), status, total_records,
                        (SELECT count(*) FROM {records} r WHERE r.is_valid = 0),
                        coalesce(error_message, '')
                 FROM data_imports d WHERE master_flow_id = ?1 ORDER BY created_at, id",
                records = crate::record_store::records_of("d.id")
            ))?
            .query_map([self.master_flow_id], |r| {
                Ok(vec![
                    Cell::Text(crate::read::table_label(
                        &r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?.as_deref(),
                    )),
                    Cell::Text(r.get::<_, String>(2)?.replace('_', " ")),
                    Cell::Text(r.get(3)?),
                    Cell::Text(r.get(4)?),
                    Cell::Count(r.get(5)?),
                    Cell::Count(r.get(6)?),
                    Cell::Text(r.get(7)?),
                ])
            })?
            .collect::<rusqlite::Result<_>>()?;
        let n = rows.len() as i64;
        // The error column only when a file failed.
        const HEADER: [&str; 7] = [
            "file [sheet]",
            "recognised as",
            "role",
            "status",
            "rows",
            "invalid rows",
            "error",
        ];
        let failed = rows.iter().any(|r| !r[6].text().is_empty());
        if !failed {
            for row in &mut rows {
                row.pop();
            }
        }
        section.table(&HEADER[..if failed { 7 } else { 6 }], rows);
        Ok((section, n))
    }

    /// The mapped columns one per row; the columns mapped to nothing folded
    /// into one line per file (they are kept in custom_attributes).
    fn mappings(&self) -> rusqlite::Result<Section> {
        let mut section = Section::appendix("mappings", "Appendix: column mappings");
        let rows: Vec<MappingRow> = self
            .conn
            .prepare(
                "SELECT d.filename, d.sheet_name, m.source_field, m.target_field,
                        coalesce(m.confidence_score, 0), coalesce(m.match_type, ''), m.status
                 FROM import_field_mappings m JOIN data_imports d ON d.id = m.data_import_id
                 WHERE m.master_flow_id = ?1 ORDER BY d.created_at, d.id, m.rowid",
            )?
            .query_map([self.master_flow_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if rows.is_empty() {
            section
                .text("No column of this flow was mapped (relationship exports are not mapped).");
            return Ok(section);
        }
        // Per file: its mapped columns, one per row, then the columns mapped
        // to nothing folded into one line.
        struct FileMappings {
            file: String,
            mapped: Vec<Vec<Cell>>,
            unmapped: Vec<String>,
        }
        let mut files: Vec<FileMappings> = Vec::new();
        for (file, sheet, source, target, confidence, kind, status) in rows {
            let file = crate::read::table_label(&file, sheet.as_deref());
            if files.last().is_none_or(|f| f.file != file) {
                files.push(FileMappings {
                    file: file.clone(),
                    mapped: Vec::new(),
                    unmapped: Vec::new(),
                });
            }
            let entry = files.last_mut().expect("pushed above");
            let state = crate::map::review::state_of(&status, target.is_some());
            match target.filter(|_| state != "unmapped") {
                Some(target) => entry.mapped.push(vec![
                    Cell::Text(source),
                    Cell::Text(target),
                    Cell::Share(confidence),
                    Cell::Text(kind),
                    Cell::Text(state.to_string()),
                ]),
                None => entry.unmapped.push(source),
            }
        }
        for FileMappings {
            file,
            mapped,
            unmapped,
        } in files
        {
            section.subheading(file);
            if !mapped.is_empty() {
                section.table(
                    &[
                        "source column",
                        "asset field",
                        "confidence",
                        "match",
                        "state",
                    ],
                    mapped,
                );
            }
            if !unmapped.is_empty() {
                const NAMED: usize = 20;
                let mut names = unmapped
                    .iter()
                    .take(NAMED)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if unmapped.len() > NAMED {
                    names.push_str(&format!(" and {} more", unmapped.len() - NAMED));
                }
                section.note(format!(
                    "{} column(s) mapped to no field, kept in custom_attributes: {names}",
                    unmapped.len()
                ));
            }
        }
        Ok(section)
    }

    /// Every dependency (the first `EDGES_SHOWN`), with where it was found.
    fn all_dependencies(&self) -> rusqlite::Result<Section> {
        let mut section = Section::appendix("all-dependencies", "Appendix: dependencies");
        let total =
            self.count("SELECT count(*) FROM asset_dependencies WHERE engagement_id = ?1")?;
        if total == 0 {
            section.text("No dependency was found in the data.");
            return Ok(section);
        }
        let rows: Vec<Vec<Cell>> = self
            .conn
            .prepare(
                "SELECT a.name, a.asset_type, replace(d.dependency_type, '_', ' '), b.name, b.asset_type,
                        coalesce(d.source, ''), coalesce(d.description, '')
                 FROM asset_dependencies d JOIN assets a ON a.id = d.asset_id JOIN assets b ON b.id = d.depends_on_asset_id
                 WHERE d.engagement_id = ?1 ORDER BY a.name, b.name LIMIT ?2",
            )?
            .query_map(rusqlite::params![self.engagement_id(), EDGES_SHOWN], |r| {
                (0..7)
                    .map(|i| r.get::<_, String>(i).map(Cell::Text))
                    .collect::<rusqlite::Result<Vec<Cell>>>()
            })?
            .collect::<rusqlite::Result<_>>()?;
        if total > EDGES_SHOWN {
            section.note(format!(
                "The first {EDGES_SHOWN} of {} by name.",
                thousands(total)
            ));
        }
        section.table(
            &[
                "asset",
                "type",
                "relationship",
                "depends on",
                "type",
                "source",
                "detail",
            ],
            rows,
        );
        Ok(section)
    }

    /// The run's facts: ids, phases, times, the version.
    fn about(&self) -> Section {
        let mut section = Section::appendix("about", "Appendix: about this report");
        let flow = self.flow;
        let phases: Vec<String> = flow
            .phases
            .as_array()
            .map(|a| a.iter().map(text_of).collect())
            .unwrap_or_default();
        let mut rows = vec![
            vec!["master flow".into(), Cell::from(self.master_flow_id)],
            vec![
                "status".into(),
                Cell::Text(format!(
                    "{} ({}% of the discovery phases)",
                    flow.status, flow.progress
                )),
            ],
            vec!["phases completed".into(), Cell::Text(phases.join(", "))],
            vec!["started".into(), Cell::Text(flow.created_at.clone())],
            vec![
                "completed".into(),
                Cell::Text(
                    flow.completed_at
                        .clone()
                        .unwrap_or_else(|| "not completed".to_string()),
                ),
            ],
            vec!["written".into(), Cell::Text(crate::db::now())],
            vec!["intake".into(), Cell::from(env!("CARGO_PKG_VERSION"))],
        ];
        if let (Some(phase), Some(message)) = (&flow.error_phase, &flow.error_message) {
            rows.push(vec![
                "failed in".into(),
                Cell::Text(format!("{phase}: {message}")),
            ]);
        }
        section.table(&["", ""], rows);
        section
    }
}

/// A mapping as the appendix lists it: file, sheet, source column, field,
/// confidence, match type, status.
type MappingRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    f64,
    String,
    String,
);

struct SourceQuality {
    label: String,
    rows: i64,
    invalid: i64,
    with_problems: i64,
}

/// An operating system as product and version when the catalogue knows it,
/// else as written (trimmed); None when there is none.
fn os_name(system: Option<&str>, version: Option<&str>) -> Option<String> {
    crate::tech_debt::os_label(system, version).or_else(|| {
        system
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

/// "1 file", "14 files".
fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{} {word}s", thousands(n))
    }
}

/// A chart of the known values (at most `limit` bars, the rest as one
/// "other" bar); the unknown ones are a share said under it, never a bar.
fn chart_of(heading: &str, data: &[(Option<String>, i64)], limit: usize, what: &str) -> Chart {
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
    Chart {
        heading: heading.to_string(),
        bars,
        unknown: (unknown > 0 && total > 0).then(|| {
            format!(
                "Not known for {} of {} {what} ({:.0} %).",
                thousands(unknown),
                thousands(total),
                unknown as f64 * 100.0 / total as f64
            )
        }),
    }
}
