//! The asset field catalogue, defined once: every `assets` column a source
//! column can map to, with its kind, unit, allowed values, a description and
//! the headers real exports use for it (ServiceNow element names and labels,
//! RVTools in its MB and MiB generations, the AWS, Azure and Google import
//! templates, hand-made spellings, and German, French, Spanish, Dutch and
//! Portuguese). Mapping, cleansing, export and sync all read this table.
//!
//! An alias written with a leading `~` is weak: a word that often but not always
//! means the field ("Tier", "Status", "Memory"); it scores lower than a strong one.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

/// What a field holds; decides the content checks and the cleansing parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// A machine's name as people write it: short host name or FQDN.
    Name,
    Hostname,
    Fqdn,
    IpAddress,
    MacAddress,
    Uuid,
    Integer,
    Decimal,
    /// Memory or storage size, stored in GB.
    Size,
    Percent,
    Boolean,
    Date,
    /// One of `allowed` after normalisation.
    Enumerated,
    OperatingSystem,
    Version,
}

/// One asset field.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// The `assets` column.
    pub name: &'static str,
    pub kind: FieldKind,
    /// The unit values are stored in (GB, MHz, percent, Mbps, per month).
    pub unit: Option<&'static str>,
    /// The allowed stored values of an enumerated field.
    pub allowed: &'static [&'static str],
    pub description: &'static str,
    #[serde(skip)]
    pub aliases: &'static [&'static str],
}

macro_rules! field {
    ($name:literal, $kind:ident, $unit:expr, $allowed:expr, $desc:literal, [$($alias:literal),* $(,)?]) => {
        Field {
            name: $name,
            kind: FieldKind::$kind,
            unit: $unit,
            allowed: $allowed,
            description: $desc,
            aliases: &[$($alias),*],
        }
    };
}

/// The fields that identify a machine, strongest first; inventory matches on
/// them in this order, and a record needs one of them (or a name) to be valid.
pub const IDENTITY_KEYS: &[&str] = &[
    "cmdb_record_id",
    "external_id",
    "vm_uuid",
    "bios_uuid",
    "serial_number",
    "fqdn",
    "hostname",
    "mac_address",
    "ip_address",
];

/// What a table's rows describe, decided by the fields its columns map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Describes {
    /// Machines: a name or an identity key is mapped; each row is a server
    /// (or network or storage) asset.
    Machines,
    /// Applications: an application name is mapped and nothing that names a
    /// machine; each row is an application asset, identified by that name.
    Applications,
}

/// What rows with these mapped fields describe.
pub fn describes<'f>(fields: impl IntoIterator<Item = &'f str>) -> Describes {
    let mut application = false;
    for field in fields {
        if field == "name" || IDENTITY_KEYS.contains(&field) {
            return Describes::Machines;
        }
        application |= field == "application_name";
    }
    if application {
        Describes::Applications
    } else {
        Describes::Machines
    }
}

/// The fields an application asset carries from an application list besides
/// its name: what a row of a portfolio says about the application. A table
/// that maps only these and a name column holding no host names is an
/// application list (`map::suggest`); the dependencies phase copies them.
pub const APPLICATION_FIELDS: &[&str] = &[
    "description",
    "business_owner",
    "technical_owner",
    "department",
    "cost_center",
    "support_group",
    "criticality",
    "technology_stack",
    "business_unit",
    "data_classification",
    "environment",
    "operating_system",
    "six_r_strategy",
    "migration_wave",
    "migration_priority",
    "migration_complexity",
    "current_monthly_cost",
    "status",
];

pub const ENVIRONMENTS: &[&str] = &[
    "production",
    "staging",
    "test",
    "development",
    "disaster_recovery",
];
pub const CRITICALITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const SIX_R: &[&str] = &[
    "rehost",
    "replatform",
    "refactor",
    "rearchitect",
    "repurchase",
    "retire",
    "retain",
];
pub const ASSET_TYPES: &[&str] = &["server", "application", "database", "network", "storage"];

/// Desktops, laptops, workstations, thin clients, tablets and phones: kept in
/// the inventory but never counted, reported or assessed as servers.
pub const END_USER_DEVICE: &str = "end_user_device";

/// What a machine is, for counting and reporting: an asset type, or an
/// end-user device. The seeds' `asset_type` has no value for the latter, so
/// one is stored as asset_type `server` with `custom_attributes._device_class`
/// set to `end_user_device` (`DEVICE_CLASS_ATTRIBUTE`), locally and centrally.
pub const MACHINE_KINDS: &[&str] = &["server", "database", "network", "storage", END_USER_DEVICE];

/// The custom attribute marking an end-user device (see `MACHINE_KINDS`).
pub const DEVICE_CLASS_ATTRIBUTE: &str = "_device_class";

/// A stored asset's kind in SQL: its asset_type, or `end_user_device` when
/// its custom attributes mark it so. intake writes custom_attributes itself,
/// without spaces, and a quote inside a value is escaped: the mark is found
/// as text, without parsing every asset's JSON.
pub const KIND_SQL: &str = "CASE WHEN instr(custom_attributes, '\"_device_class\":\"end_user_device\"') > 0 THEN 'end_user_device' ELSE asset_type END";

/// A kind counted in words: "1 server", "3 end-user devices".
pub fn kind_words(kind: &str, n: u64) -> String {
    let one = match kind {
        "network" => "network device",
        "storage" => "storage device",
        "end_user_device" => "end-user device",
        "machines" => "machine",
        "applications" => "application",
        other => other,
    };
    if n == 1 {
        one.to_string()
    } else {
        format!("{one}s")
    }
}

/// Every mappable asset field.
pub static FIELDS: &[Field] = &[
    // identification
    field!(
        "name",
        Name,
        None,
        &[],
        "The machine's name as the source names it (a host name, VM name or CI name)",
        [
            "Name",
            "Server Name",
            "Servername",
            "Server",
            "VM",
            "VM Name",
            "VMware.VMName",
            "*Server name",
            "MachineName",
            "Machine Name",
            "Computer Name",
            "Computername",
            "CI Name",
            "Asset Name",
            "Device Name",
            "Display Name",
            "~Host",
            "Nom du serveur",
            "Nom",
            "Nombre del servidor",
            "Nombre",
            "Naam",
            "Servernaam",
            "Nome do servidor",
            "Nome",
            "Rechner",
            "Server Machine",
            "Nome server",
            "Nome macchina"
        ]
    ),
    field!(
        "hostname",
        Hostname,
        None,
        &[],
        "Short host name (no domain)",
        [
            "host_name",
            "HostName",
            "Host Name",
            "Hostname",
            "Host-Name",
            "Computer name (short)",
            "Rechnername",
            "Hostname kurz",
            "Nom d'hôte",
            "Nom d'hote",
            "Nombre de host",
            "Nombre de equipo",
            "Hostnaam",
            "Nome do host",
            "Nome do computador",
            "Nome host"
        ]
    ),
    field!(
        "fqdn",
        Fqdn,
        None,
        &[],
        "Fully qualified domain name",
        [
            "fqdn",
            "FQDN",
            "DNS Name",
            "DNS-Name",
            "DNS Hostname",
            "Fully qualified domain name",
            "Full DNS name",
            "DNS",
            "Nom DNS",
            "Nombre DNS",
            "DNS-naam",
            "Nome DNS"
        ]
    ),
    field!(
        "external_id",
        Text,
        None,
        &[],
        "The source system's id of the machine (not a ServiceNow sys_id)",
        [
            "ExternalId",
            "External ID",
            "VM ID",
            "VMware.MoRefId",
            "MoRef",
            "MachineId",
            "Machine ID",
            "ServerId",
            "object_id",
            "correlation_id",
            "Instance ID",
            "Resource ID",
            "Device ID",
            "Object ID"
        ]
    ),
    field!(
        "cmdb_record_id",
        Text,
        None,
        &[],
        "The CMDB's record id (ServiceNow sys_id)",
        [
            "sys_id",
            "Sys ID",
            "CMDB ID",
            "CI ID",
            "Configuration Item ID"
        ]
    ),
    field!(
        "asset_type",
        Enumerated,
        None,
        ASSET_TYPES,
        "server, application, database, network or storage (a VM is a server)",
        [
            "asset_type",
            "Asset Type",
            "sys_class_name",
            "Class",
            "CI Class",
            "CI Type",
            "Device Type",
            "~Type",
            "Typ",
            "Type d'actif",
            "Tipo",
            "Tipo de activo"
        ]
    ),
    field!(
        "description",
        Text,
        None,
        &[],
        "Free text about the machine",
        [
            "short_description",
            "Description",
            "Annotation",
            "Comment",
            "Comments",
            "Beschreibung",
            "Descripción",
            "Descrição",
            "Omschrijving",
            "Descrizione"
        ]
    ),
    field!(
        "status",
        Text,
        None,
        &[],
        "Operational or install status as the source states it",
        [
            "install_status",
            "operational_status",
            "Install Status",
            "Operational status",
            "Status",
            "State",
            // Not "ProvisioningState": a cloud resource's deployment result
            // ("Succeeded"), not the machine's status.
            "Zustand",
            "État",
            "Estado",
            "Stato"
        ]
    ),
    field!(
        "environment",
        Enumerated,
        None,
        ENVIRONMENTS,
        "production, staging, test, development or disaster_recovery",
        [
            "u_environment",
            "Environment",
            "Env",
            "~used_for",
            "~Used for",
            "~classification",
            "Stage",
            "Umgebung",
            "Environnement",
            "Entorno",
            "Ambiente",
            "Omgeving",
            "Umgebungstyp",
            "~Service level"
        ]
    ),
    field!(
        "criticality",
        Enumerated,
        None,
        CRITICALITIES,
        "low, medium, high or critical",
        [
            "Criticality",
            "Business Criticality",
            "Business criticality",
            "busines_criticality",
            "Tier",
            "~Priority class",
            "Kritikalität",
            "Kritikalitaet",
            "Criticité",
            "Criticidad",
            "Criticiteit",
            "Criticidade",
            "Criticità",
            "Criticita"
        ]
    ),
    field!(
        "discovery_source",
        Text,
        None,
        &[],
        "The tool that discovered the machine",
        [
            "discovery_source",
            "Discovery source",
            "Discovery Source",
            "~Source",
            // Not RVTools' "VI SDK Server": the vCenter that manages the VM,
            // not the tool that discovered it.
            "Quelle"
        ]
    ),
    field!(
        "first_discovered_at",
        Date,
        None,
        &[],
        "When the machine was first discovered",
        [
            "first_discovered",
            "First discovered",
            "First Seen",
            "Created",
            "sys_created_on"
        ]
    ),
    field!(
        "last_discovered_at",
        Date,
        None,
        &[],
        "When the machine was last discovered",
        [
            "last_discovered",
            "Most recent discovery",
            "Last discovered",
            "Last Seen",
            "Last seen",
            "Zuletzt gesehen",
            "Dernière découverte",
            "Last check-in",
            "Last check in",
            "Last contact",
            "Last sync"
        ]
    ),
    // infrastructure
    field!(
        "ip_address",
        IpAddress,
        None,
        &[],
        "Primary IP address (a list keeps the rest)",
        [
            "ip_address",
            "IPAddress",
            "IP Address",
            "IP Addresses",
            "IP addresses",
            "Primary IP Address",
            "PrimaryIPAddress",
            "IP Addr",
            "IP",
            "IPv4",
            "IPv4 Address",
            "IPv4 Address(es)",
            "IpAddressListSemiColonDelimited",
            "Management IP",
            "IP-Adresse",
            "IP Adresse",
            "Adresse IP",
            "Dirección IP",
            "Direccion IP",
            "IP-adres",
            "Endereço IP",
            "Endereco IP",
            "Server IP",
            "Host IP",
            "Machine IP",
            "Indirizzo IP"
        ]
    ),
    field!(
        "mac_address",
        MacAddress,
        None,
        &[],
        "Primary MAC address, lower-case colon form",
        [
            "mac_address",
            "MACAddress",
            "MacAddress",
            "MAC Address",
            "Mac Address",
            "PrimaryMACAddress",
            "MAC",
            "Network adapters MAC",
            "MAC-Adresse",
            "Adresse MAC",
            "Dirección MAC",
            "MAC-adres",
            "Endereço MAC",
            "Indirizzo MAC"
        ]
    ),
    field!(
        "domain",
        Text,
        None,
        &[],
        "DNS or Windows domain",
        [
            "dns_domain",
            "Domain",
            "DNS Domain",
            "os_domain",
            "Domäne",
            "Domaine",
            "Dominio",
            "Domein",
            "Domínio"
        ]
    ),
    field!(
        "operating_system",
        OperatingSystem,
        None,
        &[],
        "Operating system name",
        [
            "os",
            "OS",
            "O/S",
            "O.S.",
            "Operating System",
            "OS.Name",
            "*OS name",
            "OS name",
            "OsName",
            "OS Name",
            "OS according to the configuration file",
            "OS according to the VMware Tools",
            "Guest OS",
            "~OsType",
            "Betriebssystem",
            "Système d'exploitation",
            "Systeme d'exploitation",
            "Sistema operativo",
            "Besturingssysteem",
            "Sistema operacional",
            "~Platform",
            "OS Platform"
        ]
    ),
    field!(
        "os_version",
        Version,
        None,
        &[],
        "Operating system version",
        [
            "os_version",
            "OS Version",
            "OS.Version",
            "OsVersion",
            "OS version",
            "OS-Version",
            "Betriebssystemversion",
            "Version du système",
            "Version OS",
            "Versión del SO",
            "Versión SO",
            "OS-versie",
            "Versão do SO",
            "Versione SO",
            "Versione OS",
            "Versione sistema operativo"
        ]
    ),
    field!(
        "os_architecture",
        Text,
        None,
        &[],
        "x86_64, x86, arm64 ...",
        [
            "os_address_width",
            "OS architecture",
            "Architecture",
            "Architektur",
            "Arquitectura",
            "Architectuur",
            "Arquitetura",
            "Architettura"
        ]
    ),
    field!(
        "cpu_cores",
        Integer,
        None,
        &[],
        "Total CPU cores (vCPUs of a VM)",
        [
            "cpu_core_count",
            "CPU core count",
            "CPU.NumberOfCores",
            "*Cores",
            "Cores",
            "CPUs",
            "vCPU",
            "vCPUs",
            "CPU Cores",
            "# Cores",
            "Number of cores",
            "AllocatedProcessorCoreCount",
            "~CPU",
            "Num CPUs",
            "CPU Kerne",
            "Kerne",
            "Anzahl Kerne",
            "Prozessorkerne",
            "Cœurs",
            "Coeurs",
            "Nombre de cœurs",
            "Núcleos",
            "Nucleos",
            "Kernen",
            "Aantal cores",
            "Numero di core",
            "Numero core"
        ]
    ),
    field!(
        "cpu_sockets",
        Integer,
        None,
        &[],
        "Physical CPU sockets",
        [
            "cpu_count",
            "CPU count",
            "CPU.NumberOfProcessors",
            "Sockets",
            "# CPU",
            "Processors",
            "Number of processors",
            "Number of sockets",
            "Prozessoren",
            "Sockel",
            "Processeurs",
            "Procesadores",
            "Processoren",
            "Processadores",
            "Processori",
            "Numero di processori"
        ]
    ),
    field!(
        "cpu_model",
        Text,
        None,
        &[],
        "CPU model",
        [
            "cpu_type",
            "cpu_name",
            "CPU Model",
            "CPU type",
            "CPU name",
            "Processor",
            "Prozessor",
            "Processeur",
            "Procesador",
            "Processador",
            "Processore",
            "Modello CPU",
            "CPU String",
            "CPU description",
            "Processor name"
        ]
    ),
    field!(
        "cpu_speed_mhz",
        Decimal,
        Some("MHz"),
        &[],
        "CPU clock speed",
        [
            "cpu_speed",
            "CPU speed (MHz)",
            "CPU Speed",
            "CPU MHz",
            "~Speed",
            "Taktfrequenz",
            "Fréquence CPU",
            "Velocidad CPU"
        ]
    ),
    field!(
        "memory_gb",
        Size,
        Some("GB"),
        &[],
        "Memory in GB",
        [
            "ram",
            "RAM (MB)",
            "RAM",
            "RAM GB",
            "RAM (GB)",
            "RAM MB",
            "RAM.TotalSizeInMB",
            "*Memory (In MB)",
            "Memory (In MB)",
            "Memory",
            "Memory GB",
            "Memory MB",
            "Memory (GB)",
            "Memory (MB)",
            "MemoryGiB",
            "Memory GiB",
            "Size MiB",
            "# Memory",
            "Mem",
            "Mem GB",
            "Arbeitsspeicher",
            "Arbeitsspeicher (GB)",
            "Hauptspeicher",
            "RAM (Go)",
            "Mémoire",
            "Mémoire (Go)",
            "Memoria",
            "Memoria (GB)",
            "Geheugen",
            "Geheugen (GB)",
            "Memória",
            "Memória (GB)"
        ]
    ),
    field!(
        "storage_gb",
        Size,
        Some("GB"),
        &[],
        "Allocated disk capacity in GB",
        [
            "disk_space",
            "Disk space (GB)",
            "Total disk capacity MiB",
            "Total disk capacity MB",
            "TotalDiskAllocatedGiB",
            "Storage",
            "Storage GB",
            "Storage (GB)",
            "Disk",
            "Disk GB",
            "Disk (GB)",
            "Disk Size",
            "Disk Size GB",
            "Total Disk",
            "Disk capacity",
            "Capacity MiB",
            "Speicher",
            "Speicher (GB)",
            "Festplatte",
            "Plattenplatz",
            "Stockage",
            "Stockage (Go)",
            "Disque",
            "Almacenamiento",
            "Disco",
            "Disco (GB)",
            "Opslag",
            "Schijfruimte",
            "Armazenamento",
            "Spazio disco",
            "Capacità disco",
            "Archiviazione"
        ]
    ),
    field!(
        "storage_used_gb",
        Size,
        Some("GB"),
        &[],
        "Used disk space in GB",
        [
            "In Use MiB",
            "In use MiB",
            "In Use MB",
            "Storage in use (In GB)",
            "TotalDiskUsedGiB",
            "Consumed MiB",
            "Used Storage",
            "Disk used",
            "Used GB",
            "Storage used (GB)",
            "Used Capacity",
            "Belegt (GB)",
            "Espace utilisé",
            "Espacio usado",
            "Gebruikt (GB)",
            "Spazio utilizzato",
            "Spazio usato"
        ]
    ),
    field!(
        "location",
        Text,
        None,
        &[],
        "Site or city",
        [
            "location",
            "Location",
            "Site",
            "HostingLocation",
            "Standort",
            "Ort",
            "Emplacement",
            "Site géographique",
            "Ubicación",
            "Ubicacion",
            "Sede",
            "Locatie",
            "Vestiging",
            "Localização",
            "Localizacao",
            "Posizione",
            "Ubicazione"
        ]
    ),
    field!(
        "datacenter",
        Text,
        None,
        &[],
        "Data centre",
        [
            "Datacenter",
            "Data Center",
            "Datacentre",
            "DC",
            "u_datacenter",
            "Rechenzentrum",
            "Centre de données",
            "Centre de donnees",
            "Centro de datos",
            "Datacentrum",
            "Centro de dados",
            "Centro dati",
            "Centro elaborazione dati",
            "CED"
        ]
    ),
    field!(
        "rack_location",
        Text,
        None,
        &[],
        "Rack and unit",
        ["Rack", "Rack location", "Rack position", "Baie"]
    ),
    field!(
        "availability_zone",
        Text,
        None,
        &[],
        "Cloud availability zone",
        ["Availability Zone", "AZ", "Zone"]
    ),
    // hardware and virtualisation
    field!(
        "serial_number",
        Text,
        None,
        &[],
        "Hardware serial number",
        [
            "serial_number",
            "Serial number",
            "Serial Number",
            "Serial",
            "S/N",
            "SN",
            "Seriennummer",
            "Numéro de série",
            "Numero de serie",
            "Número de serie",
            "Serienummer",
            "Número de série",
            "Numero di serie",
            "Numero seriale",
            "Matricola"
        ]
    ),
    field!(
        "asset_tag",
        Text,
        None,
        &[],
        "Inventory tag",
        [
            "asset_tag",
            "Asset tag",
            "Asset Tag",
            "Inventory number",
            "Inventarnummer",
            "Numéro d'inventaire",
            "Etiqueta de activo",
            "Numero di inventario",
            "Cespite",
            "Asset number",
            "Asset No",
            "Asset No."
        ]
    ),
    field!(
        "manufacturer",
        Text,
        None,
        &[],
        "Hardware vendor",
        [
            "manufacturer",
            "vendor",
            "Manufacturer",
            "Vendor",
            "Make",
            "Hersteller",
            "Fabricant",
            "Fabricante",
            "Fabrikant",
            "Leverancier",
            "Produttore",
            "Costruttore",
            "Brand",
            "Marca"
        ]
    ),
    field!(
        "model",
        Text,
        None,
        &[],
        "Hardware model",
        [
            "model_id",
            "model_number",
            "Model",
            "Model ID",
            "Modell",
            "Modèle",
            "Modelo",
            "Hardware model"
        ]
    ),
    field!(
        "is_virtual",
        Boolean,
        None,
        &[],
        "Whether the machine is virtual",
        [
            "virtual",
            "Virtual",
            "Is Virtual",
            "IsVirtual",
            "IsPhysical",
            "Server type",
            "Physical/Virtual",
            "VM?",
            "Virtuell",
            "Virtuel",
            "Virtual?",
            "Virtuale"
        ]
    ),
    field!(
        "virtualization_platform",
        Text,
        None,
        &[],
        "Hypervisor product",
        [
            "Hypervisor",
            "Virtualization platform",
            "Virtualisation",
            "Plattform"
        ]
    ),
    field!(
        "virtualization_host",
        Text,
        None,
        &[],
        "The hypervisor host running the VM",
        [
            "ESX Host",
            "ESXi Host",
            "VMware Host",
            "Host Server",
            "Hypervisor host",
            "Physical host",
            "~Host",
            "Host fisico",
            "Virtual host",
            "Virtual host name",
            "Parent Host",
            "VM Host"
        ]
    ),
    field!(
        "cluster",
        Text,
        None,
        &[],
        "Virtualisation cluster",
        [
            "Cluster",
            "Cluster name",
            "VMware Cluster",
            "Parent Cluster"
        ]
    ),
    field!(
        "vm_uuid",
        Uuid,
        None,
        &[],
        "The VM's UUID (VMware instance UUID)",
        ["VM UUID", "vm_uuid", "Instance UUID", "VMware.VMUUID"]
    ),
    field!(
        "bios_uuid",
        Uuid,
        None,
        &[],
        "SMBIOS UUID of the machine",
        [
            "SMBIOS UUID",
            "SMBiosId",
            "BIOS UUID",
            "bios_uuid",
            "System UUID"
        ]
    ),
    field!(
        "power_state",
        Text,
        None,
        &[],
        "poweredOn, poweredOff, suspended ...",
        [
            "Powerstate",
            "Power State",
            "PowerState",
            "Power status",
            "MachineStatus",
            "Betriebszustand",
            "Stato alimentazione"
        ]
    ),
    field!(
        "firmware_type",
        Text,
        None,
        &[],
        "BIOS or UEFI",
        ["Firmware", "Firmware type", "Boot type", "Boot Type"]
    ),
    // business
    field!(
        "business_owner",
        Text,
        None,
        &[],
        "The person accountable for the machine",
        [
            "owned_by",
            "Owner",
            "Business Owner",
            "Application Owner",
            "App Owner",
            "Verantwortlich",
            "Verantwortlicher",
            "Besitzer",
            "Propriétaire",
            "Responsable",
            "Propietario",
            "Eigenaar",
            "Proprietário",
            "Responsável",
            "Proprietario",
            "Responsabile applicativo"
        ]
    ),
    field!(
        "technical_owner",
        Text,
        None,
        &[],
        "The person who runs the machine",
        [
            "managed_by",
            "assigned_to",
            "Managed by",
            "Assigned to",
            "Technical Owner",
            "Tech Owner",
            "Administrator",
            "Admin",
            "Technischer Ansprechpartner",
            "Administrateur",
            "Administrador",
            "Beheerder",
            "Referente tecnico",
            "Amministratore"
        ]
    ),
    field!(
        "department",
        Text,
        None,
        &[],
        "Owning department",
        [
            "department",
            "Department",
            "Abteilung",
            "Département",
            "Departamento",
            "Afdeling",
            "Dipartimento",
            "Reparto"
        ]
    ),
    field!(
        "cost_center",
        Text,
        None,
        &[],
        "Cost centre",
        [
            "cost_center",
            "Cost center",
            "Cost Centre",
            "Kostenstelle",
            "Centre de coût",
            "Centre de cout",
            "Centro de coste",
            "Centro de costo",
            "Kostenplaats",
            "Centro de custo",
            "Centro di costo"
        ]
    ),
    field!(
        "support_group",
        Text,
        None,
        &[],
        "Support team",
        [
            "support_group",
            "assignment_group",
            "Support group",
            "Support Team",
            "Assignment group",
            "Betriebsteam",
            "Gruppo di supporto"
        ]
    ),
    field!(
        "application_name",
        Text,
        None,
        &[],
        "The application the machine serves",
        [
            "u_application",
            "Application",
            "Applications",
            "App",
            "Application Name",
            "Business Service",
            "Service",
            "Anwendung",
            "Applikation",
            "Application métier",
            "Aplicación",
            "Aplicacion",
            "Applicatie",
            "Aplicação",
            "Aplicacao",
            "Applicazione",
            "Nome applicazione",
            "Nombre de la aplicación",
            "Nombre de aplicación",
            "Nom de l'application",
            "Anwendungsname",
            "Nome da aplicação"
        ]
    ),
    field!(
        "technology_stack",
        Text,
        None,
        &[],
        "Middleware and runtime",
        [
            "Technology",
            "Technology Stack",
            "Tech Stack",
            "Middleware",
            "Technologie",
            "Tecnologia",
            "Tecnología",
            "Tecnologia",
            "Tecnologie"
        ]
    ),
    field!(
        "business_unit",
        Text,
        None,
        &[],
        "Business unit",
        [
            "company",
            "Business Unit",
            "BU",
            "Geschäftsbereich",
            "Unité",
            "Unidad de negocio",
            "Bedrijfsonderdeel",
            "Unità di business"
        ]
    ),
    field!(
        "data_classification",
        Text,
        None,
        &[],
        "Data sensitivity",
        [
            "Data classification",
            "Data Classification",
            "Confidentiality",
            "Schutzbedarf",
            "Datenklassifizierung",
            "Classificazione dati"
        ]
    ),
    // migration planning
    field!(
        "six_r_strategy",
        Enumerated,
        None,
        SIX_R,
        "rehost, replatform, refactor, rearchitect, repurchase, retire or retain",
        [
            "6R",
            "6R Strategy",
            "6 R",
            "7R",
            "Migration Strategy",
            "Strategy",
            "Disposition",
            "Treatment",
            "Migration approach",
            "Migrationsstrategie",
            "Stratégie de migration",
            "Estrategia de migración",
            "Migratiestrategie",
            "Estratégia de migração",
            "Strategia di migrazione"
        ]
    ),
    field!(
        "migration_wave",
        Text,
        None,
        &[],
        "Planned wave",
        [
            "ApplicationWave",
            "Wave",
            "Migration Wave",
            "Move group",
            "Welle",
            "Vague",
            "Ola",
            "Golf",
            "Onda",
            "Ondata"
        ]
    ),
    field!(
        "migration_priority",
        Integer,
        None,
        &[],
        "Planned priority (1 first)",
        [
            "Migration priority",
            "Priority",
            "Priorität",
            "Priorité",
            "Prioridad",
            "Prioriteit",
            "Prioridade",
            "Priorità",
            "Priorita"
        ]
    ),
    field!(
        "migration_complexity",
        Text,
        None,
        &[],
        "Planned complexity",
        [
            "Complexity",
            "Migration complexity",
            "Komplexität",
            "Complexité",
            "Complejidad"
        ]
    ),
    field!(
        "end_of_life_date",
        Date,
        None,
        &[],
        "Hardware or OS end of life",
        [
            "End of life",
            "EOL",
            "EOL date",
            "End-of-life date",
            "Lebensende",
            "Fine vita"
        ]
    ),
    field!(
        "end_of_support_date",
        Date,
        None,
        &[],
        "End of vendor support",
        [
            "End of support",
            "EOS",
            "End of support date",
            "Supportende",
            "Fin de support",
            "Fine supporto"
        ]
    ),
    // performance
    field!(
        "cpu_utilization_percent",
        Percent,
        Some("percent"),
        &[],
        "Average CPU utilisation",
        [
            "CPU %",
            "CPU.UsagePct.Avg",
            "CPU utilization percentage",
            "CPU utilization",
            "CPU Utilization %",
            "CPU usage %",
            "CPU usage",
            "Avg CPU",
            "CPU-Auslastung",
            "CPU Auslastung",
            "Utilisation CPU",
            "Uso de CPU",
            "CPU-gebruik",
            "Uso de CPU (%)",
            "Utilizzo CPU"
        ]
    ),
    field!(
        "memory_utilization_percent",
        Percent,
        Some("percent"),
        &[],
        "Average memory utilisation",
        [
            "Memory utilization percentage",
            "Memory %",
            "Memory usage %",
            "RAM %",
            "Memory utilization",
            "RAM-Auslastung",
            "Utilisation mémoire",
            "Uso de memoria",
            "Utilizzo memoria"
        ]
    ),
    field!(
        "disk_iops",
        Decimal,
        Some("IOPS"),
        &[],
        "Disk operations per second",
        ["IOPS", "Disk IOPS", "Total IOPS"]
    ),
    field!(
        "network_throughput_mbps",
        Decimal,
        Some("Mbps"),
        &[],
        "Network throughput",
        [
            "Network throughput (Mbps)",
            "Network Mbps",
            "Bandwidth (Mbps)"
        ]
    ),
    // cost
    field!(
        "current_monthly_cost",
        Decimal,
        Some("per month"),
        &[],
        "Current cost per month",
        [
            "Monthly cost",
            "Cost per month",
            "Cost/Month",
            "Kosten/Monat",
            "Kosten pro Monat",
            "Monatliche Kosten",
            "Coût mensuel",
            "Costo mensual",
            "Coste mensual",
            "Maandelijkse kosten",
            "Kosten per maand",
            "Custo mensal",
            "~Cost",
            "~Kosten",
            "Costo mensile"
        ]
    ),
    field!(
        "estimated_cloud_cost",
        Decimal,
        Some("per month"),
        &[],
        "Estimated cloud cost per month",
        ["Estimated cloud cost", "Cloud cost estimate", "Target cost"]
    ),
];

/// A header reduced for comparison: accents folded, lower-case, units and
/// punctuation dropped ("RAM (MB)" → "ram", "IP-Adresse" → "ipadresse"), with
/// optional-marker and mandatory-star noise removed.
pub fn normalise_header(header: &str) -> String {
    tokens(header).join("")
}

/// The words of a header: camelCase and punctuation split, accents folded,
/// lower-case; unit words and "optional" dropped.
pub fn tokens(header: &str) -> Vec<String> {
    // "%" and "#" carry meaning ("CPU %" is not "CPU", "# CPU" is a count).
    let folded = deunicode::deunicode(header)
        .replace('%', " percent ")
        .replace('#', " num ");
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev: Option<char> = None;
    for c in folded.chars() {
        let boundary = match prev {
            Some(p) => c.is_ascii_uppercase() && p.is_ascii_lowercase(),
            None => false,
        };
        if (!c.is_ascii_alphanumeric() || boundary) && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        }
        prev = Some(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    // "IPAddress" splits as "ipaddress" (no lower→upper boundary): fine, it is
    // compared joined. Drop units and markers that say nothing about the field;
    // "in" only where it introduces a unit ("Memory (In MB)", not "in_service").
    let unit = |w: Option<&String>| w.is_some_and(|w| UNIT_WORDS.contains(&w.as_str()));
    let mut kept = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let before_unit = PREPOSITIONS.contains(&w.as_str()) && unit(words.get(i + 1));
        if !unit(Some(w)) && !before_unit && w != "optional" {
            kept.push(w.clone());
        }
    }
    kept
}

/// Words that introduce a unit in a header ("in GB", "en Go", "em GB").
const PREPOSITIONS: &[&str] = &["in", "en", "em"];

/// Words of a header that name a unit; they do not identify the field.
const UNIT_WORDS: &[&str] = &[
    "mb", "mib", "gb", "gib", "tb", "tib", "kb", "kib", "go", "mo", "inmb", "ingb", "eur", "usd",
    "gbp", "chf",
];

/// The unit a header states, if any ("RAM (MB)" → MB, "Memory MiB" → MiB).
pub fn header_unit(header: &str) -> Option<&'static str> {
    let folded = deunicode::deunicode(header).to_ascii_lowercase();
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for (word, unit) in [
        ("tib", "TiB"),
        ("tb", "TB"),
        ("gib", "GiB"),
        ("gb", "GB"),
        ("go", "GB"),
        ("mib", "MiB"),
        ("mb", "MB"),
        ("mo", "MB"),
        ("kib", "KiB"),
        ("kb", "KB"),
    ] {
        if words.contains(&word) {
            return Some(unit);
        }
    }
    // Glued forms: "RAM.TotalSizeInMB", "MemoryGiB", "TotalDiskAllocatedGiB".
    for (suffix, unit) in [
        ("gib", "GiB"),
        ("inmb", "MB"),
        ("ingb", "GB"),
        ("mib", "MiB"),
        ("inkb", "KB"),
    ] {
        if words.iter().any(|w| w.ends_with(suffix)) {
            return Some(unit);
        }
    }
    if header.contains('%')
        || words
            .iter()
            .any(|w| *w == "pct" || *w == "percent" || w.ends_with("pct"))
    {
        return Some("percent");
    }
    None
}

static BY_NAME: LazyLock<HashMap<&'static str, &'static Field>> =
    LazyLock::new(|| FIELDS.iter().map(|f| (f.name, f)).collect());

static INDEX_BY_NAME: LazyLock<foldhash::HashMap<&'static str, usize>> = LazyLock::new(|| {
    FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name, i))
        .collect()
});

/// The position in `FIELDS` of an `assets` column name.
pub fn field_index(name: &str) -> Option<usize> {
    INDEX_BY_NAME.get(name).copied()
}

/// The position in `FIELDS` of a field found in the catalogue, without a
/// name lookup (cleansing sets some forty fields per row).
pub fn index_of(field: &Field) -> usize {
    let offset = (field as *const Field as usize).wrapping_sub(FIELDS.as_ptr() as usize);
    let index = offset / std::mem::size_of::<Field>();
    match FIELDS.get(index) {
        Some(found) if std::ptr::eq(found, field) => index,
        // A copy made outside the catalogue: found by its name.
        _ => field_index(field.name).expect("every Field comes from the catalogue"),
    }
}

/// The fields sorted by name (the order cleansed_data is written in): each
/// field's place in that order, by index, and the index at each place.
static NAME_ORDER: LazyLock<(Vec<u16>, Vec<usize>)> = LazyLock::new(|| {
    let mut by_name: Vec<usize> = (0..FIELDS.len()).collect();
    by_name.sort_unstable_by_key(|&i| FIELDS[i].name);
    let mut rank = vec![0; FIELDS.len()];
    for (place, &index) in by_name.iter().enumerate() {
        rank[index] = place as u16;
    }
    (rank, by_name)
});

/// The place of field `index` among the fields sorted by name.
pub fn name_rank(index: usize) -> u16 {
    NAME_ORDER.0[index]
}

/// The index of the field at place `rank` among the fields sorted by name.
pub fn at_name_rank(rank: usize) -> usize {
    NAME_ORDER.1[rank]
}

/// The field of an `assets` column name.
pub fn field(name: &str) -> Option<&'static Field> {
    BY_NAME.get(name).copied()
}

/// The values a numeric field may hold, inclusive, in the unit it is stored
/// in. The minimum is what the schema allows (counts, sizes, costs and rates
/// are never negative); the maximum is more than any real machine has, so a
/// value above it is a unit or typing error (`8999999999999999` cores), not
/// data. Cleansing refuses a value outside its range; the inventory's writer
/// checks again before an INSERT.
const RANGES: &[(&str, f64, f64)] = &[
    ("cpu_cores", 0.0, 16_384.0),
    ("cpu_sockets", 0.0, 1_024.0),
    ("cpu_speed_mhz", 0.0, 100_000.0),
    // 64 TiB of memory; 1 EiB of storage.
    ("memory_gb", 0.0, 65_536.0),
    ("storage_gb", 0.0, 1_073_741_824.0),
    ("storage_used_gb", 0.0, 1_073_741_824.0),
    ("migration_priority", 0.0, 1_000_000.0),
    ("cpu_utilization_percent", 0.0, 100.0),
    ("memory_utilization_percent", 0.0, 100.0),
    ("disk_iops", 0.0, 1e9),
    ("network_throughput_mbps", 0.0, 1e8),
    ("current_monthly_cost", 0.0, 1e12),
    ("estimated_cloud_cost", 0.0, 1e12),
];

/// `RANGES` by field index, looked up once per numeric value cleansed.
static RANGE_BY_INDEX: LazyLock<Vec<Option<(f64, f64)>>> = LazyLock::new(|| {
    FIELDS
        .iter()
        .map(|f| {
            RANGES
                .iter()
                .find(|(name, _, _)| *name == f.name)
                .map(|&(_, min, max)| (min, max))
        })
        .collect()
});

/// The years a stored date may fall in: `0001-01-01` (.NET's empty date) and
/// two-digit-year accidents are not dates of a machine's life.
pub const DATE_YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

impl Field {
    /// The inclusive range of a numeric field's stored values.
    pub fn range(&self) -> Option<(f64, f64)> {
        RANGE_BY_INDEX[index_of(self)]
    }

    /// Whether a stored value is in this field's domain: the schema's CHECKs
    /// and more (ranges, real calendar dates, whole numbers in i64). The
    /// last check before a value is written; cleansing says why one is not.
    pub fn accepts(&self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (self.kind, value) {
            (_, Value::Null) => true,
            (FieldKind::Integer, Value::Number(n)) => n.as_i64().is_some_and(|n| {
                self.range()
                    .is_none_or(|(lo, hi)| (lo..=hi).contains(&(n as f64)))
            }),
            (FieldKind::Decimal | FieldKind::Size | FieldKind::Percent, Value::Number(n)) => {
                n.as_f64().is_some_and(|n| {
                    n.is_finite() && self.range().is_none_or(|(lo, hi)| (lo..=hi).contains(&n))
                })
            }
            (FieldKind::Integer | FieldKind::Decimal | FieldKind::Size | FieldKind::Percent, _) => {
                false
            }
            (FieldKind::Boolean, v) => v.is_boolean(),
            (FieldKind::Enumerated, Value::String(s)) => self.allowed.contains(&s.as_str()),
            (FieldKind::Date, Value::String(s)) => is_stored_date(s),
            (_, Value::String(_)) => true,
            _ => false,
        }
    }
}

/// `n` when it is in the range of the field named `field`, for values
/// computed outside cleansing (an ESXi host's vHost row).
pub fn within_range(field: &str, n: f64) -> Option<f64> {
    let (min, max) = self::field(field)?.range()?;
    (n.is_finite() && (min..=max).contains(&n)).then_some(n)
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`, a real calendar date in `DATE_YEARS`.
fn is_stored_date(s: &str) -> bool {
    let b = s.as_bytes();
    let number = |at: std::ops::Range<usize>| -> Option<u32> {
        b.get(at)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = (b.len() == 10 || b.len() == 19) && b[4] == b'-' && b[7] == b'-';
    let (Some(y), Some(m), Some(d)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let real = date
        && DATE_YEARS.contains(&(y as i32))
        && time::Month::try_from(m as u8)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(y as i32, m, d as u8).ok())
            .is_some();
    if !real || b.len() == 10 {
        return real;
    }
    let (Some(h), Some(min), Some(sec)) = (number(11..13), number(14..16), number(17..19)) else {
        return false;
    };
    b[10] == b'T' && b[13] == b':' && b[16] == b':' && h < 24 && min < 60 && sec < 60
}

/// An alias of a field, as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct AliasHit {
    pub field: &'static Field,
    pub weak: bool,
    /// The alias as written in the catalogue.
    pub alias: &'static str,
}

/// Normalised alias → the fields it names (a weak word may name several).
static ALIAS_INDEX: LazyLock<HashMap<String, Vec<AliasHit>>> = LazyLock::new(|| {
    let mut index: HashMap<String, Vec<AliasHit>> = HashMap::new();
    for field in FIELDS {
        for alias in field.aliases {
            let (weak, text) = match alias.strip_prefix('~') {
                Some(rest) => (true, rest),
                None => (false, *alias),
            };
            let key = normalise_header(text);
            if key.is_empty() {
                continue;
            }
            let hits = index.entry(key).or_default();
            if !hits.iter().any(|h| h.field.name == field.name) {
                hits.push(AliasHit {
                    field,
                    weak,
                    alias: text,
                });
            }
        }
    }
    index
});

/// The fields whose alias the header is.
pub fn alias_hits(header: &str) -> &'static [AliasHit] {
    ALIAS_INDEX
        .get(&normalise_header(header))
        .map_or(&[], |v| v.as_slice())
}

/// Every (normalised alias, hit) pair, for fuzzy matching.
pub fn all_aliases() -> impl Iterator<Item = (&'static str, &'static AliasHit)> {
    ALIAS_INDEX
        .iter()
        .flat_map(|(k, hits)| hits.iter().map(move |h| (k.as_str(), h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_accepted_only_in_their_fields_domain() {
        use serde_json::json;
        let f = |name| field(name).unwrap();
        assert!(f("memory_gb").accepts(&json!(16)));
        assert!(!f("memory_gb").accepts(&json!(-1)));
        assert!(!f("memory_gb").accepts(&json!(1e9)));
        assert!(f("cpu_cores").accepts(&json!(64)));
        assert!(!f("cpu_cores").accepts(&json!(4.5)));
        assert!(!f("cpu_cores").accepts(&json!("8")));
        assert!(!f("cpu_utilization_percent").accepts(&json!(100.5)));
        assert!(f("environment").accepts(&json!("production")));
        assert!(!f("environment").accepts(&json!("prod")));
        assert!(f("is_virtual").accepts(&json!(true)));
        assert!(f("end_of_life_date").accepts(&json!("2024-02-29")));
        assert!(f("end_of_life_date").accepts(&json!("2024-02-29T23:59:59")));
        for bad in [
            "2023-02-29",
            "0001-01-01",
            "2024-13-01",
            "2024-01-01T24:00:00",
            "2024-1-01",
            "2024-01-01 10:00:00",
            "soon",
        ] {
            assert!(!f("end_of_life_date").accepts(&json!(bad)), "{bad}");
        }
        assert!(f("name").accepts(&json!("anything")));
        assert!(f("memory_gb").accepts(&serde_json::Value::Null));
    }

    #[test]
    fn a_field_set_is_one_bit_of_the_catalogue() {
        // cleanse::CleansedFields keeps which fields are set in a u128.
        assert!(FIELDS.len() <= 128);
        for (i, field) in FIELDS.iter().enumerate() {
            assert_eq!(index_of(field), i);
            assert_eq!(index_of(&field.clone()), i, "a copy is found by name");
        }
        let mut by_rank: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        by_rank.sort_by_key(|name| name_rank(field_index(name).unwrap()));
        for (rank, name) in by_rank.iter().enumerate() {
            assert_eq!(FIELDS[at_name_rank(rank)].name, *name);
        }
        let mut by_name = by_rank.clone();
        by_name.sort_unstable();
        assert_eq!(by_rank, by_name);
    }

    #[test]
    fn headers_normalise_across_spellings() {
        assert_eq!(normalise_header("RAM (MB)"), "ram");
        assert_eq!(normalise_header("*Memory (In MB)"), "memory");
        assert_eq!(normalise_header("PrimaryIPAddress"), "primaryipaddress");
        assert_eq!(normalise_header("Primary IP Address"), "primaryipaddress");
        assert_eq!(normalise_header("IP-Adresse"), "ipadresse");
        assert_eq!(
            normalise_header("Système d'exploitation"),
            "systemedexploitation"
        );
        assert_eq!(normalise_header("MemoryGiB (optional)"), "memorygib");
        assert_eq!(
            normalise_header("In use MiB"),
            normalise_header("In Use MiB")
        );
    }

    #[test]
    fn units_come_from_headers() {
        assert_eq!(header_unit("RAM (MB)"), Some("MB"));
        assert_eq!(header_unit("Total disk capacity MiB"), Some("MiB"));
        assert_eq!(header_unit("RAM.TotalSizeInMB"), Some("MB"));
        assert_eq!(header_unit("MemoryGiB"), Some("GiB"));
        assert_eq!(header_unit("*Memory (In MB)"), Some("MB"));
        assert_eq!(header_unit("RAM (Go)"), Some("GB"));
        assert_eq!(header_unit("CPU %"), Some("percent"));
        assert_eq!(header_unit("CPU.UsagePct.Avg"), Some("percent"));
        assert_eq!(header_unit("Hostname"), None);
    }

    #[test]
    fn every_field_is_an_assets_column_and_aliases_resolve() {
        let schema = crate::db::SCHEMA_SQL;
        for field in FIELDS {
            assert!(
                schema.contains(&format!("\n    {} ", field.name)),
                "{} is not an assets column",
                field.name
            );
        }
        assert_eq!(alias_hits("Server Name")[0].field.name, "name");
        assert_eq!(alias_hits("IP Addr")[0].field.name, "ip_address");
        assert_eq!(
            alias_hits("Betriebssystem")[0].field.name,
            "operating_system"
        );
        assert_eq!(alias_hits("RAM GB")[0].field.name, "memory_gb");
        assert_eq!(alias_hits("6R")[0].field.name, "six_r_strategy");
    }
}
