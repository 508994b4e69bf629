//! Parsing and normalising one value the way real exports write it: sizes with
//! units or in the column's unit, decimal commas and thousands separators,
//! currency symbols, percentages, booleans in several languages, dates in the
//! common formats and Excel serials, lists of IPs or MACs, canonical IPs, MACs
//! in lower-case colon form, FQDN and short host name, OS name and version, and
//! the environment, 6R, criticality and asset type vocabularies.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::catalogue::{FieldKind, DATE_YEARS};

/// Why a value could not be used: (code, message).
pub type Problem = (&'static str, String);

/// A number as written: "1.234,50", "1,234.50", "1 234", "2.750,00 €", "$99".
pub fn parse_number(raw: &str) -> Option<f64> {
    // Most values are plain numbers: no currency, separators or units to strip.
    if let Ok(plain) = raw.trim().parse::<f64>() {
        return plain.is_finite().then_some(plain);
    }
    let mut s: String = raw
        .trim()
        .trim_matches(|c: char| "€$£¥".contains(c) || c.is_whitespace())
        .to_string();
    for code in ["EUR", "USD", "GBP", "CHF", "eur", "usd", "gbp", "chf"] {
        s = s
            .trim_start_matches(code)
            .trim_end_matches(code)
            .trim()
            .to_string();
    }
    s.retain(|c| c != ' ' && c != '\u{a0}' && c != '\'' && c != '_');
    if s.is_empty() {
        return None;
    }
    let (dots, commas) = (s.matches('.').count(), s.matches(',').count());
    let normalised = match (dots, commas) {
        (0, 0) => s,
        // "1,5" decimal comma; "1,234" (three digits after) thousands.
        (0, 1) => {
            let after = s.split(',').nth(1).unwrap_or("");
            if after.len() == 3 && !s.starts_with("0,") {
                s.replace(',', "")
            } else {
                s.replace(',', ".")
            }
        }
        (0, _) => s.replace(',', ""),
        (1, 0) => s,
        (_, 0) => s.replace('.', ""), // "1.234.567"
        _ => {
            // Both: the last one is the decimal separator.
            if s.rfind(',') > s.rfind('.') {
                s.replace('.', "").replace(',', ".")
            } else {
                s.replace(',', "")
            }
        }
    };
    normalised.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Bytes per unit, relative to GB (binary: a GB here is a GiB, as inventories mean it).
fn unit_factor_to_gb(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "b" | "bytes" => 1.0 / (1024.0 * 1024.0 * 1024.0),
        "k" | "kb" | "kib" | "ko" => 1.0 / (1024.0 * 1024.0),
        "m" | "mb" | "mib" | "mo" => 1.0 / 1024.0,
        "g" | "gb" | "gib" | "go" => 1.0,
        "t" | "tb" | "tib" | "to" => 1024.0,
        "p" | "pb" | "pib" => 1024.0 * 1024.0,
        _ => return None,
    })
}

/// A memory or storage size in GB. A unit in the value wins ("16 GB",
/// "512 MiB"); otherwise the column's unit; `auto` treats numbers above 1024
/// as MB. `flag_below`: MB values below it are taken as GB with a warning.
pub fn parse_size(
    raw: &str,
    column_unit: Option<&str>,
    flag_below: Option<f64>,
) -> Result<(f64, Option<Problem>), Problem> {
    let s = raw.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value =
        parse_number(number).ok_or_else(|| ("not_a_size", format!("'{raw}' is not a size")))?;
    let unit = unit.trim();
    if !unit.is_empty() {
        let factor = unit_factor_to_gb(unit).ok_or_else(|| {
            (
                "unknown_unit",
                format!("'{unit}' in '{raw}' is not a size unit"),
            )
        })?;
        return Ok((round(value * factor), None));
    }
    match column_unit.unwrap_or("auto") {
        "auto" => {
            if value > 1024.0 {
                Ok((round(value / 1024.0), None))
            } else {
                Ok((round(value), None))
            }
        }
        unit => {
            let factor = unit_factor_to_gb(unit).unwrap_or(1.0);
            if let Some(below) = flag_below {
                if factor < 1.0 && value > 0.0 && value < below {
                    return Ok((
                        round(value),
                        Some((
                            "implausible_unit",
                            format!("{value} {unit} is implausibly small; taken as GB"),
                        )),
                    ));
                }
            }
            Ok((round(value * factor), None))
        }
    }
}

/// A percentage 0..100: "35", "35 %", "0,35" stays 0.35 (a share is not guessed).
pub fn parse_percent(raw: &str) -> Option<f64> {
    parse_number(raw.trim().trim_end_matches('%')).map(round)
}

/// How exports write "unknown": a value that means the field has no value
/// (`N/A`, `unknown`, `-`, `TBD`, in the catalogue's languages), and `-1` in
/// a numeric field (Azure Migrate, vROps and many scripts write it). Such a
/// value is left out of the record with a note, never parsed: `-1` GB is not
/// a size and a hundred hosts named `unknown` are not one machine.
pub fn means_missing(text: &str, kind: FieldKind) -> bool {
    let t = text.trim();
    let numeric = matches!(
        kind,
        FieldKind::Integer | FieldKind::Decimal | FieldKind::Size | FieldKind::Percent
    );
    if numeric && matches!(t, "-1" | "-1.0" | "-1,0" | "-1.00" | "-1,00") {
        return true;
    }
    // Cleansing asks this of every value: most are numbers, names and
    // addresses, turned away by their length or first byte, and the rest
    // compared lower-cased on the stack.
    let s = t.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '[' | ']'));
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 16 || bytes[0].is_ascii_digit() {
        return false;
    }
    let first = bytes[0].to_ascii_lowercase();
    if !matches!(
        first,
        b'n' | b'#' | b'u' | b'-' | b'?' | b't' | b'e' | b'b' | b'k' | b'i' | b'd' | b'o' | b's'
    ) {
        return false;
    }
    let mut lower = [0u8; 16];
    for (to, from) in lower.iter_mut().zip(bytes) {
        *to = from.to_ascii_lowercase();
    }
    // Not "na": in a location or business unit it is North America.
    matches!(
        &lower[..bytes.len()],
        b"n/a"
            | b"n.a."
            | b"n.a"
            | b"#n/a"
            | b"n/v"
            | b"n.v."
            | b"none"
            | b"null"
            | b"nil"
            | b"unknown"
            | b"unk"
            | b"-"
            | b"--"
            | b"---"
            | b"?"
            | b"??"
            | b"???"
            | b"tbd"
            | b"tba"
            | b"not available"
            | b"not applicable"
            | b"not set"
            | b"undefined"
            | b"empty"
            | b"blank"
            | b"k.a."
            | b"k. a."
            | b"unbekannt"
            | b"keine angabe"
            | b"inconnu"
            | b"inconnue"
            | b"non disponible"
            | b"n/d"
            | b"desconocido"
            | b"desconocida"
            | b"no disponible"
            | b"onbekend"
            | b"desconhecido"
            | b"desconhecida"
            | b"sconosciuto"
            | b"non disponibile"
    )
}

/// A whole number ("4", "4.0", "1,024"), or a product of two as inventories
/// write sockets × cores ("4 x 2", "2x4", "2 × 8", "4*2"); None for "4.5".
pub fn parse_integer(raw: &str) -> Option<i64> {
    if let Some(n) = parse_number(raw) {
        return (n.fract() == 0.0 && n.abs() < 9e15).then_some(n as i64);
    }
    let (a, b) = raw.trim().split_once(['x', 'X', '×', '*'])?;
    let whole = |t: &str| {
        let t = t.trim();
        (!t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<i64>().ok())
            .flatten()
    };
    whole(a)?.checked_mul(whole(b)?)
}

/// Booleans in the languages of the catalogue, and virtual/physical.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "ja" | "j" | "oui" | "si" | "sí" | "sim" | "wahr" | "vrai"
        | "waar" | "x" | "virtual" | "vm" | "virtuell" | "virtuel" | "virtueel" => Some(true),
        "false" | "no" | "n" | "0" | "nein" | "non" | "não" | "nao" | "falsch" | "faux"
        | "onwaar" | "physical" | "bare metal" | "baremetal" | "physisch" | "physique"
        | "físico" | "fisico" | "fysiek" => Some(false),
        _ => None,
    }
}

/// A date as ISO 8601 ("2024-03-01" or "2024-03-01T14:30:00"): ISO forms,
/// "01.03.2024" and "01/03/2024" (day first unless the day is > 12 second),
/// "2024/03/01", and Excel serial numbers.
pub fn parse_date(raw: &str) -> Option<String> {
    let s = raw.trim();
    parse_iso_date(s).or_else(|| parse_date_forms(s))
}

/// Any of the forms `parse_date` reads, day first when ambiguous.
fn parse_date_forms(s: &str) -> Option<String> {
    let (date_part, time_part) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let time = time_part
        .map(|t| t.trim_end_matches('Z'))
        .filter(|t| !t.is_empty())
        .and_then(|t| {
            let t = t.split(['+', '.']).next().unwrap_or(t);
            let parts: Vec<u32> = t
                .split(':')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            match parts.as_slice() {
                [h, m] if *h < 24 && *m < 60 => Some(format!("{h:02}:{m:02}:00")),
                [h, m, sec] if *h < 24 && *m < 60 && *sec < 60 => {
                    Some(format!("{h:02}:{m:02}:{sec:02}"))
                }
                _ => None,
            }
        });
    if time_part.is_some_and(|t| !t.is_empty()) && time.is_none() {
        return None;
    }
    let numbers: Vec<&str> = date_part.split(['-', '.', '/']).collect();
    let (y, m, d): (i32, u32, u32) = match numbers.as_slice() {
        [a, b, c] if a.len() == 4 => (a.parse().ok()?, b.parse().ok()?, c.parse().ok()?),
        [a, b, c] if c.len() == 4 || c.len() == 2 => {
            let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
            let y: i32 = c.parse().ok()?;
            let y = if c.len() == 2 { 2000 + y } else { y };
            // Day first (European) unless that is impossible.
            if b > 12 && a <= 12 {
                (y, a, b)
            } else {
                (y, b, a)
            }
        }
        [serial] if time_part.is_none() => return excel_serial(serial.parse().ok()?),
        _ => return None,
    };
    // Checked before narrowing: `01.257.2024` is no date, not January.
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !DATE_YEARS.contains(&y) {
        return None;
    }
    let date =
        time::Date::from_calendar_date(y, time::Month::try_from(m as u8).ok()?, d as u8).ok()?;
    let iso = format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    Some(match time {
        Some(t) if t != "00:00:00" => format!("{iso}T{t}"),
        _ => iso,
    })
}

/// `YYYY-MM-DD`, alone or with ` HH:MM:SS` or `THH:MM:SS`: the form most
/// exports write, read without splitting (a million rows carry several dates
/// each). `None` when it is not exactly that form; `parse_date` then tries
/// the others.
fn parse_iso_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let number = |at: std::ops::Range<usize>| -> Option<u32> {
        b[at].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if !(b.len() == 10 || b.len() == 19) || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !DATE_YEARS.contains(&(y as i32)) {
        return None;
    }
    time::Date::from_calendar_date(y as i32, time::Month::try_from(m as u8).ok()?, d as u8).ok()?;
    if b.len() == 10 {
        return Some(s.to_string());
    }
    if !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, min, sec) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if h >= 24 || min >= 60 || sec >= 60 {
        return None;
    }
    if (h, min, sec) == (0, 0, 0) {
        return Some(s[..10].to_string());
    }
    let mut iso = s.to_string();
    iso.replace_range(10..11, "T");
    Some(iso)
}

/// An Excel serial day number (1900 system) as a date; plausible range only.
fn excel_serial(serial: f64) -> Option<String> {
    if !(20_000.0..=80_000.0).contains(&serial) {
        return None;
    }
    let epoch = time::Date::from_calendar_date(1899, time::Month::December, 30).ok()?;
    let date = epoch.checked_add(time::Duration::days(serial.trunc() as i64))?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Splits a list of addresses ("10.0.0.1, 10.0.0.2", "a;b", "a | b", "a b").
pub fn split_list(raw: &str) -> Vec<&str> {
    raw.split([',', ';', '|', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Canonical text of an IPv4 or IPv6 address.
pub fn normalise_ip(raw: &str) -> Option<String> {
    let s = raw.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or(s); // zone id
                                              // An interface address with its prefix length ("10.0.0.5/24", as NetBox writes it).
    let s = match s.split_once('/') {
        Some((address, prefix))
            if !prefix.is_empty()
                && prefix.bytes().all(|b| b.is_ascii_digit())
                && prefix.len() <= 3 =>
        {
            address
        }
        _ => s,
    };
    s.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// A MAC in any notation as lower-case colon form.
pub fn normalise_mac(raw: &str) -> Option<String> {
    let hex: String = raw.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let separators_ok = raw
        .chars()
        .all(|c| c.is_ascii_hexdigit() || ":-. ".contains(c));
    if hex.len() != 12 || !separators_ok {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(
        (0..6)
            .map(|i| &hex[i * 2..i * 2 + 2])
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// A host name or FQDN, lower-case, without a trailing dot; None if it cannot be one.
pub fn normalise_host(raw: &str) -> Option<String> {
    let s = raw.trim().trim_end_matches('.').to_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    ok.then_some(s)
}

/// The short host name of an FQDN (not of an IP address).
pub fn short_name(host: &str) -> String {
    if normalise_ip(host).is_some() {
        return host.to_string();
    }
    host.split('.').next().unwrap_or(host).to_string()
}

/// Splits an OS string into (operating system, version) when the version is
/// embedded: "Microsoft Windows Server 2019 Datacenter" → ("Microsoft Windows
/// Server 2019 Datacenter", "2019"), "RHEL 8.6" → ("Red Hat Enterprise Linux", "8.6").
pub fn split_os(raw: &str) -> (String, Option<String>) {
    let s = raw.trim();
    let lower = s.to_lowercase();
    let families: &[(&str, &str)] = &[
        ("rhel", "Red Hat Enterprise Linux"),
        ("red hat enterprise linux", "Red Hat Enterprise Linux"),
        ("linux red hat", "Red Hat Enterprise Linux"),
        ("centos", "CentOS"),
        ("ubuntu", "Ubuntu"),
        ("debian", "Debian"),
        ("sles", "SUSE Linux Enterprise Server"),
        (
            "suse linux enterprise server",
            "SUSE Linux Enterprise Server",
        ),
        ("suse linux enterprise", "SUSE Linux Enterprise Server"),
        ("oracle linux", "Oracle Linux"),
        ("rocky", "Rocky Linux"),
        ("almalinux", "AlmaLinux"),
        ("aix", "AIX"),
        ("solaris", "Solaris"),
    ];
    if lower.contains("windows") {
        // Windows: the version is the product year ("2019", "2012 R2").
        let words: Vec<&str> = s.split_whitespace().collect();
        let version = words.iter().enumerate().find_map(|(i, w)| {
            let year = w.trim_matches(|c: char| !c.is_ascii_digit());
            (year.len() == 4 && year.starts_with("20")).then(|| match words.get(i + 1) {
                Some(r) if r.eq_ignore_ascii_case("r2") => format!("{year} R2"),
                _ => year.to_string(),
            })
        });
        return (s.to_string(), version);
    }
    for (prefix, name) in families {
        // Found in `s` itself: a lower-cased copy can differ in byte length
        // ("İ", the Kelvin sign), so its offsets are not offsets of `s`.
        if let Some(at) = find_ascii_ignoring_case(s, prefix) {
            let rest = &s[at + prefix.len()..];
            let version = rest
                .split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.'))
                // "(64-bit)" is the architecture, not the version.
                .find(|w| {
                    w.chars().next().is_some_and(|c| c.is_ascii_digit())
                        && !w.to_ascii_lowercase().ends_with("bit")
                })
                .map(|w| w.trim_end_matches('.').to_string());
            return (name.to_string(), version);
        }
    }
    (s.to_string(), None)
}

/// The byte offset in `haystack` of an ASCII `needle`, ignoring ASCII case.
fn find_ascii_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    // An ASCII needle can only match starting at an ASCII byte, which is
    // always a char boundary of `haystack`.
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Environment words → production, staging, test, development, disaster_recovery.
pub fn environment(raw: &str) -> Option<&'static str> {
    let s = raw.trim().to_lowercase();
    let s = s.trim_start_matches("env-").trim();
    Some(match s {
        "prod" | "prd" | "production" | "productive" | "live" | "produktion" | "produktiv"
        | "producción" | "produccion" | "productie" | "produção" | "producao" | "produzione"
        | "esercizio" | "p" => "production",
        "staging" | "stage" | "stg" | "preprod" | "pre-prod" | "pre-production" | "préprod"
        | "pré-production" | "preproducción" | "uat" | "acceptance" | "acceptatie"
        | "homologação" | "homologacao" | "abnahme" | "recette" | "collaudo" | "preproduzione" => {
            "staging"
        }
        "test" | "testing" | "tst" | "qa" | "int" | "integration" | "pruebas" | "teste"
        | "prova" | "testumgebung" | "t" => "test",
        "dev" | "development" | "develop" | "sandbox" | "lab" | "entwicklung" | "développement"
        | "developpement" | "desarrollo" | "ontwikkeling" | "desenvolvimento" | "sviluppo"
        | "d" => "development",
        "dr" | "disaster recovery" | "disaster_recovery" | "disaster-recovery" | "notfall"
        | "reprise" => "disaster_recovery",
        _ => return None,
    })
}

/// 6R words → rehost, replatform, refactor, rearchitect, repurchase, retire, retain.
pub fn six_r(raw: &str) -> Option<&'static str> {
    let s: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    Some(match s.as_str() {
        "rehost" | "liftandshift" | "relocate" | "migrate" => "rehost",
        "replatform" | "lifttinkerandshift" | "liftandreshape" => "replatform",
        "refactor" => "refactor",
        "rearchitect" | "rebuild" | "redesign" => "rearchitect",
        "repurchase" | "replace" | "saas" | "dropandshop" => "repurchase",
        "retire" | "decommission" | "decom" | "sunset" => "retire",
        "retain" | "keep" | "revisit" | "stay" => "retain",
        _ => return None,
    })
}

/// Criticality on a four-step scale: low, medium, high, critical. Tier 0/1 is
/// critical, tier 2 high, tier 3 medium, tier 4 low; 1..4 read as tiers.
pub fn criticality(raw: &str) -> Option<&'static str> {
    let s = raw.trim().to_lowercase();
    let s = s.trim_start_matches("tier").trim_start_matches(['-', ' ']);
    Some(match s {
        "0" | "1" | "critical" | "very high" | "mission critical" | "mission-critical"
        | "business critical" | "business-critical" | "kritisch" | "critique" | "crítica"
        | "critica" | "kritiek" => "critical",
        "2" | "high" | "hoch" | "élevé" | "elevee" | "alta" | "hoog" => "high",
        "3" | "medium" | "med" | "mittel" | "moyen" | "moyenne" | "media" | "média"
        | "gemiddeld" => "medium",
        "4" | "low" | "niedrig" | "faible" | "baja" | "baixa" | "laag" => "low",
        _ => return None,
    })
}

/// Asset type words → server, application, database, network, storage (a VM
/// is a server), or end_user_device (a desktop, laptop, workstation, ...).
pub fn asset_type(raw: &str) -> Option<&'static str> {
    let lower = raw.trim().to_lowercase();
    // ServiceNow classes: cmdb_ci_linux_server, cmdb_ci_db_mssql_instance, ...
    let s = lower.strip_prefix("cmdb_ci_").unwrap_or(&lower).to_string();
    let has = |w: &str| s.contains(w);
    Some(
        if has("database") || has("db_") || has("_db") || s == "db" || has("sql") {
            "database"
        } else if has("storage") || has("san") && s.len() <= 4 || has("nas") {
            "storage"
        } else if has("network")
            || has("router")
            || has("switch")
            || has("firewall")
            || has("load balancer")
            || has("netgear")
        {
            "network"
        } else if has("application")
            || has("app") && !has("appliance")
            || has("service") && !has("server")
        {
            "application"
        } else if !has("server") && is_end_user_word(&s) {
            crate::catalogue::END_USER_DEVICE
        } else if has("server")
            || has("vm")
            || has("virtual")
            || has("host")
            || has("computer")
            || has("linux")
            || has("windows")
            || has("machine")
            || has("instance")
        {
            "server"
        } else {
            return None;
        },
    )
}

/// The kind a machine's own values name when no column gives one: network
/// gear and storage arrays by their operating system, model or maker; an
/// end-user device by a client operating system (Windows 10/11, macOS, an
/// SCCM "NT Workstation", iOS, Android) or a laptop or desktop model. `None`
/// is a server (or unknown). Cisco alone is not enough (UCS blades are
/// servers), nor is a bare "iOS" with a Cisco model.
pub fn device_kind(
    operating_system: Option<&str>,
    os_version: Option<&str>,
    model: Option<&str>,
    manufacturer: Option<&str>,
) -> Option<&'static str> {
    const NETWORK_OS: &[&str] = &[
        "cisco ios",
        "ios-xe",
        "ios xe",
        "iosxe",
        "ios-xr",
        "ios xr",
        "nx-os",
        "nxos",
        "junos",
        "fortios",
        "pan-os",
        "panos",
        "arista eos",
        "aos-cx",
        "arubaos",
        "comware",
        "routeros",
        "vyos",
        "big-ip",
        "tmos",
        "gaia",
        "sonicos",
        "cumulus",
        "cisco asa",
        "ftd",
    ];
    const STORAGE_OS: &[&str] = &[
        "ontap",
        "purity",
        "onefs",
        "powerstoreos",
        "nimbleos",
        "3par os",
        "truenas",
        "diskstation",
        "spectrum virtualize",
        "svos",
        "unity os",
    ];
    const NETWORK_MODELS: &[&str] = &[
        "catalyst",
        "nexus",
        "meraki",
        "firepower",
        "fortigate",
        "big-ip",
        "procurve",
        "aruba",
        "powerswitch",
        "dcs-",
        "isr4",
        "asr1",
        "asr9",
        "asa55",
        "srx",
        "qfx",
        "palo alto",
        "router",
        "switch",
        "firewall",
        "load balancer",
        "wireless controller",
    ];
    const STORAGE_MODELS: &[&str] = &[
        "powerstore",
        "powermax",
        "powervault",
        "isilon",
        "xtremio",
        "vnx",
        "vmax",
        "data domain",
        "flasharray",
        "flashblade",
        "3par",
        "primera",
        "alletra",
        "nimble",
        "storeonce",
        "flashsystem",
        "storwize",
        "eternus",
        "diskstation",
        "rackstation",
        "synology",
        "qnap",
        "netapp",
        "storage array",
        "unity xt",
    ];
    const NETWORK_MAKERS: &[&str] = &[
        "juniper",
        "arista",
        "fortinet",
        "palo alto",
        "f5",
        "brocade",
        "extreme networks",
        "ubiquiti",
        "mikrotik",
        "check point",
        "checkpoint",
        "sonicwall",
        "ruckus",
        "riverbed",
        "aruba",
    ];
    const STORAGE_MAKERS: &[&str] = &[
        "netapp",
        "pure storage",
        "purestorage",
        "nimble storage",
        "synology",
        "qnap",
        "infinidat",
        "emc",
        "emc corporation",
        "hitachi vantara",
        "tintri",
    ];
    let lower = |v: Option<&str>| v.map(|s| s.trim().to_lowercase()).unwrap_or_default();
    let (os, model, maker) = (lower(operating_system), lower(model), lower(manufacturer));
    let any =
        |text: &str, words: &[&str]| !text.is_empty() && words.iter().any(|w| text.contains(w));
    // A maker is named as a whole ("Fortinet", "F5 Networks, Inc."), not a part of a word.
    let maker = maker
        .trim_end_matches(['.', ','])
        .trim_end_matches(" inc")
        .trim_end_matches(',');
    let maker_is = |words: &[&str]| {
        words.iter().any(|w| {
            maker
                .strip_prefix(w)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ',']))
        })
    };
    if any(&os, STORAGE_OS) || any(&model, STORAGE_MODELS) || maker_is(STORAGE_MAKERS) {
        return Some("storage");
    }
    let cisco_gear = maker_is(&["cisco", "cisco systems"])
        && !model.is_empty()
        && !any(&model, &["ucs", "hyperflex", "hx2"]);
    if any(&os, NETWORK_OS) || any(&model, NETWORK_MODELS)
        // Palo Alto's models: PA-3220, PA-5450.
        || model.starts_with("pa-")
        || maker_is(NETWORK_MAKERS) || cisco_gear
    {
        return Some("network");
    }
    // A server OS on a workstation model serves: it stays a server.
    if !os.contains("server")
        && (is_client_os(&os, &lower(os_version)) || any(&model, END_USER_MODELS))
    {
        return Some(crate::catalogue::END_USER_DEVICE);
    }
    None
}

/// Models sold as laptops, desktops and workstations (a word of the model).
const END_USER_MODELS: &[&str] = &[
    "latitude",
    "optiplex",
    "precision",
    "inspiron",
    "vostro",
    "xps",
    "thinkpad",
    "thinkcentre",
    "thinkstation",
    "ideapad",
    "ideacentre",
    "elitebook",
    "probook",
    "elitedesk",
    "prodesk",
    "zbook",
    "elite x2",
    "pavilion",
    "envy",
    "spectre",
    "macbook",
    "imac",
    "mac mini",
    "surface pro",
    "surface laptop",
    "surface book",
    "surface go",
    "chromebook",
    "travelmate",
    "expertbook",
    "vivobook",
    "zenbook",
    "iphone",
    "ipad",
    "galaxy",
    "pixel",
    "notebook",
    "laptop",
    "desktop",
    "workstation",
    "thin client",
];

/// Words a type column uses for an end-user device.
fn is_end_user_word(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "laptop",
        "notebook",
        "desktop",
        "workstation",
        "thin client",
        "end user",
        "end-user",
        "end_user",
        "enduser",
        "client device",
        "tablet",
        "mobile",
        "phone",
        "kiosk",
    ];
    WORDS.iter().any(|w| text.contains(w))
        || text
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "pc")
}

/// A client operating system: the Windows editions for desktops (never a
/// Server one), macOS, Chrome OS, iOS, iPadOS, Android. `version` is the
/// OS version column, read when the OS names only the family ("Windows",
/// "10").
fn is_client_os(os: &str, version: &str) -> bool {
    if os.is_empty() || os.contains("server") {
        return false;
    }
    const WINDOWS_CLIENTS: &[&str] = &[
        "windows 11",
        "windows 10",
        "windows 8",
        "windows 7",
        "windows vista",
        "windows xp",
        "windows 2000 professional",
        "win11",
        "win10",
        "win 11",
        "win 10",
        "nt workstation",
    ];
    if WINDOWS_CLIENTS.iter().any(|w| os.contains(w)) {
        return true;
    }
    let word = |w: &str| os.split(|c: char| !c.is_alphanumeric()).any(|x| x == w);
    if os.contains("windows") {
        let version = version.trim();
        // Builds only a client release ever had (Intune lists "Windows" with
        // "10.0.19045.3803"); 14393, 17763, 20348 and 26100 were servers too.
        const CLIENT_BUILDS: &[&str] = &[
            "10240", "10586", "15063", "16299", "17134", "18362", "18363", "19041", "19042",
            "19043", "19044", "19045", "22000", "22621", "22631",
        ];
        let build = version
            .strip_prefix("10.0.")
            .map(|rest| rest.split('.').next().unwrap_or(rest));
        if build.is_some_and(|b| CLIENT_BUILDS.contains(&b)) {
            return true;
        }
        return matches!(version, "10" | "11" | "7" | "8" | "8.1" | "xp" | "vista")
            || version.starts_with("10 ")
            || version.starts_with("11 ")
            || version.contains("21h2")
            || version.contains("22h2")
            || version.contains("23h2")
            || version.contains("24h2");
    }
    os.contains("macos")
        || os.contains("mac os")
        || os.starts_with("os x")
        || os.contains("chrome os")
        || os.contains("chromeos")
        || os.contains("ipados")
        || word("android")
        || word("ios")
}

/// The asset type a table's title (its file name and sheet) gives every row
/// that names no type of its own: "switches.csv", a sheet "Storage Arrays".
/// A title that also speaks of servers gives none.
pub fn table_kind(title: &str) -> Option<&'static str> {
    const NETWORK: &[&str] = &[
        "switch",
        "switches",
        "router",
        "routers",
        "firewall",
        "firewalls",
        "network",
        "networking",
        "netzwerk",
        "reseau",
        "réseau",
        "loadbalancers",
    ];
    const STORAGE: &[&str] = &[
        "storage",
        "arrays",
        "nas",
        "speicher",
        "stockage",
        "almacenamiento",
        "armazenamento",
    ];
    const MACHINES: &[&str] = &[
        "server",
        "servers",
        "vm",
        "vms",
        "host",
        "hosts",
        "machines",
        "computers",
        "workstations",
        "laptops",
        "vinfo",
    ];
    let lower = title.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    match (has(NETWORK), has(STORAGE), has(MACHINES)) {
        (true, false, false) => Some("network"),
        (false, true, false) => Some("storage"),
        _ => None,
    }
}

/// A size as sizes are stored (rounded like every parsed size).
pub fn round_size(v: f64) -> f64 {
    round(v)
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A JSON number that is whole when it can be.
pub fn number_value(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_written_as_a_product() {
        assert_eq!(parse_integer("4 x 2"), Some(8));
        assert_eq!(parse_integer("2x4"), Some(8));
        assert_eq!(parse_integer("2 × 8"), Some(16));
        assert_eq!(parse_integer("4*2"), Some(8));
        assert_eq!(parse_integer("4"), Some(4));
        assert_eq!(parse_integer("x4"), None);
        assert_eq!(parse_integer("0x1F"), None);
        assert_eq!(parse_integer("4.5"), None);
    }

    #[test]
    fn compact_sizes_macs_and_thousands() {
        assert_eq!(parse_size("16G", Some("MB"), None).unwrap().0, 16.0);
        assert_eq!(parse_number("1,546.6"), Some(1546.6));
        assert_eq!(
            normalise_mac("001A2B3C4D5E").as_deref(),
            Some("00:1a:2b:3c:4d:5e")
        );
    }

    #[test]
    fn numbers_as_written() {
        assert_eq!(parse_number("1.234,50"), Some(1234.5));
        assert_eq!(parse_number("1,234.50"), Some(1234.5));
        assert_eq!(parse_number("2.750,00 €"), Some(2750.0));
        assert_eq!(parse_number("$99"), Some(99.0));
        assert_eq!(parse_number("1 234"), Some(1234.0));
        assert_eq!(parse_number("0,35"), Some(0.35));
        assert_eq!(parse_number("12,5"), Some(12.5));
        assert_eq!(parse_number("1,234"), Some(1234.0));
        assert_eq!(parse_number("CHF 1'250.75"), Some(1250.75));
        assert_eq!(parse_number("n/a"), None);
    }

    #[test]
    fn sizes_in_gb() {
        assert_eq!(parse_size("16 GB", Some("MB"), None).unwrap().0, 16.0);
        assert_eq!(parse_size("16384", Some("MB"), None).unwrap().0, 16.0);
        assert_eq!(parse_size("16384", Some("MiB"), None).unwrap().0, 16.0);
        assert_eq!(parse_size("512MiB", None, None).unwrap().0, 0.5);
        assert_eq!(parse_size("2 TB", Some("GB"), None).unwrap().0, 2048.0);
        assert_eq!(parse_size("16", Some("auto"), None).unwrap().0, 16.0);
        assert_eq!(parse_size("8192", Some("auto"), None).unwrap().0, 8.0);
        assert_eq!(parse_size("1.024,5", Some("GB"), None).unwrap().0, 1024.5);
        let (v, warning) = parse_size("16", Some("MB"), Some(256.0)).unwrap();
        assert_eq!(v, 16.0);
        assert_eq!(warning.unwrap().0, "implausible_unit");
        assert_eq!(
            parse_size("lots", Some("GB"), None).unwrap_err().0,
            "not_a_size"
        );
        assert_eq!(
            parse_size("16 furlongs", Some("GB"), None).unwrap_err().0,
            "unknown_unit"
        );
    }

    #[test]
    fn booleans_dates_percentages() {
        for t in ["Yes", "TRUE", "ja", "Oui", "x", "Virtual", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["no", "False", "nein", "Physical", "0", "non"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_date("2024-03-01"), Some("2024-03-01".into()));
        assert_eq!(
            parse_date("2024-03-01 14:30:05"),
            Some("2024-03-01T14:30:05".into())
        );
        assert_eq!(
            parse_date("2021-01-10T08:00:00Z"),
            Some("2021-01-10T08:00:00".into())
        );
        assert_eq!(parse_date("01.03.2024"), Some("2024-03-01".into()));
        assert_eq!(parse_date("03/25/2024"), Some("2024-03-25".into()));
        assert_eq!(parse_date("2024/03/01"), Some("2024-03-01".into()));
        assert_eq!(parse_date("45352"), Some("2024-03-01".into()));
        assert_eq!(parse_date("31.02.2024"), None);
        assert_eq!(parse_date("2024-02-30 10:00:00"), None);
        assert_eq!(parse_date("2024-03-01T00:00:00"), Some("2024-03-01".into()));
        assert_eq!(parse_date("soon"), None);
        assert_eq!(parse_percent("35 %"), Some(35.0));
        assert_eq!(parse_percent("12,5"), Some(12.5));
    }

    #[test]
    fn addresses_and_names() {
        assert_eq!(normalise_ip(" 10.0.0.1 "), Some("10.0.0.1".into()));
        assert_eq!(
            normalise_ip("2001:DB8:0:0:0:0:0:1"),
            Some("2001:db8::1".into())
        );
        assert_eq!(normalise_ip("fe80::1%eth0"), Some("fe80::1".into()));
        assert_eq!(normalise_ip("10.0.0.300"), None);
        assert_eq!(
            split_list("10.0.0.1, 10.0.0.2;10.0.0.3"),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        for mac in [
            "00:1A:2B:3C:4D:5E",
            "00-1a-2b-3c-4d-5e",
            "001a.2b3c.4d5e",
            "001A2B3C4D5E",
        ] {
            assert_eq!(
                normalise_mac(mac),
                Some("00:1a:2b:3c:4d:5e".into()),
                "{mac}"
            );
        }
        assert_eq!(normalise_mac("00:1A:2B"), None);
        assert_eq!(
            normalise_host("Web01.Corp.Example.COM."),
            Some("web01.corp.example.com".into())
        );
        assert_eq!(short_name("web01.corp.example.com"), "web01");
        assert_eq!(normalise_host("not a host"), None);
    }

    #[test]
    fn operating_systems_split() {
        assert_eq!(
            split_os("Microsoft Windows Server 2019 Datacenter"),
            (
                "Microsoft Windows Server 2019 Datacenter".into(),
                Some("2019".into())
            )
        );
        assert_eq!(
            split_os("Windows Server 2012 R2 Standard").1,
            Some("2012 R2".into())
        );
        assert_eq!(
            split_os("RHEL 8.6"),
            ("Red Hat Enterprise Linux".into(), Some("8.6".into()))
        );
        assert_eq!(
            split_os("Red Hat Enterprise Linux 8 (64-bit)"),
            ("Red Hat Enterprise Linux".into(), Some("8".into()))
        );
        assert_eq!(
            split_os("Ubuntu 22.04 LTS"),
            ("Ubuntu".into(), Some("22.04".into()))
        );
        assert_eq!(
            split_os("SUSE Linux Enterprise Server 15 SP4"),
            ("SUSE Linux Enterprise Server".into(), Some("15".into()))
        );
        assert_eq!(split_os("Linux"), ("Linux".into(), None));
        assert_eq!(split_os("Ubuntu Linux (64-bit)"), ("Ubuntu".into(), None));
    }

    #[test]
    fn vocabularies() {
        assert_eq!(environment("PROD"), Some("production"));
        assert_eq!(environment("Entwicklung"), Some("development"));
        assert_eq!(environment("UAT"), Some("staging"));
        assert_eq!(environment("QA"), Some("test"));
        assert_eq!(environment("DR"), Some("disaster_recovery"));
        assert_eq!(environment("Producción"), Some("production"));
        assert_eq!(environment("banana"), None);
        assert_eq!(six_r("Lift and Shift"), Some("rehost"));
        assert_eq!(six_r("Re-Platform"), Some("replatform"));
        assert_eq!(six_r("Decommission"), Some("retire"));
        assert_eq!(criticality("Tier 1"), Some("critical"));
        assert_eq!(criticality("Tier 3"), Some("medium"));
        assert_eq!(criticality("hoch"), Some("high"));
        assert_eq!(asset_type("cmdb_ci_linux_server"), Some("server"));
        assert_eq!(asset_type("cmdb_ci_db_mssql_instance"), Some("database"));
        assert_eq!(asset_type("Virtual Machine"), Some("server"));
        assert_eq!(asset_type("Network Switch"), Some("network"));
    }

    #[test]
    fn network_gear_and_storage_are_known_by_their_own_values() {
        assert_eq!(
            device_kind(Some("Cisco IOS-XE 17.9"), None, None, None),
            Some("network")
        );
        assert_eq!(
            device_kind(None, None, Some("Catalyst 9300-48P"), Some("Cisco")),
            Some("network")
        );
        assert_eq!(
            device_kind(None, None, Some("UCS C240 M5"), Some("Cisco Systems")),
            None
        );
        assert_eq!(
            device_kind(None, None, Some("SRX345"), Some("Juniper Networks")),
            Some("network")
        );
        assert_eq!(
            device_kind(None, None, None, Some("F5 Networks, Inc.")),
            Some("network")
        );
        assert_eq!(
            device_kind(Some("NetApp ONTAP 9.12"), None, None, None),
            Some("storage")
        );
        assert_eq!(
            device_kind(None, None, Some("FlashArray//X70"), Some("Pure Storage")),
            Some("storage")
        );
        assert_eq!(
            device_kind(None, None, Some("PowerStore 1000T"), Some("Dell EMC")),
            Some("storage")
        );
        // Servers, phones and a maker inside another word are not gear.
        assert_eq!(
            device_kind(None, None, Some("PowerEdge R740"), Some("Dell EMC")),
            None
        );
        assert_eq!(
            device_kind(Some("iOS 17.2"), None, Some("iPhone 14"), Some("Apple")),
            Some("end_user_device")
        );
        assert_eq!(
            device_kind(
                Some("Windows Server 2019"),
                None,
                None,
                Some("Hewlett Packard Enterprise")
            ),
            None
        );
        assert_eq!(device_kind(None, None, None, Some("Elf5 Corp")), None);
        fn some(v: &str) -> Option<&str> {
            Some(v).filter(|v| !v.is_empty())
        }
        let kind = |os: &str, version: &str, model: &str| {
            device_kind(some(os), some(version), some(model), None)
        };
        let eud = Some("end_user_device");
        assert_eq!(kind("Microsoft Windows 10 Enterprise", "", ""), eud);
        assert_eq!(kind("Microsoft Windows NT Workstation 10.0", "", ""), eud);
        assert_eq!(kind("Microsoft Windows NT Server 10.0", "", ""), None);
        assert_eq!(kind("Windows", "11", ""), eud);
        assert_eq!(kind("Windows", "2019", ""), None);
        assert_eq!(kind("Windows", "10.0.19045.3803", ""), eud);
        assert_eq!(
            kind("Windows", "10.0.17763.5458", ""),
            None,
            "1809 or Server 2019"
        );
        assert_eq!(kind("macOS Sonoma", "14.4", ""), eud);
        assert_eq!(kind("Android", "14", ""), eud);
        assert_eq!(kind("", "", "Latitude 5440"), eud);
        assert_eq!(kind("", "", "HP EliteBook 840 G9"), eud);
        assert_eq!(kind("Windows Server 2022", "", "ThinkStation P620"), None);
        assert_eq!(kind("Ubuntu 22.04", "", "PowerEdge R650"), None);
        assert_eq!(asset_type("Laptop"), eud);
        assert_eq!(asset_type("Desktop PC"), eud);
        assert_eq!(asset_type("cmdb_ci_pc_hardware"), eud);
        assert_eq!(asset_type("Windows Server"), Some("server"));
    }

    #[test]
    fn a_table_title_names_its_rows_kind() {
        assert_eq!(table_kind("core_switches.csv"), Some("network"));
        assert_eq!(
            table_kind("inventory.xlsx / Network Devices"),
            Some("network")
        );
        assert_eq!(table_kind("hosts.xlsx / Network"), None);
        assert_eq!(table_kind("Storage Arrays.csv"), Some("storage"));
        assert_eq!(table_kind("servers_and_storage.xlsx"), None);
        assert_eq!(table_kind("san_francisco_office.csv"), None);
        assert_eq!(table_kind("cmdb_ci_server.csv"), None);
        // Only the file's own name counts, not the directories it is in.
        let title = crate::stage::tables::title("/mnt/storage/network/export.csv", None);
        assert_eq!(table_kind(&title), None);
        let title = crate::stage::tables::title("exports/switches.xlsx", Some("Core"));
        assert_eq!(table_kind(&title), Some("network"));
    }

    #[test]
    fn unknown_is_missing_and_impossible_dates_are_no_dates() {
        for marker in [
            "N/A",
            "unknown",
            "-",
            "TBD",
            "  null ",
            "<none>",
            "Unbekannt",
            "sconosciuto",
        ] {
            assert!(means_missing(marker, FieldKind::Text), "{marker}");
        }
        assert!(means_missing("-1", FieldKind::Size));
        assert!(!means_missing("-1", FieldKind::Text));
        assert!(!means_missing("NA", FieldKind::Text), "North America");
        assert!(!means_missing("web01", FieldKind::Name));
        assert_eq!(parse_date("01.257.2024"), None);
        assert_eq!(parse_date("0001-01-01"), None);
        assert_eq!(parse_date("1899-12-31"), None);
        assert_eq!(parse_date("31.12.9999"), Some("9999-12-31".into()));
        assert_eq!(parse_date("2024-12-31 23:59:60"), None);
    }

    #[test]
    fn os_names_whose_lower_case_is_longer_are_split() {
        assert_eq!(split_os("İrhel"), ("Red Hat Enterprise Linux".into(), None));
        assert_eq!(
            split_os("\u{212a}\u{212a}\u{212a}rhel 8"),
            ("Red Hat Enterprise Linux".into(), Some("8".into()))
        );
        assert_eq!(split_os("ȺȾRHEL 9.2 ẞ").1, Some("9.2".into()));
    }

    #[test]
    fn the_iso_fast_path_reads_dates_as_every_form_is_read() {
        for text in [
            "2024-03-01",
            "2024-03-01 14:30:05",
            "2024-03-01T14:30:05",
            "2024-03-01 00:00:00",
            "2024-12-31 23:59:60",
            "2024-02-29 08:00:00",
            "2023-02-29",
            "2024-13-01",
            "2024-03-01 24:00:00",
            "2024-03-01 12:60:00",
            "2024-03-01x12:00:00",
            "2024-3-01 12:00:00",
        ] {
            assert_eq!(
                parse_iso_date(text).or_else(|| parse_date_forms(text)),
                parse_date_forms(text),
                "{text}"
            );
        }
    }
}
