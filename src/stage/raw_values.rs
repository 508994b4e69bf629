//! How a record's raw values are stored in `raw_records.raw_values`: a JSON
//! array of the values in the order of its import's columns
//! (`data_imports.read_metadata` → `columns`) when its `raw_data` object is
//! keyed by those columns (all of them, or the first ones for a short row),
//! else the `raw_data` object itself (a row with values beyond the header,
//! a record from before schema 8). The names are then stored once per
//! import rather than once per value. Every reader gets the object back,
//! byte for byte as the reader wrote it.

use std::borrow::Cow;

use rusqlite::{Connection, OptionalExtension};

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
                .map(|c| {
                    let mut key = serde_json::to_string(c).unwrap_or_else(|_| "\"\"".into());
                    key.push(':');
                    key
                })
                .collect(),
        }
    }

    /// The columns recorded for an import (none: its records are objects).
    pub fn of_import(conn: &Connection, data_import_id: &str) -> rusqlite::Result<ColumnKeys> {
        let columns: Option<String> = conn
            .query_row(
                "SELECT read_metadata -> '$.columns' FROM data_imports WHERE id = ?1",
                [data_import_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let columns: Vec<String> = columns
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        Ok(ColumnKeys::new(&columns))
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

/// Registers `intake_raw_data(raw_values, columns)`, the `raw_data` object
/// of a stored form given its import's columns as JSON, for intake's own
/// connections: the schema's view rebuilds the object with SQLite's JSON
/// functions (about 60 µs a row of 43 columns), this in a few hundred ns.
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
}
