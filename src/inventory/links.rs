//! Which asset each valid record of a table was merged into when the
//! inventory last ran over it (`inventory_links`). With the links of every
//! older table current, a run whose new tables hold few records (the next
//! export of a source, whose unchanged rows were only seen again) matches
//! just those records, reads back the older records of the machines they
//! touch, and merges only those machines: every other asset is what merging
//! its unchanged records gave last time.
//!
//! Links are current while the table's cleansing is the one they were made
//! with and it holds as many valid records as they name; the assets they
//! name must all still be stored. Otherwise the phase rebuilds in full and
//! writes them again.

use rusqlite::{params, Connection, OptionalExtension};

/// The 64 bits an asset is linked by: the first 8 bytes of BLAKE3 over its id.
pub(super) fn asset_key(id: &str) -> u64 {
    let hash = blake3::hash(id.as_bytes());
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// One table's links: (record_index, asset_key) in record order.
#[derive(Debug, Default)]
pub(super) struct TableLinks {
    pub(super) pairs: Vec<(i64, u64)>,
}

impl TableLinks {
    /// The asset a record was merged into.
    pub(super) fn asset_of(&self, record_index: i64) -> Option<u64> {
        self.pairs
            .binary_search_by_key(&record_index, |p| p.0)
            .ok()
            .map(|i| self.pairs[i].1)
    }
}

/// The links of a table, if current: made with its present cleansing and
/// naming each of its valid stored records.
pub(super) fn current(
    conn: &Connection,
    data_import_id: &str,
) -> rusqlite::Result<Option<TableLinks>> {
    read(conn, data_import_id, true)
}

/// The links a table was last given, current or not.
pub(super) fn stored(
    conn: &Connection,
    data_import_id: &str,
) -> rusqlite::Result<Option<TableLinks>> {
    read(conn, data_import_id, false)
}

/// Forgets the links of these tables: a build that may change their
/// machines makes them again when it is done, so a kill meanwhile leaves
/// none to trust.
pub(super) fn forget<'a>(
    conn: &Connection,
    data_import_ids: impl IntoIterator<Item = &'a str>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM inventory_links WHERE data_import_id = ?1")?;
    for id in data_import_ids {
        stmt.execute([id])?;
    }
    Ok(())
}

fn read(
    conn: &Connection,
    data_import_id: &str,
    only_current: bool,
) -> rusqlite::Result<Option<TableLinks>> {
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT l.links FROM inventory_links l JOIN data_imports d ON d.id = l.data_import_id
             WHERE l.data_import_id = ?1
               AND (NOT ?2 OR l.cleansing IS d.read_metadata ->> '$.cleansing.fingerprint')",
            rusqlite::params![data_import_id, only_current],
            |r| r.get(0),
        )
        .optional()?;
    let Some(blob) = blob.filter(|b| b.len() % 16 == 0) else {
        return Ok(None);
    };
    let pairs: Vec<(i64, u64)> = blob
        .chunks_exact(16)
        .map(|c| {
            (
                i64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
            )
        })
        .collect();
    let ordered = pairs.windows(2).all(|w| w[0].0 < w[1].0);
    if !only_current {
        return Ok(ordered.then_some(TableLinks { pairs }));
    }
    let valid: i64 = conn.query_row(
        "SELECT count(*) FROM raw_records WHERE data_import_id = ?1 AND is_valid = 1",
        [data_import_id],
        |r| r.get(0),
    )?;
    Ok((ordered && valid == pairs.len() as i64).then_some(TableLinks { pairs }))
}

/// Records a table's links, made with its present cleansing (none recorded:
/// the links are not kept, and the next run rebuilds in full).
pub(super) fn store(
    conn: &Connection,
    data_import_id: &str,
    mut pairs: Vec<(i64, u64)>,
) -> rusqlite::Result<()> {
    pairs.sort_unstable_by_key(|p| p.0);
    let mut blob = Vec::with_capacity(pairs.len() * 16);
    for (record_index, asset) in pairs {
        blob.extend_from_slice(&record_index.to_le_bytes());
        blob.extend_from_slice(&asset.to_le_bytes());
    }
    conn.execute(
        "DELETE FROM inventory_links WHERE data_import_id = ?1",
        [data_import_id],
    )?;
    conn.execute(
        "INSERT INTO inventory_links (data_import_id, cleansing, links)
         SELECT id, read_metadata ->> '$.cleansing.fingerprint', ?2 FROM data_imports
         WHERE id = ?1 AND read_metadata ->> '$.cleansing.fingerprint' IS NOT NULL",
        params![data_import_id, blob],
    )?;
    Ok(())
}
