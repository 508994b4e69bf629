-- intake: the central PostgreSQL schema that `intake sync` loads, mirroring schema.sql
-- (the SQLite truth) table for table and column for column: ids and references are
-- uuid, JSON is jsonb, timestamps timestamptz, 0/1 flags boolean, REAL numeric,
-- INTEGER bigint; the enumerations and ranges are the same CHECK constraints.
-- `intake sync --create-schema` runs this file; every statement is IF NOT EXISTS.
-- A change to schema.sql must be made here too (tests/sync.rs compares the two).

CREATE TABLE IF NOT EXISTS client_accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS engagements (
    id                uuid PRIMARY KEY,
    client_account_id uuid NOT NULL REFERENCES client_accounts(id),
    name              text NOT NULL,
    description       text,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'archived')),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (client_account_id, name)
);
CREATE INDEX IF NOT EXISTS ix_engagements_client ON engagements(client_account_id);

CREATE TABLE IF NOT EXISTS users (
    id                uuid PRIMARY KEY,
    -- the user's home tenant (the seeds' default client and engagement of a user)
    client_account_id uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id     uuid REFERENCES engagements(id),
    username          text NOT NULL,
    email             text,
    display_name      text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (client_account_id, username)
);
CREATE INDEX IF NOT EXISTS ix_users_tenant ON users(client_account_id, engagement_id);

-- The master flow: one row per `intake import` run, flow_type 'discovery'.
CREATE TABLE IF NOT EXISTS crewai_flow_state_extensions (
    flow_id             uuid PRIMARY KEY,
    client_account_id   uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id       uuid NOT NULL REFERENCES engagements(id),
    user_id             uuid REFERENCES users(id),
    flow_type           text NOT NULL DEFAULT 'discovery'
                        CHECK (flow_type IN ('discovery', 'assessment', 'planning', 'execution')),
    flow_name           text,
    flow_status         text NOT NULL DEFAULT 'pending'
                        CHECK (flow_status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    current_phase       text NOT NULL DEFAULT 'discovery',
    phase_flow_id       uuid,
    phase_progression   jsonb NOT NULL DEFAULT '{}',
    cross_phase_context jsonb NOT NULL DEFAULT '{}',
    master_state        jsonb NOT NULL DEFAULT '{}',
    assessment_flow_id  uuid,
    planning_flow_id    uuid,
    execution_flow_id   uuid,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_master_flows_tenant ON crewai_flow_state_extensions(client_account_id, engagement_id);

-- The discovery phase flow: the hybrid of the six boolean flags and the JSON state.
CREATE TABLE IF NOT EXISTS discovery_flows (
    id                          uuid PRIMARY KEY,
    client_account_id           uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id               uuid NOT NULL REFERENCES engagements(id),
    master_flow_id              uuid NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    data_import_id              uuid,  -- the run's first import; all of them link back by master_flow_id
    user_id                     uuid REFERENCES users(id),
    flow_name                   text,
    flow_type                   text NOT NULL DEFAULT 'discovery',
    status                      text NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    progress_percentage         numeric NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
    data_import_completed       boolean NOT NULL DEFAULT false,
    attribute_mapping_completed boolean NOT NULL DEFAULT false,
    data_cleansing_completed    boolean NOT NULL DEFAULT false,
    inventory_completed         boolean NOT NULL DEFAULT false,
    dependencies_completed      boolean NOT NULL DEFAULT false,
    tech_debt_completed         boolean NOT NULL DEFAULT false,
    current_phase               text NOT NULL DEFAULT 'data_import',
    phases_completed            jsonb NOT NULL DEFAULT '[]',
    flow_state                  jsonb NOT NULL DEFAULT '{}',
    crew_outputs                jsonb NOT NULL DEFAULT '{}',
    field_mappings              jsonb,
    discovered_assets           jsonb,
    dependencies                jsonb,
    tech_debt_analysis          jsonb,
    error_message               text,
    error_phase                 text,
    error_details               jsonb,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    completed_at                timestamptz
);
CREATE INDEX IF NOT EXISTS ix_discovery_flows_tenant ON discovery_flows(client_account_id, engagement_id);
CREATE INDEX IF NOT EXISTS ix_discovery_flows_master ON discovery_flows(master_flow_id);

-- One row per imported file (or workbook sheet).
CREATE TABLE IF NOT EXISTS data_imports (
    id                  uuid PRIMARY KEY,
    client_account_id   uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id       uuid NOT NULL REFERENCES engagements(id),
    master_flow_id      uuid NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    import_name         text NOT NULL,
    import_type         text NOT NULL DEFAULT 'csv',
    description         text,
    filename            text NOT NULL,
    file_size           bigint,
    mime_type           text,
    source_system       text,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    progress_percentage numeric NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
    total_records       bigint NOT NULL DEFAULT 0,
    processed_records   bigint NOT NULL DEFAULT 0,
    failed_records      bigint NOT NULL DEFAULT 0,
    imported_by         uuid REFERENCES users(id),
    error_message       text,
    error_details       jsonb,
    -- BLAKE3 of the file's bytes: recognises a re-import of the same file into an engagement
    content_hash        text,
    -- what the reader detected (encoding, delimiter, header, warnings), shown by the summary
    read_metadata       jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    started_at          timestamptz,
    completed_at        timestamptz,
    -- the sheet of a workbook this import read (one data_imports row per sheet); NULL for CSV
    sheet_name          text
);
CREATE INDEX IF NOT EXISTS ix_data_imports_tenant ON data_imports(client_account_id, engagement_id);
CREATE INDEX IF NOT EXISTS ix_data_imports_master ON data_imports(master_flow_id);
CREATE INDEX IF NOT EXISTS ix_data_imports_hash ON data_imports(engagement_id, content_hash);

-- Every source row, lossless: raw_data is a JSON object keyed by the header as written.
-- No tenant columns: a record's tenant is its import's.
CREATE TABLE IF NOT EXISTS raw_import_records (
    id                uuid PRIMARY KEY,
    data_import_id    uuid NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    master_flow_id    uuid NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    record_index      bigint NOT NULL,
    raw_data          jsonb NOT NULL,
    cleansed_data     jsonb,
    is_processed      boolean NOT NULL DEFAULT false,
    is_valid          boolean,
    validation_errors jsonb,
    created_at        timestamptz NOT NULL,
    processed_at      timestamptz,
    UNIQUE (data_import_id, record_index)
);
CREATE INDEX IF NOT EXISTS ix_raw_import_records_master ON raw_import_records(master_flow_id);

CREATE TABLE IF NOT EXISTS import_field_mappings (
    id                   uuid PRIMARY KEY,
    client_account_id    uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id        uuid NOT NULL REFERENCES engagements(id),
    data_import_id       uuid NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    master_flow_id       uuid NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    source_field         text NOT NULL,
    target_field         text,
    confidence_score     numeric NOT NULL DEFAULT 0 CHECK (confidence_score BETWEEN 0 AND 1),
    match_type           text NOT NULL
                         CHECK (match_type IN ('rule', 'learned', 'exact', 'alias', 'fuzzy', 'content', 'manual', 'none')),
    status               text NOT NULL DEFAULT 'suggested'
                         CHECK (status IN ('suggested', 'approved', 'rejected', 'ignored')),
    suggested_by         text,
    approved_by          text,
    approved_at          timestamptz,
    transformation_rules jsonb NOT NULL DEFAULT '{}',
    is_validated         boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    -- why the suggestion was made, in words (header and content evidence), shown by `intake mappings`
    evidence             jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS ix_import_field_mappings_tenant ON import_field_mappings(client_account_id, engagement_id);
CREATE INDEX IF NOT EXISTS ix_import_field_mappings_master ON import_field_mappings(master_flow_id);
CREATE INDEX IF NOT EXISTS ix_import_field_mappings_import ON import_field_mappings(data_import_id);

CREATE TABLE IF NOT EXISTS assets (
    -- identification and orchestration
    id                         uuid PRIMARY KEY,
    client_account_id          uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id              uuid NOT NULL REFERENCES engagements(id),
    master_flow_id             uuid REFERENCES crewai_flow_state_extensions(flow_id),
    discovery_flow_id          uuid REFERENCES discovery_flows(id),
    assessment_flow_id         uuid,
    planning_flow_id           uuid,
    execution_flow_id          uuid,
    cmdb_record_id             text,
    external_id                text,
    asset_type                 text NOT NULL DEFAULT 'server'
                               CHECK (asset_type IN ('server', 'application', 'database', 'network', 'storage')),
    name                       text NOT NULL,
    description                text,
    status                     text,
    environment                text CHECK (environment IS NULL OR environment IN
                               ('production', 'staging', 'test', 'development', 'disaster_recovery')),
    criticality                text CHECK (criticality IS NULL OR criticality IN ('low', 'medium', 'high', 'critical')),
    discovery_source           text,
    first_discovered_at        timestamptz,
    last_discovered_at         timestamptz,
    -- infrastructure
    hostname                   text,
    ip_address                 text,
    fqdn                       text,
    mac_address                text,
    domain                     text,
    operating_system           text,
    os_version                 text,
    os_architecture            text,
    cpu_cores                  bigint CHECK (cpu_cores IS NULL OR cpu_cores >= 0),
    cpu_sockets                bigint CHECK (cpu_sockets IS NULL OR cpu_sockets >= 0),
    cpu_model                  text,
    cpu_speed_mhz              numeric,
    memory_gb                  numeric CHECK (memory_gb IS NULL OR memory_gb >= 0),
    storage_gb                 numeric CHECK (storage_gb IS NULL OR storage_gb >= 0),
    storage_used_gb            numeric CHECK (storage_used_gb IS NULL OR storage_used_gb >= 0),
    location                   text,
    datacenter                 text,
    rack_location              text,
    availability_zone          text,
    -- hardware and virtualisation
    serial_number              text,
    asset_tag                  text,
    manufacturer               text,
    model                      text,
    is_virtual                 boolean,
    virtualization_platform    text,
    virtualization_host        text,
    cluster                    text,
    vm_uuid                    text,
    bios_uuid                  text,
    power_state                text,
    firmware_type              text,
    -- business
    business_owner             text,
    technical_owner            text,
    department                 text,
    cost_center                text,
    support_group              text,
    application_name           text,
    technology_stack           text,
    business_unit              text,
    data_classification        text,
    -- migration planning
    six_r_strategy             text CHECK (six_r_strategy IS NULL OR six_r_strategy IN
                               ('rehost', 'replatform', 'refactor', 'rearchitect', 'repurchase', 'retire', 'retain')),
    migration_wave             text,
    migration_priority         bigint,
    migration_complexity       text,
    dependencies               jsonb,
    sixr_ready                 text,
    end_of_life_date           date,
    end_of_support_date        date,
    tech_debt_score            numeric,
    -- performance
    cpu_utilization_percent    numeric,
    memory_utilization_percent numeric,
    disk_iops                  numeric,
    network_throughput_mbps    numeric,
    -- cost
    current_monthly_cost       numeric,
    estimated_cloud_cost       numeric,
    -- unmapped source columns, keyed by their original header
    custom_attributes          jsonb NOT NULL DEFAULT '{}',
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_assets_tenant ON assets(client_account_id, engagement_id);
-- Added by intake schema 4 (the tech_debt phase); ALTER so that --create-schema also
-- upgrades a central database created by an earlier intake.
ALTER TABLE assets ADD COLUMN IF NOT EXISTS support_status text CHECK (support_status IS NULL OR support_status IN
    ('supported', 'extended_support', 'end_of_life', 'unknown'));
ALTER TABLE assets ADD COLUMN IF NOT EXISTS tech_debt_details jsonb;
CREATE INDEX IF NOT EXISTS ix_assets_master ON assets(master_flow_id);
CREATE INDEX IF NOT EXISTS ix_assets_hostname ON assets(engagement_id, hostname);

CREATE TABLE IF NOT EXISTS asset_dependencies (
    id                  uuid PRIMARY KEY,
    client_account_id   uuid NOT NULL REFERENCES client_accounts(id),
    engagement_id       uuid NOT NULL REFERENCES engagements(id),
    master_flow_id      uuid REFERENCES crewai_flow_state_extensions(flow_id),
    asset_id            uuid NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    depends_on_asset_id uuid NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    dependency_type     text NOT NULL,
    description         text,
    confidence_score    numeric CHECK (confidence_score IS NULL OR confidence_score BETWEEN 0 AND 1),
    source              text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (asset_id, depends_on_asset_id, dependency_type)
);
CREATE INDEX IF NOT EXISTS ix_asset_dependencies_tenant ON asset_dependencies(client_account_id, engagement_id);
CREATE INDEX IF NOT EXISTS ix_asset_dependencies_master ON asset_dependencies(master_flow_id);
CREATE INDEX IF NOT EXISTS ix_asset_dependencies_depends_on ON asset_dependencies(depends_on_asset_id);

-- One row per sync attempt that reached the server: who, when, which flow, the rows
-- per table, the checksum of what was sent, and the outcome.
CREATE TABLE IF NOT EXISTS intake_sync_log (
    id                uuid PRIMARY KEY,
    client_account_id uuid NOT NULL,
    engagement_id     uuid NOT NULL,
    master_flow_id    uuid NOT NULL,
    synced_by         text NOT NULL,
    synced_at         timestamptz NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('synced', 'unchanged', 'failed', 'refused')),
    counts            jsonb NOT NULL DEFAULT '{}',
    checksum          text,
    message           text
);
CREATE INDEX IF NOT EXISTS ix_intake_sync_log_flow ON intake_sync_log(master_flow_id);
