//! A generator of large, realistic ServiceNow CMDB server exports for benchmarks
//! and scale tests: about forty columns with element names, plausible values, and
//! a share of the messy rows real exports have (quoted delimiters, embedded
//! newlines, ragged rows, blank rows, non-ASCII names). Deterministic per seed.

use std::io::{self, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const COLUMNS: &[&str] = &[
    "sys_id",
    "name",
    "sys_class_name",
    "host_name",
    "fqdn",
    "dns_domain",
    "ip_address",
    "mac_address",
    "os",
    "os_version",
    "os_service_pack",
    "os_address_width",
    "cpu_count",
    "cpu_core_count",
    "cpu_speed",
    "cpu_type",
    "cpu_manufacturer",
    "ram",
    "disk_space",
    "virtual",
    "serial_number",
    "asset_tag",
    "manufacturer",
    "model_id",
    "location",
    "company",
    "department",
    "cost_center",
    "classification",
    "used_for",
    "install_status",
    "operational_status",
    "owned_by",
    "managed_by",
    "support_group",
    "short_description",
    "discovery_source",
    "first_discovered",
    "last_discovered",
    "sys_updated_on",
    "u_environment",
    "u_application",
];

const OSES: &[(&str, &str, &str)] = &[
    ("Windows 2019 Datacenter", "10.0.17763", "server"),
    ("Windows 2016 Standard", "10.0.14393", "server"),
    ("Windows 2012 R2 Standard", "6.3.9600", "server"),
    ("Linux Red Hat", "8.6", "linux"),
    ("Linux Red Hat", "7.9", "linux"),
    ("Linux SuSE", "15 SP4", "linux"),
    ("Linux Ubuntu", "22.04", "linux"),
];
const LOCATIONS: &[&str] = &[
    "Frankfurt DC1",
    "Amsterdam AMS2",
    "Dallas DAL-03",
    "Singapore SG1",
    "São Paulo SP2",
];
const DEPARTMENTS: &[&str] = &[
    "Finance",
    "HR",
    "Retail Banking",
    "IT Operations",
    "Logistics",
    "Marketing",
];
const APPS: &[&str] = &[
    "SAP ERP",
    "Payroll",
    "CRM",
    "Data Warehouse",
    "Intranet",
    "Order Management",
    "Billing",
];
const USED_FOR: &[&str] = &[
    "Production",
    "Development",
    "QA",
    "Test",
    "Staging",
    "Disaster recovery",
];
const PEOPLE: &[&str] = &[
    "Anna Müller",
    "Jean Dupont",
    "María García",
    "Pieter de Vries",
    "John Smith",
    "Chen Wei",
];

/// Generates the records of a CMDB export, deterministic for a seed. About
/// `messy_percent` percent of the records carry one of the real-world quirks
/// (an embedded newline, a short row, a stray value, an empty row, "16 GB").
pub struct CmdbRecords {
    rng: StdRng,
    next: u64,
    rows: u64,
    messy: f64,
    pending: Option<Vec<String>>,
    /// Share of records changed as a newer export would change them, drawn
    /// from their own generator so every other value stays the same.
    changed: f64,
    change_rng: StdRng,
}

impl CmdbRecords {
    pub fn new(rows: u64, messy_percent: f64, seed: u64) -> CmdbRecords {
        CmdbRecords {
            rng: StdRng::seed_from_u64(seed),
            next: 0,
            rows,
            messy: (messy_percent / 100.0).clamp(0.0, 1.0),
            pending: None,
            changed: 0.0,
            change_rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The same records, except that about `percent` percent of the machines
    /// (chosen by `seed`) report more memory, another operational status and
    /// a later discovery date: the next export of the same CMDB.
    pub fn with_changed(mut self, percent: f64, seed: u64) -> CmdbRecords {
        self.changed = (percent / 100.0).clamp(0.0, 1.0);
        self.change_rng = StdRng::seed_from_u64(seed);
        self
    }
}

impl Iterator for CmdbRecords {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        if let Some(record) = self.pending.take() {
            return Some(record);
        }
        if self.next >= self.rows {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let rng = &mut self.rng;
        let mut fields: Vec<String> = Vec::with_capacity(COLUMNS.len() + 1);
        let (os, os_version, family) = OSES[rng.random_range(0..OSES.len())];
        let prefix = if family == "server" { "win" } else { "lnx" };
        let host = format!("{prefix}{:06}", i);
        let domain =
            ["corp.example.com", "prod.example.net", "eu.example.org"][rng.random_range(0..3)];
        let virtual_ = rng.random_bool(0.8);
        let sockets = rng.random_range(1..=4u32);
        fields.push(format!("{:032x}", rng.random::<u128>()));
        fields.push(host.to_uppercase());
        fields.push(
            if family == "server" {
                "cmdb_ci_win_server"
            } else {
                "cmdb_ci_linux_server"
            }
            .into(),
        );
        fields.push(host.clone());
        fields.push(format!("{host}.{domain}"));
        fields.push(domain.into());
        fields.push(format!(
            "10.{}.{}.{}",
            rng.random_range(0..255),
            rng.random_range(0..255),
            rng.random_range(1..255)
        ));
        fields.push(
            (0..6)
                .map(|_| format!("{:02X}", rng.random::<u8>()))
                .collect::<Vec<_>>()
                .join(":"),
        );
        fields.push(os.into());
        fields.push(os_version.into());
        fields.push(if rng.random_bool(0.3) {
            "SP1".into()
        } else {
            String::new()
        });
        fields.push("64".into());
        fields.push(sockets.to_string());
        fields.push(rng.random_range(1..=16u32).to_string());
        fields.push(["2100", "2600", "2900", "3200"][rng.random_range(0..4)].into());
        fields.push("x86_64".into());
        fields.push(["Intel", "AMD"][rng.random_range(0..2)].into());
        fields.push((1024u32 << rng.random_range(1..8u32)).to_string());
        fields.push(format!("{}", rng.random_range(40..4000u32)));
        fields.push(virtual_.to_string());
        fields.push(format!("SN{:010}", rng.random_range(0..u32::MAX)));
        fields.push(format!("P{:07}", i));
        fields.push(
            if virtual_ {
                "VMware, Inc."
            } else {
                ["Dell Inc.", "HPE", "Lenovo"][rng.random_range(0..3)]
            }
            .into(),
        );
        fields.push(
            if virtual_ {
                "VMware Virtual Platform"
            } else {
                "PowerEdge R740"
            }
            .into(),
        );
        fields.push(LOCATIONS[rng.random_range(0..LOCATIONS.len())].into());
        fields.push("Example Holdings".into());
        fields.push(DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())].into());
        fields.push(format!("CC-{:04}", rng.random_range(1000..9999)));
        fields.push(["Production", "Development", "Test"][rng.random_range(0..3)].into());
        fields.push(USED_FOR[rng.random_range(0..USED_FOR.len())].into());
        fields.push(["1", "Installed", "7"][rng.random_range(0..3)].into());
        fields.push(["1", "Operational", "2"][rng.random_range(0..3)].into());
        fields.push(PEOPLE[rng.random_range(0..PEOPLE.len())].into());
        fields.push(PEOPLE[rng.random_range(0..PEOPLE.len())].into());
        fields.push(["Windows Ops", "Linux Ops", "DBA Team"][rng.random_range(0..3)].into());
        fields.push(format!(
            "{} server for {}",
            USED_FOR[rng.random_range(0..USED_FOR.len())],
            APPS[rng.random_range(0..APPS.len())]
        ));
        fields.push(["ServiceNow", "SCCM", "Manual Entry"][rng.random_range(0..3)].into());
        fields.push(format!(
            "2021-{:02}-{:02} 08:15:00",
            rng.random_range(1..13),
            rng.random_range(1..29)
        ));
        fields.push(format!(
            "2026-{:02}-{:02} 22:40:11",
            rng.random_range(1..11),
            rng.random_range(1..29)
        ));
        fields.push(format!(
            "2026-{:02}-{:02} 22:40:11",
            rng.random_range(1..11),
            rng.random_range(1..29)
        ));
        fields.push(USED_FOR[rng.random_range(0..USED_FOR.len())].to_lowercase());
        fields.push(APPS[rng.random_range(0..APPS.len())].into());

        if rng.random_bool(self.messy) {
            match rng.random_range(0..5) {
                0 => {
                    fields[35] =
                        "Migrated from \"legacy\" DC, see ticket\nCHG0012345; owner: Ops, Finance"
                            .into()
                }
                1 => fields.truncate(30), // a row cut short
                2 => fields.push("stray value".into()),
                3 => {
                    // An empty row, then this record.
                    self.pending = Some(fields);
                    return Some(vec![String::new(); COLUMNS.len()]);
                }
                _ => fields[17] = "16 GB".into(),
            }
        }
        if self.changed > 0.0 && fields.len() == COLUMNS.len() && !fields[1].is_empty() {
            let change = &mut self.change_rng;
            if change.random_bool(self.changed) {
                fields[17] = (1024u32 << change.random_range(8..10u32)).to_string();
                fields[31] = "Repair in progress".into();
                fields[38] = "2026-11-30 06:00:00".into();
            }
        }
        Some(fields)
    }
}

/// Writes `rows` data rows (plus the header) of a CMDB export to `out` as CSV.
pub fn write_cmdb_csv(
    out: &mut impl Write,
    rows: u64,
    messy_percent: f64,
    seed: u64,
) -> io::Result<()> {
    write_records_csv(out, CmdbRecords::new(rows, messy_percent, seed))
}

/// Writes the header and `records` to `out` as CSV.
pub fn write_records_csv(out: &mut impl Write, records: CmdbRecords) -> io::Result<()> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    w.write_record(COLUMNS)?;
    for record in records {
        w.write_record(&record)?;
    }
    w.flush()
}

/// The relationship types a CMDB's cmdb_rel_ci export holds between servers,
/// as ServiceNow writes them ("parent descriptor::child descriptor"), with
/// how often each is drawn.
const SERVER_RELATIONS: &[(&str, u32)] = &[
    ("Depends on::Used by", 6),
    ("Connects to::Connected by", 2),
    ("Used by::Depends on", 1),
    ("Sends data to::Receives data from", 1),
];

/// Writes the cmdb_rel_ci export that goes with the CMDB export of the same
/// `rows`, `messy_percent` and `seed` (parent, type, child,
/// connection_strength, by display name): each server depends on one of the
/// database tier (the first twentieth of the servers), every tenth also
/// talks to another server, and one row in a thousand names a server the
/// CMDB export does not have (decommissioned), as real exports do.
pub fn write_relationships_csv(
    out: &mut impl Write,
    rows: u64,
    messy_percent: f64,
    seed: u64,
) -> io::Result<()> {
    let names: Vec<String> = CmdbRecords::new(rows, messy_percent, seed)
        .filter_map(|mut record| {
            (record.len() > 1 && !record[1].is_empty()).then(|| std::mem::take(&mut record[1]))
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_ed0f_7e1a);
    let weights: u32 = SERVER_RELATIONS.iter().map(|(_, w)| w).sum();
    let kind = |rng: &mut StdRng| {
        let mut pick = rng.random_range(0..weights);
        for (name, weight) in SERVER_RELATIONS {
            if pick < *weight {
                return *name;
            }
            pick -= weight;
        }
        SERVER_RELATIONS[0].0
    };
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["parent", "type", "child", "connection_strength"])?;
    let tier = (names.len() / 20).max(1);
    for (i, name) in names.iter().enumerate() {
        let db = rng.random_range(0..tier);
        if db != i {
            let strength = ["Always", "Usually", "Occasionally"][rng.random_range(0..3)];
            w.write_record([name.as_str(), kind(&mut rng), &names[db], strength])?;
        }
        if i % 10 == 0 {
            let other = &names[rng.random_range(0..names.len())];
            w.write_record([name.as_str(), kind(&mut rng), other, "Usually"])?;
        }
        if i % 1000 == 999 {
            let gone = format!("DECOM{i:06}");
            w.write_record([gone.as_str(), "Depends on::Used by", name, "Always"])?;
        }
    }
    w.flush()
}

/// Columns written as numbers in a workbook, as ServiceNow's Excel export does.
const NUMERIC_COLUMNS: &[&str] = &[
    "os_address_width",
    "cpu_count",
    "cpu_core_count",
    "cpu_speed",
    "ram",
    "disk_space",
];

/// Writes the same export as an .xlsx with its first `columns` columns, numbers
/// as number cells, in rust_xlsxwriter's constant-memory mode. With `sheets`
/// above one, the rows are dealt out over that many sheets ("Page 1",
/// "Page 2", ...), each with the header, as an export split by page is.
pub fn write_cmdb_xlsx(
    path: &std::path::Path,
    rows: u64,
    columns: usize,
    sheets: usize,
    messy_percent: f64,
    seed: u64,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let columns = columns.clamp(1, COLUMNS.len());
    let sheets = sheets.max(1);
    let numeric: Vec<bool> = COLUMNS[..columns]
        .iter()
        .map(|c| NUMERIC_COLUMNS.contains(c))
        .collect();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let per_sheet = rows.div_ceil(sheets as u64).max(1);
    let mut records = CmdbRecords::new(rows, messy_percent, seed);
    for page in 1..=sheets {
        let sheet = workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(format!("Page {page}"))?;
        for (col, name) in COLUMNS[..columns].iter().enumerate() {
            sheet.write_string(0, col as u16, *name)?;
        }
        let mut row = 0u32;
        while u64::from(row) < per_sheet || page == sheets {
            let Some(record) = records.next() else { break };
            row += 1;
            for (col, value) in record.iter().take(columns).enumerate() {
                if value.is_empty() {
                    continue;
                }
                match value.parse::<f64>() {
                    Ok(number) if numeric[col] => sheet.write_number(row, col as u16, number)?,
                    _ => sheet.write_string(row, col as u16, value)?,
                };
            }
        }
    }
    workbook.save(path)
}
