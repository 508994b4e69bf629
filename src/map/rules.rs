//! The rules file (`--rules FILE`, TOML) a team keeps in git: the auto-approve
//! threshold and floor, and per source column a field (with transforms) or
//! "ignore". Unknown keys and unknown fields are errors with the line number.
//!
//! ```toml
//! auto_approve_threshold = 0.9
//! floor = 0.5
//!
//! [columns]
//! "Srv" = "name"
//! "Speicher (MB)" = { field = "storage_gb", unit = "MB" }
//! "Bemerkung" = "ignore"
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalogue::{self, Field};

/// What the rules say about one column.
#[derive(Debug, Clone)]
pub enum ColumnRule {
    Map {
        field: &'static Field,
        /// Transformation rules the file sets (unit, multiply_by, invert, list).
        transform: Value,
        line: usize,
    },
    Ignore {
        line: usize,
    },
}

/// A parsed rules file; `Rules::default()` is no file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub auto_approve: Option<f64>,
    pub floor: Option<f64>,
    /// (normalised header, header as written, rule)
    columns: Vec<(String, String, ColumnRule)>,
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    auto_approve_threshold: Option<toml::Spanned<f64>>,
    floor: Option<toml::Spanned<f64>>,
    #[serde(default)]
    columns: toml::Table,
}

const TRANSFORM_KEYS: &[&str] = &["field", "unit", "multiply_by", "invert", "list"];
const UNITS: &[&str] = &["KB", "KiB", "MB", "MiB", "GB", "GiB", "TB", "TiB", "auto"];

impl Rules {
    /// Reads and checks a rules file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Rules::parse(&text, &path.display().to_string())
    }

    /// Parses rules text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Rules, RulesError> {
        let invalid = |offset: usize, message: String| RulesError::Invalid {
            path: path.to_string(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawRules = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(offset, e.message().to_string())
        })?;
        let mut rules = Rules::default();
        for (value, slot, name) in [
            (
                &raw.auto_approve_threshold,
                &mut rules.auto_approve,
                "auto_approve_threshold",
            ),
            (&raw.floor, &mut rules.floor, "floor"),
        ] {
            if let Some(v) = value {
                if !(0.0..=1.0).contains(v.get_ref()) {
                    return Err(invalid(
                        v.span().start,
                        format!("{name} must be between 0 and 1"),
                    ));
                }
                *slot = Some(*v.get_ref());
            }
        }
        for (header, value) in &raw.columns {
            // toml::Table keeps no spans: find the key's line in the text.
            let line = key_line(text, header);
            let at = |message: String| RulesError::Invalid {
                path: path.to_string(),
                line,
                message,
            };
            let rule = match value {
                toml::Value::String(s) if s.eq_ignore_ascii_case("ignore") => ColumnRule::Ignore { line },
                toml::Value::String(s) => ColumnRule::Map {
                    field: known_field(s).map_err(&at)?,
                    transform: json!({}),
                    line,
                },
                toml::Value::Table(t) => {
                    if let Some(key) = t.keys().find(|k| !TRANSFORM_KEYS.contains(&k.as_str())) {
                        return Err(at(format!(
                            "unknown key '{key}' for column '{header}'; allowed: {}",
                            TRANSFORM_KEYS.join(", ")
                        )));
                    }
                    let name = t
                        .get("field")
                        .and_then(|f| f.as_str())
                        .ok_or_else(|| at(format!("column '{header}' needs field = \"<asset field>\"")))?;
                    let mut transform = serde_json::Map::new();
                    if let Some(unit) = t.get("unit") {
                        let unit = unit.as_str().filter(|u| UNITS.contains(u)).ok_or_else(|| {
                            at(format!("unit of '{header}' must be one of {}", UNITS.join(", ")))
                        })?;
                        transform.insert("from_unit".into(), json!(unit));
                    }
                    if let Some(column) = t.get("multiply_by") {
                        let column = column.as_str().ok_or_else(|| at("multiply_by names a column".into()))?;
                        transform.insert("multiply_by".into(), json!(column));
                    }
                    if let Some(invert) = t.get("invert") {
                        let invert = invert.as_bool().ok_or_else(|| at("invert is true or false".into()))?;
                        transform.insert("invert".into(), json!(invert));
                    }
                    if let Some(list) = t.get("list") {
                        let list = list.as_bool().ok_or_else(|| at("list is true or false".into()))?;
                        if list {
                            transform.insert("list".into(), json!("first_is_primary"));
                        }
                    }
                    ColumnRule::Map {
                        field: known_field(name).map_err(&at)?,
                        transform: Value::Object(transform),
                        line,
                    }
                }
                _ => {
                    return Err(at(format!(
                        "column '{header}' must be a field name, \"ignore\", or {{ field = ..., unit = ... }}"
                    )))
                }
            };
            rules
                .columns
                .push((catalogue::normalise_header(header), header.clone(), rule));
        }
        Ok(rules)
    }

    /// The rule for a source column, matched case- and punctuation-insensitively.
    pub fn column(&self, header: &str) -> Option<&ColumnRule> {
        let key = catalogue::normalise_header(header);
        self.columns
            .iter()
            .find(|(k, written, _)| written == header || (!key.is_empty() && *k == key))
            .map(|(_, _, rule)| rule)
    }
}

fn known_field(name: &str) -> Result<&'static Field, String> {
    catalogue::field(name).ok_or_else(|| {
        let close = catalogue::FIELDS
            .iter()
            .map(|f| (strsim::jaro_winkler(name, f.name), f.name))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(s, _)| *s > 0.8)
            .map(|(_, n)| format!(" (did you mean {n}?)"))
            .unwrap_or_default();
        format!("unknown asset field '{name}'{close}; `intake mappings fields` lists them")
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is defined under [columns] (quoted or bare).
fn key_line(text: &str, key: &str) -> usize {
    let quoted = format!("\"{key}\"");
    let single = format!("'{key}'");
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(&quoted)
                || t.starts_with(&single)
                || t.split('=').next().is_some_and(|k| k.trim() == key)
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_map_ignore_and_transform() {
        let rules = Rules::parse(
            "auto_approve_threshold = 0.9\n[columns]\n\"Srv\" = \"name\"\n\"Speicher (MB)\" = { field = \"storage_gb\", unit = \"MB\" }\nBemerkung = \"ignore\"\n",
            "r.toml",
        )
        .unwrap();
        assert_eq!(rules.auto_approve, Some(0.9));
        assert!(
            matches!(rules.column("srv"), Some(ColumnRule::Map { field, .. }) if field.name == "name")
        );
        match rules.column("Speicher (MB)") {
            Some(ColumnRule::Map {
                transform, line, ..
            }) => {
                assert_eq!(transform["from_unit"], "MB");
                assert_eq!(*line, 4);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            rules.column("Bemerkung"),
            Some(ColumnRule::Ignore { line: 5 })
        ));
    }

    #[test]
    fn unknown_keys_and_fields_name_the_line() {
        let e = Rules::parse("threshold = 0.9\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("r.toml: line 1") && e.contains("threshold"),
            "{e}"
        );
        let e = Rules::parse(
            "[columns]\n\"A\" = \"name\"\n\"B\" = \"hostnme\"\n",
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 3") && e.contains("hostnme") && e.contains("did you mean hostname"),
            "{e}"
        );
        let e = Rules::parse(
            "[columns]\n\"B\" = { field = \"memory_gb\", units = \"MB\" }\n",
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("units"), "{e}");
        let e = Rules::parse("floor = 2\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("between 0 and 1"), "{e}");
    }
}
