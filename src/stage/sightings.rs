//! Rows an import sees again. The next export of a source repeats most of
//! its rows unchanged; such a row is recorded as a sighting of the record
//! the previous import of the same source stored (`raw_record_sightings`)
//! instead of being stored, cleansed and merged again. Its lineage stays:
//! the view `raw_import_records` shows it under the import that saw it, at
//! its record index.
//!
//! The same source is the engagement's latest completed import with the
//! same sheet, the same columns in the same order, and the same cleansing
//! (mappings and program, `cleanse::Cleanser::fingerprint`), so the record
//! seen is exactly what this import would store. Rows are matched by 128
//! bits of BLAKE3 over the row as read (`raw_records.row_hash`).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

/// 128 bits of BLAKE3 over a row's raw_data text as read.
pub type RowHash = [u8; 16];

pub fn row_hash(raw_data: &str) -> RowHash {
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(raw_data.as_bytes()).as_bytes()[..16]);
    out
}

/// The stored record a row repeats, and the cleansing it had.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    import: u32,
    verdict: u32,
    pub record_index: i64,
}

/// A stored record's cleansing as an import's tally counts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// None: the record was not cleansed.
    pub is_valid: Option<bool>,
    /// The codes of its validation errors.
    pub codes: Vec<String>,
    /// The asset type a valid record names, if any.
    pub asset_type: Option<String>,
}

/// The rows of the previous import of a source, by hash.
pub struct SeenRows {
    /// The import whose rows these are (its own sightings resolved).
    pub previous: String,
    imports: Vec<String>,
    verdicts: Vec<Verdict>,
    by_hash: HashMap<u128, Seen, foldhash::fast::FixedState>,
}

/// A stored record's asset type: from its cleansed fields, or from its raw
/// value where the type is a copy of it (`cleansed_copies`; copies are kept
/// only for records stored as the array of their import's columns).
const ASSET_TYPE: &str = "CASE WHEN r.is_valid = 1 THEN
       CASE WHEN json_type(r.cleansed_data, '$.asset_type') IS NOT NULL
            THEN r.cleansed_data ->> '$.asset_type'
            WHEN r.copies IS NOT NULL
            THEN (SELECT r.raw_values ->> (t.copies -> '$.asset_type' ->> 0)
                  FROM cleansed_copies t WHERE t.id = r.copies)
       END END";

impl SeenRows {
    /// The rows of the latest completed import of the same source as
    /// `data_import_id` (whose columns are recorded), cleansed with
    /// `fingerprint` (None: not cleansed while staged). None when there is
    /// no such import or none of its rows has a hash.
    pub fn of_previous(
        conn: &Connection,
        data_import_id: &str,
        fingerprint: Option<&str>,
    ) -> rusqlite::Result<Option<SeenRows>> {
        let previous: Option<String> = conn
            .query_row(
                "SELECT p.id FROM data_imports n JOIN data_imports p
                   ON p.engagement_id = n.engagement_id AND p.id <> n.id
                  AND p.status = 'completed' AND p.sheet_name IS n.sheet_name
                  AND p.read_metadata -> '$.columns' = n.read_metadata -> '$.columns'
                 WHERE n.id = ?1 AND p.read_metadata ->> '$.cleansing.fingerprint' IS ?2
                 ORDER BY p.completed_at DESC, p.rowid DESC LIMIT 1",
                params![data_import_id, fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let mut seen = SeenRows {
            previous,
            imports: Vec::new(),
            verdicts: Vec::new(),
            by_hash: HashMap::default(),
        };
        let mut verdicts: HashMap<Verdict, u32> = HashMap::new();
        let mut stmt = conn.prepare(&format!(
            "SELECT r.row_hash, r.data_import_id, r.record_index, r.is_valid, r.validation_errors, {ASSET_TYPE}
             FROM raw_records r WHERE r.data_import_id = ?1 AND r.row_hash IS NOT NULL
             UNION ALL
             SELECT r.row_hash, r.data_import_id, r.record_index, r.is_valid, r.validation_errors, {ASSET_TYPE}
             FROM raw_record_sightings s
             JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
             WHERE s.data_import_id = ?1 AND r.row_hash IS NOT NULL"
        ))?;
        let mut rows = stmt.query([&seen.previous])?;
        while let Some(row) = rows.next()? {
            let Ok(hash) = <RowHash>::try_from(row.get_ref(0)?.as_blob()?) else {
                continue; // not a hash this version wrote: never matched
            };
            let import = row.get_ref(1)?.as_str()?;
            let import = match seen.imports.iter().position(|i| i == import) {
                Some(n) => n,
                None => {
                    seen.imports.push(import.to_string());
                    seen.imports.len() - 1
                }
            } as u32;
            let verdict = Verdict {
                is_valid: row.get::<_, Option<bool>>(3)?,
                codes: error_codes(row.get_ref(4)?.as_str_or_null()?),
                asset_type: row.get(5)?,
            };
            let next = seen.verdicts.len() as u32;
            let verdict = *verdicts.entry(verdict).or_insert_with_key(|v| {
                seen.verdicts.push(v.clone());
                next
            });
            // Two alike rows in the previous import: the first is the one seen.
            seen.by_hash
                .entry(u128::from_le_bytes(hash))
                .or_insert(Seen {
                    import,
                    verdict,
                    record_index: row.get(2)?,
                });
        }
        Ok((!seen.by_hash.is_empty()).then_some(seen))
    }

    /// The stored record a row with this hash repeats, if any.
    pub fn find(&self, hash: &RowHash) -> Option<Seen> {
        self.by_hash.get(&u128::from_le_bytes(*hash)).copied()
    }

    /// The import that stored the record seen.
    pub fn import_of(&self, seen: &Seen) -> &str {
        &self.imports[seen.import as usize]
    }

    pub fn verdict_of(&self, seen: &Seen) -> &Verdict {
        &self.verdicts[seen.verdict as usize]
    }
}

fn error_codes(validation_errors: Option<&str>) -> Vec<String> {
    let Some(text) = validation_errors.filter(|t| *t != "[]") else {
        return Vec::new();
    };
    serde_json::from_str::<Vec<serde_json::Value>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
        .collect()
}

/// Turns an import's sightings, and the sightings other imports made of its
/// records, into stored records (copies of the records seen), so that
/// cleansing it again (or the record it repeats) changes only its own rows.
/// Returns how many records were written.
pub fn store_sighted(conn: &Connection, data_import_id: &str) -> rusqlite::Result<usize> {
    let mut written = 0;
    for (which, of) in [
        ("s.data_import_id = ?1", "its own"),
        ("s.seen_import_id = ?1", "of its records"),
    ] {
        written += conn.execute(
            &format!(
                "INSERT INTO raw_records (data_import_id, record_index, raw_values, cleansed_data, copies,
                   is_valid, validation_errors, processed_at, row_hash)
                 SELECT s.data_import_id, s.record_index, r.raw_values, r.cleansed_data, r.copies,
                        r.is_valid, r.validation_errors, r.processed_at, r.row_hash
                 FROM raw_record_sightings s
                 JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
                 WHERE {which}"
            ),
            [data_import_id],
        )?;
        conn.execute(
            &format!("DELETE FROM raw_record_sightings AS s WHERE {which}"),
            [data_import_id],
        )?;
        tracing::debug!("{data_import_id}: sightings {of} stored as records");
    }
    Ok(written)
}
