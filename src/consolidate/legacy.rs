//! What the platform team's seeds say a legacy database holds and where each
//! piece goes: the v3_ tables and the original each merges into, the columns
//! renamed by the "Final" plan, the names a v3 table used for a column, and
//! what fills a required column a legacy row never had.

/// (v3 table, the original table its rows are merged into).
pub const V3_TABLES: &[(&str, &str)] = &[
    ("v3_data_imports", "data_imports"),
    ("v3_discovery_flows", "discovery_flows"),
    ("v3_field_mappings", "import_field_mappings"),
    ("v3_raw_import_records", "raw_import_records"),
];

/// (table, old column, consolidated column): renamed, values kept.
pub const RENAMED: &[(&str, &str, &str)] = &[
    ("data_imports", "source_filename", "filename"),
    ("data_imports", "file_size_bytes", "file_size"),
    ("data_imports", "file_type", "mime_type"),
    ("import_field_mappings", "mapping_type", "match_type"),
    (
        "import_field_mappings",
        "validation_rules",
        "transformation_rules",
    ),
];

/// Column names the v3 tables (and discovery_assets) used for a consolidated column.
pub const V3_SYNONYMS: &[(&str, &str)] = &[
    ("import_id", "data_import_id"),
    ("row_number", "record_index"),
    ("row_index", "record_index"),
    ("flow_status", "status"),
    ("asset_name", "name"),
];

/// The consolidated tables a legacy database's rows end up in, parents first.
pub const CONSOLIDATED: &[&str] = &[
    "client_accounts",
    "engagements",
    "users",
    "crewai_flow_state_extensions",
    "discovery_flows",
    "data_imports",
    "raw_import_records",
    "import_field_mappings",
    "assets",
    "asset_dependencies",
];

/// The SQL that fills a required column a legacy row lacks (`src` is the
/// legacy row's alias).
pub fn fallback(table: &str, column: &str) -> Option<&'static str> {
    Some(match (table, column) {
        (_, "created_at") => "now()",
        (_, "updated_at") => "now()",
        ("data_imports", "import_name") => "'legacy import'",
        ("data_imports", "filename") => "'(unknown file)'",
        ("data_imports", "import_type") => "'csv'",
        ("data_imports", "status") => "'completed'",
        ("discovery_flows", "status") => "'pending'",
        ("import_field_mappings", "source_field") => "'(unknown column)'",
        ("import_field_mappings", "match_type") => "'none'",
        ("import_field_mappings", "status") => "'suggested'",
        ("raw_import_records", "record_index") => "0",
        ("raw_import_records", "raw_data") => "'{}'::jsonb",
        ("assets", "name") => "'unnamed'",
        ("assets", "asset_type") => "'server'",
        _ => return None,
    })
}

/// An asset type as the consolidated CHECK allows, from whatever a legacy row
/// says (the same words cleansing reads); NULL when nothing fits.
pub const ASSET_TYPE_SQL: &str = "CASE
    WHEN lower(v) IN ('server', 'application', 'database', 'network', 'storage') THEN lower(v)
    WHEN lower(v) LIKE '%database%' OR lower(v) LIKE '%sql%' OR lower(v) IN ('db', 'dbms') THEN 'database'
    WHEN lower(v) LIKE '%storage%' OR lower(v) IN ('san', 'nas') THEN 'storage'
    WHEN lower(v) LIKE '%network%' OR lower(v) LIKE '%switch%' OR lower(v) LIKE '%router%'
         OR lower(v) LIKE '%firewall%' OR lower(v) LIKE '%load balancer%' THEN 'network'
    WHEN lower(v) LIKE '%app%' OR lower(v) LIKE '%service%' THEN 'application'
    WHEN lower(v) LIKE '%server%' OR lower(v) LIKE '%vm%' OR lower(v) LIKE '%virtual%'
         OR lower(v) LIKE '%host%' OR lower(v) LIKE '%machine%' OR lower(v) LIKE '%instance%' THEN 'server'
    END";

/// An environment as the consolidated CHECK allows; NULL when nothing fits.
pub const ENVIRONMENT_SQL: &str = "CASE
    WHEN lower(v) IN ('production', 'staging', 'test', 'development', 'disaster_recovery') THEN lower(v)
    WHEN lower(v) IN ('prod', 'prd', 'live', 'produktion', 'productive') THEN 'production'
    WHEN lower(v) IN ('stage', 'stg', 'uat', 'preprod', 'pre-prod', 'qa') THEN 'staging'
    WHEN lower(v) IN ('tst', 'testing', 'int', 'integration') THEN 'test'
    WHEN lower(v) IN ('dev', 'develop', 'sandbox', 'lab') THEN 'development'
    WHEN lower(v) IN ('dr', 'disaster recovery', 'disaster-recovery') THEN 'disaster_recovery'
    END";

/// A criticality as the consolidated CHECK allows; NULL when nothing fits.
pub const CRITICALITY_SQL: &str = "CASE
    WHEN lower(v) IN ('low', 'medium', 'high', 'critical') THEN lower(v)
    WHEN lower(v) IN ('0', '1', 'tier 0', 'tier 1', 'tier0', 'tier1', 'mission critical', 'mission-critical', 'business critical', 'very high') THEN 'critical'
    WHEN lower(v) IN ('2', 'tier 2', 'tier2') THEN 'high'
    WHEN lower(v) IN ('3', 'tier 3', 'tier3', 'med') THEN 'medium'
    WHEN lower(v) IN ('4', 'tier 4', 'tier4') THEN 'low'
    END";

/// A 6R strategy as the consolidated CHECK allows; NULL when nothing fits.
pub const SIX_R_SQL: &str = "CASE
    WHEN lower(v) IN ('rehost', 'replatform', 'refactor', 'rearchitect', 'repurchase', 'retire', 'retain') THEN lower(v)
    WHEN lower(v) IN ('lift and shift', 'lift-and-shift', 're-host') THEN 'rehost'
    WHEN lower(v) IN ('re-platform', 'lift and reshape') THEN 'replatform'
    WHEN lower(v) IN ('re-factor') THEN 'refactor'
    WHEN lower(v) IN ('re-architect') THEN 'rearchitect'
    WHEN lower(v) IN ('re-purchase', 'replace', 'saas') THEN 'repurchase'
    WHEN lower(v) IN ('decommission') THEN 'retire'
    WHEN lower(v) IN ('keep', 'revisit') THEN 'retain'
    END";

/// A mapping's match type as the consolidated CHECK allows; NULL when nothing fits.
pub const MATCH_TYPE_SQL: &str = "CASE
    WHEN lower(v) IN ('rule', 'learned', 'exact', 'alias', 'fuzzy', 'content', 'manual', 'none') THEN lower(v)
    WHEN lower(v) IN ('semantic', 'ai', 'llm', 'agent', 'ml', 'pattern') THEN 'content'
    WHEN lower(v) IN ('user', 'human', 'override') THEN 'manual'
    WHEN lower(v) IN ('learning', 'memory', 'remembered') THEN 'learned'
    WHEN lower(v) IN ('synonym') THEN 'alias'
    END";

/// A mapping's status as the consolidated CHECK allows; NULL when nothing fits.
pub const MAPPING_STATUS_SQL: &str = "CASE
    WHEN lower(v) IN ('suggested', 'approved', 'rejected', 'ignored') THEN lower(v)
    WHEN lower(v) IN ('pending', 'proposed', 'new') THEN 'suggested'
    WHEN lower(v) IN ('accepted', 'confirmed', 'validated') THEN 'approved'
    WHEN lower(v) IN ('declined', 'denied') THEN 'rejected'
    WHEN lower(v) IN ('skipped', 'unmapped') THEN 'ignored'
    END";

/// An import's status as the consolidated CHECK allows; NULL when nothing fits.
pub const IMPORT_STATUS_SQL: &str = "CASE
    WHEN lower(v) IN ('pending', 'processing', 'completed', 'failed') THEN lower(v)
    WHEN lower(v) IN ('in_progress', 'in progress', 'running', 'importing', 'uploading') THEN 'processing'
    WHEN lower(v) IN ('done', 'complete', 'success', 'succeeded', 'finished', 'imported') THEN 'completed'
    WHEN lower(v) IN ('error', 'errored', 'cancelled', 'canceled', 'aborted') THEN 'failed'
    END";

/// A flow's status as the consolidated CHECK allows; NULL when nothing fits.
pub const FLOW_STATUS_SQL: &str = "CASE
    WHEN lower(v) IN ('pending', 'running', 'completed', 'failed', 'cancelled') THEN lower(v)
    WHEN lower(v) IN ('in_progress', 'in progress', 'active', 'processing', 'paused') THEN 'running'
    WHEN lower(v) IN ('done', 'complete', 'success', 'succeeded', 'finished') THEN 'completed'
    WHEN lower(v) IN ('error', 'errored') THEN 'failed'
    WHEN lower(v) IN ('canceled', 'aborted') THEN 'cancelled'
    END";
