//! The content profile of each source column, computed with polars over the
//! staged rows of an import (all of them up to `SAMPLE_ROWS`): how many values
//! are empty, how many are distinct, and what share of the non-empty values
//! match each pattern (IPv4/IPv6, MAC in any notation, FQDN, short host name,
//! UUID, OS name, size with a unit, number, percentage, boolean, date, version,
//! and the environment, 6R, criticality and power-state vocabularies).

use std::collections::BTreeMap;

use polars::prelude::*;
use rusqlite::Connection;
use serde::Serialize;

/// Rows profiled per import: every row of a real inventory; for a larger file an
/// even sample across it, so memory and time stay bounded (about 1 s and 50 MB
/// for 42 columns).
pub const SAMPLE_ROWS: usize = 25_000;

/// Values profiled per import at most: a table ten thousand columns wide is
/// profiled over fewer rows, so memory follows the cells, not rows × columns.
pub const SAMPLE_CELLS: usize = 2_000_000;

/// Raw text held while a table's sample fills, at most: a file of very long
/// rows is mapped from fewer of them.
pub const SAMPLE_BYTES: usize = 64 * 1024 * 1024;

/// Columns profiled in one polars query.
const COLUMNS_PER_QUERY: usize = 32;

/// The rows profiled for a table of `columns` columns.
pub fn sample_rows(columns: usize) -> usize {
    SAMPLE_ROWS.min((SAMPLE_CELLS / columns.max(1)).max(10))
}

/// A value pattern the profile counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    Ipv4,
    Ipv6,
    Mac,
    Fqdn,
    ShortHost,
    Uuid,
    OsName,
    SizeWithUnit,
    Integer,
    Decimal,
    Percent,
    Boolean,
    Date,
    Version,
    Environment,
    SixR,
    Criticality,
    PowerState,
    VirtualPhysical,
    Email,
    /// The device-management service that manages a device (Intune, ConfigMgr, Jamf ...).
    ManagementService,
    /// A host-like word with a digit in it ("PC-0001", "web01").
    NumberedName,
    /// Upper-case letters and digits, both, 7 to 20 of them ("CZC1234ABC"),
    /// or a VMware virtual machine's serial ("VMware-42 1a 2b ...").
    SerialCode,
    /// A hardware or hypervisor maker as inventories write it ("Dell Inc.",
    /// "VMware, Inc.", "LENOVO", "HP", "Microsoft Corporation").
    Maker,
    /// A model of a machine family ("Latitude E7470", "ProLiant DL380 Gen10",
    /// "VMware Virtual Platform", "Surface Pro 7", Lenovo's "20XW004GGE").
    ModelFamily,
}

impl Pattern {
    pub const ALL: [Pattern; 25] = [
        Pattern::Ipv4,
        Pattern::Ipv6,
        Pattern::Mac,
        Pattern::Fqdn,
        Pattern::ShortHost,
        Pattern::Uuid,
        Pattern::OsName,
        Pattern::SizeWithUnit,
        Pattern::Integer,
        Pattern::Decimal,
        Pattern::Percent,
        Pattern::Boolean,
        Pattern::Date,
        Pattern::Version,
        Pattern::Environment,
        Pattern::SixR,
        Pattern::Criticality,
        Pattern::PowerState,
        Pattern::VirtualPhysical,
        Pattern::Email,
        Pattern::ManagementService,
        Pattern::NumberedName,
        Pattern::SerialCode,
        Pattern::Maker,
        Pattern::ModelFamily,
    ];

    /// The regular expression (Rust regex syntax) a whole value must match.
    /// Lists ("10.0.0.1, 10.0.0.2") count for the list patterns.
    pub fn regex(self) -> &'static str {
        match self {
            Pattern::Ipv4 => {
                r"^\s*\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?(\s*[,;| ]\s*\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?)*\s*$"
            }
            Pattern::Ipv6 => {
                r"(?i)^\s*([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\s*$|^\s*[0-9a-fA-F:]*::[0-9a-fA-F:.]*\s*$"
            }
            Pattern::Mac => {
                r"(?i)^\s*(([0-9a-f]{2}:){5}[0-9a-f]{2}|([0-9a-f]{2}-){5}[0-9a-f]{2}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}|[0-9a-f]{12})(\s*[,;| ]\s*(([0-9a-f]{2}[:-]){5}[0-9a-f]{2}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}|[0-9a-f]{12}))*\s*$"
            }
            Pattern::Fqdn => {
                r"(?i)^\s*[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9-]{1,63})*\.[a-z]{2,}\.?\s*$"
            }
            Pattern::ShortHost => r"(?i)^\s*[a-z][a-z0-9_-]{0,62}\s*$",
            Pattern::Uuid => {
                r"(?i)^\s*\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?\s*$|(?i)^\s*([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}\s*$"
            }
            Pattern::OsName => {
                r"(?i)(windows|\bwin\s?(20\d\d|2k\d*|nt)\b|\bmac\s?os\b|\bos x\b|\bios\b|\bipados\b|\bandroid\b|chrome ?os|linux|red ?hat|\brhel\b|centos|ubuntu|debian|\bsuse\b|\bsles\b|oracle linux|\baix\b|solaris|hp-?ux|freebsd|esxi|rocky|almalinux|photon|cisco ios|\bios[- ]?x[er]\b|nx-?os|junos|pan-?os|fortios|arista eos|aos-cx|arubaos|routeros|\btmos\b|ontap|purity//|\bonefs\b)"
            }
            Pattern::SizeWithUnit => {
                r"(?i)^\s*\d+([.,]\d+)?\s*(k|m|g|t|p)i?b\s*$|(?i)^\s*\d+([.,]\d+)?\s*(go|mo|to)\s*$"
            }
            Pattern::Integer => r"^\s*-?\d+\s*$",
            // Amounts may carry a currency: "2.750,00 €", "$1,234.50", "CHF 99".
            Pattern::Decimal => {
                r"(?i)^\s*(?:[€$£¥]|eur|usd|gbp|chf)?\s*-?(\d{1,3}([.,' ]\d{3})+|\d+)([.,]\d+)?\s*(?:[€$£¥]|eur|usd|gbp|chf)?\s*$"
            }
            Pattern::Percent => r"^\s*\d+([.,]\d+)?\s*%\s*$",
            Pattern::Boolean => {
                r"(?i)^\s*(true|false|yes|no|y|n|ja|nein|oui|non|si|sí|sim|não|nao|wahr|falsch|vrai|faux|waar|onwaar)\s*$"
            }
            Pattern::Date => {
                r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}/\d{1,2}/\d{1,2})([ T]\d{1,2}:\d{2}(:\d{2})?(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
            }
            // "10.0.19045", "8.6 (Ootpa)", "10.0 (17763)", "7.9.2009", "2.4.1-beta".
            Pattern::Version => {
                r"(?i)^\s*v?\d+(\.\d+){1,4}(\s*\([^()]{1,40}\)|[ -]?[\w.+-]+){0,2}\s*$"
            }
            Pattern::Environment => {
                r"(?i)^\s*(prod|prd|production|productive|live|staging|stage|stg|uat|qa|preprod|pre-prod|test|testing|tst|int|integration|dev|development|sandbox|lab|dr|disaster recovery|produktion|produktiv|entwicklung|testumgebung|recette|pré-?production|developpement|développement|desarrollo|producción|produccion|pruebas|preproducción|ontwikkeling|productie|acceptatie|produção|producao|desenvolvimento|homologação|homologacao|teste|produzione|esercizio|sviluppo|collaudo|preproduzione|prova)\s*$"
            }
            Pattern::SixR => {
                r"(?i)^\s*(rehost|re-host|lift[ -]and[ -]shift|replatform|re-platform|lift[ -]tinker[ -]and[ -]shift|refactor|re-factor|rearchitect|re-architect|rebuild|repurchase|re-purchase|replace|retire|decommission|retain|keep|relocate)\s*$"
            }
            Pattern::Criticality => {
                r"(?i)^\s*(low|medium|med|high|critical|very high|mission[ -]critical|business[ -]critical|tier[ -]?[0-4]|niedrig|mittel|hoch|kritisch|faible|moyen|moyenne|élevé|elevee|critique|baja|media|alta|crítica|critica|laag|gemiddeld|hoog|kritiek|baixa|média)\s*$"
            }
            Pattern::PowerState => {
                r"(?i)^\s*(poweredon|poweredoff|suspended|powered on|powered off|running|stopped|deallocated)\s*$"
            }
            Pattern::VirtualPhysical => {
                r"(?i)^\s*(virtual|physical|vm|bare ?metal|virtuell|physisch|virtuel|physique|virtual|físico|fisico|virtueel|fysiek)\s*$"
            }
            Pattern::Email => r"(?i)^\s*[^@\s]+@[^@\s]+\.[a-z]{2,}\s*$",
            Pattern::NumberedName => r"(?i)^\s*[a-z][a-z0-9_-]*[0-9][a-z0-9_-]*\s*$",
            Pattern::SerialCode => {
                r"^\s*(?:[A-Z]+[0-9]|[0-9]+[A-Z])[A-Z0-9]{5,18}\s*$|^\s*VMware-[0-9a-f]{2}( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7}\s*$"
            }
            Pattern::Maker => {
                r"(?i)^\s*(dell( inc\.?| technologies| computer corporation)?|lenovo|ibm|hp|hpe|hewlett[- ]packard( enterprise| company)?|vmware,? inc\.?|vmware|microsoft( corporation)?|apple( inc\.?| computer,? inc\.?)?|acer( inc\.?)?|asus(tek computer inc\.?)?|fujitsu( siemens| technology solutions)?|toshiba|dynabook inc\.?|samsung( electronics co\.?,? ltd\.?)?|cisco( systems,? inc\.?)?|supermicro|super micro computer,? inc\.?|oracle( corporation)?|nutanix|xen|qemu|innotek gmbh|parallels( software international inc\.?)?|google|amazon ec2|red hat|citrix|huawei( technologies co\.?,? ltd\.?)?|intel( corporation)?|gigabyte technology co\.?,? ltd\.?|micro-star international co\.?,? ltd\.?|panasonic( corporation)?|getac|zebra technologies|wyse|igel technology|medion|sony|nec|hitachi|inspur|bull|dell emc|netapp|pure storage|juniper networks|arista networks|aruba|palo alto networks|fortinet|f5 networks)\s*$"
            }
            Pattern::ModelFamily => {
                r"(?i)^\s*(latitude|optiplex|precision|vostro|inspiron|xps|poweredge|wyse|thinkpad|thinkcentre|thinkstation|thinksystem|thinkbook|ideapad|elitebook|probook|elitedesk|prodesk|elite ?one|zbook|proliant|synergy|apollo|surface|macbook|imac|mac ?mini|mac ?pro|virtual platform|vmware virtual platform|virtual machine|hvm domu|kvm|standard pc|ucs|travelmate|aspire|veriton|lifebook|esprimo|celsius|primergy|vivobook|zenbook|expertbook|toughbook|dynabook|portege|tecra|satellite|hp [a-z]+ \d|ibm system x|iphone|ipad|pixel|galaxy|cloud pc|chromebook)\b.*$|^\s*\d{2}[A-Z0-9]{2}[A-Z0-9]{6}\s*$"
            }
            Pattern::ManagementService => {
                r"(?i)^\s*(intune|microsoft intune|co-?managed|configmgr|sccm|mecm|mdm|mdm/configmgr agent|intune and configmgr|exchange activesync|eas|jamf|jamf pro|airwatch|workspace one|mobileiron|kandji)\s*$"
            }
        }
    }
}

/// What the values of one column look like.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnProfile {
    pub column: String,
    /// Rows looked at.
    pub rows: u64,
    /// Rows with a value (not empty, not null).
    pub filled: u64,
    pub null_share: f64,
    /// Distinct values over filled values.
    pub distinct_share: f64,
    /// Share of the filled values matching each pattern (only patterns that hit).
    pub hits: BTreeMap<Pattern, f64>,
    /// Up to five distinct values, in the order they appear.
    pub samples: Vec<String>,
}

impl ColumnProfile {
    pub fn share(&self, pattern: Pattern) -> f64 {
        self.hits.get(&pattern).copied().unwrap_or(0.0)
    }

    /// The kind of value most of the column holds, in words.
    pub fn inferred_type(&self) -> &'static str {
        if self.filled == 0 {
            return "empty";
        }
        let top = [
            (Pattern::Integer, "integer"),
            (Pattern::Decimal, "decimal"),
            (Pattern::Boolean, "boolean"),
            (Pattern::Date, "date"),
        ];
        top.iter()
            .find(|(p, _)| self.share(*p) >= 0.9)
            .map_or("text", |(_, name)| name)
    }
}

/// Profiles the columns of one import from its staged rows.
pub fn profile_import(
    conn: &Connection,
    data_import_id: &str,
    columns: &[String],
) -> Result<Vec<ColumnProfile>, ProfileError> {
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); columns.len()];
    let records = crate::record_store::records_of("?1");
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {records}"),
        [data_import_id],
        |r| r.get(0),
    )?;
    // Every step-th record, so a file sorted by site or type is seen whole.
    let sample = sample_rows(columns.len()) as i64;
    let step = (total / sample).max(1);
    let mut stmt = conn.prepare(&format!(
        "SELECT raw_values FROM {records}
         WHERE (?2 = 1 OR record_index % ?2 = 0)
         ORDER BY record_index LIMIT ?3"
    ))?;
    let keys = crate::record_store::ColumnKeys::of_import(conn, data_import_id)?;
    let mut rows = stmt.query(rusqlite::params![data_import_id, step, sample])?;
    while let Some(row) = rows.next()? {
        let stored: String = row.get(0)?;
        push_values(&mut values, columns, &keys.object(&stored));
    }
    profile_values(columns, values)
}

/// Adds one record's values (given as its raw_data) to the sampled columns.
pub fn push_values(values: &mut [Vec<Option<String>>], columns: &[String], raw_data: &str) {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw_data).unwrap_or_default();
    for (i, column) in columns.iter().enumerate() {
        let value = match object.get(column) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        };
        values[i].push(value);
    }
}

/// Profiles columns given as values (None for empty), a few columns per
/// query: one query over thousands of columns held every intermediate
/// result at once.
pub fn profile_values(
    columns: &[String],
    values: Vec<Vec<Option<String>>>,
) -> Result<Vec<ColumnProfile>, ProfileError> {
    let mut profiles = Vec::with_capacity(columns.len());
    let mut values = values.into_iter();
    for names in columns.chunks(COLUMNS_PER_QUERY) {
        let chunk: Vec<Vec<Option<String>>> = values.by_ref().take(names.len()).collect();
        profiles.extend(profile_chunk(names, chunk)?);
    }
    Ok(profiles)
}

fn profile_chunk(
    columns: &[String],
    values: Vec<Vec<Option<String>>>,
) -> Result<Vec<ColumnProfile>, ProfileError> {
    let height = values.first().map_or(0, Vec::len);
    let samples: Vec<Vec<String>> = values.iter().map(|v| first_distinct(v, 5)).collect();
    // Positional names: source headers may repeat after normalisation or hold
    // characters polars treats specially.
    let series: Vec<Column> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| Column::new(format!("c{i}").into(), v))
        .collect();
    let frame = DataFrame::new(height, series)?;
    let mut exprs = Vec::with_capacity(columns.len() * (Pattern::ALL.len() + 2));
    for i in 0..columns.len() {
        let c = format!("c{i}");
        exprs.push(col(c.as_str()).count().alias(format!("{c}|filled")));
        exprs.push(
            col(c.as_str())
                .drop_nulls()
                .n_unique()
                .alias(format!("{c}|distinct")),
        );
        for (p, pattern) in Pattern::ALL.iter().enumerate() {
            exprs.push(
                col(c.as_str())
                    .str()
                    .contains(lit(pattern.regex()), true)
                    .cast(DataType::UInt32)
                    .sum()
                    .alias(format!("{c}|p{p}")),
            );
        }
    }
    let stats = frame.lazy().select(exprs).collect()?;
    let number = |name: String| -> Result<u64, ProfileError> {
        let column = stats.column(&name)?;
        let value = column.get(0)?;
        Ok(value.extract::<u64>().unwrap_or(0))
    };
    let mut profiles = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let c = format!("c{i}");
        let filled = number(format!("{c}|filled"))?;
        let distinct = number(format!("{c}|distinct"))?;
        let mut hits = BTreeMap::new();
        for (p, pattern) in Pattern::ALL.iter().enumerate() {
            let n = number(format!("{c}|p{p}"))?;
            if n > 0 && filled > 0 {
                hits.insert(*pattern, n as f64 / filled as f64);
            }
        }
        profiles.push(ColumnProfile {
            column: column.clone(),
            rows: height as u64,
            filled,
            null_share: if height == 0 {
                1.0
            } else {
                1.0 - filled as f64 / height as f64
            },
            distinct_share: if filled == 0 {
                0.0
            } else {
                distinct as f64 / filled as f64
            },
            hits,
            samples: samples[i].clone(),
        });
    }
    Ok(profiles)
}

fn first_distinct(values: &[Option<String>], n: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::with_capacity(n);
    for v in values.iter().flatten() {
        if seen.len() == n {
            break;
        }
        if !seen.contains(v) {
            seen.push(v.clone());
        }
    }
    seen
}

/// Why a profile could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("reading the staged rows: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("profiling the columns: {0}")]
    Polars(#[from] PolarsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(values: &[&str]) -> ColumnProfile {
        let column = vec!["x".to_string()];
        let values = vec![values
            .iter()
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .collect()];
        profile_values(&column, values).unwrap().remove(0)
    }

    #[test]
    fn patterns_are_counted_over_filled_values() {
        let p = profile(&[
            "00:50:56:aa:bb:cc",
            "00-50-56-AA-BB-CD",
            "0050.56aa.bbce",
            "",
            "005056aabbcf",
        ]);
        assert_eq!(p.filled, 4);
        assert_eq!(p.share(Pattern::Mac), 1.0);
        assert_eq!(p.share(Pattern::Ipv6), 0.0);
        assert!((p.null_share - 0.2).abs() < 1e-9);
        assert_eq!(p.samples.len(), 4);
        let ips = profile(&[
            "10.0.0.1",
            "10.0.0.2, 10.0.0.3",
            "fe80::1",
            "2001:db8:0:0:0:0:0:1",
        ]);
        assert_eq!(ips.share(Pattern::Ipv4), 0.5);
        assert_eq!(ips.share(Pattern::Ipv6), 0.5);
        let hosts = profile(&["web01.corp.example.com", "db02.example.org"]);
        assert_eq!(hosts.share(Pattern::Fqdn), 1.0);
        let os = profile(&[
            "Microsoft Windows Server 2019 Datacenter",
            "RHEL 8.6",
            "Ubuntu 22.04",
            "Solaris 11",
        ]);
        assert_eq!(os.share(Pattern::OsName), 1.0);
        let gear = profile(&[
            "Cisco IOS-XE 17.9",
            "Junos 22.4R1",
            "PAN-OS 10.2",
            "NetApp ONTAP 9.12",
        ]);
        assert_eq!(gear.share(Pattern::OsName), 1.0);
        let versions = profile(&[
            "10.0 (17763)",
            "8.6 (Ootpa)",
            "10.0.19045.3803",
            "2.4.1-beta",
        ]);
        assert_eq!(versions.share(Pattern::Version), 1.0);
        assert_eq!(profile(&["2019", "Windows"]).share(Pattern::Version), 0.0);
        let env = profile(&["Production", "PROD", "Entwicklung", "UAT"]);
        assert_eq!(env.share(Pattern::Environment), 1.0);
        let sizes = profile(&["16 GB", "512MiB", "2 TB", "8"]);
        assert_eq!(sizes.share(Pattern::SizeWithUnit), 0.75);
        assert_eq!(profile(&["8", "16", "16"]).distinct_share, 2.0 / 3.0);
        assert_eq!(
            profile(&["42 1a 5b 6c 7d 8e 9f 00-11 22 33 44 55 66 77 88"]).share(Pattern::Uuid),
            1.0
        );
    }
}
