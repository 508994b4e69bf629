//! What a header says when it is not an alias as written: its words
//! (camelCase, snake_case, dots and brackets split by `catalogue::tokens`,
//! units and "optional" dropped), a vendor's custom-field prefix stripped
//! (`u_`, `x_vendor_app_`, `cf_`, `custom_`), glued words split
//! (`macaddr`), abbreviations expanded (`mem`, `ver`, `addr`, `phys`, `qty`,
//! `sn`, `no.` ...), plurals made singular and filler words set aside. The
//! catalogue's aliases are read the same way, so `Mem %` finds `Memory %`
//! and `TotalPhysical_Memory_GB` finds `Memory`. An alias as written stays
//! the strongest header evidence; these matches score below it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use crate::catalogue::{self, AliasHit};

/// Abbreviations and their words, as they appear in exports.
const ABBREVIATIONS: &[(&str, &[&str])] = &[
    ("mem", &["memory"]),
    ("memsize", &["memory"]),
    ("ver", &["version"]),
    ("vers", &["version"]),
    ("addr", &["address"]),
    ("adr", &["address"]),
    ("phys", &["physical"]),
    ("proc", &["processor"]),
    ("procs", &["processor"]),
    ("cpus", &["cpu"]),
    ("vcpus", &["vcpu"]),
    ("hdd", &["disk"]),
    ("hd", &["disk"]),
    ("disks", &["disk"]),
    ("nic", &["network", "adapter"]),
    ("nics", &["network", "adapter"]),
    ("sn", &["serial", "number"]),
    ("ser", &["serial"]),
    ("no", &["number"]),
    ("nr", &["number"]),
    ("nbr", &["number"]),
    ("num", &["number"]),
    ("qty", &["quantity"]),
    ("env", &["environment"]),
    ("desc", &["description"]),
    ("descr", &["description"]),
    ("loc", &["location"]),
    ("dept", &["department"]),
    ("mfr", &["manufacturer"]),
    ("mfg", &["manufacturer"]),
    ("manuf", &["manufacturer"]),
    ("app", &["application"]),
    ("apps", &["application"]),
    ("srv", &["server"]),
    ("svr", &["server"]),
    ("util", &["utilization"]),
    ("utilisation", &["utilization"]),
    ("usage", &["utilization"]),
    ("pct", &["percent"]),
    ("perc", &["percent"]),
    ("percentage", &["percent"]),
    ("freq", &["frequency"]),
    ("hw", &["hardware"]),
    ("sw", &["software"]),
    ("avg", &["average"]),
    ("tot", &["total"]),
    ("cap", &["capacity"]),
    ("ips", &["ip"]),
    ("macs", &["mac"]),
    ("hostname", &["host", "name"]),
    ("servername", &["server", "name"]),
    ("osname", &["os", "name"]),
    ("osversion", &["os", "version"]),
    ("ipaddress", &["ip", "address"]),
    ("macaddress", &["mac", "address"]),
    ("serialnumber", &["serial", "number"]),
];

/// Words that carry no meaning of their own in a header.
const STOP_WORDS: &[&str] = &[
    "of", "the", "a", "an", "de", "du", "des", "la", "le", "el", "del", "di", "da", "do", "der",
    "die", "das", "van", "het",
];

/// Words a header may add around the words that name its field
/// (`Total Memory`, `Installed RAM`, `Primary IP list`).
const FILLER_WORDS: &[&str] = &[
    "total",
    "physical",
    "installed",
    "current",
    "configured",
    "allocated",
    "provisioned",
    "amount",
    "value",
    "size",
    "list",
    "primary",
    "main",
    "info",
    "information",
    "detail",
    "field",
    "machine",
    "system",
    "asset",
    "device",
    "server",
    "ethernet",
    "lan",
    "family",
    "component",
    "array",
    "appliance",
    "node",
];

/// A header's words: stop words dropped, abbreviations expanded, glued
/// words split, singular.
pub fn words(header: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in catalogue::tokens(header) {
        for word in expand(&token) {
            let word = singular(&word);
            if STOP_WORDS.contains(&word.as_str()) {
                continue;
            }
            // "Operating system" is written "OS" as often as not.
            if word == "system" && out.last().is_some_and(|w| w == "operating") {
                *out.last_mut().expect("checked") = "os".to_string();
                continue;
            }
            out.push(word);
        }
    }
    out
}

fn expand(token: &str) -> Vec<String> {
    if let Some((_, words)) = ABBREVIATIONS.iter().find(|(a, _)| *a == token) {
        return words.iter().map(|w| (*w).to_string()).collect();
    }
    if VOCABULARY.contains(token) || token.len() < 6 {
        return vec![token.to_string()];
    }
    split_glued(token).unwrap_or_else(|| vec![token.to_string()])
}

/// "macaddr" → mac, address: the token as two known words or abbreviations.
fn split_glued(token: &str) -> Option<Vec<String>> {
    (3..=token.len().saturating_sub(2)).find_map(|cut| {
        let (left, right) = token.split_at(cut);
        let known = |w: &str| VOCABULARY.contains(w) || ABBREVIATIONS.iter().any(|(a, _)| *a == w);
        (known(left) && known(right)).then(|| {
            let mut words = expand_known(left);
            words.extend(expand_known(right));
            words
        })
    })
}

fn expand_known(word: &str) -> Vec<String> {
    match ABBREVIATIONS.iter().find(|(a, _)| *a == word) {
        Some((_, words)) => words.iter().map(|w| (*w).to_string()).collect(),
        None => vec![word.to_string()],
    }
}

fn singular(word: &str) -> String {
    if word.len() > 4 && word.ends_with("sses") {
        word[..word.len() - 2].to_string()
    } else if word.len() > 4 && word.ends_with("ies") {
        format!("{}y", &word[..word.len() - 3])
    } else if word.len() > 3
        && word.ends_with('s')
        && !["ss", "us", "is", "os", "xs"]
            .iter()
            .any(|e| word.ends_with(e))
    {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    }
}

/// The words of every alias, to split glued header words with.
static VOCABULARY: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut vocabulary = HashSet::new();
    for field in catalogue::FIELDS {
        for alias in field.aliases {
            for token in catalogue::tokens(alias.trim_start_matches('~')) {
                vocabulary.insert(token.clone());
                vocabulary.insert(singular(&token));
            }
        }
    }
    for (_, words) in ABBREVIATIONS {
        vocabulary.extend(words.iter().map(|w| (*w).to_string()));
    }
    // Words that are not aliases alone but make up headers.
    for w in [
        "address", "number", "list", "total", "used", "free", "count",
    ] {
        vocabulary.insert(w.to_string());
    }
    vocabulary
});

/// The set of an alias's words → the aliases with that set.
static WORD_INDEX: LazyLock<HashMap<BTreeSet<String>, Vec<AliasHit>>> = LazyLock::new(|| {
    let mut index: HashMap<BTreeSet<String>, Vec<AliasHit>> = HashMap::new();
    for (_, hit) in catalogue::all_aliases() {
        let set: BTreeSet<String> = words(hit.alias).into_iter().collect();
        if set.is_empty() {
            continue;
        }
        let hits = index.entry(set).or_default();
        if !hits.iter().any(|h| h.field.name == hit.field.name) {
            hits.push(*hit);
        }
    }
    index
});

/// How a header was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Its words are an alias's words.
    SameWords,
    /// Its words are an alias's words once filler words are set aside.
    WithFiller,
    /// The label under a group ("Server - Name") is an alias; the group may
    /// change what it means ("Owner - Name"), so this alone is a suggestion.
    UnderGroup,
}

/// The aliases a header's words name, and how they were found: the header as
/// it is, then without a vendor prefix, then without filler words.
pub fn understand(header: &str) -> Option<(Reading, &'static [AliasHit], String)> {
    let all = words(header);
    let mut variants: Vec<(Vec<String>, &'static str)> = vec![(all.clone(), "")];
    let lower = header.trim().to_ascii_lowercase();
    let prefixed = ["u_", "x_", "cf_", "custom_"]
        .iter()
        .find(|p| lower.starts_with(*p));
    if let Some(prefix) = prefixed {
        // A ServiceNow scoped field is x_<vendor>_<app>_<field>: try the field
        // after one, two and three leading words.
        let drop = if *prefix == "x_" { 1..=3 } else { 1..=1 };
        let tokens = words(&header.trim()[prefix.len()..]);
        for skip in drop.map(|d| d - 1) {
            if tokens.len() > skip {
                variants.push((tokens[skip..].to_vec(), "a custom-field prefix"));
            }
        }
    }
    // "Processor model/name": either alternative, with the words before it.
    if let Some((before, after)) = header
        .split_once('/')
        .filter(|(b, a)| !b.trim().is_empty() && !a.trim().is_empty() && !a.contains('/'))
    {
        let before = words(before);
        let after = words(after);
        if let (Some((_, lead)), false) = (before.split_last(), after.is_empty()) {
            variants.push((before.clone(), "the alternative after '/'"));
            let mut other = lead.to_vec();
            other.extend(after);
            variants.push((other, "the alternative before '/'"));
        }
    }
    for (words, dropped) in &variants {
        let set: BTreeSet<String> = words.iter().cloned().collect();
        if let Some(hits) = WORD_INDEX.get(&set) {
            let how = if dropped.is_empty() {
                format!("its words are {}", join(&set))
            } else {
                format!("without {dropped} its words are {}", join(&set))
            };
            return Some((Reading::SameWords, hits.as_slice(), how));
        }
    }
    // "Number of sockets in a processor": what is counted, without where.
    if let Some(at) = all.iter().position(|w| w == "in").filter(|&at| at > 0) {
        let head = all[..at].to_vec();
        let set: BTreeSet<String> = head.iter().cloned().collect();
        if let Some(hits) = WORD_INDEX.get(&set) {
            let how = format!("its words before 'in' are {}", join(&set));
            return Some((Reading::WithFiller, hits.as_slice(), how));
        }
    }
    for (words, _) in &variants {
        let set: BTreeSet<String> = words
            .iter()
            .filter(|w| !FILLER_WORDS.contains(&w.as_str()))
            .cloned()
            .collect();
        if set.is_empty() || set.len() == words.len() {
            continue;
        }
        if let Some(hits) = WORD_INDEX.get(&set) {
            let how = format!("its words without filler are {}", join(&set));
            return Some((Reading::WithFiller, hits.as_slice(), how));
        }
    }
    // "Server - Name", "Memory|Usage (%)": a field under its group's label.
    let (_, label) = header
        .rsplit_once(" - ")
        .or_else(|| header.rsplit_once('|'))?;
    let set: BTreeSet<String> = words(label).into_iter().collect();
    let hits = WORD_INDEX.get(&set)?;
    let how = format!("its label under the group is {}", join(&set));
    Some((Reading::UnderGroup, hits.as_slice(), how))
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn understood(header: &str) -> Option<&'static str> {
        let (_, hits, _) = understand(header)?;
        hits.iter().find(|h| !h.weak).map(|h| h.field.name)
    }

    #[test]
    fn abbreviations_prefixes_and_glued_words_are_read() {
        for (header, field) in [
            ("OS Ver", "os_version"),
            ("Mem %", "memory_utilization_percent"),
            ("macaddr", "mac_address"),
            ("ip_list", "ip_address"),
            ("disk_total_gb", "storage_gb"),
            ("PhysicalCores", "cpu_cores"),
            ("TotalPhysical_Memory_GB", "memory_gb"),
            ("u_rack", "rack_location"),
            ("u_monthly_cost", "current_monthly_cost"),
            ("x_acme_cmdb_serial_number", "serial_number"),
            ("cf_location", "location"),
            ("Serial No.", "serial_number"),
            ("Mfr", "manufacturer"),
            ("Processor model/name", "cpu_model"),
            ("Number of sockets in a processor", "cpu_sockets"),
            ("Array Name", "name"),
        ] {
            assert_eq!(understood(header), Some(field), "{header}");
        }
    }

    #[test]
    fn words_that_change_the_field_are_kept() {
        // A percentage is not a size, a used size is not a capacity.
        assert_ne!(understood("Mem %"), Some("memory_gb"));
        assert_ne!(understood("Disk used GB"), Some("storage_gb"));
        assert_eq!(understood("Favourite colour"), None);
        // What follows "in" is where, not what: a used size stays used.
        assert_eq!(understood("Disk used in GB"), Some("storage_used_gb"));
        assert_ne!(understood("Cores per socket"), Some("cpu_cores"));
    }
}
