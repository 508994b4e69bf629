//! Which machine a record describes: its identity keys (`keys`, from the
//! catalogue's IDENTITY_KEYS, strongest first) hashed to 64 bits, the index
//! from key to machine slot, and the rule that finds a record's machine
//! (`assign`): the first key that finds one decides, unless that machine's
//! strong key of the same kind differs. The stored machines seed the index
//! first so their ids stay stable (`seed_existing`).

use std::borrow::Cow;
use std::hash::Hasher;

use foldhash::HashMap;
use rusqlite::Connection;

use crate::catalogue;
use crate::cleanse::values;

/// The kinds of identity key, strongest first; the first `STRONG` identify a
/// machine on their own.
pub(super) const KEY_KINDS: &[&str] = catalogue::IDENTITY_KEYS;

pub(super) const STRONG: usize = 5;

/// A machine found so far: its strong keys (its stored id, if it has one, is
/// kept apart, since most machines of a large first import have none). A
/// key is kept as the low half of its hash, which is never 0: it only tells
/// two keys of one kind apart (a miss is one in four billion), and a
/// million machines take 20 MB rather than 40.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) strong: [u32; STRONG],
}

/// The part of a key's hash a slot keeps.
pub(super) fn fingerprint(key: u64) -> u32 {
    key as u32 // hash_key sets the lowest bit, so this is never 0
}

/// The identity fields of a cleansed record, read without parsing the rest.
#[derive(Default, serde::Deserialize)]
pub(super) struct IdentityFields<'a> {
    #[serde(borrow)]
    pub(super) cmdb_record_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) external_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) vm_uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) bios_uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) serial_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) fqdn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) hostname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) mac_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) ip_address: Option<Cow<'a, str>>,
}

impl IdentityFields<'_> {
    /// Cleansing writes identity values as strings; a record that does not
    /// parse has no keys and so becomes a machine of its own.
    pub(super) fn parse(cleansed: &str) -> IdentityFields<'_> {
        serde_json::from_str(cleansed).unwrap_or_default()
    }

    pub(super) fn get(&self, field: &str) -> Option<&str> {
        match field {
            "cmdb_record_id" => self.cmdb_record_id.as_deref(),
            "external_id" => self.external_id.as_deref(),
            "vm_uuid" => self.vm_uuid.as_deref(),
            "bios_uuid" => self.bios_uuid.as_deref(),
            "serial_number" => self.serial_number.as_deref(),
            "fqdn" => self.fqdn.as_deref(),
            "hostname" => self.hostname.as_deref(),
            "name" => self.name.as_deref(),
            "mac_address" => self.mac_address.as_deref(),
            "ip_address" => self.ip_address.as_deref(),
            _ => None,
        }
    }
}

/// Identity keys to the machine (slot) they found first. A key is stored as
/// two 32-bit halves so an entry takes 12 bytes, not 16: at a million
/// records (six million keys) that is 32 MB less at the phase's peak.
pub(super) type KeyIndex = HashMap<[u32; 2], u32>;

pub(super) fn halves(key: u64) -> [u32; 2] {
    [(key >> 32) as u32, key as u32]
}

/// A key's 64-bit hash: fixed-seeded (stable within and across runs) and
/// taken over the value lower-cased, without allocating for ASCII values.
pub(super) fn hash_key(kind: usize, value: &str) -> u64 {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::with_seed(0x1d_e7_17_7e);
    let mut h = state.build_hasher();
    h.write_usize(kind);
    let mut buffer = [0u8; 128];
    if value.is_ascii() && value.len() <= buffer.len() {
        let lower = &mut buffer[..value.len()];
        lower.copy_from_slice(value.as_bytes());
        lower.make_ascii_lowercase();
        h.write(lower);
    } else {
        h.write(value.to_lowercase().as_bytes());
    }
    h.finish() | 1 // never 0, which means "no key"
}

/// The identity keys of a cleansed record (its fields by name), by kind.
pub(super) fn keys<'r>(field: impl Fn(&str) -> Option<&'r str>) -> Vec<(usize, u64)> {
    let mut out = Vec::with_capacity(KEY_KINDS.len());
    for (kind, name) in KEY_KINDS.iter().enumerate() {
        let key = match *name {
            "serial_number" => field(name)
                .map(|s| s.trim().to_uppercase())
                .filter(|s| s.len() >= 4 && !s.eq_ignore_ascii_case("none"))
                .map(|s| hash_key(kind, &s)),
            // A short name matches the FQDN it starts and a name that is a host name.
            "hostname" => field("hostname")
                .map(str::to_string)
                .or_else(|| field("fqdn").map(values::short_name))
                .or_else(|| {
                    field("name")
                        .and_then(values::normalise_host)
                        .map(|n| values::short_name(&n))
                })
                .filter(|v| !v.is_empty())
                .map(|v| hash_key(kind, &v)),
            "cmdb_record_id" | "external_id" => field(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| hash_key(kind, v)),
            _ => field(name)
                .filter(|v| !v.is_empty())
                .map(|v| hash_key(kind, v)),
        };
        if let Some(key) = key {
            out.push((kind, key));
        }
    }
    out
}

/// The machine (slot) a record belongs to: the one its keys find, or a new
/// one (then `true`). Its keys lead to that machine from now on.
pub(super) fn assign(
    record_keys: &[(usize, u64)],
    slots: &mut Vec<Slot>,
    index: &mut KeyIndex,
) -> (u32, bool) {
    let (slot, new) = match resolve(record_keys, slots, index) {
        Some(slot) => (slot, false),
        None => {
            slots.push(Slot::default());
            ((slots.len() - 1) as u32, true)
        }
    };
    let strong = &mut slots[slot as usize].strong;
    for &(kind, key) in record_keys {
        if kind < STRONG && strong[kind] == 0 {
            strong[kind] = fingerprint(key);
        }
        index.entry(halves(key)).or_insert(slot);
    }
    (slot, new)
}

/// The first slot a key finds, passing over slots whose strong key of the same
/// kind differs from the record's.
pub(super) fn resolve(
    record_keys: &[(usize, u64)],
    slots: &[Slot],
    index: &KeyIndex,
) -> Option<u32> {
    for &(_, key) in record_keys {
        let Some(&slot) = index.get(&halves(key)) else {
            continue;
        };
        let existing = &slots[slot as usize].strong;
        let contradicts = record_keys.iter().any(|&(kind, k)| {
            kind < STRONG && existing[kind] != 0 && existing[kind] != fingerprint(k)
        });
        if !contradicts {
            return Some(slot);
        }
    }
    None
}

/// The engagement's stored machines as slots and keys; returns their ids by slot.
pub(super) fn seed_existing(
    conn: &Connection,
    engagement: &str,
    slots: &mut Vec<Slot>,
    index: &mut KeyIndex,
) -> rusqlite::Result<StoredIds> {
    let mut stored_ids = StoredIds::default();
    let columns = KEY_KINDS.join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT id, name, {columns} FROM assets WHERE +engagement_id = ?1 AND asset_type <> 'application' ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([engagement])?;
    while let Some(row) = rows.next()? {
        // Read in place: a JSON map per asset was most of this loop.
        let name = row.get_ref(1)?.as_str_or_null()?;
        let mut values: [Option<&str>; KEY_KINDS.len()] = [None; KEY_KINDS.len()];
        for (i, value) in values.iter_mut().enumerate() {
            *value = row.get_ref(i + 2)?.as_str_or_null()?;
        }
        let field = |f: &str| match f {
            "name" => name,
            _ => KEY_KINDS
                .iter()
                .position(|k| *k == f)
                .and_then(|i| values[i]),
        };
        let slot = slots.len() as u32;
        stored_ids.push(row.get_ref(0)?.as_str()?);
        let mut s = Slot::default();
        for (kind, key) in keys(field) {
            if kind < STRONG {
                s.strong[kind] = fingerprint(key);
            }
            index.entry(halves(key)).or_insert(slot);
        }
        slots.push(s);
    }
    Ok(stored_ids)
}

/// The ids of the stored machines, by slot: the stored machines take the
/// first slots, in order. One text buffer rather than a string per asset: a
/// million of those took 90 MB for the whole phase.
#[derive(Default)]
pub(super) struct StoredIds {
    pub(super) text: String,
    pub(super) ends: Vec<usize>,
}

impl StoredIds {
    pub(super) fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    pub(super) fn get(&self, slot: u32) -> Option<&str> {
        let slot = slot as usize;
        let end = *self.ends.get(slot)?;
        let start = if slot == 0 { 0 } else { self.ends[slot - 1] };
        Some(&self.text[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    #[test]
    fn every_identity_key_is_read_from_cleansed_data() {
        let mut cleansed = Map::new();
        for key in KEY_KINDS.iter().chain(&["name"]) {
            cleansed.insert((*key).to_string(), json!(format!("{key}-value")));
        }
        let text = Value::Object(cleansed).to_string();
        let identity = IdentityFields::parse(&text);
        for key in KEY_KINDS.iter().chain(&["name"]) {
            assert_eq!(
                identity.get(key),
                Some(format!("{key}-value").as_str()),
                "{key}"
            );
        }
    }
}
