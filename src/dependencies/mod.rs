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

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalogue;
use crate::cleanse::values;
use crate::db;
use crate::flow::{self, FlowIds, Phase};
use crate::phase::{PhaseCtx, PhaseOutcome};
use crate::read::layout::{self, Layout};
use crate::stage;

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
struct Edge<'e> {
    from: &'e str,
    to: &'e str,
    kind: &'e str,
    description: Option<String>,
    confidence: f64,
    source: &'static str,
}

/// The edges derived by this run, held in temporary tables rather than in
/// memory: a million virtual machines or application servers give a million
/// edges, and the reconciliation with the stored ones is a set operation.
/// The edges made from the assets themselves (a guest on its host, an
/// application on the machines that name it) go straight into the keyed
/// derived_edges: they come in the assets' order, which touches few of its
/// pages (a guest after the one before, each application after its last
/// machine). A relationship export's edges come in no order, and inserting
/// them one by one into a keyed table larger than its cache cost a minute at
/// two million edges: they are appended to derived_edge_rows, then sorted
/// once into derived_edges (`keep_first_derived`). They are derived last, so
/// of several edges with the same ends and type the first derived is kept
/// either way.
const DERIVED_EDGES: &str = "
    CREATE TEMP TABLE IF NOT EXISTS derived_edge_rows (
        asset_id            TEXT NOT NULL,
        depends_on_asset_id TEXT NOT NULL,
        dependency_type     TEXT NOT NULL,
        description         TEXT,
        confidence_score    REAL NOT NULL,
        source              TEXT NOT NULL
    );
    DELETE FROM temp.derived_edge_rows;
    CREATE TEMP TABLE IF NOT EXISTS derived_edges (
        asset_id            TEXT NOT NULL,
        depends_on_asset_id TEXT NOT NULL,
        dependency_type     TEXT NOT NULL,
        description         TEXT,
        confidence_score    REAL NOT NULL,
        source              TEXT NOT NULL,
        PRIMARY KEY (asset_id, depends_on_asset_id, dependency_type)
    ) WITHOUT ROWID;
    DELETE FROM temp.derived_edges;";

/// Runs the phase for the engagement of the flow.
pub fn run(ctx: &PhaseCtx) -> rusqlite::Result<DependenciesOutcome> {
    let tx = ctx.conn.unchecked_transaction()?;
    tx.execute_batch(DERIVED_EDGES)?;
    let mut phase = EdgeBuilder {
        conn: &tx,
        ids: &ctx.ids,
        client: ctx.tenant.client_account_id.clone(),
        engagement: ctx.tenant.engagement_id.clone(),
        now: db::now(),
        outcome: DependenciesOutcome::default(),
    };
    let started = std::time::Instant::now();
    let step = |what: &str| log_step(started, what);
    let relationships = phase.relationship_imports()?;
    let first_guests = phase.virtualization_hosts()?;
    step("hosts found");
    let mut wanted = WantedKeys::default();
    for guest in &first_guests {
        wanted.add(&guest.0);
    }
    for import in &relationships {
        for_each_relationship_row(&tx, &phase.now, import, |_, row| {
            for name in [&row.from, &row.to].into_iter().flatten() {
                wanted.add(name);
            }
            Ok(None)
        })?;
    }
    let mut resolver = Resolver::build(&tx, &phase.engagement, wanted)?;
    step("resolver built");
    phase.virtualization(first_guests, &mut resolver)?;
    // Only hosts are added to the resolver; what it looks up is now known.
    resolver.wanted = WantedKeys::default();
    phase.application_lists(&mut resolver)?;
    phase.applications(&mut resolver)?;
    step("applications derived");
    for import in &relationships {
        phase.relationship_export(import, &resolver)?;
    }
    step("relationship exports read");
    // Freed before the sorts of the reconciliation, which have their own memory.
    drop(resolver);
    phase.reconcile()?;
    step("edges reconciled");
    phase.summarise()?;
    step("summarised");
    let outcome = phase.outcome;
    tx.execute_batch("DROP TABLE temp.derived_edges; DROP TABLE temp.derived_edge_rows")?;
    tx.commit()?;
    Ok(outcome)
}

struct EdgeBuilder<'c> {
    conn: &'c Connection,
    ids: &'c FlowIds,
    client: String,
    engagement: String,
    now: String,
    outcome: DependenciesOutcome,
}

/// The engagement's guests: id, name, virtualization_host, cluster,
/// datacenter, oldest first. `+engagement_id` here and in the other scans of
/// the engagement's assets makes SQLite read the table in order instead of
/// walking ix_assets_hostname and seeking every row, which at a million
/// assets is a million random page reads.
const GUESTS: &str = "SELECT id, name, virtualization_host, cluster, datacenter FROM assets
     WHERE +engagement_id = ?1 AND virtualization_host IS NOT NULL AND asset_type <> 'application'
     ORDER BY created_at, id";

/// A host name as its first guest writes it, with that guest's cluster and datacenter.
type FirstGuest = (String, Option<String>, Option<String>);

/// A relationship export of the engagement.
struct RelationshipImport {
    id: String,
    file: String,
    sheet: Option<String>,
    layout: Layout,
}

/// The index on asset_dependencies' depends_on end, dropped around a bulk insert.
const DEPENDS_ON_INDEX: &str = "ix_asset_dependencies_depends_on";
/// Derived edges from which the depends_on index is built again rather than
/// kept while inserting.
const BULK_EDGES: u64 = 20_000;

/// Relationship rows read per query, then written back before the next.
const RELATIONSHIP_BATCH: i64 = 2_000;

/// The cleansed row a relationship row gets: (cleansed_data, validation_errors).
type RowVerdict = (String, Option<String>);

impl EdgeBuilder<'_> {
    /// The host names the engagement's machines run on, as written, in the
    /// order their first guest (oldest first) names them, with that guest's
    /// cluster and datacenter.
    fn virtualization_hosts(&self) -> rusqlite::Result<Vec<FirstGuest>> {
        let mut first_guests = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut stmt = self.conn.prepare(GUESTS)?;
        let mut rows = stmt.query([&self.engagement])?;
        while let Some(r) = rows.next()? {
            let host: String = r.get(2)?;
            if seen.insert(host.clone()) {
                first_guests.push((host, r.get(3)?, r.get(4)?));
            }
        }
        Ok(first_guests)
    }

    /// Machine → the host it runs on; hosts the data names but no record
    /// describes become server assets. The hosts are resolved or created
    /// first, so that they exist before the guests are read for their edges.
    fn virtualization(
        &mut self,
        first_guests: Vec<FirstGuest>,
        resolver: &mut Resolver,
    ) -> rusqlite::Result<()> {
        let vhost = if first_guests.is_empty() {
            HashMap::new()
        } else {
            self.vhost_rows()?
        };
        let mut hosts: HashMap<String, String> = HashMap::new();
        for (host_name, cluster, datacenter) in first_guests {
            let host_id = match resolver.resolve(&host_name) {
                Resolution::One(id) => id,
                Resolution::Many(_) => continue,
                Resolution::None => {
                    let detail = vhost.get(&host_key(&host_name));
                    let id = self.create_host(&host_name, cluster, datacenter, detail)?;
                    resolver.add(&id, host_name.trim(), "server");
                    id
                }
            };
            hosts.insert(host_name, host_id);
        }
        let mut stmt = self.conn.prepare(GUESTS)?;
        let mut rows = stmt.query([&self.engagement])?;
        while let Some(r) = rows.next()? {
            let (id, name, host_name): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let Some(host_id) = hosts.get(&host_name) else {
                continue; // the name is ambiguous
            };
            let place = match (
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ) {
                (Some(c), Some(d)) => format!(" in cluster {c}, datacenter {d}"),
                (Some(c), None) => format!(" in cluster {c}"),
                (None, Some(d)) => format!(" in datacenter {d}"),
                (None, None) => String::new(),
            };
            add_edge(
                self.conn,
                Derived::FromAssets,
                Edge {
                    from: &id,
                    to: host_id,
                    kind: "runs_on",
                    description: Some(format!("{name} runs on host {host_name}{place}")),
                    confidence: 1.0,
                    source: SOURCE_VIRTUALIZATION,
                },
            )?;
        }
        Ok(())
    }

    /// The engagement's RVTools vHost rows by host name (newest import wins).
    fn vhost_rows(&self) -> rusqlite::Result<HashMap<String, Map<String, Value>>> {
        let scope = stage::tables::Scope::Engagement {
            engagement_id: &self.engagement,
        };
        let vhost_tables = stage::tables::completed(self.conn, scope)?
            .into_iter()
            .filter(|t| {
                t.layout == Some(Layout::Rvtools)
                    && t.sheet
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("vhost"))
            });
        let mut stmt = self.conn.prepare(&format!(
            "SELECT raw_values FROM {} ORDER BY record_index",
            crate::record_store::records_of("?1")
        ))?;
        let mut hosts = HashMap::new();
        for table in vhost_tables {
            let keys =
                crate::record_store::ColumnKeys::of_import(self.conn, &table.data_import_id)?;
            let mut rows = stmt.query([&table.data_import_id])?;
            while let Some(row) = rows.next()? {
                let stored: String = row.get(0)?;
                let raw = keys.object(&stored);
                let Ok(Value::Object(record)) = serde_json::from_str::<Value>(&raw) else {
                    continue;
                };
                if let Some(name) = field(&record, &["host"]) {
                    hosts.insert(host_key(&name), record);
                }
            }
        }
        Ok(hosts)
    }

    /// A server asset for an ESXi host; its cluster and datacenter come from
    /// vHost, else from the first guest naming it. Returns its id.
    fn create_host(
        &mut self,
        name: &str,
        guest_cluster: Option<String>,
        guest_datacenter: Option<String>,
        detail: Option<&Map<String, Value>>,
    ) -> rusqlite::Result<String> {
        let get = |names: &[&str]| detail.and_then(|d| field(d, names));
        let name = name.trim();
        let fqdn = name.contains('.') && values::normalise_ip(name).is_none();
        let os_version = get(&["esxversion"]).and_then(|v| {
            v.split_whitespace()
                .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .map(str::to_string)
        });
        let number = |names: &[&str]| get(names).and_then(|v| values::parse_number(&v));
        // Only values in the field's range are written (vHost may say -1).
        let count = |names: &[&str], field: &str| {
            number(names)
                .and_then(|n| catalogue::within_range(field, n.round()))
                .map(|n| n as i64)
        };
        let memory_gb = number(&["memory", "memorymb", "memorymib"])
            .map(|mib| {
                // RVTools writes host memory in MiB ("# Memory").
                (mib / 1024.0 * 100.0).round() / 100.0
            })
            .and_then(|gb| catalogue::within_range("memory_gb", gb));
        let id = db::new_id();
        self.conn.execute(
            "INSERT INTO assets (id, client_account_id, engagement_id, master_flow_id, discovery_flow_id,
                asset_type, name, description, discovery_source, hostname, fqdn, ip_address,
                operating_system, os_version, is_virtual, virtualization_platform, cluster, datacenter,
                cpu_model, cpu_sockets, cpu_cores, cpu_speed_mhz, memory_gb, manufacturer, model,
                serial_number, first_discovered_at, last_discovered_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'server', ?6, ?7, ?8, ?9, ?10, ?11, 'VMware ESXi', ?12, 0, 'VMware ESXi',
                ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?23, ?23, ?23)",
            params![
                id,
                self.client,
                self.engagement,
                self.ids.master_flow_id,
                self.ids.discovery_flow_id,
                name,
                if detail.is_some() {
                    "ESXi host named by RVTools vInfo, described by vHost"
                } else {
                    "ESXi host named by the VMs' host column (no vHost row describes it)"
                },
                HOST_SOURCE,
                values::short_name(&name.to_lowercase()),
                fqdn.then(|| name.to_lowercase()),
                values::normalise_ip(name),
                os_version,
                get(&["cluster"]).or(guest_cluster),
                get(&["datacenter"]).or(guest_datacenter),
                get(&["cpumodel"]),
                count(&["cpu"], "cpu_sockets"),
                count(&["cores"], "cpu_cores"),
                number(&["speed"]).and_then(|n| catalogue::within_range("cpu_speed_mhz", n)),
                memory_gb,
                get(&["vendor"]),
                get(&["model"]),
                get(&["serialnumber", "servicetag"]),
                self.now,
            ],
        )?;
        self.outcome.hosts_created += 1;
        Ok(id)
    }

    /// An application named on machines runs on them. The machines are read
    /// twice (once to learn the applications, once for the edges) rather
    /// than held.
    fn applications(&mut self, resolver: &mut Resolver) -> rusqlite::Result<()> {
        // In table order, not sorted: a million machines sorted twice cost
        // seconds, and neither pass needs an order (the first keeps, per
        // application, the spelling of the machine written first).
        const MACHINES: &str = "SELECT id, name, application_name, environment, created_at FROM assets
             WHERE +engagement_id = ?1 AND application_name IS NOT NULL AND asset_type <> 'application'";
        // Application key → as first written, its machines, and the one
        // environment they all agree on.
        let mut named: BTreeMap<String, NamedApplication> = BTreeMap::new();
        // Per application key, the (created_at, id) of the machine whose spelling is kept.
        let mut first_written: HashMap<String, (String, String)> = HashMap::new();
        {
            let mut stmt = self.conn.prepare(MACHINES)?;
            let mut rows = stmt.query([&self.engagement])?;
            while let Some(r) = rows.next()? {
                let list: String = r.get(2)?;
                let environment: Option<String> = r.get(3)?;
                let written: (String, String) = (r.get(4)?, r.get(0)?);
                for app in application_names(&list) {
                    let key = app.to_lowercase();
                    match first_written.get_mut(&key) {
                        Some(first) if *first <= written => {}
                        Some(first) => {
                            *first = written.clone();
                            if let Some(entry) = named.get_mut(&key) {
                                entry.name = app.to_string();
                            }
                        }
                        None => {
                            first_written.insert(key.clone(), written.clone());
                        }
                    }
                    let entry = named.entry(key).or_insert_with(|| NamedApplication {
                        name: app.to_string(),
                        id: None,
                        machines: 0,
                        environment: Agreement::Nothing,
                        listed: false,
                    });
                    entry.machines += 1;
                    if let Some(environment) = &environment {
                        entry.environment.see(environment);
                    }
                }
            }
        }
        for (key, app) in named.iter_mut() {
            app.id = match resolver.applications.get(key) {
                Some(ids) if ids.len() == 1 => Some(ids[0].clone()),
                Some(_) => None, // the name is ambiguous
                None => {
                    let created = self.create_application(app)?;
                    resolver
                        .applications
                        .insert(key.clone(), vec![created.clone()]);
                    Some(created)
                }
            };
        }
        let mut stmt = self.conn.prepare(MACHINES)?;
        let mut rows = stmt.query([&self.engagement])?;
        while let Some(r) = rows.next()? {
            let (id, name, list): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            for app in application_names(&list) {
                let Some(named) = named.get(&app.to_lowercase()) else {
                    continue;
                };
                let Some(app_id) = &named.id else {
                    continue;
                };
                add_edge(
                    self.conn,
                    Derived::FromAssets,
                    Edge {
                        from: app_id,
                        to: &id,
                        kind: "runs_on",
                        description: Some(format!(
                            "{} is named in the application column of {name}",
                            named.name
                        )),
                        confidence: 0.9,
                        source: SOURCE_APPLICATION,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// The rows of the engagement's application lists (tables whose columns
    /// name applications and no machine): each application becomes an
    /// application asset, found by its name (case aside) or created, and
    /// takes the list's description, owners, criticality and the other
    /// fields its row fills (cleansing validated them).
    fn application_lists(&mut self, resolver: &mut Resolver) -> rusqlite::Result<()> {
        let scope = stage::tables::Scope::Engagement {
            engagement_id: &self.engagement,
        };
        let mut lists = Vec::new();
        for table in stage::tables::completed(self.conn, scope)? {
            if crate::cleanse::describes_import(self.conn, &table.data_import_id)?
                == catalogue::Describes::Applications
            {
                lists.push(table.data_import_id);
            }
        }
        let mut rows = self.conn.prepare(&format!(
            "SELECT {} FROM raw_records r
                 WHERE data_import_id = ?1 AND is_valid = 1 AND cleansed_data IS NOT NULL
                 ORDER BY record_index",
            crate::record_store::WHOLE_CLEANSED
        ))?;
        for list in &lists {
            let cleansed: Vec<String> = rows
                .query_map([list], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for text in cleansed {
                let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let Some(name) = fields
                    .get("application_name")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                else {
                    continue;
                };
                let key = name.to_lowercase();
                let id = match resolver.applications.get(&key) {
                    Some(ids) if ids.len() == 1 => ids[0].clone(),
                    Some(_) => continue, // the name is ambiguous
                    None => {
                        let mut environment = Agreement::Nothing;
                        if let Some(e) = fields.get("environment").and_then(Value::as_str) {
                            environment.see(e);
                        }
                        let created = self.create_application(&NamedApplication {
                            name: name.to_string(),
                            id: None,
                            machines: 0,
                            environment,
                            listed: true,
                        })?;
                        resolver.applications.insert(key, vec![created.clone()]);
                        created
                    }
                };
                self.describe_application(&id, &fields)?;
            }
        }
        Ok(())
    }

    /// Fills an application asset's descriptive fields from its list row.
    fn describe_application(&self, id: &str, fields: &Map<String, Value>) -> rusqlite::Result<()> {
        for field in catalogue::APPLICATION_FIELDS {
            let Some(value) = fields.get(*field).filter(|v| !v.is_null()) else {
                continue;
            };
            let value: rusqlite::types::Value = match value {
                Value::String(s) => s.clone().into(),
                Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default().into(),
                Value::Number(n) => n.as_f64().unwrap_or_default().into(),
                Value::Bool(b) => i64::from(*b).into(),
                _ => continue,
            };
            self.conn.execute(
                &format!("UPDATE assets SET {field} = ?2, updated_at = ?3 WHERE id = ?1 AND {field} IS NOT ?2"),
                params![id, value, self.now],
            )?;
        }
        Ok(())
    }

    fn create_application(&mut self, app: &NamedApplication) -> rusqlite::Result<String> {
        let environment = match &app.environment {
            Agreement::One(environment) => Some(environment.as_str()),
            Agreement::Nothing | Agreement::Several => None,
        };
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
                app.name,
                if app.listed {
                    "Application from an application list".to_string()
                } else {
                    format!(
                        "Application named in the application column of {} machine(s)",
                        app.machines
                    )
                },
                APPLICATION_SOURCE,
                environment,
                self.now,
            ],
        )?;
        self.outcome.applications_created += 1;
        Ok(id)
    }

    /// The engagement's relationship exports.
    fn relationship_imports(&self) -> rusqlite::Result<Vec<RelationshipImport>> {
        let scope = stage::tables::Scope::Engagement {
            engagement_id: &self.engagement,
        };
        Ok(stage::tables::completed(self.conn, scope)?
            .into_iter()
            .filter(stage::tables::StagedTable::holds_relationships)
            .filter_map(|table| {
                let layout = table.layout?;
                layout.relationship_columns()?;
                Some(RelationshipImport {
                    id: table.data_import_id,
                    file: table.filename,
                    sheet: table.sheet,
                    layout,
                })
            })
            .collect())
    }

    /// Each row of a relationship export becomes an edge when both of its
    /// ends name one asset; the ends that do not are recorded on the row.
    fn relationship_export(
        &mut self,
        import: &RelationshipImport,
        resolver: &Resolver,
    ) -> rusqlite::Result<()> {
        let source = if import.layout == Layout::ServicenowRelationships {
            SOURCE_CMDB_REL_CI
        } else {
            SOURCE_RELATIONSHIP_LIST
        };
        let (conn, outcome) = (self.conn, &mut self.outcome);
        for_each_relationship_row(conn, &self.now, import, |index, row| {
            outcome.relationship_rows += 1;
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
                outcome.unresolved += 1;
                if outcome.problems.len() < PROBLEMS_KEPT {
                    outcome.problems.push(DependencyProblem {
                        file: import.file.clone(),
                        sheet: import.sheet.clone(),
                        row: index,
                        column,
                        value: problem.0,
                        code: problem.1,
                        message: problem.2,
                    });
                }
            }
            let (kind, reversed) = direction(row.kind.as_deref(), import.layout);
            let mut cleansed = json!({
                "from": row.from, "to": row.to, "dependency_type": kind, "reversed": reversed,
            });
            if let [from, to] = ends.as_slice() {
                let (from, to) = if reversed { (to, from) } else { (from, to) };
                cleansed["asset_id"] = json!(from);
                cleansed["depends_on_asset_id"] = json!(to);
                add_edge(
                    conn,
                    Derived::FromExport,
                    Edge {
                        from,
                        to,
                        kind: &kind,
                        description: row.describe(),
                        confidence: 1.0,
                        source,
                    },
                )?;
            }
            let errors = (!errors.is_empty()).then(|| Value::Array(errors).to_string());
            Ok(Some((cleansed.to_string(), errors)))
        })
    }

    /// Writes the derived edges: new ones inserted, changed ones updated,
    /// edges the data no longer gives removed. An edge another source already
    /// wrote (same ends and type) is kept as it is.
    fn reconcile(&mut self) -> rusqlite::Result<()> {
        let started = std::time::Instant::now();
        let step = |what: &str| log_step(started, &format!("reconciliation: {what}"));
        keep_first_derived(self.conn)?;
        step("derived edges sorted");
        let owned = SOURCES
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let same_edge = "d.asset_id = e.asset_id AND d.depends_on_asset_id = e.depends_on_asset_id
                         AND d.dependency_type = e.dependency_type";
        // An engagement's first edges need no look-up of stored ones.
        let none_stored: bool = self.conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM asset_dependencies WHERE engagement_id = ?1)",
            [&self.engagement],
            |r| r.get(0),
        )?;
        // After the deletion below, every stored edge of ours is a derived
        // one, so the derived edges minus those are at most the new ones.
        let mut still_stored = 0u64;
        let not_stored = if none_stored {
            String::new()
        } else {
            self.outcome.removed = self.conn.execute(
                &format!(
                    "DELETE FROM asset_dependencies AS d
                     WHERE d.engagement_id = ?1 AND d.source IN ({owned})
                       AND NOT EXISTS (SELECT 1 FROM temp.derived_edges e WHERE {same_edge})"
                ),
                [&self.engagement],
            )? as u64;
            self.outcome.updated = self.conn.execute(
                &format!(
                    "UPDATE asset_dependencies AS d
                     SET description = e.description, confidence_score = e.confidence_score,
                         source = e.source, master_flow_id = ?2, updated_at = ?3
                     FROM temp.derived_edges e
                     WHERE {same_edge} AND d.engagement_id = ?1 AND d.source IN ({owned})
                       AND (d.description IS NOT e.description
                            OR coalesce(d.confidence_score, 0) <> e.confidence_score
                            OR d.source IS NOT e.source)"
                ),
                params![self.engagement, self.ids.master_flow_id, self.now],
            )? as u64;
            still_stored = self.conn.query_row(
                &format!(
                    "SELECT count(*) FROM asset_dependencies
                     WHERE engagement_id = ?1 AND source IN ({owned})"
                ),
                [&self.engagement],
                |r| r.get(0),
            )?;
            format!("WHERE NOT EXISTS (SELECT 1 FROM asset_dependencies d WHERE {same_edge})")
        };
        let counts: Vec<(String, String, u64)> = self
            .conn
            .prepare(
                "SELECT dependency_type, source, count(*) FROM temp.derived_edges GROUP BY 1, 2",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (kind, source, n) in counts {
            self.outcome.edges += n;
            *self.outcome.by_type.entry(kind).or_default() += n;
            *self.outcome.by_source.entry(source).or_default() += n;
        }
        // One statement, in the derived edges' key order (the unique index's).
        // Their depends_on ends come in no order: many of them go faster
        // into a table without the index on that end, built again after;
        // a re-run that inserts few keeps the index.
        step("derived edges counted");
        let rebuild = db::drop_index_for_bulk(
            self.conn,
            "asset_dependencies",
            DEPENDS_ON_INDEX,
            self.outcome.edges.saturating_sub(still_stored),
            BULK_EDGES,
        )?;
        self.outcome.created = self.conn.execute(
            &format!(
                "INSERT INTO asset_dependencies (id, client_account_id, engagement_id, master_flow_id,
                   asset_id, depends_on_asset_id, dependency_type, description, confidence_score,
                   source, created_at, updated_at)
                 SELECT intake_new_id(), ?1, ?2, ?3, e.asset_id, e.depends_on_asset_id,
                        e.dependency_type, e.description, e.confidence_score, e.source, ?4, ?4
                 FROM temp.derived_edges e {not_stored}"
            ),
            params![self.client, self.engagement, self.ids.master_flow_id, self.now],
        )? as u64;
        step("new edges inserted");
        if rebuild {
            db::ensure_indexes(self.conn)?;
            step("depends-on index built");
        }
        self.outcome.unchanged = self.outcome.edges - self.outcome.created - self.outcome.updated;
        Ok(())
    }

    /// Clusters with their hosts and machines, and the most depended-on assets.
    fn summarise(&mut self) -> rusqlite::Result<()> {
        let placed: Vec<(String, Option<String>, String, u64)> = self
            .conn
            .prepare(
                "SELECT coalesce(g.cluster, h.cluster), coalesce(g.datacenter, h.datacenter), h.name, count(*)
                 FROM temp.derived_edges e
                 JOIN assets g ON g.id = e.asset_id JOIN assets h ON h.id = e.depends_on_asset_id
                 WHERE e.dependency_type = 'runs_on' AND g.virtualization_host IS NOT NULL
                   AND coalesce(g.cluster, h.cluster) IS NOT NULL
                 GROUP BY 1, 2, 3 ORDER BY min(g.created_at), 3",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut clusters: BTreeMap<String, ClusterSummary> = BTreeMap::new();
        for (cluster, datacenter, host, machines) in placed {
            let entry = clusters
                .entry(cluster.clone())
                .or_insert_with(|| ClusterSummary {
                    cluster,
                    datacenter: None,
                    hosts: Vec::new(),
                    machines: 0,
                });
            entry.datacenter = entry.datacenter.take().or(datacenter);
            entry.machines += machines;
            if !entry.hosts.contains(&host) {
                entry.hosts.push(host);
            }
        }
        self.outcome.clusters = clusters.into_values().collect();
        self.outcome.most_depended_on = self
            .conn
            .prepare(
                "SELECT a.name, a.asset_type, n FROM
                   (SELECT depends_on_asset_id AS id, count(*) AS n FROM temp.derived_edges
                    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) top
                 JOIN assets a ON a.id = top.id ORDER BY n DESC, top.id",
            )?
            .query_map([], |r| {
                Ok(ConnectedAsset {
                    name: r.get(0)?,
                    asset_type: r.get(1)?,
                    dependents: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(())
    }
}

/// Calls `visit` with each row of a relationship export (its record
/// index and the row), a batch at a time; what it returns for a row is
/// written to that row before the next batch is read.
fn for_each_relationship_row(
    conn: &Connection,
    now: &str,
    import: &RelationshipImport,
    mut visit: impl FnMut(i64, &RelationshipRow) -> rusqlite::Result<Option<RowVerdict>>,
) -> rusqlite::Result<()> {
    let Some(spec) = import.layout.relationship_columns() else {
        return Ok(());
    };
    let mut last = i64::MIN;
    let keys = crate::record_store::ColumnKeys::of_import(conn, &import.id)?;
    loop {
        let batch =
            crate::stage::raw_records_after(conn, &import.id, &keys, last, RELATIONSHIP_BATCH)?;
        let Some(&(_, index, _)) = batch.last() else {
            return Ok(());
        };
        last = index;
        for (rowid, index, raw) in batch {
            let record: Map<String, Value> = serde_json::from_str(&raw).unwrap_or_default();
            let row = RelationshipRow::read(&record, &spec);
            let Some((cleansed, errors)) = visit(index, &row)? else {
                continue;
            };
            // Written only when it differs, so a re-run leaves the rows alone.
            conn.prepare_cached(
                "UPDATE raw_records SET cleansed_data = ?2, is_valid = ?3,
                       validation_errors = ?4, processed_at = ?5, copies = NULL
                     WHERE rowid = ?1 AND (cleansed_data IS NOT ?2 OR is_valid IS NOT ?3
                       OR validation_errors IS NOT ?4 OR processed_at IS NULL
                       OR copies IS NOT NULL)",
            )?
            .execute(params![rowid, cleansed, errors.is_none(), errors, now])?;
        }
    }
}

/// Logs how far into the phase (or one of its steps) `what` was done.
fn log_step(started: std::time::Instant, what: &str) {
    tracing::debug!(
        "dependencies: {what} at {:.2}s",
        started.elapsed().as_secs_f64()
    );
}

/// Where a derived edge is written first (see `DERIVED_EDGES`).
#[derive(Clone, Copy)]
enum Derived {
    /// An edge made from the assets, in their order: into the keyed table.
    FromAssets,
    /// An edge of a relationship export, in the export's order: appended.
    FromExport,
}

/// Adds a derived edge; of several with the same ends and type, the first
/// derived is kept (here, or by `keep_first_derived`).
fn add_edge(conn: &Connection, derived: Derived, edge: Edge) -> rusqlite::Result<()> {
    if edge.from == edge.to {
        return Ok(());
    }
    conn.prepare_cached(match derived {
        Derived::FromAssets => {
            "INSERT OR IGNORE INTO temp.derived_edges (asset_id, depends_on_asset_id,
               dependency_type, description, confidence_score, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Derived::FromExport => {
            "INSERT INTO temp.derived_edge_rows (asset_id, depends_on_asset_id,
               dependency_type, description, confidence_score, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
    })?
    .execute(params![
        edge.from,
        edge.to,
        edge.kind,
        edge.description,
        edge.confidence,
        edge.source
    ])?;
    Ok(())
}

/// Sorts the derived edges into derived_edges, keeping of each ends and
/// type the first derived (the lowest rowid): sorted, every insert appends.
fn keep_first_derived(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "INSERT OR IGNORE INTO temp.derived_edges
           SELECT asset_id, depends_on_asset_id, dependency_type, description,
                  confidence_score, source
           FROM temp.derived_edge_rows
           ORDER BY asset_id, depends_on_asset_id, dependency_type, rowid;
         DELETE FROM temp.derived_edge_rows;",
    )
}

/// An application as the machines name it.
struct NamedApplication {
    /// As first written.
    name: String,
    /// Its asset, found or created; None when the name is ambiguous.
    id: Option<String>,
    machines: u64,
    environment: Agreement,
    /// Found in an application list rather than in machines' columns.
    listed: bool,
}

/// The value a set of machines agrees on, if they do.
enum Agreement {
    Nothing,
    One(String),
    Several,
}

impl Agreement {
    fn see(&mut self, value: &str) {
        match self {
            Agreement::Nothing => *self = Agreement::One(value.to_string()),
            Agreement::One(seen) if seen != value => *self = Agreement::Several,
            _ => {}
        }
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

impl PhaseOutcome for DependenciesOutcome {
    const PHASE: Phase = Phase::Dependencies;

    fn summary(&self) -> Value {
        json!({
            "edges": self.edges, "created": self.created, "updated": self.updated,
            "removed": self.removed, "unchanged": self.unchanged, "by_type": self.by_type,
            "hosts_created": self.hosts_created, "applications_created": self.applications_created,
            "unresolved": self.unresolved,
        })
    }

    /// The graph's summary is also the flow's dependencies column.
    fn record(&self, ctx: &PhaseCtx) -> rusqlite::Result<()> {
        ctx.conn.execute(
            "UPDATE discovery_flows SET dependencies = ?2 WHERE id = ?1",
            params![ctx.ids.discovery_flow_id, graph_summary(self).to_string()],
        )?;
        flow::complete_phase(ctx.conn, &ctx.ids, Self::PHASE, &self.summary())
    }
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

/// The 64-bit hash of a lower-cased name, as the resolver keys it.
fn name_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x4e50_1fe5).hash_one(key)
}

/// The names the phase will look up (host columns, relationship ends),
/// lower-cased with their short forms, kept as hashes: a relationship export
/// of millions of rows names about as many machines.
#[derive(Default)]
struct WantedKeys(HashSet<u64, foldhash::fast::FixedState>);

impl WantedKeys {
    fn add(&mut self, name: &str) {
        let key = name.trim().to_lowercase();
        if !key.is_empty() {
            self.0.insert(name_hash(&values::short_name(&key)));
            self.0.insert(name_hash(&key));
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.0.contains(&name_hash(key))
    }
}

/// An asset index, or (with the high bit) an index into `Resolver::many`.
const MANY: u32 = 1 << 31;

/// Finds assets by the names and keys a relationship export or a host column
/// may use: sys_id or external id, then the full name, FQDN or host name,
/// then the short name, then the IP address. It holds only the names the
/// phase will look up (and every application), so its memory follows the
/// host names and relationship rows, not the number of assets; a name is
/// kept as its 64-bit hash and an asset's id once, so a million machines
/// named by a relationship export cost tens of megabytes.
struct Resolver {
    wanted: WantedKeys,
    /// Name hash → an asset (its index in `ids`) or, past MANY, the list of
    /// several in `many`.
    exact: HashMap<u64, u32, foldhash::fast::FixedState>,
    short: HashMap<u64, u32, foldhash::fast::FixedState>,
    many: Vec<Vec<u32>>,
    /// The assets' ids one after the other, and where each ends.
    ids: String,
    id_ends: Vec<u32>,
    applications: HashMap<String, Vec<String>>,
}

impl Resolver {
    fn build(
        conn: &Connection,
        engagement: &str,
        wanted: WantedKeys,
    ) -> rusqlite::Result<Resolver> {
        // With no name to look up, only the applications are needed.
        let only_applications = if wanted.0.is_empty() {
            "AND asset_type = 'application'"
        } else {
            ""
        };
        let mut resolver = Resolver {
            wanted,
            exact: HashMap::default(),
            short: HashMap::default(),
            many: Vec::new(),
            ids: String::new(),
            id_ends: Vec::new(),
            applications: HashMap::new(),
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT id, name, asset_type, cmdb_record_id, external_id, hostname, fqdn, ip_address
             FROM assets WHERE +engagement_id = ?1 {only_applications}"
        ))?;
        let mut rows = stmt.query([engagement])?;
        // In table order: which asset a name finds, or how many, does not
        // depend on the order they are indexed in.
        let mut keys: Vec<Option<String>> = Vec::with_capacity(5);
        while let Some(r) = rows.next()? {
            let asset_type: String = r.get(2)?;
            keys.clear();
            for i in 3..8 {
                keys.push(r.get(i)?);
            }
            let (id, name): (String, String) = (r.get(0)?, r.get(1)?);
            resolver.index(&id, &name, &asset_type, &keys);
        }
        Ok(resolver)
    }

    fn add(&mut self, id: &str, name: &str, asset_type: &str) {
        self.index(id, name, asset_type, &[]);
    }

    fn id(&self, asset: u32) -> &str {
        let end = self.id_ends[asset as usize] as usize;
        let start = match asset {
            0 => 0,
            _ => self.id_ends[asset as usize - 1] as usize,
        };
        &self.ids[start..end]
    }

    fn index(&mut self, id: &str, name: &str, asset_type: &str, keys: &[Option<String>]) {
        if asset_type == "application" {
            let ids = self
                .applications
                .entry(name.trim().to_lowercase())
                .or_default();
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        // The asset gets an index the first time one of its names is wanted.
        let mut asset: Option<u32> = None;
        let names = std::iter::once(name).chain(keys.iter().flatten().map(String::as_str));
        for key in names {
            let key = key.trim().to_lowercase();
            if key.is_empty() {
                continue;
            }
            if values::normalise_ip(&key).is_none() && key.contains('.') {
                let short = values::short_name(&key);
                if self.wanted.contains(&short) {
                    let asset = *asset.get_or_insert_with(|| self.push_id(id));
                    push_asset(&mut self.short, &mut self.many, name_hash(&short), asset);
                }
            }
            if self.wanted.contains(&key) {
                let asset = *asset.get_or_insert_with(|| self.push_id(id));
                push_asset(&mut self.exact, &mut self.many, name_hash(&key), asset);
            }
        }
    }

    fn push_id(&mut self, id: &str) -> u32 {
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len() as u32);
        self.id_ends.len() as u32 - 1
    }

    fn resolve(&self, raw: &str) -> Resolution {
        let key = raw.trim().to_lowercase();
        if key.is_empty() {
            return Resolution::None;
        }
        let pick = |found: Option<&u32>| match found {
            Some(&many) if many & MANY != 0 => {
                Some(Resolution::Many(self.many[(many & !MANY) as usize].len()))
            }
            Some(&one) => Some(Resolution::One(self.id(one).to_string())),
            None => None,
        };
        if let Some(found) = pick(self.exact.get(&name_hash(&key))) {
            return found;
        }
        // A short name matches the FQDN it starts; an FQDN matches its short name.
        let short = values::short_name(&key);
        pick(self.short.get(&name_hash(&key)))
            .or_else(|| {
                (short != key)
                    .then(|| pick(self.exact.get(&name_hash(&short))))
                    .flatten()
            })
            .unwrap_or(Resolution::None)
    }
}

/// Adds `asset` under `key`: the key's one asset, or one more of several.
fn push_asset(
    map: &mut HashMap<u64, u32, foldhash::fast::FixedState>,
    many: &mut Vec<Vec<u32>>,
    key: u64,
    asset: u32,
) {
    match map.get(&key).copied() {
        None => {
            map.insert(key, asset);
        }
        Some(same) if same == asset => {}
        Some(list) if list & MANY != 0 => {
            let list = &mut many[(list & !MANY) as usize];
            if !list.contains(&asset) {
                list.push(asset);
            }
        }
        Some(one) => {
            many.push(vec![one, asset]);
            map.insert(key, (many.len() as u32 - 1) | MANY);
        }
    }
}
