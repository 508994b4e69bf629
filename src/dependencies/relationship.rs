//! One row of a relationship export, and what its type means. ServiceNow
//! writes a relationship type as "parent descriptor::child descriptor"
//! ("Depends on::Used by", "Runs on::Runs", "Hosts::Hosted on"): the parent
//! <descriptor> the child. An edge here always points from the asset that
//! depends to the one it depends on, so descriptors that say the opposite
//! ("Used by", "Hosts", "Contains") swap the ends and take the child's wording.

use serde_json::{Map, Value};

use crate::read::layout::{normalise, Layout, RelationshipColumns};

/// Descriptors whose parent depends on the child.
const FORWARD: &[&str] = &[
    "depends on",
    "uses",
    "runs on",
    "hosted on",
    "virtualized by",
    "member of",
    "contained by",
    "stored on",
    "connects to",
    "sends data to",
    "receives data from",
    "located in",
    "powered by",
    "managed by",
    "backed up by",
    "replicated to",
    "calls",
    "consumes",
];

/// Descriptors whose child depends on the parent.
const REVERSED: &[&str] = &[
    "used by",
    "runs",
    "hosts",
    "virtualizes",
    "members",
    "contains",
    "provides storage for",
    "cluster of",
    "powers",
    "manages",
    "provides",
    "serves",
    "called by",
    "consumed by",
];

/// A relationship row's ends and type as written, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct RelationshipRow {
    pub from: Option<String>,
    pub from_column: Option<String>,
    pub to: Option<String>,
    pub to_column: Option<String>,
    pub kind: Option<String>,
    /// The row's other non-empty columns (port, protocol, strength…).
    pub extra: Vec<(String, String)>,
}

impl RelationshipRow {
    /// Reads the ends and the type from a raw record keyed by original headers.
    pub fn read(record: &Map<String, Value>, spec: &RelationshipColumns) -> Self {
        let mut row = RelationshipRow::default();
        let find = |names: &[&str]| -> Option<(String, Option<String>)> {
            names.iter().find_map(|wanted| {
                record.iter().find_map(|(header, value)| {
                    (normalise(header) == *wanted).then(|| (header.clone(), text(value)))
                })
            })
        };
        let from = find(spec.from);
        let to = find(spec.to);
        let kind = find(spec.kind);
        let used: Vec<String> = [&from, &to, &kind]
            .into_iter()
            .flatten()
            .map(|(h, _)| h.clone())
            .collect();
        (row.from_column, row.from) = from.map_or((None, None), |(h, v)| (Some(h), v));
        (row.to_column, row.to) = to.map_or((None, None), |(h, v)| (Some(h), v));
        row.kind = kind.and_then(|(_, v)| v);
        row.extra = record
            .iter()
            .filter(|(h, _)| !used.contains(h))
            .filter_map(|(h, v)| text(v).map(|v| (h.clone(), v)))
            .collect();
        row
    }

    /// The edge's description: the other columns of the row, if any.
    pub fn describe(&self) -> Option<String> {
        (!self.extra.is_empty()).then(|| {
            self.extra
                .iter()
                .map(|(h, v)| format!("{h}: {v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The dependency type of a relationship and whether its ends swap so that
/// the edge points from the dependent asset. A list's direction is taken as
/// written (source depends on target); an empty type is "depends_on".
pub fn direction(kind: Option<&str>, layout: Layout) -> (String, bool) {
    let Some(kind) = kind.map(str::trim).filter(|k| !k.is_empty()) else {
        return ("depends_on".into(), false);
    };
    let (parent, child) = match kind.split_once("::") {
        Some((p, c)) => (p.trim(), Some(c.trim())),
        None => (kind, None),
    };
    let lower = parent.to_lowercase();
    if layout == Layout::ServicenowRelationships && REVERSED.contains(&lower.as_str()) {
        // "Used by::Depends on": the child depends on the parent, in the child's words.
        let wording = child
            .filter(|c| FORWARD.contains(&c.to_lowercase().as_str()))
            .unwrap_or("depends on");
        return (snake(wording), true);
    }
    (snake(parent), false)
}

/// "Depends on" → "depends_on".
fn snake(words: &str) -> String {
    let mut out = String::new();
    for word in words
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&word.to_lowercase());
    }
    if out.is_empty() {
        "depends_on".into()
    } else {
        out
    }
}

fn text(value: &Value) -> Option<String> {
    let s = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servicenow_types_point_from_the_dependent_asset() {
        let sn = Layout::ServicenowRelationships;
        assert_eq!(
            direction(Some("Depends on::Used by"), sn),
            ("depends_on".into(), false)
        );
        assert_eq!(
            direction(Some("Used by::Depends on"), sn),
            ("depends_on".into(), true)
        );
        assert_eq!(
            direction(Some("Runs on::Runs"), sn),
            ("runs_on".into(), false)
        );
        assert_eq!(
            direction(Some("Hosts::Hosted on"), sn),
            ("hosted_on".into(), true)
        );
        assert_eq!(
            direction(Some("Contains::Contained by"), sn),
            ("contained_by".into(), true)
        );
        assert_eq!(
            direction(Some("Sends data to::Receives data from"), sn),
            ("sends_data_to".into(), false)
        );
        assert_eq!(direction(None, sn), ("depends_on".into(), false));
    }

    #[test]
    fn lists_keep_their_direction() {
        let list = Layout::RelationshipList;
        assert_eq!(direction(Some("Hosts"), list), ("hosts".into(), false));
        assert_eq!(
            direction(Some("database connection"), list),
            ("database_connection".into(), false)
        );
        assert_eq!(direction(Some(""), list), ("depends_on".into(), false));
    }
}
