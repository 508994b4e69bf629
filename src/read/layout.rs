//! Known export layouts, recognised by their sheet and column names: RVTools,
//! ServiceNow (element names or labels), the AWS Migration Hub import template,
//! the Azure Migrate import CSV and Google Migration Center's vmInfo. A layout
//! names the source system and says what each sheet describes: in an RVTools
//! workbook only vInfo yields assets (one per VM); the other sheets are staged as
//! supplementary data of the same VMs and hosts and never create assets.
//! Relationship exports (ServiceNow's cmdb_rel_ci: parent, type, child; or a plain
//! source, target, type list) are recognised by their columns too: their rows are
//! edges for the dependencies phase, never assets, and are neither mapped nor cleansed.

use serde::{Deserialize, Serialize};

/// A recognised export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Rvtools,
    Servicenow,
    AwsMigrationHub,
    AzureMigrate,
    GoogleMigrationCenter,
    /// ServiceNow cmdb_rel_ci: parent, type, child.
    ServicenowRelationships,
    /// A hand-made relationship list: source, target and optionally type.
    RelationshipList,
}

impl Layout {
    /// The value recorded in data_imports.source_system.
    pub fn source_system(self) -> &'static str {
        match self {
            Layout::Rvtools => "rvtools",
            Layout::Servicenow => "servicenow",
            Layout::AwsMigrationHub => "aws_migration_hub",
            Layout::AzureMigrate => "azure_migrate",
            Layout::GoogleMigrationCenter => "google_migration_center",
            Layout::ServicenowRelationships => "servicenow",
            Layout::RelationshipList => "relationship_list",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Layout::Rvtools => "RVTools",
            Layout::Servicenow => "ServiceNow CMDB",
            Layout::AwsMigrationHub => "AWS Migration Hub import",
            Layout::AzureMigrate => "Azure Migrate import",
            Layout::GoogleMigrationCenter => "Google Migration Center vmInfo",
            Layout::ServicenowRelationships => "ServiceNow cmdb_rel_ci relationships",
            Layout::RelationshipList => "Relationship list",
        }
    }

    /// The columns that name the two ends and the type of a relationship export,
    /// in the order they are looked for; None for a layout of machines.
    pub fn relationship_columns(self) -> Option<RelationshipColumns> {
        match self {
            Layout::ServicenowRelationships => Some(RelationshipColumns {
                from: &["parent", "parentname", "parentsysid", "parentdisplayvalue"],
                to: &["child", "childname", "childsysid", "childdisplayvalue"],
                kind: &["type", "typename", "relationshiptype", "typedisplayvalue"],
            }),
            Layout::RelationshipList => Some(RelationshipColumns {
                from: RELATION_SOURCES,
                to: RELATION_TARGETS,
                kind: RELATION_TYPES,
            }),
            _ => None,
        }
    }
}

/// Whether a table's rows become assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Each row is a machine: becomes (or updates) an asset.
    Primary,
    /// Rows add detail to machines described by a primary table; never an asset.
    Supplementary,
    /// About the export itself (licences, health, source); never an asset.
    Reference,
    /// Each row is a relationship between two machines or applications.
    Relationships,
}

/// Where a relationship export keeps its two ends and its type: normalised
/// column names (see `normalise`), the first present one wins.
#[derive(Debug, Clone, Copy)]
pub struct RelationshipColumns {
    /// The end that depends on (or is the parent of) the other.
    pub from: &'static [&'static str],
    pub to: &'static [&'static str],
    pub kind: &'static [&'static str],
}

const RELATION_SOURCES: &[&str] = &[
    "source",
    "sourceasset",
    "sourcename",
    "sourcehost",
    "sourceserver",
    "from",
    "fromasset",
    "fromhost",
];
const RELATION_TARGETS: &[&str] = &[
    "target",
    "targetasset",
    "targetname",
    "targethost",
    "targetserver",
    "destination",
    "to",
    "toasset",
    "tohost",
];
const RELATION_TYPES: &[&str] = &[
    "type",
    "dependencytype",
    "relationshiptype",
    "relationship",
    "relation",
    "kind",
];

/// What a table is within its layout; stored in data_imports.read_metadata.layout.
#[derive(Debug, Clone, Serialize)]
pub struct TableRole {
    pub layout: Layout,
    pub role: Role,
    /// The kind of object one row describes (virtual_machine, esxi_host, server, ...).
    pub describes: &'static str,
    /// The columns that tie a row to its machine, strongest first.
    pub links_by: &'static [&'static str],
}

impl TableRole {
    /// One line for the summary and data_imports.description.
    pub fn describe(&self) -> String {
        let what = match self.role {
            Role::Primary => format!("one asset per {}", self.describes.replace('_', " ")),
            Role::Supplementary => format!(
                "supplementary {} data, linked by {}; creates no asset",
                self.describes.replace('_', " "),
                self.links_by.join(", ")
            ),
            Role::Reference => "reference data; creates no asset".to_string(),
            Role::Relationships => {
                "relationships between assets, for the dependencies phase; creates no asset"
                    .to_string()
            }
        };
        format!("{}: {what}", self.layout.label())
    }
}

/// Lower-case letters and digits only: "*Memory (In MB)" → "memoryinmb".
pub fn normalise(header: &str) -> String {
    let header = header
        .trim()
        .trim_end_matches("(optional)")
        .trim_end_matches("(Optional)");
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

const VM_KEYS: &[&str] = &["VM UUID", "VI SDK UUID", "VM"];

/// The RVTools sheets and what their rows describe.
const RVTOOLS_SHEETS: &[(&str, Role, &str, &[&str])] = &[
    ("vInfo", Role::Primary, "virtual_machine", VM_KEYS),
    ("vCPU", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vMemory", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vDisk", Role::Supplementary, "virtual_machine", VM_KEYS),
    (
        "vPartition",
        Role::Supplementary,
        "virtual_machine",
        VM_KEYS,
    ),
    ("vNetwork", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vCD", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vUSB", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vSnapshot", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vTools", Role::Supplementary, "virtual_machine", VM_KEYS),
    ("vFileInfo", Role::Supplementary, "virtual_machine", VM_KEYS),
    (
        "vHost",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "vHBA",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "vNIC",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "vSwitch",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "vPort",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "vSC_VMK",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "vMultiPath",
        Role::Supplementary,
        "esxi_host",
        &["Host", "VI SDK UUID"],
    ),
    (
        "dvSwitch",
        Role::Supplementary,
        "distributed_switch",
        &["Switch", "VI SDK UUID"],
    ),
    (
        "dvPort",
        Role::Supplementary,
        "distributed_switch",
        &["Switch", "VI SDK UUID"],
    ),
    (
        "vCluster",
        Role::Supplementary,
        "cluster",
        &["Name", "VI SDK UUID"],
    ),
    (
        "vRP",
        Role::Supplementary,
        "resource_pool",
        &["Resource Pool name", "VI SDK UUID"],
    ),
    (
        "vDatastore",
        Role::Supplementary,
        "datastore",
        &["Name", "VI SDK UUID"],
    ),
    ("vLicense", Role::Reference, "license", &[]),
    ("vHealth", Role::Reference, "health_check", &[]),
    ("vSource", Role::Reference, "vcenter", &[]),
    ("vMetaData", Role::Reference, "export", &[]),
];

fn has_all(columns: &[String], wanted: &[&str]) -> bool {
    wanted.iter().all(|w| columns.iter().any(|c| c == w))
}

fn count_of(columns: &[String], wanted: &[&str]) -> usize {
    wanted
        .iter()
        .filter(|w| columns.iter().any(|c| c == *w))
        .count()
}

/// Recognises one table (a CSV file or a sheet) by its header.
pub fn recognise_table(columns: &[String]) -> Option<Layout> {
    let cols: Vec<String> = columns.iter().map(|c| normalise(c)).collect();
    let raw_has = |p: &dyn Fn(&str) -> bool| columns.iter().any(|c| p(c.trim()));
    if let Some(layout) = recognise_relationships(&cols) {
        return Some(layout);
    }
    // vInfo exported on its own (RVTools can write each tab as CSV).
    if has_all(&cols, &["vm", "powerstate"])
        && count_of(
            &cols,
            &[
                "vmuuid",
                "visdkserver",
                "visdkuuid",
                "dnsname",
                "cpus",
                "memory",
            ],
        ) >= 2
    {
        return Some(Layout::Rvtools);
    }
    if raw_has(&|c| c.starts_with('*'))
        && count_of(&cols, &["servername", "cores", "memoryinmb", "osname"]) >= 3
    {
        return Some(Layout::AzureMigrate);
    }
    if count_of(
        &cols,
        &[
            "servername",
            "cores",
            "memoryinmb",
            "osname",
            "osarchitecture",
            "servertype",
            "hypervisor",
            "storageinuseingb",
        ],
    ) >= 5
    {
        return Some(Layout::AzureMigrate);
    }
    if count_of(
        &cols,
        &[
            "machineid",
            "machinename",
            "primaryipaddress",
            "primarymacaddress",
            "memorygib",
            "allocatedprocessorcorecount",
            "totaldiskallocatedgib",
            "ostype",
            "ipaddresslistsemicolondelimited",
        ],
    ) >= 3
    {
        return Some(Layout::GoogleMigrationCenter);
    }
    let dotted = raw_has(&|c| {
        let lower = c.to_ascii_lowercase();
        lower.starts_with("vmware.")
            || lower.starts_with("cpu.")
            || lower.starts_with("ram.")
            || lower.starts_with("os.")
    });
    if (dotted || cols.iter().any(|c| c == "externalid"))
        && count_of(
            &cols,
            &[
                "externalid",
                "smbiosid",
                "ipaddress",
                "macaddress",
                "hostname",
                "vmwaremorefid",
                "vmwarevcenterid",
                "cpunumberofprocessors",
                "cpunumberofcores",
                "osname",
                "osversion",
                "ramtotalsizeinmb",
                "applications",
                "applicationwave",
                "serverid",
            ],
        ) >= 3
    {
        return Some(Layout::AwsMigrationHub);
    }
    let element_names = count_of(
        &cols,
        &[
            "sysid",
            "sysclassname",
            "hostname",
            "fqdn",
            "ipaddress",
            "ram",
            "diskspace",
            "cpucount",
            "cpucorecount",
            "os",
            "osversion",
            "serialnumber",
            "operationalstatus",
            "installstatus",
            "usedfor",
            "sysupdatedon",
            "discoverysource",
            "assettag",
            "modelid",
        ],
    );
    if (cols.iter().any(|c| c == "sysid" || c == "sysclassname") && element_names >= 3)
        || element_names >= 7
    {
        return Some(Layout::Servicenow);
    }
    let labels = count_of(
        &cols,
        &[
            "rammb",
            "diskspacegb",
            "cpucount",
            "cpucorecount",
            "operatingsystem",
            "osversion",
            "class",
            "name",
            "operationalstatus",
            "installstatus",
            "serialnumber",
            "ipaddress",
            "fullyqualifieddomainname",
            "fqdn",
            "mostrecentdiscovery",
            "discoverysource",
            "assettag",
            "cputype",
            "cpuspeedmhz",
            "manufacturer",
            "modelid",
            "location",
            "usedfor",
        ],
    );
    if labels >= 5
        && cols.iter().any(|c| {
            matches!(
                c.as_str(),
                "rammb" | "diskspacegb" | "class" | "mostrecentdiscovery"
            )
        })
    {
        return Some(Layout::Servicenow);
    }
    None
}

/// A relationship export: both ends present and few other columns (a machine
/// list with a "Source" column is not one).
fn recognise_relationships(cols: &[String]) -> Option<Layout> {
    let any = |names: &[&str]| cols.iter().any(|c| names.contains(&c.as_str()));
    for layout in [Layout::ServicenowRelationships, Layout::RelationshipList] {
        let spec = layout.relationship_columns()?;
        let ends = any(spec.from) && any(spec.to);
        let limit = if layout == Layout::ServicenowRelationships {
            30
        } else {
            12
        };
        if ends && cols.len() <= limit {
            return Some(layout);
        }
    }
    None
}

/// The role of a table of a recognised layout that is not a multi-sheet workbook.
pub fn single_table_role(layout: Layout) -> TableRole {
    match layout {
        Layout::Rvtools => rvtools_role("vInfo").expect("vInfo is listed"),
        Layout::ServicenowRelationships | Layout::RelationshipList => TableRole {
            layout,
            role: Role::Relationships,
            describes: "relationship",
            links_by: &[],
        },
        other => TableRole {
            layout: other,
            role: Role::Primary,
            describes: "server",
            links_by: &[],
        },
    }
}

/// The role of an RVTools sheet, by its name (case-insensitive); None for a
/// sheet RVTools does not write.
pub fn rvtools_role(sheet: &str) -> Option<TableRole> {
    RVTOOLS_SHEETS
        .iter()
        .find(|(name, ..)| name.eq_ignore_ascii_case(sheet.trim()))
        .map(|&(_, role, describes, links_by)| TableRole {
            layout: Layout::Rvtools,
            role,
            describes,
            links_by,
        })
}

/// Recognises a workbook from its sheet names and headers: RVTools when it has
/// a vInfo sheet whose header looks like RVTools' and at least one other
/// RVTools sheet; None otherwise (each sheet is then recognised on its own).
pub fn recognise_workbook(sheets: &[(String, Vec<String>)]) -> Option<Layout> {
    let known = sheets
        .iter()
        .filter(|(name, _)| rvtools_role(name).is_some())
        .count();
    let vinfo = sheets
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("vInfo"))?;
    (recognise_table(&vinfo.1) == Some(Layout::Rvtools) && known >= 2).then_some(Layout::Rvtools)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn published_headers_are_recognised() {
        assert_eq!(
            recognise_table(&cols(&[
                "VM",
                "Powerstate",
                "Template",
                "DNS Name",
                "CPUs",
                "Memory",
                "VM UUID"
            ])),
            Some(Layout::Rvtools)
        );
        assert_eq!(
            recognise_table(&cols(&[
                "*Server name",
                "IP addresses",
                "*Cores",
                "*Memory (In MB)",
                "*OS name"
            ])),
            Some(Layout::AzureMigrate)
        );
        assert_eq!(
            recognise_table(&cols(&[
                "ExternalId",
                "IPAddress",
                "HostName",
                "CPU.NumberOfProcessors",
                "RAM.TotalSizeInMB"
            ])),
            Some(Layout::AwsMigrationHub)
        );
        assert_eq!(
            recognise_table(&cols(&[
                "MachineId",
                "MachineName",
                "PrimaryIPAddress",
                "MemoryGiB (optional)"
            ])),
            Some(Layout::GoogleMigrationCenter)
        );
        assert_eq!(
            recognise_table(&cols(&["sys_id", "name", "ip_address", "ram", "os"])),
            Some(Layout::Servicenow)
        );
        assert_eq!(
            recognise_table(&cols(&[
                "Name",
                "Class",
                "IP Address",
                "RAM (MB)",
                "Disk space (GB)",
                "Operating System"
            ])),
            Some(Layout::Servicenow)
        );
        assert_eq!(
            recognise_table(&cols(&["Server", "IP", "OS", "Owner"])),
            None
        );
    }

    #[test]
    fn rvtools_sheets_have_roles() {
        assert_eq!(rvtools_role("vinfo").unwrap().role, Role::Primary);
        assert_eq!(rvtools_role("vDisk").unwrap().role, Role::Supplementary);
        assert_eq!(rvtools_role("vHost").unwrap().describes, "esxi_host");
        assert!(rvtools_role("Sheet1").is_none());
        let sheets = vec![
            (
                "vInfo".to_string(),
                cols(&["VM", "Powerstate", "VM UUID", "CPUs"]),
            ),
            ("vDisk".to_string(), cols(&["VM", "Disk", "Capacity MiB"])),
        ];
        assert_eq!(recognise_workbook(&sheets), Some(Layout::Rvtools));
    }
}
