//! The dependencies phase: `asset_dependencies` built from what the
//! engagement's data says, from three kinds of evidence.
//!
//! - Virtualisation: a machine whose `virtualization_host` names an ESXi host
//!   (RVTools vInfo's Host column) runs on that host; its cluster and
//!   datacenter go into the edge's description and the graph summary. A host
//!   named by the data but described by no machine record becomes a server
//!   asset of its own, filled from RVTools' vHost sheet when there is one.
//! - Applications: an application named in a machine's `application_name`
//!   (one or a list) becomes an application asset that runs on those machines.
//! - Relationship exports (ServiceNow cmdb_rel_ci, or a source, target, type
//!   list): each row becomes an edge when both of its ends name a known asset;
//!   an end that names none, or more than one, is recorded on the row
//!   (validation_errors) and reported, never invented.
//!
//! The phase owns every edge it derives: a re-run inserts what is new, updates
//! what changed, removes what the data no longer supports and leaves the rest
//! untouched, so running it twice changes nothing.

mod relationship;

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::cleanse::values;
use crate::db;
use crate::flow::FlowIds;
use crate::read::layout::{self, Layout};

pub use relationship::{direction, RelationshipRow};

/// The edge sources this phase derives and therefore reconciles.
pub const SOURCES: &[&str] = &[
    SOURCE_VIRTUALIZATION,
    SOURCE_APPLICATION,
    SOURCE_CMDB_REL_CI,
    SOURCE_RELATIONSHIP_LIST,
];
const SOURCE_VIRTUALIZATION: &str = "virtualization_host";
const SOURCE_APPLICATION: &str = "application_column";
const SOURCE_CMDB_REL_CI: &str = "cmdb_rel_ci";
const SOURCE_RELATIONSHIP_LIST: &str = "relationship_list";

/// discovery_source of the assets this phase creates.
pub const HOST_SOURCE: &str = "rvtools_host";
pub const APPLICATION_SOURCE: &str = "application_column";

/// Problems kept in the outcome (all of them are on their raw rows).
const PROBLEMS_KEPT: usize = 100;

/// What the phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DependenciesOutcome {
    /// Edges of the engagement this phase derived, after the run.
    pub edges: u64,
    pub created: u64,
    pub updated: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub by_type: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
    pub hosts_created: u64,
    pub applications_created: u64,
    /// Rows of relationship exports read, and how many named an unknown or ambiguous end.
    pub relationship_rows: u64,
    pub unresolved: u64,
    /// The first unresolved ends, with where they are.
    pub problems: Vec<DependencyProblem>,
    pub clusters: Vec<ClusterSummary>,
    /// The assets most others depend on.
    pub most_depended_on: Vec<ConnectedAsset>,
}

/// An end of a relationship row that names no asset, or several.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyProblem {
    pub file: String,
    pub sheet: Option<String>,
    /// The row's number as the file or sheet shows it (the header is row 1).
    pub row: i64,
    pub column: String,
    pub value: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    pub cluster: String,
    pub datacenter: Option<String>,
    pub hosts: Vec<String>,
    pub machines: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectedAsset {
    pub name: String,
    pub asset_type: String,
    pub dependents: u64,
}

/// One derived edge before it is written.
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    description: Option<String>,
    confidence: f64,
    source: &'static str,
}

type EdgeKey = (String, String, String);

/// An asset as the phase sees it.
#[derive(Debug, Clone)]
struct AssetRow {
    id: String,
    name: String,
    asset_type: String,
    virtualization_host: Option<String>,
    cluster: Option<String>,
    datacenter: Option<String>,
    application_name: Option<String>,
    environment: Option<String>,
}

/// Runs the phase for the engagement of `ids`.
pub fn run(conn: &Connection, ids: &FlowIds) -> rusqlite::Result<DependenciesOutcome> {
    let (client, engagement): (String, String) = conn.query_row(
        "SELECT client_account_id, engagement_id FROM discovery_flows WHERE id = ?1",
        [&ids.discovery_flow_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let tx = conn.unchecked_transaction()?;
    let mut phase = Phase {
        conn: &tx,
        ids,
        client,
        engagement,
        now: db::now(),
        outcome: DependenciesOutcome::default(),
        edges: BTreeMap::new(),
    };
    let mut assets = phase.load_assets()?;
    let mut resolver = Resolver::build(&tx, &phase.engagement)?;
    phase.virtualization(&mut assets, &mut resolver)?;
    phase.applications(&assets, &mut resolver)?;
    phase.relationship_exports(&resolver)?;
    phase.reconcile()?;
    phase.summarise(&assets)?;
    let outcome = phase.outcome;
    tx.commit()?;
    Ok(outcome)
}

struct Phase<'c> {
    conn: &'c Connection,
    ids: &'c FlowIds,
    client: String,
    engagement: String,
    now: String,
    outcome: DependenciesOutcome,
    edges: BTreeMap<EdgeKey, Edge>,
}

impl Phase<'_> {
    fn load_assets(&self) -> rusqlite::Result<Vec<AssetRow>> {
        self.conn
            .prepare(
                "SELECT id, name, asset_type, virtualization_host, cluster, datacenter,
                        application_name, environment
                 FROM assets WHERE engagement_id = ?1 ORDER BY created_at, id",
            )?
            .query_map([&self.engagement], |r| {
                Ok(AssetRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    asset_type: r.get(2)?,
                    virtualization_host: r.get(3)?,
                    cluster: r.get(4)?,
                    datacenter: r.get(5)?,
                    application_name: r.get(6)?,
                    environment: r.get(7)?,
                })
            })?
            .collect()
    }

    fn add_edge(&mut self, from: &str, to: &str, kind: &str, edge: Edge) {
        if from == to {
            return;
        }
        self.edges
            .entry((from.to_string(), to.to_string(), kind.to_string()))
            .or_insert(edge);
    }

    /// Machine → the host it runs on; hosts the data names but no record
    /// describes become server assets.
    fn virtualization(
        &mut self,
        assets: &mut Vec<AssetRow>,
        resolver: &mut Resolver,
    ) -> rusqlite::Result<()> {
        let vhost = self.vhost_rows()?;
        let guests: Vec<AssetRow> = assets
            .iter()
            .filter(|a| a.virtualization_host.is_some() && a.asset_type != "application")
            .cloned()
            .collect();
        for guest in guests {
            let host_name = guest.virtualization_host.as_deref().unwrap_or_default();
            let host_id = match resolver.resolve(host_name) {
                Resolution::One(id) => id,
                Resolution::Many(_) => continue,
                Resolution::None => {
                    let detail = vhost.get(&host_key(host_name));
                    let host = self.create_host(host_name, &guest, detail)?;
                    resolver.add(&host);
                    let id = host.id.clone();
                    assets.push(host);
                    id
                }
            };
            let place = match (&guest.cluster, &guest.datacenter) {
                (Some(c), Some(d)) => format!(" in cluster {c}, datacenter {d}"),
                (Some(c), None) => format!(" in cluster {c}"),
                (None, Some(d)) => format!(" in datacenter {d}"),
                (None, None) => String::new(),
            };
            self.add_edge(
                &guest.id,
                &host_id,
                "runs_on",
                Edge {
                    description: Some(format!("{} runs on host {host_name}{place}", guest.name)),
                    confidence: 1.0,
                    source: SOURCE_VIRTUALIZATION,
                },
            );
        }
        Ok(())
    }

    /// The engagement's RVTools vHost rows by host name (newest import wins).
    fn vhost_rows(&self) -> rusqlite::Result<HashMap<String, Map<String, Value>>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.raw_data FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id
             WHERE d.engagement_id = ?1 AND d.status = 'completed' AND lower(d.sheet_name) = 'vhost'
               AND json_extract(d.read_metadata, '$.layout.layout') = 'rvtools'
             ORDER BY d.created_at, r.record_index",
        )?;
        let mut rows = stmt.query([&self.engagement])?;
        let mut hosts = HashMap::new();
        while let Some(row) = rows.next()? {
            let raw: String = row.get(0)?;
            let Ok(Value::Object(record)) = serde_json::from_str::<Value>(&raw) else {
                continue;
            };
            if let Some(name) = field(&record, &["host"]) {
                hosts.insert(host_key(&name), record);
            }
        }
        Ok(hosts)
    }

    fn create_host(
        &mut self,
        name: &str,
        guest: &AssetRow,
        detail: Option<&Map<String, Value>>,
    ) -> rusqlite::Result<AssetRow> {
        let get = |names: &[&str]| detail.and_then(|d| field(d, names));
        let name = name.trim();
        let fqdn = name.contains('.') && values::normalise_ip(name).is_none();
        let version = get(&["esxversion"]);
        let (os, os_version) = match &version {
            Some(v) => {
                let number = v
                    .split_whitespace()
                    .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()));
                ("VMware ESXi".to_string(), number.map(str::to_string))
            }
            None => ("VMware ESXi".to_string(), None),
        };
        let number = |names: &[&str]| get(names).and_then(|v| values::parse_number(&v));
        let memory_gb = number(&["memory", "memorymb", "memorymib"]).map(|mib| {
            // RVTools writes host memory in MiB ("# Memory").
            (mib / 1024.0 * 100.0).round() / 100.0
        });
        let cluster = get(&["cluster"]).or_else(|| guest.cluster.clone());
        let datacenter = get(&["datacenter"]).or_else(|| guest.datacenter.clone());
        let host = AssetRow {
            id: db::new_id(),
            name: name.to_string(),
            asset_type: "server".into(),
            virtualization_host: None,
            cluster: cluster.clone(),
            datacenter: datacenter.clone(),
            application_name: None,
            environment: None,
        };
        self.conn.execute(
            "INSERT INTO assets (id, client_account_id, engagement_id, master_flow_id, discovery_flow_id,
                asset_type, name, description, discovery_source, hostname, fqdn, ip_address,
                operating_system, os_version, is_virtual, virtualization_platform, cluster, datacenter,
                cpu_model, cpu_sockets, cpu_cores, cpu_speed_mhz, memory_gb, manufacturer, model,
                serial_number, first_discovered_at, last_discovered_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'server', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, 'VMware ESXi',
                ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?24, ?24, ?24)",
            params![
                host.id,
                self.client,
                self.engagement,
                self.ids.master_flow_id,
                self.ids.discovery_flow_id,
                host.name,
                if detail.is_some() {
                    "ESXi host named by RVTools vInfo, described by vHost"
                } else {
                    "ESXi host named by the VMs' host column (no vHost row describes it)"
                },
                HOST_SOURCE,
                values::short_name(&name.to_lowercase()),
                fqdn.then(|| name.to_lowercase()),
                values::normalise_ip(name),
                os,
                os_version,
                cluster,
                datacenter,
                get(&["cpumodel"]),
                number(&["cpu"]).map(|n| n as i64),
                number(&["cores"]).map(|n| n as i64),
                number(&["speed"]),
                memory_gb,
                get(&["vendor"]),
                get(&["model"]),
                get(&["serialnumber", "servicetag"]),
                self.now,
            ],
        )?;
        self.outcome.hosts_created += 1;
        Ok(host)
    }

    /// An application named on machines runs on them.
    fn applications(
        &mut self,
        assets: &[AssetRow],
        resolver: &mut Resolver,
    ) -> rusqlite::Result<()> {
        // Application name (as first written) → the machines naming it.
        let mut named: BTreeMap<String, (String, Vec<&AssetRow>)> = BTreeMap::new();
        for asset in assets.iter().filter(|a| a.asset_type != "application") {
            let Some(list) = &asset.application_name else {
                continue;
            };
            for app in application_names(list) {
                named
                    .entry(app.to_lowercase())
                    .or_insert_with(|| (app.to_string(), Vec::new()))
                    .1
                    .push(asset);
            }
        }
        for (key, (app, machines)) in named {
            let app_id = match resolver.applications.get(&key) {
                Some(ids) if ids.len() == 1 => ids[0].clone(),
                Some(_) => continue,
                None => {
                    let created = self.create_application(&app, &machines)?;
                    resolver.applications.insert(key, vec![created.clone()]);
                    created
                }
            };
            for machine in machines {
                self.add_edge(
                    &app_id,
                    &machine.id,
                    "runs_on",
                    Edge {
                        description: Some(format!(
                            "{app} is named in the application column of {}",
                            machine.name
                        )),
                        confidence: 0.9,
                        source: SOURCE_APPLICATION,
                    },
                );
            }
        }
        Ok(())
    }

    fn create_application(
        &mut self,
        name: &str,
        machines: &[&AssetRow],
    ) -> rusqlite::Result<String> {
        let environments: HashSet<&str> = machines
            .iter()
            .filter_map(|m| m.environment.as_deref())
            .collect();
        // Only an environment every machine agrees on is the application's.
        let environment = (environments.len() == 1)
            .then(|| environments.iter().next().map(|e| e.to_string()))
            .flatten();
        let id = db::new_id();
        self.conn.execute(
            "INSERT INTO assets (id, client_account_id, engagement_id, master_flow_id, discovery_flow_id,
                asset_type, name, description, discovery_source, environment, first_discovered_at,
                last_discovered_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'application', ?6, ?7, ?8, ?9, ?10, ?10, ?10, ?10)",
            params![
                id,
                self.client,
                self.engagement,
                self.ids.master_flow_id,
                self.ids.discovery_flow_id,
                name,
                format!("Application named in the application column of {} machine(s)", machines.len()),
                APPLICATION_SOURCE,
                environment,
                self.now,
            ],
        )?;
        self.outcome.applications_created += 1;
        Ok(id)
    }

    /// Rows of the engagement's relationship exports.
    fn relationship_exports(&mut self, resolver: &Resolver) -> rusqlite::Result<()> {
        let imports: Vec<(String, String, Option<String>, String)> = self
            .conn
            .prepare(
                "SELECT id, filename, sheet_name, json_extract(read_metadata, '$.layout.layout')
                 FROM data_imports
                 WHERE engagement_id = ?1 AND status = 'completed'
                   AND json_extract(read_metadata, '$.layout.role') = 'relationships'
                 ORDER BY created_at, id",
            )?
            .query_map([&self.engagement], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (import_id, file, sheet, layout_name) in imports {
            let Ok(layout) = serde_json::from_value::<Layout>(Value::String(layout_name)) else {
                continue;
            };
            let Some(spec) = layout.relationship_columns() else {
                continue;
            };
            let source = if layout == Layout::ServicenowRelationships {
                SOURCE_CMDB_REL_CI
            } else {
                SOURCE_RELATIONSHIP_LIST
            };
            let rows: Vec<(i64, i64, String)> = self
                .conn
                .prepare(
                    "SELECT rowid, record_index, raw_data FROM raw_import_records
                     WHERE data_import_id = ?1 ORDER BY record_index",
                )?
                .query_map([&import_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (rowid, index, raw) in rows {
                self.outcome.relationship_rows += 1;
                let record: Map<String, Value> = serde_json::from_str(&raw).unwrap_or_default();
                let row = RelationshipRow::read(&record, &spec);
                let mut errors = Vec::new();
                let mut ends = Vec::new();
                for (column, value) in [(&row.from_column, &row.from), (&row.to_column, &row.to)] {
                    let problem = match value.as_deref().map(|v| (v, resolver.resolve(v))) {
                        Some((_, Resolution::One(id))) => {
                            ends.push(id);
                            continue;
                        }
                        Some((v, Resolution::Many(n))) => (
                            v.to_string(),
                            "ambiguous_end",
                            format!(
                                "'{v}' names {n} assets of this engagement; write the FQDN, sys_id or another unique key in the export"
                            ),
                        ),
                        Some((v, Resolution::None)) => (
                            v.to_string(),
                            "unknown_end",
                            format!(
                                "no asset of this engagement is named '{v}'; import the export that describes it, or correct the name, then run `intake import` again"
                            ),
                        ),
                        None => (
                            String::new(),
                            "missing_end",
                            "the relationship has no value here; fill it in or remove the row".to_string(),
                        ),
                    };
                    let column = column.clone().unwrap_or_default();
                    errors.push(json!({"field": column, "raw_value": problem.0, "code": problem.1, "message": problem.2}));
                    self.outcome.unresolved += 1;
                    if self.outcome.problems.len() < PROBLEMS_KEPT {
                        self.outcome.problems.push(DependencyProblem {
                            file: file.clone(),
                            sheet: sheet.clone(),
                            row: index,
                            column,
                            value: problem.0,
                            code: problem.1,
                            message: problem.2,
                        });
                    }
                }
                let (kind, reversed) = direction(row.kind.as_deref(), layout);
                let mut cleansed = json!({
                    "from": row.from, "to": row.to, "dependency_type": kind, "reversed": reversed,
                });
                if let [from, to] = ends.as_slice() {
                    let (from, to) = if reversed { (to, from) } else { (from, to) };
                    cleansed["asset_id"] = json!(from);
                    cleansed["depends_on_asset_id"] = json!(to);
                    let description = row.describe();
                    self.add_edge(
                        from,
                        to,
                        &kind,
                        Edge {
                            description,
                            confidence: 1.0,
                            source,
                        },
                    );
                }
                let errors = (!errors.is_empty()).then(|| Value::Array(errors).to_string());
                // Written only when it differs, so a re-run leaves the rows alone.
                self.conn
                    .prepare_cached(
                        "UPDATE raw_import_records SET cleansed_data = ?2, is_valid = ?3,
                           validation_errors = ?4, is_processed = 1, processed_at = ?5
                         WHERE rowid = ?1 AND (cleansed_data IS NOT ?2 OR is_valid IS NOT ?3
                           OR validation_errors IS NOT ?4 OR is_processed = 0)",
                    )?
                    .execute(params![
                        rowid,
                        cleansed.to_string(),
                        errors.is_none(),
                        errors,
                        self.now
                    ])?;
            }
        }
        Ok(())
    }

    /// Writes the derived edges: new ones inserted, changed ones updated,
    /// edges the data no longer gives removed.
    fn reconcile(&mut self) -> rusqlite::Result<()> {
        let placeholders = SOURCES
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let stored: HashMap<EdgeKey, (String, Edge)> = self
            .conn
            .prepare(&format!(
                "SELECT id, asset_id, depends_on_asset_id, dependency_type, description, confidence_score, source
                 FROM asset_dependencies WHERE engagement_id = ?1 AND source IN ({placeholders})"
            ))?
            .query_map([&self.engagement], |r| {
                let source: String = r.get(6)?;
                Ok((
                    (r.get(1)?, r.get(2)?, r.get(3)?),
                    (
                        r.get(0)?,
                        Edge {
                            description: r.get(4)?,
                            confidence: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                            source: SOURCES.iter().find(|s| **s == source).copied().unwrap_or(""),
                        },
                    ),
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (key, (id, _)) in &stored {
            if !self.edges.contains_key(key) {
                self.conn
                    .execute("DELETE FROM asset_dependencies WHERE id = ?1", [id])?;
                self.outcome.removed += 1;
            }
        }
        for (key, edge) in &self.edges {
            match stored.get(key) {
                Some((_, old)) if old == edge => self.outcome.unchanged += 1,
                Some((id, _)) => {
                    self.conn.execute(
                        "UPDATE asset_dependencies SET description = ?2, confidence_score = ?3, source = ?4,
                           master_flow_id = ?5, updated_at = ?6 WHERE id = ?1",
                        params![id, edge.description, edge.confidence, edge.source, self.ids.master_flow_id, self.now],
                    )?;
                    self.outcome.updated += 1;
                }
                None => {
                    // An edge another source already wrote (same ends and type) is kept as it is.
                    let taken: Option<String> = self
                        .conn
                        .query_row(
                            "SELECT id FROM asset_dependencies WHERE asset_id = ?1 AND depends_on_asset_id = ?2 AND dependency_type = ?3",
                            params![key.0, key.1, key.2],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if taken.is_some() {
                        self.outcome.unchanged += 1;
                        continue;
                    }
                    self.conn.execute(
                        "INSERT INTO asset_dependencies (id, client_account_id, engagement_id, master_flow_id,
                           asset_id, depends_on_asset_id, dependency_type, description, confidence_score,
                           source, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                        params![
                            db::new_id(),
                            self.client,
                            self.engagement,
                            self.ids.master_flow_id,
                            key.0,
                            key.1,
                            key.2,
                            edge.description,
                            edge.confidence,
                            edge.source,
                            self.now
                        ],
                    )?;
                    self.outcome.created += 1;
                }
            }
        }
        self.outcome.edges = self.edges.len() as u64;
        for (key, edge) in &self.edges {
            *self.outcome.by_type.entry(key.2.clone()).or_default() += 1;
            *self
                .outcome
                .by_source
                .entry(edge.source.to_string())
                .or_default() += 1;
        }
        Ok(())
    }

    /// Clusters with their hosts and machines, and the most depended-on assets.
    fn summarise(&mut self, assets: &[AssetRow]) -> rusqlite::Result<()> {
        let by_id: HashMap<&str, &AssetRow> = assets.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut clusters: BTreeMap<String, ClusterSummary> = BTreeMap::new();
        let mut dependents: HashMap<&str, u64> = HashMap::new();
        for (from, to, kind) in self.edges.keys() {
            *dependents.entry(to.as_str()).or_default() += 1;
            let (Some(guest), Some(host)) = (by_id.get(from.as_str()), by_id.get(to.as_str()))
            else {
                continue;
            };
            if kind != "runs_on" || guest.virtualization_host.is_none() {
                continue;
            }
            let Some(cluster) = guest.cluster.clone().or_else(|| host.cluster.clone()) else {
                continue;
            };
            let entry = clusters
                .entry(cluster.clone())
                .or_insert_with(|| ClusterSummary {
                    cluster,
                    datacenter: guest.datacenter.clone().or_else(|| host.datacenter.clone()),
                    hosts: Vec::new(),
                    machines: 0,
                });
            entry.machines += 1;
            if !entry.hosts.contains(&host.name) {
                entry.hosts.push(host.name.clone());
            }
        }
        self.outcome.clusters = clusters.into_values().collect();
        let mut ranked: Vec<(&str, u64)> = dependents.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        self.outcome.most_depended_on = ranked
            .into_iter()
            .take(10)
            .filter_map(|(id, n)| {
                by_id.get(id).map(|a| ConnectedAsset {
                    name: a.name.clone(),
                    asset_type: a.asset_type.clone(),
                    dependents: n,
                })
            })
            .collect();
        Ok(())
    }
}

/// The graph summary stored in discovery_flows.dependencies.
pub fn graph_summary(outcome: &DependenciesOutcome) -> Value {
    json!({
        "edges": outcome.edges,
        "by_type": outcome.by_type,
        "by_source": outcome.by_source,
        "hosts_created": outcome.hosts_created,
        "applications_created": outcome.applications_created,
        "relationship_rows": outcome.relationship_rows,
        "unresolved": outcome.unresolved,
        "problems": outcome.problems,
        "clusters": outcome.clusters,
        "most_depended_on": outcome.most_depended_on,
    })
}

/// Records the graph summary on the discovery flow.
pub fn record(
    conn: &Connection,
    ids: &FlowIds,
    outcome: &DependenciesOutcome,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE discovery_flows SET dependencies = ?2 WHERE id = ?1",
        params![ids.discovery_flow_id, graph_summary(outcome).to_string()],
    )?;
    Ok(())
}

/// The names in an application column: one, or a list ("CRM, Billing").
pub fn application_names(raw: &str) -> Vec<&str> {
    raw.split([',', ';', '|', '\n'])
        .map(|s| s.trim().trim_matches('"').trim())
        .filter(|s| {
            !s.is_empty() && !matches!(s.to_lowercase().as_str(), "n/a" | "none" | "-" | "null")
        })
        .collect()
}

/// The first non-empty value among the columns whose normalised header is one of `names`.
fn field(record: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|wanted| {
        record
            .iter()
            .find_map(|(header, value)| {
                let header = layout::normalise(header);
                (header == *wanted).then(|| match value {
                    Value::String(s) => s.trim().to_string(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
            })
            .filter(|v| !v.is_empty())
    })
}

fn host_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// How an end of a relationship resolved.
#[derive(Debug, Clone, PartialEq)]
enum Resolution {
    One(String),
    Many(usize),
    None,
}

/// Finds assets by the names and keys a relationship export or a host column
/// may use: sys_id or external id, then the full name, FQDN or host name,
/// then the short name, then the IP address.
struct Resolver {
    exact: HashMap<String, Vec<String>>,
    short: HashMap<String, Vec<String>>,
    applications: HashMap<String, Vec<String>>,
}

impl Resolver {
    fn build(conn: &Connection, engagement: &str) -> rusqlite::Result<Resolver> {
        let mut resolver = Resolver {
            exact: HashMap::new(),
            short: HashMap::new(),
            applications: HashMap::new(),
        };
        let mut stmt = conn.prepare(
            "SELECT id, name, asset_type, cmdb_record_id, external_id, hostname, fqdn, ip_address
             FROM assets WHERE engagement_id = ?1 ORDER BY created_at, id",
        )?;
        let mut rows = stmt.query([engagement])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let name: String = r.get(1)?;
            let asset_type: String = r.get(2)?;
            let keys: Vec<Option<String>> =
                (3..8).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
            resolver.index(&id, &name, &asset_type, &keys);
        }
        Ok(resolver)
    }

    fn add(&mut self, asset: &AssetRow) {
        self.index(&asset.id, &asset.name, &asset.asset_type, &[]);
    }

    fn index(&mut self, id: &str, name: &str, asset_type: &str, keys: &[Option<String>]) {
        let push = |map: &mut HashMap<String, Vec<String>>, key: String| {
            let ids = map.entry(key).or_default();
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        };
        if asset_type == "application" {
            push(&mut self.applications, name.trim().to_lowercase());
        }
        let mut names: Vec<String> = vec![name.to_string()];
        names.extend(keys.iter().flatten().cloned());
        for key in names {
            let key = key.trim().to_lowercase();
            if key.is_empty() {
                continue;
            }
            push(&mut self.exact, key.clone());
            if values::normalise_ip(&key).is_none() && key.contains('.') {
                push(&mut self.short, values::short_name(&key));
            }
        }
    }

    fn resolve(&self, raw: &str) -> Resolution {
        let key = raw.trim().to_lowercase();
        if key.is_empty() {
            return Resolution::None;
        }
        let pick = |ids: Option<&Vec<String>>| match ids.map(Vec::as_slice) {
            Some([one]) => Some(Resolution::One(one.clone())),
            Some(many) if many.len() > 1 => Some(Resolution::Many(many.len())),
            _ => None,
        };
        if let Some(found) = pick(self.exact.get(&key)) {
            return found;
        }
        // A short name matches the FQDN it starts; an FQDN matches its short name.
        let short = values::short_name(&key);
        pick(self.short.get(&key))
            .or_else(|| {
                (short != key)
                    .then(|| pick(self.exact.get(&short)))
                    .flatten()
            })
            .unwrap_or(Resolution::None)
    }
}
