//! Scoring: for each source column, the candidate asset fields with a
//! confidence and a match type (rule, learned, exact, alias, fuzzy, content),
//! adjusted by what the column's values look like, then one field per column
//! and one column per field, the best first. The evidence for each decision is
//! kept in words.

use serde::Serialize;
use serde_json::{json, Value};

use super::header_words;
use super::profile::{ColumnProfile, Pattern};
use super::rules::{ColumnRule, Rules};
use crate::catalogue::{self, Field, FieldKind};
use crate::read::layout::Layout;

/// How a suggestion was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    Rule,
    Learned,
    Exact,
    Alias,
    Fuzzy,
    Content,
    Manual,
    None,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Rule => "rule",
            MatchType::Learned => "learned",
            MatchType::Exact => "exact",
            MatchType::Alias => "alias",
            MatchType::Fuzzy => "fuzzy",
            MatchType::Content => "content",
            MatchType::Manual => "manual",
            MatchType::None => "none",
        }
    }
}

/// The review state of a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Suggested,
    Approved,
    Rejected,
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Suggested => "suggested",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Ignored => "ignored",
        }
    }
}

/// Thresholds of a mapping run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Settings {
    /// At or above: approved without review.
    pub auto_approve: f64,
    /// Below: the column is left unmapped (its values go to custom_attributes).
    pub floor: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auto_approve: 0.85,
            floor: 0.5,
        }
    }
}

/// The decision for one source column.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub source: String,
    pub target: Option<&'static str>,
    pub confidence: f64,
    pub match_type: MatchType,
    pub status: Status,
    pub transformation_rules: Value,
    pub evidence: Vec<String>,
}

/// Header evidence scores.
const RULE: f64 = 1.0;
const LEARNED: f64 = 0.97;
const LAYOUT_ALIAS: f64 = 0.96;
const EXACT: f64 = 0.95;
const ALIAS: f64 = 0.92;
const WEAK_ALIAS: f64 = 0.70;
/// A header whose words are an alias's words (`OS Ver`, `u_rack`, `macaddr`).
const SAME_WORDS: f64 = 0.90;
/// The same once filler words are set aside (`TotalPhysical_Memory_GB`).
const WITH_FILLER: f64 = 0.86;
/// A label under a group whose words are an alias's ("Server - Name").
const UNDER_GROUP: f64 = 0.80;
/// What a header's candidate reaches when its values are of a kind only that
/// field holds (environment names, IP addresses, OS names, UUIDs ...).
const CONFIRMED: f64 = 0.90;
const FUZZY_MIN_SIMILARITY: f64 = 0.88;
/// The highest a fuzzy match scores, below the default auto-approve threshold.
const FUZZY_MAX: f64 = 0.84;
/// What values that fit the field add, and what values that contradict it keep.
const SUPPORT_BONUS: f64 = 0.05;
const CONTRADICTION_FACTOR: f64 = 0.5;

#[derive(Debug, Clone)]
struct Candidate {
    column: usize,
    field: &'static Field,
    score: f64,
    match_type: MatchType,
    evidence: Vec<String>,
    rules: Value,
}

/// Everything known about one import's columns.
pub struct Inputs<'a> {
    pub columns: &'a [String],
    pub profiles: &'a [ColumnProfile],
    pub layout: Option<Layout>,
    pub rules: &'a Rules,
    /// Normalised header → field approved earlier for this client.
    pub learned: &'a std::collections::HashMap<String, String>,
    pub settings: Settings,
    /// The table had no header row: values are all there is to go by.
    pub headerless: bool,
    /// The file name and sheet: "applications.xlsx / Portfolio".
    pub title: &'a str,
}

/// Suggests a field for each column.
pub fn suggest(inputs: &Inputs) -> Vec<Suggestion> {
    let mut candidates = Vec::new();
    let mut fixed: Vec<Option<Suggestion>> = vec![None; inputs.columns.len()];
    for (i, header) in inputs.columns.iter().enumerate() {
        let profile = inputs.profiles.get(i);
        match inputs.rules.column(header) {
            Some(ColumnRule::Ignore { line }) => {
                fixed[i] = Some(Suggestion {
                    source: header.clone(),
                    target: None,
                    confidence: RULE,
                    match_type: MatchType::Rule,
                    status: Status::Ignored,
                    transformation_rules: json!({}),
                    evidence: vec![format!("ignored by the rules file (line {line})")],
                });
                continue;
            }
            Some(ColumnRule::Map {
                field,
                transform,
                line,
            }) => {
                let mut rules = transform_rules(field, header, inputs);
                merge(&mut rules, transform);
                candidates.push(Candidate {
                    column: i,
                    field,
                    score: RULE,
                    match_type: MatchType::Rule,
                    evidence: vec![format!("set by the rules file (line {line})")],
                    rules,
                });
                continue;
            }
            None => {}
        }
        header_candidates(i, header, inputs, &mut candidates);
        if let Some(profile) = profile {
            content_candidates(i, profile, inputs.headerless, &mut candidates);
        }
    }
    // Values confirm or contradict what the header says.
    for candidate in &mut candidates {
        if matches!(candidate.match_type, MatchType::Rule | MatchType::Content) {
            continue;
        }
        if let Some(profile) = inputs.profiles.get(candidate.column) {
            match content_fit(candidate.field, profile) {
                Fit::Confirms(why) if candidate.match_type != MatchType::Fuzzy => {
                    // A header and values that say the same thing: approved
                    // even when the header alone was ambiguous.
                    candidate.score = (candidate.score + SUPPORT_BONUS).clamp(CONFIRMED, 0.99);
                    candidate.evidence.push(why);
                }
                Fit::Confirms(why) | Fit::Supports(why) => {
                    // A resemblance is never enough to approve without review.
                    let cap = if candidate.match_type == MatchType::Fuzzy {
                        FUZZY_MAX
                    } else {
                        0.99
                    };
                    candidate.score = (candidate.score + SUPPORT_BONUS).min(cap);
                    candidate.evidence.push(why);
                }
                Fit::Contradicts(why) => {
                    candidate.score *= CONTRADICTION_FACTOR;
                    candidate.evidence.push(format!(
                        "{why}: the values contradict {}",
                        candidate.field.name
                    ));
                }
                Fit::Neutral(Some(why)) => candidate.evidence.push(why),
                Fit::Neutral(None) => {}
            }
        }
    }
    let mut suggestions = assign(inputs, candidates, fixed);
    name_of_an_application_list(inputs, &mut suggestions);
    numbered_disks(inputs, &mut suggestions);
    if inputs.headerless {
        approve_by_neighbours(&mut suggestions, inputs.profiles);
        domain_of_the_users(&mut suggestions, inputs.profiles);
    }
    for (suggestion, profile) in suggestions.iter_mut().zip(inputs.profiles) {
        suggestion.evidence.push(format!(
            "profile: {}, {:.0}% empty, {:.0}% distinct over {} rows",
            profile.inferred_type(),
            profile.null_share * 100.0,
            profile.distinct_share * 100.0,
            profile.rows
        ));
    }
    suggestions
}

fn header_candidates(i: usize, header: &str, inputs: &Inputs, out: &mut Vec<Candidate>) {
    let key = catalogue::normalise_header(header);
    if key.is_empty() {
        return;
    }
    // (field, score, match type, evidence), strongest kind of evidence first.
    let mut hits: Vec<(&'static Field, f64, MatchType, String)> = Vec::new();
    if let Some(field) = inputs
        .learned
        .get(&key)
        .and_then(|name| catalogue::field(name))
    {
        hits.push((
            field,
            LEARNED,
            MatchType::Learned,
            format!(
                "approved earlier for this client: '{header}' → {}",
                field.name
            ),
        ));
    }
    if let Some((field, note)) = layout_alias(inputs.layout, &key) {
        hits.push((field, LAYOUT_ALIAS, MatchType::Alias, note));
    }
    // Exact: the field's own name in any case and punctuation ("OS Version",
    // "memory_gb", "Memory GB"), units included.
    let literal: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if let Some(field) = catalogue::FIELDS
        .iter()
        .find(|f| f.name.replace('_', "") == literal)
    {
        hits.push((
            field,
            EXACT,
            MatchType::Exact,
            format!("the header is the field name {}", field.name),
        ));
    }
    for hit in catalogue::alias_hits(header) {
        let (score, strength) = if hit.weak {
            (WEAK_ALIAS, "an ambiguous")
        } else {
            (ALIAS, "a known")
        };
        hits.push((
            hit.field,
            score,
            MatchType::Alias,
            format!(
                "'{header}' is {strength} header for {} ('{}')",
                hit.field.name, hit.alias
            ),
        ));
    }
    if hits.is_empty() {
        if let Some((reading, understood, how)) = header_words::understand(header) {
            for hit in understood {
                let score = match (reading, hit.weak) {
                    (_, true) => WEAK_ALIAS,
                    (header_words::Reading::SameWords, false) => SAME_WORDS,
                    (header_words::Reading::WithFiller, false) => WITH_FILLER,
                    (header_words::Reading::UnderGroup, false) => UNDER_GROUP,
                };
                hits.push((
                    hit.field,
                    score,
                    MatchType::Alias,
                    format!(
                        "'{header}' reads as '{}' ({how}) for {}",
                        hit.alias, hit.field.name
                    ),
                ));
            }
        }
    }
    if hits.is_empty() {
        // Fuzzy: the closest alias by Jaro-Winkler on normalised text.
        let mut best: Option<(f64, &'static Field, &str)> = None;
        for (alias, hit) in catalogue::all_aliases() {
            if alias.len() < 4 || hit.weak {
                continue; // short keys ("ip", "dc") match too much by similarity
            }
            let similarity = strsim::jaro_winkler(&key, alias);
            if similarity >= FUZZY_MIN_SIMILARITY && best.is_none_or(|(s, _, _)| similarity > s) {
                best = Some((similarity, hit.field, hit.alias));
            }
        }
        if let Some((similarity, field, alias)) = best {
            let score = (0.55 + (similarity - FUZZY_MIN_SIMILARITY) * 2.5).min(FUZZY_MAX);
            hits.push((
                field,
                score,
                MatchType::Fuzzy,
                format!(
                    "'{header}' resembles '{alias}' ({:.0}% similar)",
                    similarity * 100.0
                ),
            ));
        }
    }
    for (field, score, match_type, evidence) in hits {
        if out
            .iter()
            .any(|c| c.column == i && c.field.name == field.name)
        {
            continue; // a stronger kind of evidence already named this field
        }
        out.push(Candidate {
            column: i,
            field,
            score,
            match_type,
            evidence: vec![evidence],
            rules: transform_rules(field, header, inputs),
        });
    }
}

/// Headers whose meaning the recognised layout fixes (RVTools' `Host` is the ESXi
/// host, ServiceNow's `used_for` is the closest thing to an environment).
fn layout_alias(layout: Option<Layout>, key: &str) -> Option<(&'static Field, String)> {
    let table: &[(&str, &str)] = match layout? {
        Layout::Rvtools => &[
            ("vm", "name"),
            ("host", "virtualization_host"),
            ("dnsname", "fqdn"),
            ("cpus", "cpu_cores"),
            // RVTools 4.1 vInfo counts vCPUs as "# CPU" (vHost, supplementary, counts sockets).
            ("numcpu", "cpu_cores"),
            ("memory", "memory_gb"),
            ("vmid", "external_id"),
            ("annotation", "description"),
            ("osaccordingtotheconfigurationfile", "operating_system"),
        ],
        Layout::Servicenow => &[
            ("name", "name"),
            ("ram", "memory_gb"),
            ("diskspace", "storage_gb"),
            ("sysclassname", "asset_type"),
            ("class", "asset_type"),
        ],
        Layout::AwsMigrationHub => &[
            ("vmwarevmname", "name"),
            ("hostname", "hostname"),
            ("applications", "application_name"),
        ],
        Layout::AzureMigrate => &[("servername", "name"), ("servertype", "is_virtual")],
        Layout::GoogleMigrationCenter => &[("machinename", "name"), ("machineid", "external_id")],
        // Relationship exports are not mapped to asset fields.
        Layout::ServicenowRelationships | Layout::RelationshipList => &[],
    };
    let (_, name) = table.iter().find(|(k, _)| *k == key)?;
    let field = catalogue::field(name)?;
    Some((
        field,
        format!("{} exports name {} this way", layout?.label(), field.name),
    ))
}

fn content_candidates(
    i: usize,
    profile: &ColumnProfile,
    headerless: bool,
    out: &mut Vec<Candidate>,
) {
    if profile.filled < 3 {
        return; // too few values to judge a column by them alone
    }
    let rules: &[(Pattern, f64, &str, f64)] = &[
        (Pattern::Mac, 0.9, "mac_address", 0.80),
        (Pattern::Ipv4, 0.9, "ip_address", 0.80),
        (Pattern::Ipv6, 0.9, "ip_address", 0.78),
        (Pattern::Fqdn, 0.9, "fqdn", 0.78),
        (Pattern::Uuid, 0.9, "vm_uuid", 0.60),
        (Pattern::OsName, 0.8, "operating_system", 0.75),
        (Pattern::Environment, 0.8, "environment", 0.78),
        (Pattern::SixR, 0.8, "six_r_strategy", 0.80),
        (Pattern::PowerState, 0.8, "power_state", 0.75),
        (Pattern::VirtualPhysical, 0.8, "is_virtual", 0.70),
        // Only where there is no header: distinct numbered names are the
        // machines' names, versions beside an OS column its version, and
        // letters-and-digits codes serial numbers (suggested, not approved).
        (Pattern::NumberedName, 0.9, "name", 0.75),
        // Host-like words without a digit ("RECEPTION-PC"): a name only
        // when nearly every one is distinct (see below).
        (Pattern::ShortHost, 0.9, "name", 0.70),
        (Pattern::Version, 0.9, "os_version", 0.60),
        (Pattern::SerialCode, 0.8, "serial_number", 0.60),
        // Makers and model families from the catalogue's vocabularies.
        (Pattern::Maker, 0.8, "manufacturer", 0.80),
        (Pattern::ModelFamily, 0.7, "model", 0.75),
        // A device export's one date is most often when it was last seen
        // (SCCM's last activity, Intune's last check-in): suggested, for review.
        (Pattern::Date, 0.9, "last_discovered_at", 0.60),
    ];
    for &(pattern, min_share, field, score) in rules {
        let share = profile.share(pattern);
        if share < min_share || out.iter().any(|c| c.column == i && c.field.name == field) {
            continue;
        }
        let header_only = matches!(
            pattern,
            Pattern::NumberedName
                | Pattern::ShortHost
                | Pattern::Date
                | Pattern::Version
                | Pattern::SerialCode
                | Pattern::Maker
                | Pattern::ModelFamily
        );
        if header_only && !headerless {
            continue;
        }
        // A name column holds one name per machine: a repeated code (a
        // site, a domain) is not one.
        if field == "name" && profile.distinct_share < 0.9 {
            continue;
        }
        // A column of makers or models is neither names nor serials.
        if matches!(
            pattern,
            Pattern::NumberedName | Pattern::ShortHost | Pattern::SerialCode
        ) && profile
            .share(Pattern::Maker)
            .max(profile.share(Pattern::ModelFamily))
            >= 0.5
        {
            continue;
        }
        // A column of serial numbers is not the machines' names.
        if matches!(pattern, Pattern::NumberedName | Pattern::ShortHost)
            && profile.share(Pattern::SerialCode) >= 0.5
        {
            continue;
        }
        // Without a header, values of a kind only one field holds decide:
        // they are approved (names only when nearly every one is distinct).
        let score = match pattern {
            _ if !headerless => score,
            Pattern::Mac | Pattern::Ipv4 | Pattern::Fqdn | Pattern::OsName => CONFIRMED,
            Pattern::NumberedName if profile.distinct_share >= 0.9 => CONFIRMED,
            // The leftmost column of distinct host-like words: where exports put the name.
            Pattern::ShortHost if i == 0 && profile.distinct_share >= 0.95 => CONFIRMED,
            Pattern::Maker if share >= 0.9 => CONFIRMED,
            Pattern::ModelFamily if share >= 0.8 => CONFIRMED,
            _ => score,
        };
        let field = catalogue::field(field).expect("content rules name catalogue fields");
        out.push(Candidate {
            column: i,
            field,
            score,
            match_type: MatchType::Content,
            evidence: vec![format!(
                "{:.0}% of {} values look like {} (e.g. {})",
                share * 100.0,
                profile.filled,
                pattern_words(pattern),
                profile.samples.first().map(String::as_str).unwrap_or("")
            )],
            rules: json!({}),
        });
    }
}

fn pattern_words(p: Pattern) -> &'static str {
    match p {
        Pattern::Ipv4 => "IPv4 addresses",
        Pattern::Ipv6 => "IPv6 addresses",
        Pattern::Mac => "MAC addresses",
        Pattern::Fqdn => "fully qualified domain names",
        Pattern::ShortHost => "host names",
        Pattern::Uuid => "UUIDs",
        Pattern::OsName => "operating system names",
        Pattern::SizeWithUnit => "sizes with a unit",
        Pattern::Integer => "whole numbers",
        Pattern::Decimal => "numbers",
        Pattern::Percent => "percentages",
        Pattern::Boolean => "yes/no values",
        Pattern::Date => "dates",
        Pattern::Version => "version numbers",
        Pattern::Environment => "environment names",
        Pattern::SixR => "6R strategies",
        Pattern::Criticality => "criticality levels",
        Pattern::PowerState => "power states",
        Pattern::VirtualPhysical => "virtual/physical",
        Pattern::Email => "e-mail addresses",
        Pattern::ManagementService => "device-management services",
        Pattern::NumberedName => "numbered names",
        Pattern::SerialCode => "serial numbers",
        Pattern::Maker => "hardware makers",
        Pattern::ModelFamily => "machine models",
    }
}

enum Fit {
    /// The values are of a kind only this field holds.
    Confirms(String),
    Supports(String),
    Contradicts(String),
    Neutral(Option<String>),
}

/// Whether the values of a column fit a field.
fn content_fit(field: &Field, p: &ColumnProfile) -> Fit {
    if p.filled == 0 {
        return Fit::Neutral(Some("the column has no values".into()));
    }
    let share_of =
        |patterns: &[Pattern]| -> f64 { patterns.iter().map(|x| p.share(*x)).fold(0.0, f64::max) };
    let judge = |share: f64, words: &str, support: f64, contradict: f64| {
        let pct = share * 100.0;
        if share >= support {
            Fit::Supports(format!("{pct:.0}% of values are {words}"))
        } else if share < contradict && p.filled >= 3 {
            Fit::Contradicts(format!("only {pct:.0}% of values are {words}"))
        } else {
            Fit::Neutral(Some(format!("{pct:.0}% of values are {words}")))
        }
    };
    // Support by values of a kind only this field holds confirms the header.
    let confirm = |share: f64, words: &str, support: f64, contradict: f64| match judge(
        share, words, support, contradict,
    ) {
        Fit::Supports(why) => Fit::Confirms(why),
        other => other,
    };
    let numeric = share_of(&[Pattern::Integer, Pattern::Decimal]);
    let addresses = p.share(Pattern::Ipv4) + p.share(Pattern::Ipv6);
    match (field.kind, field.name) {
        (FieldKind::IpAddress, _) => confirm(addresses, "IP addresses", 0.8, 0.3),
        (FieldKind::MacAddress, _) => confirm(p.share(Pattern::Mac), "MAC addresses", 0.8, 0.3),
        (FieldKind::Fqdn, _) => {
            if p.share(Pattern::Ipv4) >= 0.5 {
                Fit::Contradicts(format!(
                    "{:.0}% of values are IP addresses",
                    p.share(Pattern::Ipv4) * 100.0
                ))
            } else {
                confirm(p.share(Pattern::Fqdn), "fully qualified names", 0.6, 0.05)
            }
        }
        // A name is whatever the source calls the machine: a host name, an
        // IP address (machines added by address), a compound CI name. Only
        // values that cannot be names contradict it.
        (FieldKind::Name, _) => {
            if numeric >= 0.8 || p.share(Pattern::Date) >= 0.8 || p.share(Pattern::Boolean) >= 0.8 {
                Fit::Contradicts("the values are numbers, dates or yes/no, not names".into())
            } else {
                let hosts = p.share(Pattern::ShortHost) + p.share(Pattern::Fqdn) + addresses;
                if hosts >= 0.8 {
                    Fit::Supports(format!(
                        "{:.0}% of values are host names or addresses",
                        hosts * 100.0
                    ))
                } else {
                    Fit::Neutral(Some(format!(
                        "{:.0}% of values are host names or addresses",
                        hosts * 100.0
                    )))
                }
            }
        }
        // A host identifier: a host name, or the address a host was added by.
        (FieldKind::Hostname, _) => {
            if numeric >= 0.8 {
                Fit::Contradicts("the values are numbers, not host names".into())
            } else {
                judge(
                    p.share(Pattern::ShortHost) + p.share(Pattern::Fqdn) + addresses,
                    "host names or addresses",
                    0.8,
                    0.2,
                )
            }
        }
        (FieldKind::Uuid, _) => confirm(p.share(Pattern::Uuid), "UUIDs", 0.8, 0.3),
        (FieldKind::Integer | FieldKind::Decimal, _) => judge(numeric, "numbers", 0.8, 0.3),
        (FieldKind::Size, _) => judge(
            share_of(&[Pattern::Integer, Pattern::Decimal, Pattern::SizeWithUnit]),
            "sizes",
            0.8,
            0.3,
        ),
        (FieldKind::Percent, _) => judge(
            share_of(&[Pattern::Integer, Pattern::Decimal, Pattern::Percent]),
            "percentages",
            0.8,
            0.3,
        ),
        (FieldKind::Boolean, _) => judge(
            share_of(&[Pattern::Boolean, Pattern::VirtualPhysical, Pattern::Integer]),
            "yes/no values",
            0.8,
            0.3,
        ),
        (FieldKind::Date, _) => confirm(p.share(Pattern::Date), "dates", 0.7, 0.2),
        (FieldKind::OperatingSystem, _) => {
            if p.share(Pattern::Ipv4) >= 0.5 || numeric >= 0.8 {
                Fit::Contradicts("the values are addresses or numbers".into())
            } else {
                confirm(p.share(Pattern::OsName), "operating system names", 0.5, 0.1)
            }
        }
        (FieldKind::Version, _) => judge(
            share_of(&[Pattern::Version, Pattern::Integer, Pattern::Decimal]),
            "version numbers",
            0.5,
            0.1,
        ),
        (FieldKind::Enumerated, "environment") => {
            confirm(p.share(Pattern::Environment), "environment names", 0.6, 0.2)
        }
        (FieldKind::Enumerated, "six_r_strategy") => {
            confirm(p.share(Pattern::SixR), "6R strategies", 0.6, 0.2)
        }
        (FieldKind::Enumerated, "criticality") => judge(
            share_of(&[Pattern::Criticality, Pattern::Integer]),
            "criticality levels",
            0.6,
            0.2,
        ),
        // People are named by their e-mail address as often as by name; a
        // device-management service (Intune's "Managed by") is no person.
        (FieldKind::Text, "business_owner" | "technical_owner") => {
            if p.share(Pattern::ManagementService) >= 0.5 {
                Fit::Contradicts(format!(
                    "{:.0}% of values are device-management services, not people",
                    p.share(Pattern::ManagementService) * 100.0
                ))
            } else if p.share(Pattern::Email) >= 0.6 {
                Fit::Confirms(format!(
                    "{:.0}% of values are e-mail addresses",
                    p.share(Pattern::Email) * 100.0
                ))
            } else {
                Fit::Neutral(None)
            }
        }
        (FieldKind::Text | FieldKind::Enumerated, _) => {
            // A text field holding addresses is a wrong match ("Host" full of IPs is fine
            // for a host, but not "Location" full of MACs).
            let technical = share_of(&[Pattern::Ipv4, Pattern::Mac, Pattern::Uuid]);
            if technical >= 0.9
                && !matches!(
                    field.name,
                    "external_id" | "cmdb_record_id" | "serial_number" | "asset_tag"
                )
                // A hypervisor added to vCenter by address is named by it.
                && !(field.name == "virtualization_host" && addresses >= 0.9)
            {
                Fit::Contradicts(format!(
                    "{:.0}% of values are addresses or UUIDs",
                    technical * 100.0
                ))
            } else {
                Fit::Neutral(None)
            }
        }
    }
}

fn transform_rules(field: &Field, header: &str, inputs: &Inputs) -> Value {
    rules_for(field, header, inputs.layout, inputs.columns)
}

/// The transformation rules of a field mapped from `header`: the unit the values
/// are in, list handling, and the known quirks of the recognised layout.
pub fn rules_for(field: &Field, header: &str, layout: Option<Layout>, columns: &[String]) -> Value {
    let mut rules = serde_json::Map::new();
    let key = catalogue::normalise_header(header);
    match field.kind {
        FieldKind::Size => {
            let unit = catalogue::header_unit(header)
                .filter(|u| *u != "percent")
                .or(match (layout, key.as_str()) {
                    (Some(Layout::Rvtools), _) => Some("MiB"),
                    (Some(Layout::Servicenow), "ram") => Some("MB"),
                    (Some(Layout::Servicenow), "diskspace") => Some("GB"),
                    _ => None,
                });
            match unit {
                Some(unit) => {
                    rules.insert("from_unit".into(), json!(unit));
                }
                // No unit anywhere: cleansing decides per value (16 is GB, 16384 is MB).
                None => {
                    rules.insert("from_unit".into(), json!("auto"));
                }
            }
            rules.insert("to_unit".into(), json!("GB"));
            if layout == Some(Layout::AwsMigrationHub) {
                // AWS's RAM.TotalSizeInMB sometimes holds GB: flag values too small to be MB.
                rules.insert("flag_below".into(), json!(256));
            }
        }
        FieldKind::Percent => {
            rules.insert("unit".into(), json!("percent"));
        }
        FieldKind::IpAddress | FieldKind::MacAddress => {
            rules.insert("list".into(), json!("first_is_primary"));
        }
        FieldKind::Boolean if key == "isphysical" => {
            rules.insert("invert".into(), json!(true));
        }
        _ => {}
    }
    if field.name == "cpu_cores" && layout == Some(Layout::Servicenow) && key == "cpucorecount" {
        // ServiceNow's cpu_core_count is cores per CPU: total = cpu_count × cpu_core_count.
        if let Some(count) = columns
            .iter()
            .find(|c| catalogue::normalise_header(c) == "cpucount")
        {
            rules.insert("multiply_by".into(), json!(count));
        }
    }
    Value::Object(rules)
}

fn merge(into: &mut Value, from: &Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// One field per column and one column per field, best score first (ties: the
/// earlier column). A column that loses its field keeps its best suggestion as
/// `suggested`; one with nothing above the floor stays unmapped.
fn assign(
    inputs: &Inputs,
    mut candidates: Vec<Candidate>,
    mut fixed: Vec<Option<Suggestion>>,
) -> Vec<Suggestion> {
    candidates.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.match_type.cmp(&b.match_type))
            .then(a.column.cmp(&b.column))
    });
    let mut taken: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for candidate in &candidates {
        if fixed[candidate.column].is_some() || candidate.score < inputs.settings.floor {
            continue;
        }
        if let Some(&holder) = taken.get(candidate.field.name) {
            let _ = holder;
            continue;
        }
        taken.insert(candidate.field.name, candidate.column);
        let status = if candidate.score >= inputs.settings.auto_approve {
            Status::Approved
        } else {
            Status::Suggested
        };
        fixed[candidate.column] = Some(Suggestion {
            source: inputs.columns[candidate.column].clone(),
            target: Some(candidate.field.name),
            confidence: round(candidate.score),
            match_type: candidate.match_type,
            status,
            transformation_rules: candidate.rules.clone(),
            evidence: candidate.evidence.clone(),
        });
    }
    // A header that named another field whose values contradict it is part of
    // the story of the final decision.
    for (i, decided) in fixed.iter_mut().enumerate() {
        if let Some(s) = decided {
            for c in candidates
                .iter()
                .filter(|c| c.column == i && Some(c.field.name) != s.target)
            {
                if let Some(why) = c.evidence.iter().find(|e| e.contains("contradict")) {
                    s.evidence.push(format!("not {}: {why}", c.field.name));
                }
            }
        }
    }
    fixed
        .into_iter()
        .enumerate()
        .map(|(i, decided)| {
            decided.unwrap_or_else(|| {
                let header = &inputs.columns[i];
                let best = candidates.iter().find(|c| c.column == i);
                match best {
                    Some(best) if best.score >= inputs.settings.floor => {
                        let holder = taken
                            .get(best.field.name)
                            .map(|&c| inputs.columns[c].as_str())
                            .unwrap_or("another column");
                        let mut evidence = best.evidence.clone();
                        evidence.push(format!("{} is taken by '{holder}', which scored higher", best.field.name));
                        Suggestion {
                            source: header.clone(),
                            target: Some(best.field.name),
                            confidence: round(best.score),
                            match_type: best.match_type,
                            status: Status::Suggested,
                            transformation_rules: best.rules.clone(),
                            evidence,
                        }
                    }
                    Some(best) => {
                        let mut evidence = best.evidence.clone();
                        evidence.push(format!(
                            "best guess {} scored {:.2}, below the floor {:.2}; the values are kept in custom_attributes",
                            best.field.name, best.score, inputs.settings.floor
                        ));
                        Suggestion {
                            source: header.clone(),
                            target: None,
                            confidence: round(best.score),
                            match_type: MatchType::None,
                            status: Status::Suggested,
                            transformation_rules: json!({}),
                            evidence,
                        }
                    }
                    None => Suggestion {
                        source: header.clone(),
                        target: None,
                        confidence: 0.0,
                        match_type: MatchType::None,
                        status: Status::Suggested,
                        transformation_rules: json!({}),
                        evidence: vec!["no asset field matches the header or the values; the values are kept in custom_attributes".into()],
                    },
                }
            })
        })
        .collect()
}

/// In a table without a header, two content suggestions are approved by the
/// columns around them: versions right after an approved OS column are its
/// version, and letters-and-digits codes, one per row, beside an approved
/// machine name are the machines' serial numbers.
fn approve_by_neighbours(suggestions: &mut [Suggestion], profiles: &[ColumnProfile]) {
    let approved =
        |s: &Suggestion, field: &str| s.status == Status::Approved && s.target == Some(field);
    let named = suggestions.iter().any(|s| approved(s, "name"));
    for i in 0..suggestions.len() {
        let s = &suggestions[i];
        if s.status != Status::Suggested || s.match_type != MatchType::Content {
            continue;
        }
        let why = match s.target {
            Some("os_version") if i > 0 && approved(&suggestions[i - 1], "operating_system") => {
                format!(
                    "the column before, '{}', holds the operating system",
                    suggestions[i - 1].source
                )
            }
            Some("serial_number")
                if named && profiles.get(i).is_some_and(|p| p.distinct_share >= 0.95) =>
            {
                "one distinct code per machine of a table whose names are approved".to_string()
            }
            _ => continue,
        };
        let s = &mut suggestions[i];
        s.status = Status::Approved;
        s.confidence = CONFIRMED;
        s.evidence.push(format!("approved without a header: {why}"));
    }
}

/// Without a header, a column of one or a few short words that another
/// column's values start with, followed by a backslash ("CONTOSO" beside
/// "CONTOSO\jsmith"), is the machines' Windows domain.
fn domain_of_the_users(suggestions: &mut [Suggestion], profiles: &[ColumnProfile]) {
    if suggestions
        .iter()
        .any(|s| s.target == Some("domain") && s.status == Status::Approved)
    {
        return;
    }
    for (i, profile) in profiles.iter().enumerate() {
        if suggestions[i].target.is_some()
            || profile.filled < 3
            || profile.share(Pattern::ShortHost) < 0.9
            || profile.distinct_share > 0.5
        {
            continue;
        }
        let prefixed = profiles.iter().enumerate().any(|(j, other)| {
            j != i
                && !other.samples.is_empty()
                && other.samples.iter().filter(|v| !v.is_empty()).all(|v| {
                    profile.samples.iter().any(|d| {
                        v.len() > d.len() + 1
                            && v[..d.len()].eq_ignore_ascii_case(d)
                            && v.as_bytes()[d.len()] == b'\\'
                    })
                })
        });
        if !prefixed {
            continue;
        }
        let s = &mut suggestions[i];
        s.target = Some("domain");
        s.status = Status::Approved;
        s.confidence = CONFIRMED;
        s.match_type = MatchType::Content;
        s.evidence.push(format!(
            "approved without a header: '{}' is the DOMAIN of DOMAIN\\user in another column",
            profile.samples[0]
        ));
        return;
    }
}

/// Fields a row of an application list may carry besides its name and the
/// descriptive fields: the product's vendor and version, its dates, where it runs.
const ALSO_ON_APPLICATIONS: &[&str] = &[
    "manufacturer",
    "os_version",
    "end_of_life_date",
    "end_of_support_date",
    "estimated_cloud_cost",
    "location",
    "datacenter",
    "first_discovered_at",
    "last_discovered_at",
];

/// Words of a table title that say it lists applications.
const APPLICATION_TITLE_WORDS: &[&str] = &[
    "application",
    "applications",
    "apps",
    "portfolio",
    "catalog",
    "catalogue",
    "aplicaciones",
    "applicazioni",
    "anwendungen",
    "applicaties",
    "aplicacoes",
    "aplicações",
    "apm",
];

/// A `Name` column is an application's name, not a machine's, when nothing
/// else in the table names a machine, every other approved field is one an
/// application has, and its values are not host names: an application list
/// in English ("Name, Description, Business Owner, Criticality").
fn name_of_an_application_list(inputs: &Inputs, suggestions: &mut [Suggestion]) {
    let mut name = None;
    for (i, s) in suggestions.iter().enumerate() {
        match s.target {
            Some("name") if s.status == Status::Approved => name = Some(i),
            Some(field) if s.status == Status::Approved => {
                let fits_an_application = catalogue::APPLICATION_FIELDS.contains(&field)
                    || ALSO_ON_APPLICATIONS.contains(&field);
                if !fits_an_application {
                    return;
                }
            }
            _ => {}
        }
    }
    let Some(i) = name else { return };
    let Some(profile) = inputs.profiles.get(i) else {
        return;
    };
    if matches!(
        suggestions[i].match_type,
        MatchType::Rule | MatchType::Learned
    ) || profile.filled < 2
    {
        return;
    }
    let host_like = [
        Pattern::NumberedName,
        Pattern::Fqdn,
        Pattern::Ipv4,
        Pattern::Ipv6,
    ]
    .iter()
    .map(|p| profile.share(*p))
    .fold(0.0, f64::max);
    let title = inputs.title.to_lowercase();
    let titled = title
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| APPLICATION_TITLE_WORDS.contains(&w));
    // Host names are one word; application names often are several.
    let spaced = profile.share(Pattern::ShortHost) < 0.7;
    if host_like >= 0.3 || !(spaced || titled) {
        return;
    }
    let field = catalogue::field("application_name").expect("application_name is in the catalogue");
    let s = &mut suggestions[i];
    s.target = Some(field.name);
    s.transformation_rules = rules_for(field, &s.source, inputs.layout, inputs.columns);
    s.evidence.push(format!(
        "an application list: nothing else in the table names a machine and the values are not host names ({:.0}% host-like{}), so they name applications",
        host_like * 100.0,
        if titled { ", and the table's title says so" } else { "" }
    ));
}

/// "Disk 1 size (In GB)", "Disk 2 size (In GB)" ... (Azure Migrate's import
/// template and many scripts): one column per disk. The machine's storage
/// is their sum: the first disk's column maps to storage_gb and adds the
/// others (`plus_columns`), which map to nothing. Left alone when the rules
/// file decided, or another column already holds storage_gb approved.
fn numbered_disks(inputs: &Inputs, suggestions: &mut [Suggestion]) {
    static DISK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)^\s*(?:virtual\s*)?disk\s*[_#-]?\s*(\d{1,2})\s*[_-]?\s*(?:size|capacity|provisioned)\b")
            .expect("the pattern is valid")
    });
    let mut disks: Vec<(u32, usize)> = inputs
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let n = DISK.captures(h)?.get(1)?.as_str().parse().ok()?;
            Some((n, i))
        })
        .collect();
    if disks.len() < 2
        || disks
            .iter()
            .any(|&(_, i)| matches!(suggestions[i].match_type, MatchType::Rule))
    {
        return;
    }
    let elsewhere = suggestions.iter().enumerate().any(|(i, s)| {
        s.target == Some("storage_gb")
            && s.status == Status::Approved
            && !disks.iter().any(|&(_, d)| d == i)
    });
    if elsewhere {
        return;
    }
    disks.sort();
    let (_, first) = disks[0];
    let others: Vec<String> = disks[1..]
        .iter()
        .map(|&(_, i)| inputs.columns[i].clone())
        .collect();
    let field = catalogue::field("storage_gb").expect("storage_gb is in the catalogue");
    let mut rules = rules_for(field, &inputs.columns[first], inputs.layout, inputs.columns);
    if let Some(map) = rules.as_object_mut() {
        map.insert("plus_columns".into(), json!(others));
    }
    let s = &mut suggestions[first];
    s.target = Some(field.name);
    s.status = Status::Approved;
    s.confidence = CONFIRMED;
    s.match_type = MatchType::Alias;
    s.transformation_rules = rules;
    s.evidence.push(format!(
        "one column per disk ({} of them): storage_gb is their sum",
        disks.len()
    ));
    for &(_, i) in &disks[1..] {
        let s = &mut suggestions[i];
        s.target = None;
        s.status = Status::Suggested;
        s.confidence = 0.0;
        s.match_type = MatchType::None;
        s.transformation_rules = json!({});
        s.evidence.push(format!(
            "added into storage_gb by '{}'",
            inputs.columns[first]
        ));
    }
}

fn round(score: f64) -> f64 {
    (score * 1000.0).round() / 1000.0
}
