//! The attribute_mapping phase through the real binary: every published format
//! and the hand-made and foreign-language exports are mapped to the right
//! fields, content evidence maps unnamed columns and lowers contradicted ones,
//! rules files, mapping memory, review commands and the flow record.

use crate::common::{count, fixture, sample, Work};
use serde_json::Value;

/// (source column, expected field or None when no asset field corresponds).
type Expected = &'static [(&'static str, Option<&'static str>)];

const SERVICENOW_CSV: Expected = &[
    ("sys_id", Some("cmdb_record_id")),
    ("name", Some("name")),
    ("sys_class_name", Some("asset_type")),
    ("host_name", Some("hostname")),
    ("fqdn", Some("fqdn")),
    ("dns_domain", Some("domain")),
    ("ip_address", Some("ip_address")),
    ("mac_address", Some("mac_address")),
    ("os", Some("operating_system")),
    ("os_version", Some("os_version")),
    ("os_service_pack", None),
    ("os_address_width", Some("os_architecture")),
    ("cpu_count", Some("cpu_sockets")),
    ("cpu_core_count", Some("cpu_cores")),
    ("cpu_speed", Some("cpu_speed_mhz")),
    ("cpu_type", Some("cpu_model")),
    ("cpu_manufacturer", None),
    ("ram", Some("memory_gb")),
    ("disk_space", Some("storage_gb")),
    ("virtual", Some("is_virtual")),
    ("serial_number", Some("serial_number")),
    ("asset_tag", Some("asset_tag")),
    ("manufacturer", Some("manufacturer")),
    ("model_id", Some("model")),
    ("location", Some("location")),
    ("company", Some("business_unit")),
    ("department", Some("department")),
    ("cost_center", Some("cost_center")),
    ("classification", None),
    ("used_for", None),
    ("install_status", Some("status")),
    ("operational_status", None),
    ("owned_by", Some("business_owner")),
    ("managed_by", Some("technical_owner")),
    ("support_group", Some("support_group")),
    ("short_description", Some("description")),
    ("discovery_source", Some("discovery_source")),
    ("first_discovered", Some("first_discovered_at")),
    ("last_discovered", Some("last_discovered_at")),
    ("sys_updated_on", None),
    ("u_environment", Some("environment")),
    ("u_application", Some("application_name")),
];

const AWS: Expected = &[
    ("ExternalId", Some("external_id")),
    ("SMBiosId", Some("bios_uuid")),
    ("IPAddress", Some("ip_address")),
    ("MACAddress", Some("mac_address")),
    ("HostName", Some("hostname")),
    ("VMware.MoRefId", None),
    ("VMware.VCenterId", None),
    ("CPU.NumberOfProcessors", Some("cpu_sockets")),
    ("CPU.NumberOfCores", Some("cpu_cores")),
    ("CPU.NumberOfLogicalCores", None),
    ("OS.Name", Some("operating_system")),
    ("OS.Version", Some("os_version")),
    ("VMware.VMName", Some("name")),
    ("RAM.TotalSizeInMB", Some("memory_gb")),
    ("RAM.UsedSizeInMB.Avg", None),
    ("RAM.UsedSizeInMB.Max", None),
    ("CPU.UsagePct.Avg", Some("cpu_utilization_percent")),
    ("CPU.UsagePct.Max", None),
    ("DiskReadsPerSecondInKB.Avg", None),
    ("DiskWritesPerSecondInKB.Avg", None),
    ("DiskReadsOpsPerSecond.Avg", None),
    ("DiskWritesOpsPerSecond.Avg", None),
    ("NetworkReadsPerSecondInKB.Avg", None),
    ("NetworkWritesPerSecondInKB.Avg", None),
    ("Applications", Some("application_name")),
    ("ApplicationWave", Some("migration_wave")),
    ("Tags", None),
];

const AZURE: Expected = &[
    ("*Server name", Some("name")),
    ("IP addresses", Some("ip_address")),
    ("*Cores", Some("cpu_cores")),
    ("*Memory (In MB)", Some("memory_gb")),
    ("*OS name", Some("operating_system")),
    ("OS version", Some("os_version")),
    ("OS architecture", Some("os_architecture")),
    ("Server type", Some("is_virtual")),
    ("Hypervisor", Some("virtualization_platform")),
    (
        "CPU utilization percentage",
        Some("cpu_utilization_percent"),
    ),
    (
        "Memory utilization percentage",
        Some("memory_utilization_percent"),
    ),
    ("Network adapters", None),
    ("Network In throughput", None),
    ("Network Out throughput", None),
    ("Boot type", Some("firmware_type")),
    ("Number of disks", None),
    ("Storage in use (In GB)", Some("storage_used_gb")),
    // One column per disk: the first maps to storage_gb and adds the others.
    ("Disk 1 size (In GB)", Some("storage_gb")),
    ("Disk 1 read throughput (MB per second)", None),
    ("Disk 1 write throughput (MB per second)", None),
    ("Disk 1 read ops (operations per second)", None),
    ("Disk 1 write ops (operations per second)", None),
    ("Disk 2 size (In GB)", None),
    ("Disk 2 read throughput (MB per second)", None),
    ("Disk 2 write throughput (MB per second)", None),
    ("Disk 2 read ops (operations per second)", None),
    ("Disk 2 write ops (operations per second)", None),
    ("MAC address", Some("mac_address")),
];

const GOOGLE: Expected = &[
    ("MachineId", Some("external_id")),
    ("MachineName", Some("name")),
    ("PrimaryIPAddress", Some("ip_address")),
    ("PrimaryMACAddress", Some("mac_address")),
    ("PublicIPAddress", None),
    ("IpAddressListSemiColonDelimited", None),
    ("TotalDiskAllocatedGiB", Some("storage_gb")),
    ("TotalDiskUsedGiB", Some("storage_used_gb")),
    ("MachineTypeLabel", None),
    ("AllocatedProcessorCoreCount", Some("cpu_cores")),
    ("MemoryGiB", Some("memory_gb")),
    ("HostingLocation", Some("location")),
    ("OsType", None),
    ("OsPublisher", None),
    ("OsName", Some("operating_system")),
    ("OsVersion", Some("os_version")),
    ("MachineStatus", Some("power_state")),
    // A deployment result ("Succeeded"), not the machine's status.
    ("ProvisioningState", None),
    ("CreateDate", None),
    ("IsPhysical", Some("is_virtual")),
];

const RVTOOLS_VINFO: Expected = &[
    ("VM", Some("name")),
    ("Powerstate", Some("power_state")),
    ("Template", None),
    ("SRM Placeholder", None),
    ("Config status", None),
    ("DNS Name", Some("fqdn")),
    ("Connection state", None),
    ("Guest state", None),
    ("Heartbeat", None),
    ("Consolidation Needed", None),
    ("PowerOn", None),
    ("Creation date", None),
    ("CPUs", Some("cpu_cores")),
    ("Memory", Some("memory_gb")),
    ("NICs", None),
    ("Disks", None),
    ("Total disk capacity MiB", Some("storage_gb")),
    ("Network #1", None),
    ("Resource pool", None),
    ("Folder", None),
    ("Provisioned MiB", None),
    ("In Use MiB", Some("storage_used_gb")),
    ("Unshared MiB", None),
    ("HA Restart Priority", None),
    ("Firmware", Some("firmware_type")),
    ("HW version", None),
    ("Path", None),
    ("Annotation", Some("description")),
    ("Datacenter", Some("datacenter")),
    ("Cluster", Some("cluster")),
    ("Host", Some("virtualization_host")),
    (
        "OS according to the configuration file",
        Some("operating_system"),
    ),
    ("OS according to the VMware Tools", None),
    ("Primary IP Address", Some("ip_address")),
    ("VM ID", Some("external_id")),
    ("VM UUID", Some("vm_uuid")),
    ("SMBIOS UUID", Some("bios_uuid")),
    // The managing vCenter, not the discovering tool.
    ("VI SDK Server", None),
    ("VI SDK UUID", None),
];

const SERVICENOW_XLSX: Expected = &[
    ("Name", Some("name")),
    ("Class", Some("asset_type")),
    ("Fully qualified domain name", Some("fqdn")),
    ("IP Address", Some("ip_address")),
    ("MAC Address", Some("mac_address")),
    ("Operating System", Some("operating_system")),
    ("OS Version", Some("os_version")),
    ("CPU count", Some("cpu_sockets")),
    ("CPU core count", Some("cpu_cores")),
    ("CPU speed (MHz)", Some("cpu_speed_mhz")),
    ("RAM (MB)", Some("memory_gb")),
    ("Disk space (GB)", Some("storage_gb")),
    ("Virtual", Some("is_virtual")),
    ("Serial number", Some("serial_number")),
    ("Asset tag", Some("asset_tag")),
    ("Manufacturer", Some("manufacturer")),
    ("Model ID", Some("model")),
    ("Location", Some("location")),
    ("Cost center", Some("cost_center")),
    // ServiceNow's used_for holds Production, Development, QA ...: an
    // ambiguous header that its values confirm.
    ("Used for", Some("environment")),
    ("Install Status", Some("status")),
    ("Operational status", None),
    ("Support group", Some("support_group")),
    ("Description", Some("description")),
    ("Most recent discovery", Some("last_discovered_at")),
    ("Updated", None),
];

const GERMAN: Expected = &[
    ("Servername", Some("name")),
    ("IP-Adresse", Some("ip_address")),
    ("Betriebssystem", Some("operating_system")),
    ("RAM (GB)", Some("memory_gb")),
    ("CPU Kerne", Some("cpu_cores")),
    ("Speicher (GB)", Some("storage_gb")),
    ("Umgebung", Some("environment")),
    ("Standort", Some("location")),
    ("Verantwortlich", Some("business_owner")),
    ("Anwendung", Some("application_name")),
    ("Kosten/Monat (€)", Some("current_monthly_cost")),
    ("Bemerkung", None),
];

const FRENCH: Expected = &[
    ("Nom du serveur", Some("name")),
    ("Adresse IP", Some("ip_address")),
    ("Adresse MAC", Some("mac_address")),
    ("Système d'exploitation", Some("operating_system")),
    ("Version OS", Some("os_version")),
    ("Mémoire (Go)", Some("memory_gb")),
    ("Cœurs", Some("cpu_cores")),
    ("Stockage (Go)", Some("storage_gb")),
    ("Environnement", Some("environment")),
    ("Emplacement", Some("location")),
    ("Propriétaire", Some("business_owner")),
    ("Application", Some("application_name")),
    ("Coût mensuel", Some("current_monthly_cost")),
    ("Commentaire", None),
];

const SPANISH: Expected = &[
    ("Nombre del servidor", Some("name")),
    ("Dirección IP", Some("ip_address")),
    ("Sistema operativo", Some("operating_system")),
    ("Memoria (GB)", Some("memory_gb")),
    ("Núcleos", Some("cpu_cores")),
    ("Disco (GB)", Some("storage_gb")),
    ("Entorno", Some("environment")),
    ("Ubicación", Some("location")),
    ("Propietario", Some("business_owner")),
    ("Aplicación", Some("application_name")),
    ("Centro de coste", Some("cost_center")),
];

const DUTCH: Expected = &[
    ("Servernaam", Some("name")),
    ("IP-adres", Some("ip_address")),
    ("Besturingssysteem", Some("operating_system")),
    ("Geheugen (GB)", Some("memory_gb")),
    ("Kernen", Some("cpu_cores")),
    ("Opslag", Some("storage_gb")),
    ("Omgeving", Some("environment")),
    ("Locatie", Some("location")),
    ("Eigenaar", Some("business_owner")),
    ("Applicatie", Some("application_name")),
];

const PORTUGUESE: Expected = &[
    ("Nome do servidor", Some("name")),
    ("Endereço IP", Some("ip_address")),
    ("Sistema operacional", Some("operating_system")),
    ("Memória (GB)", Some("memory_gb")),
    ("Núcleos", Some("cpu_cores")),
    ("Armazenamento", Some("storage_gb")),
    ("Ambiente", Some("environment")),
    ("Localização", Some("location")),
    ("Proprietário", Some("business_owner")),
    ("Aplicação", Some("application_name")),
];

const HANDMADE: Expected = &[
    ("Server Name", Some("name")),
    ("IP Addr", Some("ip_address")),
    ("O/S", Some("operating_system")),
    ("RAM GB", Some("memory_gb")),
    ("vCPU", Some("cpu_cores")),
    ("Env", Some("environment")),
    ("App", Some("application_name")),
    ("Tier", Some("criticality")),
    ("DC", Some("datacenter")),
    ("6R", Some("six_r_strategy")),
    ("Wave", Some("migration_wave")),
    ("CPU %", Some("cpu_utilization_percent")),
    ("Notes", None),
];

/// A mapping row of `--json` output of `intake mappings`.
fn mappings(work: &Work) -> Vec<Value> {
    let out = work.run_ok(&["mappings", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["mappings"].as_array().unwrap().clone()
}

/// Checks one table's mappings against the expectation; returns
/// (expected fields found, expected fields, approved, approved right).
fn score(
    rows: &[Value],
    file: &str,
    sheet: Option<&str>,
    expected: Expected,
) -> (usize, usize, usize, usize, Vec<String>) {
    let rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["file"].as_str().unwrap().ends_with(file) && r["sheet"].as_str() == sheet)
        .collect();
    assert!(!rows.is_empty(), "no mappings for {file} {sheet:?}");
    let (mut found, mut wanted, mut approved, mut right) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for (source, field) in expected {
        let row = rows
            .iter()
            .find(|r| r["source_field"] == *source)
            .unwrap_or_else(|| panic!("{file}: no mapping row for '{source}'"));
        let target = row["target_field"].as_str();
        let is_approved = row["status"] == "approved";
        if let Some(field) = field {
            wanted += 1;
            if target == Some(*field) && is_approved {
                found += 1;
            } else {
                misses.push(format!(
                    "{file}: '{source}' → {target:?} ({}, {}), want {field}",
                    row["status"], row["confidence_score"]
                ));
            }
        }
        if is_approved && target.is_some() {
            approved += 1;
            if target == *field {
                right += 1;
            } else {
                misses.push(format!(
                    "{file}: '{source}' approved as {target:?}, want {field:?}"
                ));
            }
        }
    }
    (found, wanted, approved, right, misses)
}

#[test]
fn every_published_and_hand_made_format_maps_to_the_right_fields() {
    let work = Work::new();
    let files: Vec<String> = [
        sample("servicenow_cmdb_ci_server.csv"),
        sample("aws_migration_hub_import.csv"),
        sample("azure_migrate_import.csv"),
        sample("google_migration_center_vminfo.csv"),
        sample("handmade_semicolon_cp1252.csv"),
        sample("RVTools_export_all.xlsx"),
        sample("servicenow_cmdb_ci_server_export.xlsx"),
        fixture("mapping/french_headers_semicolon.csv"),
        fixture("mapping/spanish_headers.csv"),
        fixture("mapping/dutch_headers.csv"),
        fixture("mapping/portuguese_headers.csv"),
        fixture("mapping/handmade_abbreviations.csv"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, json) = work.import_json(&args);
    assert_eq!(code, 0, "{json}");
    assert!(json["mapping"]["approved"].as_u64().unwrap() > 100);
    let rows = mappings(&work);
    let mut totals = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for (file, sheet, expected) in [
        ("servicenow_cmdb_ci_server.csv", None, SERVICENOW_CSV),
        ("aws_migration_hub_import.csv", None, AWS),
        ("azure_migrate_import.csv", None, AZURE),
        ("google_migration_center_vminfo.csv", None, GOOGLE),
        ("handmade_semicolon_cp1252.csv", None, GERMAN),
        ("RVTools_export_all.xlsx", Some("vInfo"), RVTOOLS_VINFO),
        (
            "servicenow_cmdb_ci_server_export.xlsx",
            Some("Page 1"),
            SERVICENOW_XLSX,
        ),
        ("french_headers_semicolon.csv", None, FRENCH),
        ("spanish_headers.csv", None, SPANISH),
        ("dutch_headers.csv", None, DUTCH),
        ("portuguese_headers.csv", None, PORTUGUESE),
        ("handmade_abbreviations.csv", None, HANDMADE),
    ] {
        let (found, wanted, approved, right, mut m) = score(&rows, file, sheet, expected);
        eprintln!("{file}: {found}/{wanted} fields mapped and approved, {right}/{approved} approvals right");
        totals = (
            totals.0 + found,
            totals.1 + wanted,
            totals.2 + approved,
            totals.3 + right,
        );
        misses.append(&mut m);
    }
    eprintln!(
        "all: {}/{} expected fields approved to the right field; {}/{} approved mappings right ({:.1}%)",
        totals.0,
        totals.1,
        totals.3,
        totals.2,
        100.0 * totals.3 as f64 / totals.2 as f64
    );
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

#[test]
fn units_and_layout_quirks_become_transformation_rules() {
    let work = Work::new();
    let files = [
        sample("servicenow_cmdb_ci_server.csv"),
        sample("RVTools_export_all.xlsx"),
        sample("aws_migration_hub_import.csv"),
        sample("google_migration_center_vminfo.csv"),
        sample("azure_migrate_import.csv"),
    ];
    let args: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let (code, _) = work.import_json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0);
    let conn = work.conn();
    let rules = |source: &str, file: &str| -> Value {
        let text: String = conn
            .query_row(
                "SELECT m.transformation_rules FROM import_field_mappings m JOIN data_imports d ON d.id = m.data_import_id
                 WHERE m.source_field = ?1 AND d.filename LIKE ?2 AND coalesce(d.sheet_name, '') IN ('', 'vInfo')",
                [source, &format!("%{file}")],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(
        rules("ram", "servicenow_cmdb_ci_server.csv")["from_unit"],
        "MB"
    );
    assert_eq!(
        rules("disk_space", "servicenow_cmdb_ci_server.csv")["from_unit"],
        "GB"
    );
    assert_eq!(
        rules("cpu_core_count", "servicenow_cmdb_ci_server.csv")["multiply_by"],
        "cpu_count"
    );
    assert_eq!(
        rules("Memory", "RVTools_export_all.xlsx")["from_unit"],
        "MiB"
    );
    assert_eq!(
        rules("Total disk capacity MiB", "RVTools_export_all.xlsx")["from_unit"],
        "MiB"
    );
    assert_eq!(
        rules("RAM.TotalSizeInMB", "aws_migration_hub_import.csv")["from_unit"],
        "MB"
    );
    assert_eq!(
        rules("RAM.TotalSizeInMB", "aws_migration_hub_import.csv")["flag_below"],
        256
    );
    assert_eq!(
        rules("MemoryGiB", "google_migration_center_vminfo.csv")["from_unit"],
        "GiB"
    );
    assert_eq!(
        rules("IsPhysical", "google_migration_center_vminfo.csv")["invert"],
        true
    );
    assert_eq!(
        rules("*Memory (In MB)", "azure_migrate_import.csv")["from_unit"],
        "MB"
    );
    assert_eq!(
        rules("IP addresses", "azure_migrate_import.csv")["list"],
        "first_is_primary"
    );
    assert_eq!(
        rules("CPU utilization percentage", "azure_migrate_import.csv")["unit"],
        "percent"
    );
    // The evidence is kept in words.
    let evidence: String = conn
        .query_row(
            "SELECT evidence FROM import_field_mappings WHERE source_field = 'ram'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        evidence.contains("ServiceNow") || evidence.contains("header"),
        "{evidence}"
    );
}

#[test]
fn content_maps_unnamed_columns_and_contradicting_values_lower_the_score() {
    let work = Work::new();
    let (code, _) = work.import_json(&[
        fixture("mapping/content_only_unnamed_columns.csv")
            .to_str()
            .unwrap(),
        fixture("mapping/contradicting_values.csv")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 0);
    let rows = mappings(&work);
    let find = |file: &str, source: &str| -> &Value {
        rows.iter()
            .find(|r| r["file"].as_str().unwrap().ends_with(file) && r["source_field"] == source)
            .unwrap()
    };
    for (source, field) in [
        ("field2", "ip_address"),
        ("field3", "mac_address"),
        ("field4", "fqdn"),
        ("field5", "operating_system"),
    ] {
        let row = find("content_only_unnamed_columns.csv", source);
        assert_eq!(row["target_field"], field, "{row}");
        assert_eq!(row["match_type"], "content");
        assert_eq!(
            row["status"], "suggested",
            "content alone is never approved without review: {row}"
        );
        assert!(row["evidence"][0].as_str().unwrap().contains('%'));
    }
    // "IP Address" full of host names and "MAC Address" full of IPs are not approved.
    for source in ["IP Address", "MAC Address"] {
        let row = find("contradicting_values.csv", source);
        assert_ne!(row["status"], "approved", "{row}");
        assert!(row["confidence_score"].as_f64().unwrap() < 0.85, "{row}");
        let evidence = row["evidence"].to_string();
        assert!(evidence.contains("contradict"), "{evidence}");
    }
    assert_eq!(
        find("contradicting_values.csv", "Server Name")["status"],
        "approved"
    );
}

#[test]
fn rules_file_sets_and_ignores_columns_and_bad_rules_name_the_line() {
    let work = Work::new();
    let rules = fixture("mapping/rules_for_handmade.toml")
        .display()
        .to_string();
    let (code, _) = work.import_json(&[
        fixture("mapping/handmade_abbreviations.csv")
            .to_str()
            .unwrap(),
        "--rules",
        &rules,
    ]);
    assert_eq!(code, 0);
    let rows = mappings(&work);
    let find = |source: &str| rows.iter().find(|r| r["source_field"] == source).unwrap();
    assert_eq!(find("Notes")["status"], "ignored");
    assert_eq!(find("Notes")["match_type"], "rule");
    assert_eq!(find("Tier")["target_field"], "criticality");
    assert_eq!(find("Tier")["match_type"], "rule");
    assert_eq!(find("Tier")["status"], "approved");
    assert_eq!(find("DC")["confidence_score"], 1.0);

    let bad = work.write(
        "bad.toml",
        "[columns]\n\"Server Name\" = \"name\"\n\"RAM GB\" = \"memory\"\n",
    );
    let out = work
        .intake()
        .args([
            "import",
            fixture("mapping/handmade_abbreviations.csv")
                .to_str()
                .unwrap(),
            "--force",
            "--rules",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("'memory'"),
        "{stderr}"
    );
    let unknown_key = work.write("unknown_key.toml", "auto_approve = 0.9\n");
    let out = work
        .intake()
        .args([
            "import",
            fixture("mapping/handmade_abbreviations.csv")
                .to_str()
                .unwrap(),
            "--rules",
            unknown_key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn approvals_are_remembered_for_the_client_and_exported_as_rules() {
    let work = Work::new();
    let first = work.write(
        "first.csv",
        "Kiste,Adresse\nweb01,10.0.0.1\nweb02,10.0.0.2\nweb03,10.0.0.3\n",
    );
    let (code, _) = work.import_json(&[first.to_str().unwrap(), "--client", "Acme"]);
    assert_eq!(code, 0);
    let kiste = mappings(&work)
        .into_iter()
        .find(|r| r["source_field"] == "Kiste")
        .unwrap();
    assert_ne!(
        kiste["status"], "approved",
        "an unknown header is not approved: {kiste}"
    );

    work.run_ok(&["mappings", "set", "Kiste", "name", "--user", "alice"]);
    let rows = mappings(&work);
    let kiste = rows.iter().find(|r| r["source_field"] == "Kiste").unwrap();
    assert_eq!(kiste["status"], "approved");
    assert_eq!(kiste["match_type"], "manual");
    assert_eq!(kiste["approved_by"], "alice");
    assert!(kiste["approved_at"].as_str().is_some());
    let conn = work.conn();
    let field_mappings: String = conn
        .query_row("SELECT field_mappings FROM discovery_flows", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        field_mappings.contains("\"Kiste\":\"name\""),
        "{field_mappings}"
    );

    // The next export of the same client learns it.
    let second = work.write(
        "second.csv",
        "Kiste,Adresse\ndb01,10.0.1.1\ndb02,10.0.1.2\ndb03,10.0.1.3\n",
    );
    let (code, _) = work.import_json(&[second.to_str().unwrap(), "--client", "Acme"]);
    assert_eq!(code, 0);
    let learned = mappings(&work)
        .into_iter()
        .find(|r| r["source_field"] == "Kiste")
        .unwrap();
    assert_eq!(learned["match_type"], "learned");
    assert_eq!(learned["target_field"], "name");
    assert_eq!(learned["status"], "approved");

    // Another client does not see Acme's decisions.
    let (code, _) = work.import_json(&[second.to_str().unwrap(), "--client", "Globex", "--force"]);
    assert_eq!(code, 0);
    let other = mappings(&work)
        .into_iter()
        .find(|r| r["source_field"] == "Kiste")
        .unwrap();
    assert_ne!(other["match_type"], "learned");

    // Export: a rules file that a later import accepts.
    let rules = work.path("acme.toml");
    let out = work
        .intake()
        .args([
            "mappings",
            "export",
            "--client",
            "Acme",
            "--output",
            rules.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("\"Kiste\" = \"name\""), "{text}");
    let (code, _) = work.import_json(&[
        first.to_str().unwrap(),
        "--client",
        "Globex",
        "--force",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let ruled = mappings(&work)
        .into_iter()
        .find(|r| r["source_field"] == "Kiste")
        .unwrap();
    assert_eq!(ruled["match_type"], "rule");
}

#[test]
fn review_commands_approve_reject_and_keep_one_column_per_field() {
    let work = Work::new();
    let (code, json) = work.import_json(&[fixture("mapping/handmade_abbreviations.csv")
        .to_str()
        .unwrap()]);
    assert_eq!(code, 0);
    let flow = json["master_flow_id"].as_str().unwrap().to_string();
    let rows = mappings(&work);
    let tier = rows.iter().find(|r| r["source_field"] == "Tier").unwrap();
    assert_eq!(tier["target_field"], "criticality");
    assert_eq!(
        tier["approved_by"],
        Value::Null,
        "approved by the threshold, not a person"
    );

    let out = work
        .intake()
        .args(["mappings", "approve", "Tier", "--flow", &flow[..8]])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = work
        .intake()
        .args(["mappings", "reject", "App", "application_name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Setting a field held by another column takes it from that column.
    let out = work
        .intake()
        .args(["mappings", "set", "Server Name", "hostname"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = work
        .intake()
        .args(["mappings", "set", "Env", "hostname"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rows = mappings(&work);
    let find = |s: &str| {
        rows.iter()
            .find(|r| r["source_field"] == s)
            .unwrap()
            .clone()
    };
    assert_eq!(find("Tier")["status"], "approved");
    assert!(find("Tier")["approved_by"].as_str().is_some());
    assert_eq!(find("App")["status"], "rejected");
    assert_eq!(find("Env")["target_field"], "hostname");
    assert_eq!(find("Env")["status"], "approved");
    assert_eq!(
        find("Server Name")["status"],
        "suggested",
        "hostname moved to Env"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r["target_field"] == "hostname" && r["status"] == "approved")
            .count(),
        1
    );
    // Unknown column, field or flow: exit 3 with the nearest names, never a
    // list of every column.
    let out = work
        .intake()
        .args(["mappings", "approve", "Server Nme"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did you mean 'Server Name'"), "{said}");
    let out = work
        .intake()
        .args(["mappings", "approve", "Zzyzx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("`intake mappings` lists the columns"),
        "{said}"
    );
    assert!(!said.contains("Tier"), "{said}");
    let out = work
        .intake()
        .args(["mappings", "set", "Env", "enviroment"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did you mean 'environment'"), "{said}");
    let out = work
        .intake()
        .args(["mappings", "--flow", "zzzz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // The table shows sample values.
    let out = work.intake().args(["mappings"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("web-01") && table.contains("criticality"),
        "{table}"
    );
}

#[test]
fn the_phase_is_recorded_in_the_flow_and_the_threshold_is_configurable() {
    let work = Work::new();
    let (code, json) = work.import_json(&[
        sample("azure_migrate_import.csv").to_str().unwrap(),
        "--auto-approve",
        "0.99",
    ]);
    assert_eq!(code, 0);
    let strict_approved = json["mapping"]["approved"].as_u64().unwrap();
    let conn = work.conn();
    let (done, phase, progress, mappings_json): (i64, String, f64, Option<String>) = conn
        .query_row(
            "SELECT attribute_mapping_completed, current_phase, progress_percentage, field_mappings FROM discovery_flows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((done, phase.as_str()), (1, "completed"));
    assert!((progress - 100.0).abs() < 0.01, "{progress}");
    assert!(mappings_json.is_some());
    let progression: String = conn
        .query_row(
            "SELECT phase_progression FROM crewai_flow_state_extensions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let progression: Value = serde_json::from_str(&progression).unwrap();
    assert_eq!(progression["attribute_mapping"]["status"], "completed");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM import_field_mappings"),
        28
    );

    let default = Work::new();
    let (_, json) = default.import_json(&[sample("azure_migrate_import.csv").to_str().unwrap()]);
    assert!(json["mapping"]["approved"].as_u64().unwrap() > strict_approved);
    // The summary counts the mappings per file; -v adds every column's.
    let summary = |args: &[&str]| {
        let out = Work::new()
            .intake()
            .arg("import")
            .arg(sample("azure_migrate_import.csv"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let short = summary(&[]);
    assert!(
        short.contains("to review: `intake mappings --status review`"),
        "{short}"
    );
    assert!(!short.contains("*Memory (In MB)"), "{short}");
    let full = summary(&["-v"]);
    assert!(
        full.contains("*Memory (In MB)") && full.contains("memory_gb") && full.contains("mapping:"),
        "{full}"
    );
}

#[test]
fn a_flow_left_between_import_and_mapping_is_mapped_by_the_next_run() {
    let work = Work::new();
    let file = sample("azure_migrate_import.csv").display().to_string();
    let (code, _) = work.import_json(&[&file]);
    assert_eq!(code, 0);
    // What a run killed after staging leaves: rows, no mappings, the phase undone.
    let conn = work.conn();
    conn.execute_batch(
        "DELETE FROM import_field_mappings;
         UPDATE discovery_flows SET attribute_mapping_completed = 0, data_cleansing_completed = 0,
                inventory_completed = 0, dependencies_completed = 0, tech_debt_completed = 0,
                status = 'running', current_phase = 'attribute_mapping',
                phases_completed = '[\"data_import\"]';",
    )
    .unwrap();
    drop(conn);
    let (code, json) = work.import_json(&[&file]);
    assert_eq!(code, 0);
    assert_eq!(json["resumed_flows"].as_array().unwrap().len(), 1, "{json}");
    let conn = work.conn();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM import_field_mappings"),
        28
    );
    assert_eq!(
        count(
            &conn,
            "SELECT attribute_mapping_completed FROM discovery_flows"
        ),
        1
    );
}

/// Every asset as its column values, without updated_at (a re-run touches it).
fn assets_by_id(work: &Work) -> std::collections::BTreeMap<String, Vec<rusqlite::types::Value>> {
    let conn = work.conn();
    let mut stmt = conn.prepare("SELECT * FROM assets").unwrap();
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let rows = stmt
        .query_map([], |r| {
            let values: Vec<rusqlite::types::Value> = (0..columns.len())
                .filter(|&i| columns[i] != "updated_at")
                .map(|i| r.get(i))
                .collect::<rusqlite::Result<_>>()?;
            Ok((r.get::<_, String>(0)?, values))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows
}

/// (sheet, column) → (target, status) of every mapping.
fn mapping_states(work: &Work) -> Vec<(String, String, Value, Value)> {
    mappings(work)
        .into_iter()
        .map(|m| {
            (
                m["sheet"].as_str().unwrap_or("").to_string(),
                m["source_field"].as_str().unwrap().to_string(),
                m["target_field"].clone(),
                m["status"].clone(),
            )
        })
        .collect()
}

/// RVTools' "Host" is the VM's host on vInfo and the host itself on vHost:
/// a decision on it must name where it applies, shows its effect first,
/// and is undone exactly.
#[test]
fn a_column_with_several_roles_is_decided_where_the_user_points_and_undone_exactly() {
    let work = Work::new();
    let rvtools = sample("RVTools_export_all.xlsx");
    let (code, json) = work.import_json(&[rvtools.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let mappings_before = mapping_states(&work);
    let assets_before = assets_by_id(&work);

    // Unscoped: refused, naming the imports and their roles; nothing changes.
    let out = work
        .intake()
        .args(["mappings", "set", "Host", "name"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("[vInfo]") && said.contains("[vHost]"),
        "{said}"
    );
    assert!(said.contains("--sheet") && said.contains("--all"), "{said}");
    assert_eq!(mapping_states(&work), mappings_before);

    // A dry run says what would change, and changes nothing.
    let out = work.run_ok(&[
        "mappings",
        "set",
        "Host",
        "name",
        "--sheet",
        "vInfo",
        "--dry-run",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("'VM' gives up name to 'Host'"), "{said}");
    assert!(
        said.contains("'Host' → name (approved), was virtualization_host"),
        "{said}"
    );
    assert!(said.contains("33 of 33 rows change: name (33)"), "{said}");
    assert!(said.contains("dry run"), "{said}");
    assert_eq!(mapping_states(&work), mappings_before);
    assert_eq!(assets_by_id(&work), assets_before);
    // --json gives the same plan to a pipeline.
    let out = work.run_ok(&[
        "mappings",
        "set",
        "Host",
        "name",
        "--sheet",
        "vInfo",
        "--dry-run",
        "--json",
    ]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["changes"].as_array().unwrap().len(), 2, "{plan}");
    assert_eq!(plan["values"][0]["rows_changed"], 33, "{plan}");

    // Applied: only vInfo's mappings change, and its VMs take host names.
    work.run_ok(&["mappings", "set", "Host", "name", "--sheet", "vInfo"]);
    let after = mapping_states(&work);
    let changed: Vec<_> = after
        .iter()
        .zip(&mappings_before)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| (a.0.clone(), a.1.clone()))
        .collect();
    assert_eq!(
        changed,
        vec![
            ("vInfo".to_string(), "VM".to_string()),
            ("vInfo".to_string(), "Host".to_string())
        ]
    );
    let conn = work.conn();
    // The 33 VMs now carry their host's name (the mistake the preview showed).
    assert_eq!(
        count(&conn, "SELECT count(*) FROM assets WHERE name LIKE 'esx%'"),
        assets_before.len() as i64
    );
    drop(conn);
    assert_ne!(assets_by_id(&work), assets_before);

    // Undone: the mappings and every asset value are what they were.
    let out = work.run_ok(&["mappings", "undo"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("undone"), "{said}");
    assert_eq!(mapping_states(&work), mappings_before);
    assert_eq!(assets_by_id(&work), assets_before);
    // Nothing more to undo.
    let out = work.intake().args(["mappings", "undo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// The rules export never puts two columns of one file on one field: the
/// later decision is kept, the other is written as a comment saying why.
#[test]
fn the_rules_export_never_maps_two_columns_of_a_file_to_one_field() {
    let work = Work::new();
    let header = "Server Name,Alias,RAM GB\n";
    let a = work.write("site_a.csv", &format!("{header}web01,www,16\n"));
    let b = work.write("site_b.csv", &format!("{header}db01,sql,32\n"));
    let (code, json) = work.import_json(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    // Alias is the name in one file; then Server Name is confirmed in the other.
    work.run_ok(&["mappings", "set", "Alias", "name", "--file", "site_a.csv"]);
    work.run_ok(&[
        "mappings",
        "approve",
        "Server Name",
        "name",
        "--file",
        "site_b.csv",
    ]);
    let out = work.run_ok(&["mappings", "export"]);
    let rules = String::from_utf8_lossy(&out.stdout);
    let live: Vec<&str> = rules
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("= \"name\""))
        .collect();
    assert_eq!(live, vec!["\"Server Name\" = \"name\""], "{rules}");
    assert!(rules.contains("# \"Alias\" = \"name\" left out"), "{rules}");
}

/// `intake mappings --status` and `--file` list what a person works on; a
/// column mapped to nothing is "unmapped", never "suggested".
#[test]
fn the_mapping_table_filters_by_state_and_file() {
    let work = Work::new();
    let a = work.write("site_a.csv", "Server Name,Zzq Notes,RAM GB\nweb01,x,16\n");
    let b = work.write("site_b.csv", "Hostname,Colour\ndb01,blue\n");
    let (code, json) = work.import_json(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let rows = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["mappings", "--json"];
        all.extend_from_slice(args);
        let out = work.run_ok(&all);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["mappings"].as_array().unwrap().clone()
    };
    let unmapped = rows(&["--status", "unmapped"]);
    assert!(!unmapped.is_empty());
    assert!(unmapped
        .iter()
        .all(|r| r["state"] == "unmapped" && r["target_field"].is_null()));
    let only_b = rows(&["--file", "site_b.csv"]);
    assert!(!only_b.is_empty());
    assert!(only_b
        .iter()
        .all(|r| r["file"].as_str().unwrap().ends_with("site_b.csv")));
    let out = work.run_ok(&["mappings", "--status", "unmapped"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("unmapped") && !table.contains("suggested"),
        "{table}"
    );
    let out = work
        .intake()
        .args(["mappings", "--status", "maybe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Azure Migrate's import template and many scripts write one column per
/// disk ("Disk 1 size (In GB)", "Disk 2 size (In GB)" ...): the machine's
/// storage is their sum, and a value that is not a size is reported on its
/// own column.
#[test]
fn disks_written_one_column_each_are_summed_into_storage() {
    let work = Work::new();
    let file = work.write(
        "azure_migrate_import_template.csv",
        "Server name,Cores,Memory (In MB),OS name,Number of disks,Disk 1 size (In GB),Disk 2 size (In GB),Disk 3 size (In GB)\n\
         web01,4,8192,Windows Server 2019,2,128,256,\n\
         db01,8,32768,Ubuntu 22.04,3,100,\"1,024\",lots\n",
    );
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let conn = work.conn();
    let storage = |name: &str| -> f64 {
        conn.query_row(
            "SELECT storage_gb FROM assets WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(storage("web01"), 384.0);
    assert_eq!(storage("db01"), 1124.0);
    let problem = count(
        &conn,
        "SELECT count(*) FROM raw_import_records, json_each(validation_errors) e
         WHERE e.value ->> 'column' = 'Disk 3 size (In GB)' AND e.value ->> 'raw_value' = 'lots'",
    );
    assert_eq!(problem, 1);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM import_field_mappings WHERE target_field = 'storage_gb' AND status = 'approved'"
        ),
        1
    );
}
