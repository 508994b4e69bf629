-- intake: the consolidated discovery schema (SQLite truth; the PostgreSQL DDL mirrors it).
-- Table and column names follow the platform team's "Final" consolidation plan:
-- the original table names, no v3_* tables, no is_mock, no session_id.
-- Ids are UUID v7 text, JSON is text checked with json_valid, timestamps are UTC ISO 8601.
-- Enumerations are CHECK constraints written `x = 'a' OR x = 'b'`, not `x IN (...)`: SQLite
-- builds a temporary index for an IN list on every run of an INSERT (db::check_lists_as_or).
-- The schema version is PRAGMA user_version.

CREATE TABLE client_accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE engagements (
    id                TEXT PRIMARY KEY,
    client_account_id TEXT NOT NULL REFERENCES client_accounts(id),
    name              TEXT NOT NULL,
    description       TEXT,
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status = 'active' OR status = 'completed' OR status = 'archived'),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (client_account_id, name)
) STRICT;
CREATE INDEX ix_engagements_client ON engagements(client_account_id);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    -- the user's home tenant (the seeds' default client and engagement of a user)
    client_account_id TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id     TEXT REFERENCES engagements(id),
    username          TEXT NOT NULL,
    email             TEXT,
    display_name      TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (client_account_id, username)
) STRICT;
CREATE INDEX ix_users_tenant ON users(client_account_id, engagement_id);

-- The master flow: one row per `intake import` run, flow_type 'discovery'.
CREATE TABLE crewai_flow_state_extensions (
    flow_id             TEXT PRIMARY KEY,
    client_account_id   TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id       TEXT NOT NULL REFERENCES engagements(id),
    user_id             TEXT REFERENCES users(id),
    flow_type           TEXT NOT NULL DEFAULT 'discovery'
                        CHECK (flow_type = 'discovery' OR flow_type = 'assessment' OR flow_type = 'planning' OR flow_type = 'execution'),
    flow_name           TEXT,
    flow_status         TEXT NOT NULL DEFAULT 'pending'
                        CHECK (flow_status = 'pending' OR flow_status = 'running' OR flow_status = 'completed' OR flow_status = 'failed' OR flow_status = 'cancelled'),
    current_phase       TEXT NOT NULL DEFAULT 'discovery',
    phase_flow_id       TEXT,
    phase_progression   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(phase_progression)),
    cross_phase_context TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(cross_phase_context)),
    master_state        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(master_state)),
    assessment_flow_id  TEXT,
    planning_flow_id    TEXT,
    execution_flow_id   TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;
CREATE INDEX ix_master_flows_tenant ON crewai_flow_state_extensions(client_account_id, engagement_id);

-- The discovery phase flow: the hybrid of the six boolean flags and the JSON state.
CREATE TABLE discovery_flows (
    id                          TEXT PRIMARY KEY,
    client_account_id           TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id               TEXT NOT NULL REFERENCES engagements(id),
    master_flow_id              TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    data_import_id              TEXT,  -- the run's first import; all of them link back by master_flow_id
    user_id                     TEXT REFERENCES users(id),
    flow_name                   TEXT,
    flow_type                   TEXT NOT NULL DEFAULT 'discovery',
    status                      TEXT NOT NULL DEFAULT 'pending'
                                CHECK (status = 'pending' OR status = 'running' OR status = 'completed' OR status = 'failed' OR status = 'cancelled'),
    progress_percentage         REAL NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
    data_import_completed       INTEGER NOT NULL DEFAULT 0 CHECK (data_import_completed IN (0, 1)),
    attribute_mapping_completed INTEGER NOT NULL DEFAULT 0 CHECK (attribute_mapping_completed IN (0, 1)),
    data_cleansing_completed    INTEGER NOT NULL DEFAULT 0 CHECK (data_cleansing_completed IN (0, 1)),
    inventory_completed         INTEGER NOT NULL DEFAULT 0 CHECK (inventory_completed IN (0, 1)),
    dependencies_completed      INTEGER NOT NULL DEFAULT 0 CHECK (dependencies_completed IN (0, 1)),
    tech_debt_completed         INTEGER NOT NULL DEFAULT 0 CHECK (tech_debt_completed IN (0, 1)),
    current_phase               TEXT NOT NULL DEFAULT 'data_import',
    phases_completed            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(phases_completed)),
    flow_state                  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(flow_state)),
    crew_outputs                TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(crew_outputs)),
    field_mappings              TEXT CHECK (field_mappings IS NULL OR json_valid(field_mappings)),
    discovered_assets           TEXT CHECK (discovered_assets IS NULL OR json_valid(discovered_assets)),
    dependencies                TEXT CHECK (dependencies IS NULL OR json_valid(dependencies)),
    tech_debt_analysis          TEXT CHECK (tech_debt_analysis IS NULL OR json_valid(tech_debt_analysis)),
    error_message               TEXT,
    error_phase                 TEXT,
    error_details               TEXT CHECK (error_details IS NULL OR json_valid(error_details)),
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    completed_at                TEXT
) STRICT;
CREATE INDEX ix_discovery_flows_tenant ON discovery_flows(client_account_id, engagement_id);
CREATE INDEX ix_discovery_flows_master ON discovery_flows(master_flow_id);

-- One row per imported file (or workbook sheet).
CREATE TABLE data_imports (
    id                  TEXT PRIMARY KEY,
    client_account_id   TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id       TEXT NOT NULL REFERENCES engagements(id),
    master_flow_id      TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    import_name         TEXT NOT NULL,
    import_type         TEXT NOT NULL DEFAULT 'csv',
    description         TEXT,
    filename            TEXT NOT NULL,
    file_size           INTEGER,
    mime_type           TEXT,
    source_system       TEXT,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status = 'pending' OR status = 'processing' OR status = 'completed' OR status = 'failed'),
    progress_percentage REAL NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
    total_records       INTEGER NOT NULL DEFAULT 0,
    processed_records   INTEGER NOT NULL DEFAULT 0,
    failed_records      INTEGER NOT NULL DEFAULT 0,
    imported_by         TEXT REFERENCES users(id),
    error_message       TEXT,
    error_details       TEXT CHECK (error_details IS NULL OR json_valid(error_details)),
    -- BLAKE3 of the file's bytes: recognises a re-import of the same file into an engagement
    content_hash        TEXT,
    -- what the reader detected (encoding, delimiter, header, warnings), shown by the summary
    read_metadata       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(read_metadata)),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    started_at          TEXT,
    completed_at        TEXT,
    -- the sheet of a workbook this import read (one data_imports row per sheet); NULL for CSV
    sheet_name          TEXT
) STRICT;
CREATE INDEX ix_data_imports_tenant ON data_imports(client_account_id, engagement_id);
CREATE INDEX ix_data_imports_master ON data_imports(master_flow_id);
CREATE INDEX ix_data_imports_hash ON data_imports(engagement_id, content_hash);

-- The cleansed fields of an import's records that are a raw value as it is:
-- field -> [position among the import's columns, column]. Written once per
-- cleanser; a record naming it (raw_records.copies) stores only its other fields.
CREATE TABLE cleansed_copies (
    id             INTEGER PRIMARY KEY,
    data_import_id TEXT NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    copies         TEXT NOT NULL CHECK (json_valid(copies)),
    UNIQUE (data_import_id, copies)
) STRICT;

-- Every source row, lossless: raw_data is a JSON object keyed by the header as written.
-- Stored once, without what its import already says (flow, tenant, time): readers
-- read the view raw_import_records below, which has the seeds' columns.
CREATE TABLE raw_records (
    data_import_id    TEXT NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    record_index      INTEGER NOT NULL,
    -- the values as a JSON array in the order of the import's columns
    -- (data_imports.read_metadata -> columns), or the raw_data object itself for
    -- a row with values beyond the header; JSON written only by intake's own
    -- serialiser, so not re-parsed by a json_valid CHECK on every insert
    raw_values        TEXT NOT NULL,
    -- the cleansed fields; with copies set, only those not in cleansed_copies
    -- (null: a copied field the record lacks although its raw value is there)
    cleansed_data     TEXT,
    -- the cleansed_copies row its cleansed_data leaves out (NULL: it is whole),
    -- without a foreign key: both go with their import
    copies            INTEGER,
    is_valid          INTEGER CHECK (is_valid = 0 OR is_valid = 1),
    validation_errors TEXT,
    -- when the record was cleansed; NULL: not yet (is_processed 0)
    processed_at      TEXT,
    -- the id a record was stored with before schema 8; NULL: its id is its
    -- import's id with the record index as the last 12 hex digits
    legacy_id         TEXT,
    -- 128 bits of BLAKE3 over the row as read: a later import of the same
    -- source finds its unchanged rows by it (raw_record_sightings); NULL for
    -- rows stored before schema 9
    row_hash          BLOB,
    UNIQUE (data_import_id, record_index)
) STRICT;

-- A source row identical to one an earlier import of the same source stored
-- (same engagement, sheet, columns and cleansing): recorded as seen by this
-- import at this record index, and read through the record it repeats,
-- instead of being stored, cleansed and merged again.
CREATE TABLE raw_record_sightings (
    data_import_id TEXT NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    record_index   INTEGER NOT NULL,
    -- the stored record (raw_records) it repeats
    seen_import_id TEXT NOT NULL REFERENCES data_imports(id),
    seen_index     INTEGER NOT NULL,
    PRIMARY KEY (data_import_id, record_index)
) STRICT, WITHOUT ROWID;

-- Which asset each valid record of a primary table was merged into when the
-- inventory last ran over it, so a later run rebuilds only the machines its
-- new records touch: (record_index, asset) pairs in record order, 16 bytes
-- each (two little-endian 64-bit integers; the asset as the first 8 bytes of
-- BLAKE3 over its id). Current while the table's cleansing is the one named.
CREATE TABLE inventory_links (
    data_import_id TEXT PRIMARY KEY REFERENCES data_imports(id) ON DELETE CASCADE,
    cleansing      TEXT NOT NULL,
    links          BLOB NOT NULL
) STRICT;

-- The seeds' raw_import_records: each record with its import's flow and time,
-- the stored ones and those an import saw again (raw_record_sightings).
CREATE VIEW raw_import_records AS
SELECT coalesce(r.legacy_id, substr(d.id, 1, 24) || printf('%012x', r.record_index)) AS id,
       r.data_import_id AS data_import_id,
       d.master_flow_id AS master_flow_id,
       r.record_index AS record_index,
       CASE WHEN substr(r.raw_values, 1, 1) = '['
            THEN (SELECT json_group_object(c.value, r.raw_values ->> c.key)
                  FROM json_each(d.read_metadata, '$.columns') c
                  WHERE c.key < json_array_length(r.raw_values))
            ELSE r.raw_values END AS raw_data,
       CASE WHEN r.copies IS NULL THEN r.cleansed_data
            ELSE json_patch(
                   (SELECT json_group_object(c.key, v.value)
                    FROM cleansed_copies t, json_each(t.copies) c, json_each(r.raw_values) v
                    WHERE t.id = r.copies
                      AND v.key = CASE WHEN substr(r.raw_values, 1, 1) = '['
                                       THEN c.value ->> 0 ELSE c.value ->> 1 END
                      AND v.value <> ''),
                   r.cleansed_data) END AS cleansed_data,
       (r.processed_at IS NOT NULL) AS is_processed,
       r.is_valid AS is_valid,
       r.validation_errors AS validation_errors,
       coalesce(d.started_at, d.created_at) AS created_at,
       r.processed_at AS processed_at
FROM raw_records r JOIN data_imports d ON d.id = r.data_import_id
UNION ALL
SELECT substr(i.id, 1, 24) || printf('%012x', s.record_index) AS id,
       s.data_import_id AS data_import_id,
       i.master_flow_id AS master_flow_id,
       s.record_index AS record_index,
       CASE WHEN substr(r.raw_values, 1, 1) = '['
            THEN (SELECT json_group_object(c.value, r.raw_values ->> c.key)
                  FROM json_each(d.read_metadata, '$.columns') c
                  WHERE c.key < json_array_length(r.raw_values))
            ELSE r.raw_values END AS raw_data,
       CASE WHEN r.copies IS NULL THEN r.cleansed_data
            ELSE json_patch(
                   (SELECT json_group_object(c.key, v.value)
                    FROM cleansed_copies t, json_each(t.copies) c, json_each(r.raw_values) v
                    WHERE t.id = r.copies
                      AND v.key = CASE WHEN substr(r.raw_values, 1, 1) = '['
                                       THEN c.value ->> 0 ELSE c.value ->> 1 END
                      AND v.value <> ''),
                   r.cleansed_data) END AS cleansed_data,
       (r.processed_at IS NOT NULL) AS is_processed,
       r.is_valid AS is_valid,
       r.validation_errors AS validation_errors,
       coalesce(i.started_at, i.created_at) AS created_at,
       r.processed_at AS processed_at
FROM raw_record_sightings s
JOIN data_imports i ON i.id = s.data_import_id
JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
JOIN data_imports d ON d.id = r.data_import_id;

CREATE TABLE import_field_mappings (
    id                   TEXT PRIMARY KEY,
    client_account_id    TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id        TEXT NOT NULL REFERENCES engagements(id),
    data_import_id       TEXT NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    master_flow_id       TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    source_field         TEXT NOT NULL,
    target_field         TEXT,
    confidence_score     REAL NOT NULL DEFAULT 0 CHECK (confidence_score BETWEEN 0 AND 1),
    match_type           TEXT NOT NULL
                         CHECK (match_type = 'rule' OR match_type = 'learned' OR match_type = 'exact' OR match_type = 'alias' OR match_type = 'fuzzy' OR match_type = 'content' OR match_type = 'manual' OR match_type = 'none'),
    status               TEXT NOT NULL DEFAULT 'suggested'
                         CHECK (status = 'suggested' OR status = 'approved' OR status = 'rejected' OR status = 'ignored'),
    suggested_by         TEXT,
    approved_by          TEXT,
    approved_at          TEXT,
    transformation_rules TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(transformation_rules)),
    is_validated         INTEGER NOT NULL DEFAULT 0 CHECK (is_validated IN (0, 1)),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    -- why the suggestion was made, in words (header and content evidence), shown by `intake mappings`
    evidence             TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(evidence))
) STRICT;
CREATE INDEX ix_import_field_mappings_tenant ON import_field_mappings(client_account_id, engagement_id);
CREATE INDEX ix_import_field_mappings_master ON import_field_mappings(master_flow_id);
CREATE INDEX ix_import_field_mappings_import ON import_field_mappings(data_import_id);

CREATE TABLE assets (
    -- identification and orchestration
    id                         TEXT PRIMARY KEY,
    client_account_id          TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id              TEXT NOT NULL REFERENCES engagements(id),
    master_flow_id             TEXT REFERENCES crewai_flow_state_extensions(flow_id),
    discovery_flow_id          TEXT REFERENCES discovery_flows(id),
    assessment_flow_id         TEXT,
    planning_flow_id           TEXT,
    execution_flow_id          TEXT,
    cmdb_record_id             TEXT,
    external_id                TEXT,
    asset_type                 TEXT NOT NULL DEFAULT 'server'
                               CHECK (asset_type = 'server' OR asset_type = 'application' OR asset_type = 'database' OR asset_type = 'network' OR asset_type = 'storage'),
    name                       TEXT NOT NULL,
    description                TEXT,
    status                     TEXT,
    environment                TEXT CHECK (environment IS NULL OR environment = 'production' OR environment = 'staging' OR environment = 'test' OR environment = 'development' OR environment = 'disaster_recovery'),
    criticality                TEXT CHECK (criticality IS NULL OR criticality = 'low' OR criticality = 'medium' OR criticality = 'high' OR criticality = 'critical'),
    discovery_source           TEXT,
    first_discovered_at        TEXT,
    last_discovered_at         TEXT,
    -- infrastructure
    hostname                   TEXT,
    ip_address                 TEXT,
    fqdn                       TEXT,
    mac_address                TEXT,
    domain                     TEXT,
    operating_system           TEXT,
    os_version                 TEXT,
    os_architecture            TEXT,
    cpu_cores                  INTEGER CHECK (cpu_cores IS NULL OR cpu_cores >= 0),
    cpu_sockets                INTEGER CHECK (cpu_sockets IS NULL OR cpu_sockets >= 0),
    cpu_model                  TEXT,
    cpu_speed_mhz              REAL,
    memory_gb                  REAL CHECK (memory_gb IS NULL OR memory_gb >= 0),
    storage_gb                 REAL CHECK (storage_gb IS NULL OR storage_gb >= 0),
    storage_used_gb            REAL CHECK (storage_used_gb IS NULL OR storage_used_gb >= 0),
    location                   TEXT,
    datacenter                 TEXT,
    rack_location              TEXT,
    availability_zone          TEXT,
    -- hardware and virtualisation
    serial_number              TEXT,
    asset_tag                  TEXT,
    manufacturer               TEXT,
    model                      TEXT,
    is_virtual                 INTEGER CHECK (is_virtual IS NULL OR is_virtual IN (0, 1)),
    virtualization_platform    TEXT,
    virtualization_host        TEXT,
    cluster                    TEXT,
    vm_uuid                    TEXT,
    bios_uuid                  TEXT,
    power_state                TEXT,
    firmware_type              TEXT,
    -- business
    business_owner             TEXT,
    technical_owner            TEXT,
    department                 TEXT,
    cost_center                TEXT,
    support_group              TEXT,
    application_name           TEXT,
    technology_stack           TEXT,
    business_unit              TEXT,
    data_classification        TEXT,
    -- migration planning
    six_r_strategy             TEXT CHECK (six_r_strategy IS NULL OR six_r_strategy = 'rehost' OR six_r_strategy = 'replatform' OR six_r_strategy = 'refactor' OR six_r_strategy = 'rearchitect' OR six_r_strategy = 'repurchase' OR six_r_strategy = 'retire' OR six_r_strategy = 'retain'),
    migration_wave             TEXT,
    migration_priority         INTEGER,
    migration_complexity       TEXT,
    dependencies               TEXT CHECK (dependencies IS NULL OR json_valid(dependencies)),
    sixr_ready                 TEXT,
    end_of_life_date           TEXT,
    end_of_support_date        TEXT,
    tech_debt_score            REAL,
    -- performance
    cpu_utilization_percent    REAL,
    memory_utilization_percent REAL,
    disk_iops                  REAL,
    network_throughput_mbps    REAL,
    -- cost
    current_monthly_cost       REAL,
    estimated_cloud_cost       REAL,
    -- unmapped source columns, keyed by their original header
    custom_attributes          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom_attributes)),
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL,
    -- the tech_debt phase's verdict (the seeds have only the dates and a score): the support
    -- status, and what it rests on (catalogue entries matched, dates, fields 6R still needs)
    support_status             TEXT CHECK (support_status IS NULL OR support_status = 'supported' OR support_status = 'extended_support' OR support_status = 'end_of_life' OR support_status = 'unknown'),
    tech_debt_details          TEXT CHECK (tech_debt_details IS NULL OR json_valid(tech_debt_details))
) STRICT;
CREATE INDEX ix_assets_tenant ON assets(client_account_id, engagement_id);
CREATE INDEX ix_assets_master ON assets(master_flow_id);
CREATE INDEX ix_assets_hostname ON assets(engagement_id, hostname);

CREATE TABLE asset_dependencies (
    id                  TEXT PRIMARY KEY,
    client_account_id   TEXT NOT NULL REFERENCES client_accounts(id),
    engagement_id       TEXT NOT NULL REFERENCES engagements(id),
    master_flow_id      TEXT REFERENCES crewai_flow_state_extensions(flow_id),
    asset_id            TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    depends_on_asset_id TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    dependency_type     TEXT NOT NULL,
    description         TEXT,
    confidence_score    REAL CHECK (confidence_score IS NULL OR confidence_score BETWEEN 0 AND 1),
    source              TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (asset_id, depends_on_asset_id, dependency_type)
) STRICT;
CREATE INDEX ix_asset_dependencies_tenant ON asset_dependencies(client_account_id, engagement_id);
CREATE INDEX ix_asset_dependencies_master ON asset_dependencies(master_flow_id);
CREATE INDEX ix_asset_dependencies_depends_on ON asset_dependencies(depends_on_asset_id);

-- One row per `intake sync` attempt of a flow (the central intake_sync_log mirrors it):
-- who, when, where to (the server, never the password), rows per table, checksum, outcome.
CREATE TABLE sync_log (
    id             TEXT PRIMARY KEY,
    master_flow_id TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    synced_by      TEXT NOT NULL,
    synced_at      TEXT NOT NULL,
    target         TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome = 'synced' OR outcome = 'unchanged' OR outcome = 'failed' OR outcome = 'refused' OR outcome = 'locked'),
    counts         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(counts)),
    checksum       TEXT,
    message        TEXT
) STRICT;
CREATE INDEX ix_sync_log_flow ON sync_log(master_flow_id);

-- One row per `intake mappings approve|reject|set` decision: the mapping rows
-- it changed as they were before and after, and the assets its re-run of the
-- phases created, so `intake mappings undo` puts back exactly what it
-- changed. Local only: never synced.
CREATE TABLE mapping_decisions (
    id               TEXT PRIMARY KEY,
    master_flow_id   TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    decided_by       TEXT NOT NULL,
    decided_at       TEXT NOT NULL,
    command          TEXT NOT NULL,
    before           TEXT NOT NULL CHECK (json_valid(before)),
    after            TEXT NOT NULL CHECK (json_valid(after)),
    last_asset_rowid INTEGER NOT NULL DEFAULT 0,
    created_assets   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(created_assets)),
    undone_at        TEXT
) STRICT;
CREATE INDEX ix_mapping_decisions_flow ON mapping_decisions(master_flow_id);
