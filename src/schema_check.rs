//! `intake schema check`: the platform's validate_schema for a local file (or,
//! with `--database-url`, a central PostgreSQL). It
//! checks that no v3_* table exists, that every table and column the consolidated
//! schema requires is present, and that none of the tables and columns the seeds
//! removed (is_mock, session_id, workflow_states, discovery_assets, ...) came back.

use rusqlite::Connection;
use serde::Serialize;

use crate::db;

/// Tables and the columns each must have (the seeds' "Final" plan plus DESIGN.md).
pub const REQUIRED: &[(&str, &[&str])] = &[
    (
        "client_accounts",
        &["id", "name", "created_at", "updated_at"],
    ),
    (
        "engagements",
        &[
            "id",
            "client_account_id",
            "name",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "users",
        &["id", "client_account_id", "engagement_id", "username"],
    ),
    (
        "crewai_flow_state_extensions",
        &[
            "flow_id",
            "client_account_id",
            "engagement_id",
            "flow_type",
            "flow_status",
            "master_state",
            "current_phase",
            "phase_flow_id",
            "phase_progression",
            "cross_phase_context",
            "assessment_flow_id",
            "planning_flow_id",
            "execution_flow_id",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "discovery_flows",
        &[
            "id",
            "client_account_id",
            "engagement_id",
            "master_flow_id",
            "flow_name",
            "status",
            "progress_percentage",
            "data_import_id",
            "user_id",
            "data_import_completed",
            "attribute_mapping_completed",
            "data_cleansing_completed",
            "inventory_completed",
            "dependencies_completed",
            "tech_debt_completed",
            "flow_type",
            "current_phase",
            "phases_completed",
            "flow_state",
            "crew_outputs",
            "field_mappings",
            "discovered_assets",
            "dependencies",
            "tech_debt_analysis",
            "error_message",
            "error_phase",
            "error_details",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "data_imports",
        &[
            "id",
            "client_account_id",
            "engagement_id",
            "master_flow_id",
            "status",
            "import_name",
            "import_type",
            "filename",
            "file_size",
            "mime_type",
            "description",
            "progress_percentage",
            "total_records",
            "processed_records",
            "failed_records",
            "imported_by",
            "source_system",
            "error_message",
            "error_details",
            "created_at",
            "updated_at",
            "started_at",
            "completed_at",
        ],
    ),
    (
        "raw_import_records",
        &[
            "id",
            "data_import_id",
            "master_flow_id",
            "record_index",
            "raw_data",
            "cleansed_data",
            "is_processed",
            "is_valid",
            "validation_errors",
            "created_at",
            "processed_at",
        ],
    ),
    (
        "import_field_mappings",
        &[
            "id",
            "data_import_id",
            "client_account_id",
            "engagement_id",
            "master_flow_id",
            "source_field",
            "target_field",
            "confidence_score",
            "match_type",
            "status",
            "suggested_by",
            "approved_by",
            "approved_at",
            "transformation_rules",
            "is_validated",
        ],
    ),
    (
        "assets",
        &[
            "id",
            "client_account_id",
            "engagement_id",
            "master_flow_id",
            "discovery_flow_id",
            "assessment_flow_id",
            "planning_flow_id",
            "execution_flow_id",
            "cmdb_record_id",
            "asset_type",
            "name",
            "status",
            "environment",
            "criticality",
            "discovery_source",
            "hostname",
            "ip_address",
            "fqdn",
            "mac_address",
            "operating_system",
            "os_version",
            "cpu_cores",
            "memory_gb",
            "storage_gb",
            "location",
            "datacenter",
            "rack_location",
            "business_owner",
            "technical_owner",
            "department",
            "application_name",
            "technology_stack",
            "six_r_strategy",
            "migration_wave",
            "dependencies",
            "sixr_ready",
            "cpu_utilization_percent",
            "memory_utilization_percent",
            "disk_iops",
            "network_throughput_mbps",
            "current_monthly_cost",
            "estimated_cloud_cost",
            "custom_attributes",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "asset_dependencies",
        &[
            "id",
            "client_account_id",
            "engagement_id",
            "asset_id",
            "depends_on_asset_id",
            "dependency_type",
        ],
    ),
    (
        "sync_log",
        &[
            "id",
            "master_flow_id",
            "synced_at",
            "outcome",
            "counts",
            "checksum",
        ],
    ),
];

/// Tables the consolidation deleted; none may exist.
pub const REMOVED_TABLES: &[&str] = &[
    "workflow_states",
    "discovery_assets",
    "mapping_learning_patterns",
    "data_quality_issues",
    "workflow_progress",
    "import_processing_steps",
    "data_import_sessions",
];

/// Columns removed from every table.
pub const REMOVED_EVERYWHERE: &[&str] = &["is_mock", "session_id"];

/// Columns removed from one table (renamed or dropped by the "Final" plan).
pub const REMOVED_COLUMNS: &[(&str, &[&str])] = &[
    (
        "data_imports",
        &[
            "source_filename",
            "file_size_bytes",
            "file_type",
            "file_hash",
            "import_config",
        ],
    ),
    (
        "discovery_flows",
        &[
            "assessment_package",
            "flow_description",
            "learning_scope",
            "memory_isolation_level",
            "assessment_ready",
            "flow_id",
            "crewai_persistence_id",
        ],
    ),
    (
        "import_field_mappings",
        &[
            "mapping_type",
            "validation_rules",
            "validation_method",
            "user_feedback",
            "original_ai_suggestion",
            "correction_reason",
            "transformation_logic",
            "sample_values",
        ],
    ),
    (
        "assets",
        &["field_mappings_used", "source_filename", "raw_data"],
    ),
    (
        "raw_import_records",
        &[
            "client_account_id",
            "engagement_id",
            "record_id",
            "processing_notes",
            "asset_id",
        ],
    ),
];

/// One thing wrong with a database's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub table: String,
    pub column: Option<String>,
    pub message: String,
}

/// The result of a check: empty `problems` means the schema is valid.
#[derive(Debug, Serialize)]
pub struct SchemaReport {
    pub schema_version: i64,
    pub expected_version: i64,
    pub tables_checked: usize,
    pub problems: Vec<Problem>,
}

impl SchemaReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

fn tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = stmt.query_map([], |r| r.get(0))?;
    names.collect()
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get(0))?;
    names.collect()
}

/// The problems of a schema given as its tables and their columns (a local
/// file's or a central database's).
pub fn check_layout(layout: &[(String, Vec<String>)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |kind, table: &str, column: Option<&str>, message: String| {
        problems.push(Problem {
            kind,
            table: table.to_string(),
            column: column.map(str::to_string),
            message,
        })
    };
    let columns_of = |table: &str| {
        layout
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, c)| c.as_slice())
    };
    for (table, cols) in layout {
        if table.starts_with("v3_") {
            problem(
                "v3_table",
                table,
                None,
                format!("table {table} must not exist: the consolidated schema has no v3_* tables"),
            );
        }
        if REMOVED_TABLES.contains(&table.as_str()) {
            problem(
                "removed_table",
                table,
                None,
                format!("table {table} was removed by the consolidation and must not exist"),
            );
        }
        for col in REMOVED_EVERYWHERE {
            if cols.iter().any(|c| c == col) {
                problem("removed_column", table, Some(col), format!("column {table}.{col} was removed by the consolidation (use the tenant columns instead)"));
            }
        }
        if let Some((_, removed)) = REMOVED_COLUMNS.iter().find(|(t, _)| t == table) {
            for col in *removed {
                if cols.iter().any(|c| c == col) {
                    problem(
                        "removed_column",
                        table,
                        Some(col),
                        format!("column {table}.{col} was removed or renamed by the consolidation"),
                    );
                }
            }
        }
    }
    for (table, required) in REQUIRED {
        let Some(cols) = columns_of(table) else {
            problem(
                "missing_table",
                table,
                None,
                format!("required table {table} is missing"),
            );
            continue;
        };
        for col in *required {
            if !cols.iter().any(|c| c == col) {
                problem(
                    "missing_column",
                    table,
                    Some(col),
                    format!("required column {table}.{col} is missing"),
                );
            }
        }
    }
    problems
}

/// The problems of a central database's schema: the local-only tables
/// (sync_log; mapping_decisions is never required) are not asked for.
pub fn check_central_layout(layout: &[(String, Vec<String>)]) -> Vec<Problem> {
    check_layout(layout)
        .into_iter()
        .filter(|p| !(p.kind == "missing_table" && p.table == "sync_log"))
        .collect()
}

/// Checks the working schema (`current_schema()`) of a central PostgreSQL:
/// the same check as for a local file, without the local schema version.
pub fn validate_central(client: &mut postgres::Client) -> Result<SchemaReport, postgres::Error> {
    let layout: Vec<(String, Vec<String>)> = client
        .query(
            "SELECT table_name::text, array_agg(column_name::text ORDER BY ordinal_position)
             FROM information_schema.columns WHERE table_schema = current_schema()
             GROUP BY table_name ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(SchemaReport {
        schema_version: db::SCHEMA_VERSION,
        expected_version: db::SCHEMA_VERSION,
        tables_checked: layout.len(),
        problems: check_central_layout(&layout),
    })
}

/// Checks the schema of an open database.
pub fn validate_schema(conn: &Connection) -> rusqlite::Result<SchemaReport> {
    let present = tables(conn)?;
    let mut layout = Vec::with_capacity(present.len());
    for table in &present {
        layout.push((table.clone(), columns(conn, table)?));
    }
    let mut problems = check_layout(&layout);
    let version = db::schema_version(conn)?;
    if version != db::SCHEMA_VERSION {
        problems.push(Problem {
            kind: "schema_version",
            table: String::new(),
            column: None,
            message: format!(
                "schema version is {version}, this build expects {}",
                db::SCHEMA_VERSION
            ),
        });
    }
    Ok(SchemaReport {
        schema_version: version,
        expected_version: db::SCHEMA_VERSION,
        tables_checked: present.len(),
        problems,
    })
}
