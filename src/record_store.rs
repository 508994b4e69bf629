//! How a record is stored in `raw_records` and read back whole.
//!
//! Raw values (`raw_values`): a JSON array of the values in the order of its
//! import's columns (`data_imports.read_metadata` → `columns`) when its
//! `raw_data` object is keyed by those columns (all of them, or the first
//! ones for a short row), else the `raw_data` object itself (a row with
//! values beyond the header, a record from before schema 8). The names are
//! stored once per import rather than once per value, and every reader gets
//! the object back byte for byte as the reader wrote it.
//!
//! Cleansed values (`cleansed_data`): when the record's `copies` names a
//! `cleansed_copies` row (field → the position and name of the column whose
//! raw value it copies), only the fields that are not that copy are stored,
//! and `null` for a copied field the record lacks although its raw value is
//! there. Read back, the copies are filled in from the raw values.

use std::borrow::Cow;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

/// The whole cleansed_data of the raw_records row `r`, in SQL for intake's
/// own connections (`register`).
pub const WHOLE_CLEANSED: &str = "intake_cleansed_data(r.cleansed_data, \
     (SELECT t.copies FROM cleansed_copies t WHERE t.id = r.copies), r.raw_values)";

/// The records of the import `import` (an SQL expression: `?1`, `d.id`) as
/// a subquery with raw_records' columns: those it stored and those it saw
/// again (`raw_record_sightings`, read through the record they repeat), each
/// at its own record_index. The records seen were stored by an import of the
/// same columns, so their raw values read with this import's columns.
pub fn records_of(import: &str) -> String {
    format!(
        "(SELECT record_index, raw_values, cleansed_data, copies, is_valid, validation_errors
          FROM raw_records WHERE data_import_id = {import}
          UNION ALL
          SELECT s.record_index, r.raw_values, r.cleansed_data, r.copies, r.is_valid, r.validation_errors
          FROM raw_record_sightings s
          JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
          WHERE s.data_import_id = {import})"
    )
}

/// The columns recorded for an import (`read_metadata` → `columns`).
pub fn import_columns(conn: &Connection, data_import_id: &str) -> rusqlite::Result<Vec<String>> {
    let columns: Option<String> = conn
        .query_row(
            "SELECT read_metadata -> '$.columns' FROM data_imports WHERE id = ?1",
            [data_import_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(columns
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default())
}

/// An import's column names, each written as the JSON object key the row
/// encoder writes (`"name":`).
#[derive(Debug, Clone, Default)]
pub struct ColumnKeys {
    keys: Vec<String>,
}

impl ColumnKeys {
    pub fn new(columns: &[String]) -> ColumnKeys {
        ColumnKeys {
            keys: columns
                .iter()
                .map(|c| crate::read::header::json_key(c))
                .collect(),
        }
    }

    /// The columns recorded for an import (none: its records are objects).
    pub fn of_import(conn: &Connection, data_import_id: &str) -> rusqlite::Result<ColumnKeys> {
        Ok(ColumnKeys::new(&import_columns(conn, data_import_id)?))
    }

    /// The stored form of a `raw_data` object: the array of its values when
    /// its keys are these columns in order, else the object as it is.
    pub fn compact<'a>(&self, object: &'a str) -> Cow<'a, str> {
        match self.values_of(object) {
            Some(array) => Cow::Owned(array),
            None => Cow::Borrowed(object),
        }
    }

    fn values_of(&self, object: &str) -> Option<String> {
        let bytes = object.as_bytes();
        if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') || self.keys.is_empty() {
            return None;
        }
        let end = bytes.len() - 1;
        let mut out = String::with_capacity(object.len());
        out.push('[');
        let mut at = 1;
        for (i, key) in self.keys.iter().enumerate() {
            if at == end {
                break; // a short row: the first columns only
            }
            if i > 0 {
                if bytes[at] != b',' {
                    return None;
                }
                at += 1;
                out.push(',');
            }
            if !object[at..].starts_with(key.as_str()) {
                return None;
            }
            at += key.len();
            let length = value_length(&bytes[at..end])?;
            out.push_str(&object[at..at + length]);
            at += length;
        }
        (at == end).then(|| {
            out.push(']');
            out
        })
    }

    /// The `raw_data` object of a stored form.
    pub fn object<'a>(&self, stored: &'a str) -> Cow<'a, str> {
        if !stored.starts_with('[') {
            return Cow::Borrowed(stored);
        }
        let bytes = stored.as_bytes();
        let end = bytes.len().saturating_sub(1);
        let mut out =
            String::with_capacity(stored.len() + self.keys.iter().map(String::len).sum::<usize>());
        out.push('{');
        let mut at = 1;
        let mut i = 0;
        while at < end {
            if i > 0 {
                at += 1; // the comma
                out.push(',');
            }
            let Some(length) = value_length(&bytes[at..end]) else {
                break;
            };
            match self.keys.get(i) {
                Some(key) => out.push_str(key),
                // Never written so: named as a value beyond the header would be.
                None => out.push_str(&format!("\"column_{}\":", i + 1)),
            }
            out.push_str(&stored[at..at + length]);
            at += length;
            i += 1;
        }
        out.push('}');
        Cow::Owned(out)
    }
}

/// The length of the JSON value at the start of `bytes` as the row encoder
/// writes values: `null` or a string (escapes included). None for anything else.
fn value_length(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"null") {
        return Some(4);
    }
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut at = 1;
    loop {
        let quote_or_escape = memchr::memchr2(b'"', b'\\', &bytes[at..])?;
        at += quote_or_escape;
        if bytes[at] == b'\\' {
            at += 2;
        } else {
            return Some(at + 1);
        }
    }
}

/// The cleansed fields of an import's records that copy a raw value, as
/// one `cleansed_copies` row: (field, position of the column, column).
#[derive(Debug, Clone, Default)]
pub struct CleansedCopies {
    pub id: i64,
    copies: Vec<(String, usize, String)>,
}

impl CleansedCopies {
    /// Stores the copies of an import (once: the same copies get the same id).
    pub fn register(
        conn: &Connection,
        data_import_id: &str,
        copies: Vec<(String, usize, String)>,
    ) -> rusqlite::Result<CleansedCopies> {
        let mut object = Map::new();
        for (field, position, column) in &copies {
            object.insert(field.clone(), serde_json::json!([position, column]));
        }
        let text = Value::Object(object).to_string();
        conn.execute(
            "INSERT OR IGNORE INTO cleansed_copies (data_import_id, copies) VALUES (?1, ?2)",
            [data_import_id, text.as_str()],
        )?;
        let id = conn.query_row(
            "SELECT id FROM cleansed_copies WHERE data_import_id = ?1 AND copies = ?2",
            [data_import_id, text.as_str()],
            |r| r.get(0),
        )?;
        Ok(CleansedCopies { id, copies })
    }

    fn from_json(text: &str) -> CleansedCopies {
        let object: Map<String, Value> = serde_json::from_str(text).unwrap_or_default();
        let copies = object
            .into_iter()
            .filter_map(|(field, at)| {
                let position = at.get(0)?.as_u64()? as usize;
                let column = at.get(1)?.as_str()?.to_string();
                Some((field, position, column))
            })
            .collect();
        CleansedCopies { id: 0, copies }
    }

    /// (field, column) of each copy.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.copies.iter().map(|(f, _, c)| (f.as_str(), c.as_str()))
    }

    /// The whole cleansed object of a stored one and the record's stored
    /// raw values: the copies it does not hold filled in from non-empty raw
    /// values, its `null`s (copies the record lacks) left out, keys sorted
    /// as the cleanser writes them.
    pub fn whole(&self, stored: &str, raw_values: &str) -> String {
        use crate::json_entries::Entries;
        // Merged as text: the stored entries, and each missing copy's raw
        // value as the row encoder wrote it.
        let Ok(Entries(stored_entries)) = serde_json::from_str::<Entries<Value>>(stored) else {
            return stored.to_string();
        };
        let literals = raw_values
            .starts_with('[')
            .then(|| array_literals(raw_values));
        let named: Option<Map<String, Value>> = match literals {
            Some(_) => None,
            None => serde_json::from_str(raw_values).ok(),
        };
        let mut entries: Vec<(Cow<str>, Cow<str>)> =
            Vec::with_capacity(stored_entries.len() + self.copies.len());
        for (key, value) in &stored_entries {
            if !value.is_null() {
                entries.push((key.clone(), Cow::Owned(value.to_string())));
            }
        }
        for (field, position, column) in &self.copies {
            if stored_entries.iter().any(|(k, _)| k == field) {
                continue;
            }
            let literal: Option<Cow<str>> = match (&literals, &named) {
                (Some(literals), _) => literals
                    .get(*position)
                    .filter(|l| !matches!(**l, "null" | "\"\""))
                    .map(|l| Cow::Borrowed(*l)),
                (None, Some(object)) => object
                    .get(column)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(|v| Cow::Owned(Value::String(v.to_string()).to_string())),
                (None, None) => None,
            };
            if let Some(literal) = literal {
                entries.push((Cow::Borrowed(field.as_str()), literal));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(stored.len() + raw_values.len());
        out.push('{');
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::String(key.to_string()).to_string());
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        out
    }
}

/// The JSON text of each value of an array the row encoder's values make
/// (strings and nulls).
fn array_literals(array: &str) -> Vec<&str> {
    let bytes = array.as_bytes();
    let end = bytes.len().saturating_sub(1);
    let mut literals = Vec::with_capacity(64);
    let mut at = 1;
    while at < end {
        let Some(length) = value_length(&bytes[at..end]) else {
            break;
        };
        literals.push(&array[at..at + length]);
        at += length + 1; // and the comma
    }
    literals
}

/// Registers, for intake's own connections, `intake_raw_data(raw_values,
/// columns)` (the `raw_data` object of a stored form given its import's
/// columns as JSON) and `intake_cleansed_data(cleansed_data, copies,
/// raw_values)` (the whole cleansed object). The schema's view does the same
/// with SQLite's JSON functions, about 60 µs a row of 43 columns; these take
/// a few hundred ns.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    thread_local! {
        // The last import's columns: records are read an import at a time.
        static LAST: std::cell::RefCell<(String, ColumnKeys)> = Default::default();
    }
    conn.create_scalar_function(
        "intake_raw_data",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let stored = ctx
                .get_raw(0)
                .as_str()
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            if !stored.starts_with('[') {
                return Ok(stored.to_string());
            }
            let columns = ctx
                .get_raw(1)
                .as_str_or_null()
                .unwrap_or(None)
                .unwrap_or("[]");
            Ok(LAST.with_borrow_mut(|(text, keys)| {
                if text != columns {
                    let names: Vec<String> = serde_json::from_str(columns).unwrap_or_default();
                    *keys = ColumnKeys::new(&names);
                    *text = columns.to_string();
                }
                keys.object(stored).into_owned()
            }))
        },
    )?;
    thread_local! {
        static COPIES: std::cell::RefCell<(String, CleansedCopies)> = Default::default();
    }
    conn.create_scalar_function(
        "intake_cleansed_data",
        3,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let stored = ctx.get_raw(0).as_str_or_null().unwrap_or(None);
            let copies = ctx.get_raw(1).as_str_or_null().unwrap_or(None);
            let (Some(stored), Some(copies)) = (stored, copies) else {
                return Ok(stored.map(str::to_string));
            };
            let raw = ctx
                .get_raw(2)
                .as_str_or_null()
                .unwrap_or(None)
                .unwrap_or("[]");
            Ok(Some(COPIES.with_borrow_mut(|(text, parsed)| {
                if text != copies {
                    *parsed = CleansedCopies::from_json(copies);
                    *text = copies.to_string();
                }
                parsed.whole(stored, raw)
            })))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> ColumnKeys {
        ColumnKeys::new(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_row_of_the_header_is_stored_as_its_values_and_read_back_byte_for_byte() {
        let k = keys(&["Name", "Notes \"quoted\"", "Ünïcode"]);
        let object = r#"{"Name":"web01","Notes \"quoted\"":"a \"b\", c\\d\n","Ünïcode":null}"#;
        let stored = k.compact(object);
        assert_eq!(stored, r#"["web01","a \"b\", c\\d\n",null]"#);
        assert_eq!(k.object(&stored), object);
    }

    #[test]
    fn a_short_row_keeps_its_first_columns_and_other_rows_stay_objects() {
        let k = keys(&["a", "b", "c"]);
        let short = r#"{"a":"1","b":""}"#;
        assert_eq!(k.compact(short), r#"["1",""]"#);
        assert_eq!(k.object(&k.compact(short)), short);
        let long = r#"{"a":"1","b":"2","c":"3","column_4":"4"}"#;
        assert_eq!(k.compact(long), long);
        let other = r#"{"x":"1"}"#;
        assert_eq!(k.compact(other), other);
        assert_eq!(k.object(other), other);
        assert_eq!(keys(&[]).compact(short), short);
        assert_eq!(k.compact("{}"), "[]");
        assert_eq!(k.object("[]"), "{}");
    }

    #[test]
    fn a_cleansed_row_reads_back_whole_from_its_copies_and_raw_values() {
        let copies = CleansedCopies {
            id: 1,
            copies: vec![
                ("hostname".into(), 0, "Host".into()),
                ("environment".into(), 1, "Env".into()),
                ("location".into(), 2, "Site".into()),
            ],
        };
        // hostname copied; environment differs (kept); location left out by
        // the cleanser although raw has it (null); an empty raw adds nothing.
        let raw = r#"["web01","PROD","Frankfurt",""]"#;
        let stored = r#"{"cpu_cores":4,"environment":"production","location":null}"#;
        assert_eq!(
            copies.whole(stored, raw),
            r#"{"cpu_cores":4,"environment":"production","hostname":"web01"}"#
        );
        // The same from a row stored as its object.
        let object = r#"{"Host":"web01","Env":"PROD","Site":"Frankfurt","column_4":"x"}"#;
        assert_eq!(copies.whole(stored, object), copies.whole(stored, raw));
        let json = r#"{"hostname":[0,"Host"]}"#;
        assert_eq!(
            CleansedCopies::from_json(json).copies,
            vec![("hostname".to_string(), 0, "Host".to_string())]
        );
    }
}
