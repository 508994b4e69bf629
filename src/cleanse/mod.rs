//! The data_cleansing phase: apply each import's approved mappings and their
//! transformation_rules to every raw record, normalise the values (`values`),
//! and write cleansed_data, is_valid, validation_errors and is_processed. A
//! value that cannot be parsed stays out of cleansed_data and is kept raw in
//! the errors; a row that identifies no machine is invalid. Nothing stops the
//! run: the counts go to data_imports and the flow. Records are normally
//! cleansed as they are staged (`Cleanser`, used by `import::staging_work`); the
//! phase itself rewrites only imports whose mapping fingerprint has changed.

pub mod values;

use std::borrow::Cow;
use std::cell::Cell;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalogue::{self, Describes, Field, FieldKind};
use crate::db;
use crate::flow::Phase;
use crate::json_entries::Entries;
use crate::phase::{PhaseCtx, PhaseOutcome};
use crate::stage::tables::{self, CleansingTally, RecordedCleansing};
use crate::stage::CleansedRow;

/// Changes whenever the cleansing of a value changes (the version alone
/// does not between releases): records cleansed by older rules are then
/// cleansed again when their import is next processed.
const RULES_REVISION: &str = "machine-evidence";

/// Records cleansed per transaction.
const BATCH: i64 = 5_000;

/// An approved mapping as cleansing applies it.
#[derive(Debug, Clone)]
pub struct AppliedMapping {
    pub source: String,
    pub field: &'static Field,
    pub rules: Value,
}

/// One problem with one value.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationError {
    pub field: String,
    pub column: String,
    pub raw_value: String,
    pub code: &'static str,
    pub message: String,
}

/// The cleansing of one import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportCleansing {
    pub data_import_id: String,
    pub file: String,
    pub sheet: Option<String>,
    #[serde(flatten)]
    pub tally: CleansingTally,
}

/// What the phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanseOutcome {
    pub imports: Vec<ImportCleansing>,
    pub records: u64,
    pub valid: u64,
    pub invalid: u64,
}

/// Cleanses every completed import of a master flow. An import whose rows were
/// already cleansed with its current mappings (during staging, or by an
/// earlier run) is counted from what was recorded and not rewritten.
pub fn run(ctx: &PhaseCtx) -> rusqlite::Result<CleanseOutcome> {
    let conn = ctx.conn;
    let scope = tables::Scope::Flow {
        master_flow_id: &ctx.ids.master_flow_id,
    };
    let mut outcome = CleanseOutcome::default();
    // Relationship exports are read by the dependencies phase instead.
    for table in tables::completed(conn, scope)?
        .into_iter()
        .filter(|t| !t.holds_relationships())
    {
        let id = table.data_import_id;
        let cleanser = Cleanser::for_import(conn, &id)?.storing_copies(conn, &id)?;
        let tally = match table.cleansing {
            Some(r) if r.fingerprint == cleanser.fingerprint => {
                ctx.progress.inc(r.tally.records);
                r.tally
            }
            _ => cleanse_import(conn, &id, &cleanser, &ctx.progress)?,
        };
        outcome.records += tally.records;
        outcome.valid += tally.valid;
        outcome.invalid += tally.invalid;
        outcome.imports.push(ImportCleansing {
            data_import_id: id,
            file: table.filename,
            sheet: table.sheet,
            tally,
        });
    }
    Ok(outcome)
}

impl PhaseOutcome for CleanseOutcome {
    const PHASE: Phase = Phase::DataCleansing;

    fn summary(&self) -> Value {
        json!({ "records": self.records, "valid": self.valid, "invalid": self.invalid })
    }
}

/// What the rows of an import describe, from its approved mappings.
pub fn describes_import(conn: &Connection, data_import_id: &str) -> rusqlite::Result<Describes> {
    let mapped = approved_mappings(conn, data_import_id)?;
    Ok(catalogue::describes(mapped.iter().map(|m| m.field.name)))
}

/// The approved mappings of an import.
pub fn approved_mappings(
    conn: &Connection,
    data_import_id: &str,
) -> rusqlite::Result<Vec<AppliedMapping>> {
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached(
            "SELECT source_field, target_field, transformation_rules FROM import_field_mappings
             WHERE data_import_id = ?1 AND status = 'approved' AND target_field IS NOT NULL ORDER BY rowid",
        )?
        .query_map([data_import_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(source, target, rules)| {
            Some(AppliedMapping {
                source,
                field: catalogue::field(&target)?,
                rules: serde_json::from_str(&rules).unwrap_or_default(),
            })
        })
        .collect())
}

/// The approved mappings of one import, ready to cleanse its records on any
/// thread. The fingerprint names the mappings and this program's version, so
/// records cleansed with other mappings are known to need cleansing again.
#[derive(Debug)]
pub struct Cleanser {
    mappings: Vec<AppliedMapping>,
    describes: Describes,
    fingerprint: String,
    /// Set when the rows are stored (`storing_copies`): the fields whose
    /// value is their column's raw value are left out of cleansed_data.
    copies: Option<StoredCopies>,
}

/// A cleanser's `cleansed_copies` row, with each copied field by its place
/// in the catalogue, and the import's columns (a row keyed otherwise is
/// stored whole).
#[derive(Debug)]
struct StoredCopies {
    id: i64,
    fields: Vec<(usize, String)>,
    columns: Vec<String>,
}

impl Cleanser {
    /// What the rows this cleanser cleanses describe.
    pub fn describes(&self) -> Describes {
        self.describes
    }

    pub fn new(mappings: Vec<AppliedMapping>) -> Cleanser {
        let mut hasher = blake3::Hasher::new();
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.update(RULES_REVISION.as_bytes());
        hasher.update(&[0]);
        for m in &mappings {
            for part in [m.source.as_str(), m.field.name, &m.rules.to_string()] {
                hasher.update(part.as_bytes());
                hasher.update(&[0]);
            }
        }
        Cleanser {
            describes: catalogue::describes(mappings.iter().map(|m| m.field.name)),
            mappings,
            fingerprint: hasher.finalize().to_hex()[..16].to_string(),
            copies: None,
        }
    }

    /// This cleanser writing rows as raw_records stores them: each text
    /// field mapped from one column of the import, whose cleansed value is
    /// often that column's raw value, is recorded once in cleansed_copies
    /// and left out of the rows where it is.
    pub fn storing_copies(
        mut self,
        conn: &Connection,
        data_import_id: &str,
    ) -> rusqlite::Result<Cleanser> {
        let columns = crate::record_store::import_columns(conn, data_import_id)?;
        let mut copies: Vec<(String, usize, String)> = Vec::new();
        for m in &self.mappings {
            // Numbers, flags and dates are never their raw text.
            let text = !matches!(
                m.field.kind,
                FieldKind::Integer
                    | FieldKind::Decimal
                    | FieldKind::Size
                    | FieldKind::Percent
                    | FieldKind::Boolean
                    | FieldKind::Date
            );
            let one_column = m.rules.get("plus_columns").is_none();
            let taken = copies.iter().any(|(f, _, _)| f == m.field.name);
            if !text || !one_column || taken {
                continue;
            }
            if let Some(position) = columns.iter().position(|c| *c == m.source) {
                copies.push((m.field.name.to_string(), position, m.source.clone()));
            }
        }
        if copies.is_empty() {
            return Ok(self);
        }
        let stored = crate::record_store::CleansedCopies::register(conn, data_import_id, copies)?;
        self.copies = Some(StoredCopies {
            id: stored.id,
            fields: stored
                .fields()
                .filter_map(|(f, c)| Some((catalogue::field_index(f)?, c.to_string())))
                .collect(),
            columns,
        });
        Ok(self)
    }

    /// The cleanser of an import's approved mappings. A table's title types
    /// no row here: only the inventory knows whether another table describes
    /// the same machines (`inventory::TitleEvidence`).
    pub fn for_import(conn: &Connection, data_import_id: &str) -> rusqlite::Result<Cleanser> {
        Ok(Cleanser::new(approved_mappings(conn, data_import_id)?))
    }

    /// Cleanses one record given as its raw_data JSON text.
    pub fn cleanse_json(&self, raw_data: &str) -> CleansedRow {
        self.cleanse_with(raw_data, |_, _| ()).0
    }

    /// Cleanses one record and lets `also` read a valid record's fields and
    /// raw values before they are written out (the inventory builds a
    /// machine from them while the file is staged).
    pub fn cleanse_with<T>(
        &self,
        raw_data: &str,
        also: impl FnOnce(CleansedFields, &RawRecord) -> T,
    ) -> (CleansedRow, Option<T>) {
        let raw = RawRecord::parse(raw_data);
        let (cleansed, errors, is_valid) = cleanse_record(|c| raw.get(c), &self.mappings);
        // Left out only where the row is stored as the array of the import's
        // columns, which the view and the readers fill the copies from.
        let copies = self
            .copies
            .as_ref()
            .filter(|c| raw.keyed_by(&c.columns) && !cleansed.holds_null());
        let record = CleansedRow {
            cleansed_data: match copies {
                Some(c) => cleansed.to_json_without(&c.fields, &raw),
                None => cleansed.to_json(),
            },
            copies: copies.map(|c| c.id),
            validation_errors: if errors.is_empty() {
                "[]".into()
            } else {
                serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into())
            },
            is_valid,
            error_codes: errors.iter().map(|e| e.code).collect(),
            becomes: is_valid.then(|| self.becomes(&cleansed)),
        };
        // The fields are handed over once written out, so nothing is copied.
        let extra = is_valid.then(|| also(cleansed, &raw));
        (record, extra)
    }

    /// What a valid row with these fields becomes.
    fn becomes(&self, fields: &CleansedFields) -> &'static str {
        self.becomes_named(fields.get("asset_type").and_then(Value::as_str))
    }

    /// What a valid row whose fields name this asset type becomes.
    pub fn becomes_named(&self, named: Option<&str>) -> &'static str {
        if self.describes() == Describes::Applications {
            return "application";
        }
        catalogue::MACHINE_KINDS
            .iter()
            .find(|t| Some(**t) == named)
            .copied()
            .unwrap_or("server")
    }

    /// Names the mappings this cleanser applies (recorded with the counts).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// A raw_data object read for cleansing: its entries borrowed from the text
/// when no value needs unescaping (nearly always), an owned map otherwise.
/// Mappings ask for columns in about the order the columns were written, so
/// a lookup starts where the last one ended.
pub enum RawRecord<'a> {
    Borrowed {
        entries: Vec<(Cow<'a, str>, Option<&'a str>)>,
        next: Cell<usize>,
    },
    Owned(Map<String, Value>),
}

impl<'a> RawRecord<'a> {
    /// Whether the record's keys are `columns` (all, or the first ones), in
    /// order: what `record_store::ColumnKeys::compact` stores as an array.
    /// A record read as a map (a value with an escape) is not known to be.
    pub fn keyed_by(&self, columns: &[String]) -> bool {
        match self {
            RawRecord::Borrowed { entries, .. } => {
                entries.len() <= columns.len()
                    && entries.iter().zip(columns).all(|((k, _), c)| k == c)
            }
            RawRecord::Owned(_) => false,
        }
    }

    pub fn parse(text: &'a str) -> RawRecord<'a> {
        if let Some(entries) = plain_entries(text) {
            return RawRecord::Borrowed {
                entries,
                next: Cell::new(0),
            };
        }
        match serde_json::from_str::<Entries<Option<&str>>>(text) {
            Ok(Entries(entries)) => RawRecord::Borrowed {
                entries,
                next: Cell::new(0),
            },
            Err(_) => RawRecord::Owned(serde_json::from_str(text).unwrap_or_default()),
        }
    }

    pub fn get(&self, column: &str) -> Option<&str> {
        match self {
            RawRecord::Borrowed { entries, next } => {
                let start = next.get().min(entries.len());
                let (earlier, from_start) = entries.split_at(start);
                let found = from_start
                    .iter()
                    .position(|(k, _)| k == column)
                    .map(|i| start + i)
                    .or_else(|| earlier.iter().position(|(k, _)| k == column))?;
                next.set(found + 1);
                entries[found].1
            }
            RawRecord::Owned(map) => map.get(column).and_then(Value::as_str),
        }
    }
}

/// The entries of an object as staging writes raw_data (`{"key":"value",
/// "key":null}`, no spaces) when no key or value holds an escape, so that
/// each string ends at the next quote: read with a quote search instead of
/// a JSON parser, which was a fifth of cleansing. `None` for anything else,
/// which serde_json reads.
fn plain_entries(text: &str) -> Option<Vec<(Cow<'_, str>, Option<&str>)>> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') || memchr::memchr(b'\\', bytes).is_some() {
        return None;
    }
    let mut entries = Vec::with_capacity(64);
    if text == "{}" {
        return Some(entries);
    }
    // The string that opens at `at`, and where it ends.
    let string = |at: usize| -> Option<(&str, usize)> {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let end = at + 1 + memchr::memchr(b'"', &bytes[at + 1..])?;
        Some((&text[at + 1..end], end + 1))
    };
    let mut at = 1;
    loop {
        let (key, after) = string(at)?;
        if bytes.get(after) != Some(&b':') {
            return None;
        }
        let (value, after) = if bytes[after + 1..].starts_with(b"null") {
            (None, after + 5)
        } else {
            let (value, after) = string(after + 1)?;
            (Some(value), after)
        };
        entries.push((Cow::Borrowed(key), value));
        match bytes.get(after) {
            Some(b',') => at = after + 1,
            Some(b'}') if after + 1 == bytes.len() => return Some(entries),
            _ => return None,
        }
    }
}

/// A record's cleansed fields by their place in the catalogue, each set once
/// (the first mapping wins), and the extra values of list fields
/// (`_additional`); written as a JSON object with its keys in name order.
#[derive(Debug)]
pub struct CleansedFields {
    /// Bit i is set when `catalogue::FIELDS[i]` is (the catalogue has fewer
    /// than 128 fields: `a_field_set_is_one_bit_of_the_catalogue`).
    taken: u128,
    /// The same fields by their place in name order, the order they are
    /// written in, so writing them needs no sort.
    ranked: u128,
    /// Where field i's value is in `values`, when bit i of `taken` is set.
    position: [u8; 128],
    values: Vec<(usize, Value)>,
    additional: Map<String, Value>,
}

impl Default for CleansedFields {
    fn default() -> Self {
        CleansedFields {
            taken: 0,
            ranked: 0,
            position: [0; 128],
            // About as many as a wide export maps, so the list seldom grows.
            values: Vec::with_capacity(48),
            additional: Map::new(),
        }
    }
}

impl CleansedFields {
    /// Sets a field unless an earlier column already set it.
    fn set(&mut self, field: &Field, value: Value) {
        self.set_index(catalogue::index_of(field), value);
    }

    /// Sets a field named here rather than by a mapping.
    fn set_named(&mut self, name: &str, value: Value) {
        if let Some(index) = catalogue::field_index(name) {
            self.set_index(index, value);
        }
    }

    fn set_index(&mut self, index: usize, value: Value) {
        let bit = 1u128 << index;
        if self.taken & bit == 0 {
            self.taken |= bit;
            self.ranked |= 1u128 << catalogue::name_rank(index);
            self.position[index] = self.values.len() as u8;
            self.values.push((index, value));
        }
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        let index = catalogue::field_index(field)?;
        if self.taken & (1u128 << index) == 0 {
            return None;
        }
        Some(&self.values[usize::from(self.position[index])].1)
    }

    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.values.iter().map(|(i, _)| catalogue::FIELDS[*i].name)
    }

    /// The fields (by their place in the catalogue) and the extra values of
    /// list fields, taken apart.
    pub fn into_parts(self) -> (Vec<(usize, Value)>, Map<String, Value>) {
        (self.values, self.additional)
    }

    /// Whether any value, at any depth, is null (a stored delta marks a
    /// missing copy with null, so such a row is stored whole).
    fn holds_null(&self) -> bool {
        fn null_in(v: &Value) -> bool {
            match v {
                Value::Null => true,
                Value::Array(items) => items.iter().any(null_in),
                Value::Object(map) => map.values().any(null_in),
                _ => false,
            }
        }
        self.values.iter().any(|(_, v)| null_in(v)) || self.additional.values().any(null_in)
    }

    /// The JSON object without the copied fields whose value is their
    /// column's raw value, and with `null` for a copied field this row lacks
    /// although its column has a value (`record_store::CleansedCopies`).
    fn to_json_without(&self, copies: &[(usize, String)], raw: &RawRecord) -> String {
        let mut out = String::with_capacity(16 * copies.len());
        let mut left_out = 0u128;
        for (index, column) in copies {
            let raw_value = raw.get(column).filter(|v| !v.is_empty());
            let bit = 1u128 << index;
            if self.taken & bit == 0 {
                if raw_value.is_some() {
                    out.push_str(if out.is_empty() { "\"" } else { ",\"" });
                    out.push_str(catalogue::FIELDS[*index].name);
                    out.push_str("\":null");
                }
                continue;
            }
            let value = &self.values[usize::from(self.position[*index])].1;
            if raw_value.is_some() && value.as_str() == raw_value {
                left_out |= bit;
            }
        }
        let mut json = self.to_json_skipping(left_out);
        if !out.is_empty() {
            json.pop();
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(&out);
            json.push('}');
        }
        json
    }

    /// The JSON object, keys sorted as a map would write them (`_additional`
    /// sorts before every field name).
    pub fn to_json(&self) -> String {
        self.to_json_skipping(0)
    }

    /// `to_json` without the fields whose bit is set in `skipped`.
    fn to_json_skipping(&self, skipped: u128) -> String {
        let mut out = Vec::with_capacity(64 + 32 * self.values.len());
        out.push(b'{');
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, name: &str| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            // Field names are plain snake_case: nothing to escape.
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        if !self.additional.is_empty() {
            key(&mut out, "_additional");
            let _ = serde_json::to_writer(&mut out, &self.additional);
        }
        let mut ranked = self.ranked;
        while ranked != 0 {
            let index = catalogue::at_name_rank(ranked.trailing_zeros() as usize);
            ranked &= ranked - 1;
            if skipped & (1u128 << index) != 0 {
                continue;
            }
            let (_, value) = &self.values[usize::from(self.position[index])];
            key(&mut out, catalogue::FIELDS[index].name);
            let _ = serde_json::to_writer(&mut out, value);
        }
        out.push(b'}');
        // Only serde_json and ASCII names were written.
        String::from_utf8(out).unwrap_or_else(|_| "{}".into())
    }
}

/// Records an import's cleansing counts and the fingerprint of its cleanser.
pub fn record_cleansing(
    conn: &Connection,
    data_import_id: &str,
    cleanser: &Cleanser,
    tally: &CleansingTally,
) -> rusqlite::Result<()> {
    let recorded = RecordedCleansing {
        tally: tally.clone(),
        fingerprint: cleanser.fingerprint.clone(),
    };
    tables::record_cleansing(conn, data_import_id, &recorded)
}

/// Cleanses the stored records of one import in place.
fn cleanse_import(
    conn: &Connection,
    data_import_id: &str,
    cleanser: &Cleanser,
    progress: &indicatif::ProgressBar,
) -> rusqlite::Result<CleansingTally> {
    let mut tally = CleansingTally::default();
    let mut last_index = i64::MIN;
    // Rows it saw again, and other imports' sightings of its records, become
    // records of their own first: the cleansing they repeat is about to change.
    let tx = conn.unchecked_transaction()?;
    crate::stage::sightings::store_sighted(&tx, data_import_id)?;
    tx.commit()?;
    let keys = crate::record_store::ColumnKeys::of_import(conn, data_import_id)?;
    loop {
        let batch =
            crate::stage::raw_records_after(conn, data_import_id, &keys, last_index, BATCH)?;
        let Some(&(_, last, _)) = batch.last() else {
            break;
        };
        last_index = last;
        progress.inc(batch.len() as u64);
        let tx = conn.unchecked_transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE raw_records SET cleansed_data = ?2, is_valid = ?3, validation_errors = ?4,
                   processed_at = ?5, copies = ?6 WHERE rowid = ?1",
            )?;
            let now = db::now();
            for (rowid, _, raw) in &batch {
                let record = cleanser.cleanse_json(raw);
                tally.add(&record);
                update.execute(params![
                    rowid,
                    record.cleansed_data,
                    record.is_valid,
                    record.validation_errors,
                    now,
                    record.copies
                ])?;
            }
        }
        tx.commit()?;
    }
    record_cleansing(conn, data_import_id, cleanser, &tally)?;
    Ok(tally)
}

/// Why a number is outside its field's range, if it is.
fn out_of_range(field: &Field, n: f64) -> Option<String> {
    let (min, max) = field.range()?;
    if n < min {
        Some(format!(
            "{n} is below {min}, the least {} can be",
            field.name
        ))
    } else if n > max {
        Some(format!(
            "{n} is above {max}, more than any machine has for {}; check the column's unit",
            field.name
        ))
    } else {
        None
    }
}

/// Cleanses one record: (cleansed_data, validation errors, identifies a machine).
pub fn cleanse_record<'r>(
    raw: impl Fn(&str) -> Option<&'r str>,
    mappings: &[AppliedMapping],
) -> (CleansedFields, Vec<ValidationError>, bool) {
    let mut out = CleansedFields::default();
    let mut extra: Map<String, Value> = Map::new();
    let mut errors = Vec::new();
    for m in mappings {
        let Some(text) = raw(&m.source) else {
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        // Problems with the columns a mapping adds in (`plus_columns`).
        let mut plus_errors: Vec<ValidationError> = Vec::new();
        let mut fail = |code: &'static str, message: String| {
            errors.push(ValidationError {
                field: m.field.name.to_string(),
                column: m.source.clone(),
                raw_value: text.to_string(),
                code,
                message,
            })
        };
        if values::means_missing(text, m.field.kind) {
            fail(
                "missing_marker",
                format!("'{text}' means unknown; {} is left empty", m.field.name),
            );
            continue;
        }
        let rule = |key: &str| m.rules.get(key);
        match m.field.kind {
            FieldKind::Name | FieldKind::Text | FieldKind::Version => {
                out.set(m.field, json!(text));
            }
            FieldKind::Hostname | FieldKind::Fqdn => match values::normalise_host(text) {
                Some(host) => {
                    let short = values::short_name(&host);
                    if host.contains('.') && values::normalise_ip(&host).is_none() {
                        out.set_named("fqdn", json!(host));
                    }
                    out.set_named("hostname", json!(short));
                }
                None => fail("invalid_host_name", format!("'{text}' is not a host name")),
            },
            FieldKind::IpAddress | FieldKind::MacAddress => {
                let normalise = if m.field.kind == FieldKind::IpAddress {
                    values::normalise_ip
                } else {
                    values::normalise_mac
                };
                let mut all = Vec::new();
                for item in values::split_list(text) {
                    match normalise(item) {
                        Some(v) if !all.contains(&v) => all.push(v),
                        Some(_) => {}
                        None => fail(
                            if m.field.kind == FieldKind::IpAddress {
                                "invalid_ip"
                            } else {
                                "invalid_mac"
                            },
                            format!(
                                "'{item}' is not a valid {}",
                                if m.field.kind == FieldKind::IpAddress {
                                    "IP address"
                                } else {
                                    "MAC address"
                                }
                            ),
                        ),
                    }
                }
                if let Some((first, rest)) = all.split_first() {
                    out.set(m.field, json!(first));
                    if !rest.is_empty() {
                        extra.insert(m.field.name.to_string(), json!(rest));
                    }
                }
            }
            FieldKind::Uuid => {
                let hex: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                if hex.len() == 32 {
                    let h = hex.to_ascii_lowercase();
                    out.set(
                        m.field,
                        json!(format!(
                            "{}-{}-{}-{}-{}",
                            &h[..8],
                            &h[8..12],
                            &h[12..16],
                            &h[16..20],
                            &h[20..]
                        )),
                    );
                } else {
                    fail("invalid_uuid", format!("'{text}' is not a UUID"));
                }
            }
            FieldKind::Integer => match values::parse_integer(text) {
                Some(n) => {
                    let factor = rule("multiply_by")
                        .and_then(|c| c.as_str())
                        .and_then(&raw)
                        .and_then(values::parse_integer)
                        .filter(|f| *f > 0)
                        .unwrap_or(1);
                    match n.checked_mul(factor) {
                        Some(n) => match out_of_range(m.field, n as f64) {
                            None => out.set(m.field, json!(n)),
                            Some(message) => fail("out_of_range", message),
                        },
                        None => fail(
                            "out_of_range",
                            format!("{n} × {factor} is too large for {}", m.field.name),
                        ),
                    }
                }
                None => fail(
                    "not_a_whole_number",
                    format!("'{text}' is not a whole number"),
                ),
            },
            FieldKind::Decimal => match values::parse_number(text) {
                Some(n) => match out_of_range(m.field, n) {
                    None => out.set(m.field, values::number_value(n)),
                    Some(message) => fail("out_of_range", message),
                },
                None => fail("not_a_number", format!("'{text}' is not a number")),
            },
            FieldKind::Size => {
                let unit = rule("from_unit").and_then(|u| u.as_str());
                let flag = rule("flag_below").and_then(|f| f.as_f64());
                // One column per disk: the others are added (`plus_columns`).
                let mut others = 0.0;
                for column in rule("plus_columns")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str())
                {
                    let Some(value) = raw(column).map(str::trim).filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    if values::means_missing(value, m.field.kind) {
                        continue;
                    }
                    match values::parse_size(value, unit, None) {
                        Ok((gb, _)) => others += gb,
                        Err((code, message)) => plus_errors.push(ValidationError {
                            field: m.field.name.to_string(),
                            column: column.to_string(),
                            raw_value: value.to_string(),
                            code,
                            message,
                        }),
                    }
                }
                let parsed = values::parse_size(text, unit, flag)
                    .map(|(gb, warning)| (values::round_size(gb + others), warning));
                match parsed {
                    Ok((gb, warning)) => match out_of_range(m.field, gb) {
                        None => {
                            out.set(m.field, values::number_value(gb));
                            if let Some((code, message)) = warning {
                                fail(code, message);
                            }
                        }
                        Some(message) => fail("out_of_range", message),
                    },
                    Err((code, message)) => fail(code, message),
                }
            }
            FieldKind::Percent => match values::parse_percent(text) {
                Some(p) => match out_of_range(m.field, p) {
                    None => out.set(m.field, values::number_value(p)),
                    Some(_) => fail(
                        "out_of_range",
                        format!("{p} is not a percentage between 0 and 100"),
                    ),
                },
                None => fail("not_a_number", format!("'{text}' is not a percentage")),
            },
            FieldKind::Boolean => match values::parse_bool(text) {
                Some(b) => {
                    let invert = rule("invert").and_then(|v| v.as_bool()).unwrap_or(false);
                    out.set(m.field, json!(b != invert));
                }
                None => fail("not_a_boolean", format!("'{text}' is not yes/no")),
            },
            FieldKind::Date => match values::parse_date(text) {
                Some(d) => out.set(m.field, json!(d)),
                None => fail("not_a_date", format!("'{text}' is not a date")),
            },
            FieldKind::OperatingSystem => {
                let (os, version) = values::split_os(text);
                out.set_named("operating_system", json!(os));
                if let Some(version) = version {
                    extra.insert("_os_version_from_name".into(), json!(version));
                }
            }
            FieldKind::Enumerated => {
                let normalised = match m.field.name {
                    "environment" => values::environment(text),
                    "criticality" => values::criticality(text),
                    "six_r_strategy" => values::six_r(text),
                    "asset_type" => values::asset_type(text),
                    _ => None,
                };
                match normalised {
                    Some(v) => out.set(m.field, json!(v)),
                    None => fail(
                        "unknown_value",
                        format!("'{text}' is not one of {}", m.field.allowed.join(", ")),
                    ),
                }
            }
        }
        errors.append(&mut plus_errors);
    }
    // A version embedded in the OS name fills os_version when no column gave one.
    if let Some(version) = extra.remove("_os_version_from_name") {
        out.set_named("os_version", version);
    }
    // Network gear, storage and end-user devices are known by their own
    // values; without a word for it a machine is a server (or what the
    // inventory finds its table's title says, where no other table
    // describes it).
    if out.get("asset_type").is_none() {
        let text = |field: &str| out.get(field).and_then(Value::as_str);
        let kind = values::device_kind(
            text("operating_system"),
            text("os_version"),
            text("model"),
            text("manufacturer"),
        );
        if let Some(kind) = kind {
            out.set_named("asset_type", json!(kind));
        }
    }
    out.additional = extra;
    let identifies = |field: &str| field == "name" || catalogue::IDENTITY_KEYS.contains(&field);
    // A row of an application list (no column names a machine, so only rows
    // without identity get this far) is identified by its application's name.
    let applications =
        || catalogue::describes(mappings.iter().map(|m| m.field.name)) == Describes::Applications;
    let valid = out.names().any(identifies)
        || (applications() && out.names().any(|f| f == "application_name"));
    if !valid {
        errors.push(ValidationError {
            field: String::new(),
            column: String::new(),
            raw_value: String::new(),
            code: "no_identity",
            message: if applications() {
                "the row of this application list has no application name".into()
            } else if mappings.iter().any(|m| identifies(m.field.name)) {
                "the row has no name, host name, address or id, so it identifies no machine".into()
            } else {
                "no column of this file is mapped to a name, host name, address or id; approve one with `intake mappings set`".into()
            },
        });
    }
    (out, errors, valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_without_escapes_is_read_as_serde_json_reads_it() {
        fn serde_reads(text: &str) -> Option<Vec<(Cow<'_, str>, Option<&str>)>> {
            serde_json::from_str::<Entries<Option<&str>>>(text)
                .ok()
                .map(|Entries(e)| e)
        }
        for text in [
            r#"{"Name":"web01","IP Address":"10.0.0.1","Notes":null,"Owner":""}"#,
            r#"{"Größe":"16 GB","名前":"srv","a,b":"x:y","{q}":"}"}"#,
            r#"{"Name":"web01","Name_2":"web01"}"#,
            "{}",
        ] {
            let plain = plain_entries(text).expect(text);
            assert_eq!(Some(plain), serde_reads(text), "{text}");
        }
        // Escapes, other value types and other spacing go to serde_json.
        for text in [
            r#"{"Name":"say \"hi\""}"#,
            r#"{"n":1}"#,
            r#"{"b":true}"#,
            r#"{ "Name": "web01" }"#,
            r#"{"Name":"web01"} "#,
            r#"{"Name":"web01""#,
            r#"["web01"]"#,
            "",
        ] {
            assert_eq!(plain_entries(text), None, "{text}");
        }
        let record = RawRecord::parse(r#"{"Name":"say \"hi\"","IP":"10.0.0.1"}"#);
        assert_eq!(record.get("Name"), Some(r#"say "hi""#));
        assert_eq!(record.get("IP"), Some("10.0.0.1"));
    }

    fn mapping(source: &str, field: &str, rules: Value) -> AppliedMapping {
        AppliedMapping {
            source: source.into(),
            field: catalogue::field(field).unwrap(),
            rules,
        }
    }

    #[test]
    fn a_servicenow_row_is_cleansed() {
        let raw: Map<String, Value> = serde_json::from_value(json!({
            "name": "WIN-DAL-02", "fqdn": "Win-Dal-02.Corp.Example.com", "ip_address": "10.12.30.159, 10.12.30.160",
            "mac_address": "69-FE-DA-A0-EE-E8", "os": "Windows 2019 Datacenter", "cpu_count": "2", "cpu_core_count": "4",
            "ram": "16 GB", "disk_space": "1.024,5", "virtual": "true", "u_environment": "PROD", "bad_date": "soon"
        }))
        .unwrap();
        let mappings = vec![
            mapping("name", "name", json!({})),
            mapping("fqdn", "fqdn", json!({})),
            mapping(
                "ip_address",
                "ip_address",
                json!({"list": "first_is_primary"}),
            ),
            mapping("mac_address", "mac_address", json!({})),
            mapping("os", "operating_system", json!({})),
            mapping(
                "cpu_core_count",
                "cpu_cores",
                json!({"multiply_by": "cpu_count"}),
            ),
            mapping("ram", "memory_gb", json!({"from_unit": "MB"})),
            mapping("disk_space", "storage_gb", json!({"from_unit": "GB"})),
            mapping("virtual", "is_virtual", json!({})),
            mapping("u_environment", "environment", json!({})),
            mapping("bad_date", "last_discovered_at", json!({})),
        ];
        let (out, errors, valid) =
            cleanse_record(|c| raw.get(c).and_then(Value::as_str), &mappings);
        let out: Value = serde_json::from_str(&out.to_json()).unwrap();
        assert!(valid);
        assert_eq!(out["fqdn"], "win-dal-02.corp.example.com");
        assert_eq!(out["hostname"], "win-dal-02");
        assert_eq!(out["ip_address"], "10.12.30.159");
        assert_eq!(out["_additional"]["ip_address"], json!(["10.12.30.160"]));
        assert_eq!(out["mac_address"], "69:fe:da:a0:ee:e8");
        assert_eq!(out["os_version"], "2019");
        assert_eq!(out["cpu_cores"], 8);
        assert_eq!(out["memory_gb"], 16);
        assert_eq!(out["storage_gb"], 1024.5);
        assert_eq!(out["is_virtual"], true);
        assert_eq!(out["environment"], "production");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "not_a_date");
        assert_eq!(errors[0].raw_value, "soon");
        assert!(out.get("last_discovered_at").is_none());
    }

    #[test]
    fn values_outside_their_domain_are_errors_with_the_raw_value_kept() {
        let raw: Map<String, Value> = serde_json::from_value(json!({
            "name": "az01", "cores": "8999999999999999", "sockets": "2000", "ram": "-1",
            "disk": "-20", "cpu": "250", "os": "N/A", "speed": "1e400"
        }))
        .unwrap();
        let (out, errors, valid) = cleanse_record(
            |c| raw.get(c).and_then(Value::as_str),
            &[
                mapping("name", "name", json!({})),
                mapping("cores", "cpu_cores", json!({"multiply_by": "sockets"})),
                mapping("ram", "memory_gb", json!({"from_unit": "MB"})),
                mapping("disk", "storage_gb", json!({})),
                mapping("cpu", "cpu_utilization_percent", json!({})),
                mapping("os", "operating_system", json!({})),
                mapping("speed", "cpu_speed_mhz", json!({})),
            ],
        );
        assert!(valid, "one bad value never invalidates the row");
        let json: Value = serde_json::from_str(&out.to_json()).unwrap();
        assert_eq!(json, json!({"name": "az01"}));
        let code_of = |column: &str| {
            errors
                .iter()
                .find(|e| e.column == column)
                .map(|e| (e.code, e.raw_value.as_str()))
        };
        assert_eq!(code_of("cores"), Some(("out_of_range", "8999999999999999")));
        assert_eq!(code_of("ram"), Some(("missing_marker", "-1")));
        assert_eq!(code_of("disk"), Some(("out_of_range", "-20")));
        assert_eq!(code_of("cpu"), Some(("out_of_range", "250")));
        assert_eq!(code_of("os"), Some(("missing_marker", "N/A")));
        assert_eq!(code_of("speed"), Some(("not_a_number", "1e400")));
    }

    #[test]
    fn a_row_is_typed_by_its_own_values_and_a_type_column_wins() {
        let mappings = [
            mapping("name", "name", json!({})),
            mapping("type", "asset_type", json!({})),
            mapping("platform", "operating_system", json!({})),
            mapping("vendor", "manufacturer", json!({})),
            mapping("model", "model", json!({})),
        ];
        let type_of = |row: Value| {
            let raw: Map<String, Value> = serde_json::from_value(row).unwrap();
            let (out, _, _) = cleanse_record(|c| raw.get(c).and_then(Value::as_str), &mappings);
            out.get("asset_type").cloned()
        };
        let json = |v: &str| Some(json!(v));
        assert_eq!(
            type_of(json!({"name": "core-sw1", "platform": "Cisco NX-OS 9.3"})),
            json("network")
        );
        assert_eq!(
            type_of(json!({"name": "fas01", "vendor": "NetApp"})),
            json("storage")
        );
        assert_eq!(
            type_of(json!({"name": "LT-0042", "platform": "Microsoft Windows 11 Pro"})),
            json("end_user_device")
        );
        assert_eq!(
            type_of(json!({"name": "DT-7", "model": "OptiPlex 7090"})),
            json("end_user_device")
        );
        // Nothing about the machine says what it is: the table's title
        // cannot either, here (the inventory decides).
        assert_eq!(type_of(json!({"name": "pdu-7"})), None);
        assert_eq!(
            type_of(json!({"name": "web01", "platform": "Ubuntu 22.04"})),
            None
        );
        assert_eq!(
            type_of(json!({"name": "fw1", "type": "Virtual Machine", "vendor": "Fortinet"})),
            json("server"),
            "a type column says what the row is"
        );
    }

    #[test]
    fn a_row_without_identity_is_invalid() {
        let raw: Map<String, Value> = serde_json::from_value(json!({"ram": "16"})).unwrap();
        let (_, errors, valid) = cleanse_record(
            |c| raw.get(c).and_then(Value::as_str),
            &[mapping("ram", "memory_gb", json!({}))],
        );
        assert!(!valid);
        assert_eq!(errors.last().unwrap().code, "no_identity");
    }

    #[test]
    fn columns_are_found_in_any_order_and_the_first_mapping_wins() {
        let raw = RawRecord::parse(r#"{"a":"1","b":"web01","c":"web02.corp.example","d":null}"#);
        // Asked out of column order, again, and for what is missing or null.
        assert_eq!(raw.get("c"), Some("web02.corp.example"));
        assert_eq!(raw.get("a"), Some("1"));
        assert_eq!(raw.get("c"), Some("web02.corp.example"));
        assert_eq!(raw.get("zz"), None);
        assert_eq!(raw.get("d"), None);
        assert_eq!(raw.get("b"), Some("web01"));
        let (out, _, valid) = cleanse_record(
            |c| raw.get(c),
            &[
                mapping("b", "hostname", json!({})),
                mapping("c", "fqdn", json!({})),
            ],
        );
        assert!(valid);
        // Both columns give a host name; the first mapped one is kept.
        assert_eq!(out.get("hostname"), Some(&json!("web01")));
        assert_eq!(
            out.to_json(),
            r#"{"fqdn":"web02.corp.example","hostname":"web01"}"#
        );
    }

    #[test]
    fn raw_text_with_escapes_is_read_like_raw_text_without() {
        let cleanser = Cleanser::new(vec![
            mapping("Host", "hostname", json!({})),
            mapping("Notes", "description", json!({})),
        ]);
        let plain = cleanser.cleanse_json(r#"{"Host":"web01","Notes":"in rack 4"}"#);
        let escaped = cleanser.cleanse_json(r#"{"Host":"web01","Notes":"in \"rack\" 4\n"}"#);
        assert!(plain.is_valid && escaped.is_valid);
        let escaped: Value = serde_json::from_str(&escaped.cleansed_data).unwrap();
        assert_eq!(escaped["hostname"], "web01");
        assert_eq!(escaped["description"], "in \"rack\" 4");
        let plain: Value = serde_json::from_str(&plain.cleansed_data).unwrap();
        assert_eq!(plain["description"], "in rack 4");
    }
}
