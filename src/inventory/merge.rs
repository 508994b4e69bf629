//! How the records of one machine become one asset: records are applied
//! oldest import first; a newer value from the same source replaces the
//! older, and between sources the precedence of `rank` decides (live
//! discovery for infrastructure fields, the CMDB and hand-made sheets for
//! business fields). The losing value is kept in custom_attributes._conflicts
//! with its source; columns mapped to no field are kept as custom attributes.
//!
//! A machine's kind comes from evidence about it: a type column or its own
//! values (OS, model, maker), set by cleansing. A table's title ("Network",
//! "storage.csv") types a machine only when nothing else does and no table
//! without that title describes it (`TitleEvidence`): a Storage or Network
//! sheet adding detail to servers listed on a Compute sheet never makes
//! them storage or network. Types that disagree are settled like any field,
//! the loser kept in `_conflicts` with its source.

use std::borrow::Cow;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{json, Map, Value};

use crate::catalogue;
use crate::json_entries::{Entries, Key};

use super::SourceTable;

/// Fields where the CMDB and hand-made sheets outrank discovery tools.
pub(super) const BUSINESS_FIELDS: &[&str] = &[
    "business_owner",
    "technical_owner",
    "department",
    "cost_center",
    "support_group",
    "application_name",
    "technology_stack",
    "business_unit",
    "data_classification",
    "environment",
    "criticality",
    "six_r_strategy",
    "migration_wave",
    "migration_priority",
    "migration_complexity",
    "description",
    "location",
    "status",
    "asset_tag",
    "cmdb_record_id",
    "name",
];

pub(super) fn rank(source: &str, field: &str) -> u8 {
    let business = BUSINESS_FIELDS.contains(&field);
    match (source, business) {
        ("servicenow", true) => 5,
        ("generic", true) => 4,
        (_, true) => 2,
        ("rvtools", false) => 5,
        ("google_migration_center" | "azure_migrate" | "aws_migration_hub", false) => 4,
        ("servicenow", false) => 3,
        _ => 2,
    }
}

#[derive(Default)]
pub(super) struct Build {
    /// (index into catalogue::FIELDS, value, where it came from): a record
    /// fills some forty fields, each looked up once, so a list beats a map.
    pub(super) fields: Vec<(usize, Value, Origin)>,
    pub(super) custom: Map<String, Value>,
    pub(super) conflicts: Map<String, Value>,
    /// What the titles of the machine's tables say of its kind.
    pub(super) title: TitleEvidence,
}

/// What the titles of the tables describing a machine say of its kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum TitleEvidence {
    /// No record merged yet.
    #[default]
    Unseen,
    /// Every table describing the machine has this title kind (or none).
    Agreed(Option<&'static str>),
    /// Tables with different titles describe it: none of them types it.
    Mixed,
}

impl TitleEvidence {
    pub(super) fn see(&mut self, kind: Option<&'static str>) {
        *self = match *self {
            TitleEvidence::Unseen => TitleEvidence::Agreed(kind),
            TitleEvidence::Agreed(seen) if seen == kind => TitleEvidence::Agreed(kind),
            _ => TitleEvidence::Mixed,
        };
    }

    /// The kind the titles give, when they all give the same one.
    pub(super) fn kind(self) -> Option<&'static str> {
        match self {
            TitleEvidence::Agreed(kind) => kind,
            _ => None,
        }
    }
}

impl Build {
    /// The extra values of a record's list fields (its IPs and MACs after
    /// the first), kept among the custom attributes.
    pub(super) fn keep_additional(&mut self, additional: Map<String, Value>) {
        for (field, list) in additional {
            self.custom
                .entry(format!("additional_{field}"))
                .or_insert(list);
        }
    }
}

/// A value's record: the table (an index into the run's tables) and its row.
#[derive(Clone, Copy)]
pub(super) struct Origin {
    pub(super) table: usize,
    pub(super) record_index: i64,
}

impl Origin {
    pub(super) fn describe(self, tables: &[SourceTable]) -> String {
        format!("{} row {}", tables[self.table].label, self.record_index)
    }
}

pub(super) fn merge(
    build: &mut Build,
    tables: &[SourceTable],
    origin: Origin,
    cleansed: &str,
    raw: Option<&str>,
) {
    let Entries(cleansed): Entries<Value> = serde_json::from_str(cleansed).unwrap_or_default();
    build.title.see(tables[origin.table].title_kind);
    merge_fields(build, tables, origin, cleansed);
    // Columns mapped to no field are kept under their original header.
    if tables[origin.table].unmapped.is_empty() {
        return;
    }
    let unmapped = unmapped_values(raw.unwrap_or("{}"), &tables[origin.table].unmapped);
    for (header, value) in unmapped {
        if !build.custom.contains_key(header) {
            build.custom.insert(header.to_string(), json!(value));
        }
    }
}

/// Merges a record's cleansed fields into its machine (see the module notes
/// for which value wins).
pub(super) fn merge_fields<K: AsRef<str>>(
    build: &mut Build,
    tables: &[SourceTable],
    origin: Origin,
    cleansed: impl IntoIterator<Item = (K, Value)>,
) {
    let table = &tables[origin.table];
    for (key, value) in cleansed {
        let key = key.as_ref();
        if key == "_additional" {
            if let Value::Object(additional) = value {
                build.keep_additional(additional);
            }
            continue;
        }
        let Some(index) = catalogue::field_index(key) else {
            continue;
        };
        let Some(at) = build.fields.iter().position(|f| f.0 == index) else {
            build.fields.push((index, value, origin));
            continue;
        };
        let (_, current, current_origin) = &build.fields[at];
        if *current == value {
            continue;
        }
        let name = catalogue::FIELDS[index].name;
        // Rows of one table that name several applications for one machine
        // (a server → application matrix): the machine runs them all.
        if name == "application_name" && current_origin.table == origin.table {
            if let (Value::String(current), Some(more)) = (&build.fields[at].1, value.as_str()) {
                let known = current
                    .split(',')
                    .any(|a| a.trim().eq_ignore_ascii_case(more.trim()));
                if !known && current.len() < 4096 {
                    build.fields[at].1 = Value::String(format!("{current}, {}", more.trim()));
                }
                continue;
            }
        }
        let current_system = &tables[current_origin.table].source_system;
        let replace = *current_system == table.source_system
            || rank(&table.source_system, name) > rank(current_system, name);
        // A machine's type is evidence about it: the one that loses is kept
        // even against a newer value of the same source.
        if *current_system != table.source_system || name == "asset_type" {
            // The value that does not win is kept with where it came from.
            let (value_out, origin_out) = if replace {
                (current.clone(), *current_origin)
            } else {
                (value.clone(), origin)
            };
            let entry = json!({ "value": value_out, "source": origin_out.describe(tables) });
            let list = build
                .conflicts
                .entry(name.to_string())
                .or_insert_with(|| json!([]));
            if let Value::Array(items) = list {
                if items.len() < 10 && !items.contains(&entry) {
                    items.push(entry);
                }
            }
        }
        if replace {
            build.fields[at] = (index, value, origin);
        }
    }
}

/// The non-blank values of the unmapped columns of a raw_data object; every
/// other value is skipped unparsed.
pub(super) fn unmapped_values<'r, 'h>(
    raw: &'r str,
    unmapped: &'h [String],
) -> Vec<(&'h str, Cow<'r, str>)> {
    let mut de = serde_json::Deserializer::from_str(raw);
    de.deserialize_map(UnmappedVisitor { unmapped })
        .unwrap_or_default()
}

pub(super) struct UnmappedVisitor<'h> {
    pub(super) unmapped: &'h [String],
}

impl<'de, 'h> Visitor<'de> for UnmappedVisitor<'h> {
    type Value = Vec<(&'h str, Cow<'de, str>)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Vec::new();
        // The keys come in column order, as the unmapped headers are listed:
        // a search resumes where the last one ended, so a file ten thousand
        // columns wide is read in linear time.
        let mut next = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let (earlier, from_next) = self.unmapped.split_at(next.min(self.unmapped.len()));
            let at = from_next
                .iter()
                .position(|h| *h == key)
                .map(|i| next + i)
                .or_else(|| earlier.iter().position(|h| *h == key));
            match at.map(|i| (i, &self.unmapped[i])) {
                Some((i, header)) => {
                    next = i + 1;
                    if let Some(Key(value)) = map.next_value::<Option<Key<'de>>>()? {
                        if !value.trim().is_empty() {
                            found.push((header.as_str(), value));
                        }
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}
