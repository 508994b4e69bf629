//! Column names and the JSON form of a row. Blank and duplicate headers get
//! deterministic names (`column_7`, `Name_2`) with a warning, and the values of a
//! row longer than its header are kept under `column_N` names, so no value is
//! ever dropped. `raw_data` is a JSON object keyed by these names, in file order.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// A header that had to be renamed.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderWarning {
    /// 1-based column position.
    pub column: usize,
    pub written: String,
    pub named: String,
    pub message: String,
}

/// Gives every column a unique, non-blank name.
pub fn name_columns(written: &[String]) -> (Vec<String>, Vec<HeaderWarning>) {
    let mut taken = UniqueNames::new(written.iter().filter(|w| !w.trim().is_empty()).cloned());
    let mut seen: HashSet<&str> = HashSet::new();
    let mut names = Vec::with_capacity(written.len());
    let mut warnings = Vec::new();
    for (i, w) in written.iter().enumerate() {
        let position = i + 1;
        if w.trim().is_empty() {
            let named = taken.unique(format!("column_{position}"));
            warnings.push(HeaderWarning {
                column: position,
                written: w.clone(),
                named: named.clone(),
                message: format!(
                    "column {position} has no header; its values are kept as '{named}'"
                ),
            });
            names.push(named);
        } else if !seen.insert(w.as_str()) {
            let named = taken.unique(format!("{w}_2"));
            warnings.push(HeaderWarning {
                column: position,
                written: w.clone(),
                named: named.clone(),
                message: format!(
                    "header '{w}' appears more than once; column {position} is kept as '{named}'"
                ),
            });
            names.push(named);
        } else {
            names.push(w.clone());
        }
    }
    (names, warnings)
}

/// Names handed out so far, and for each stem the suffix to try next, so
/// that ten thousand columns called "Name" are named in linear time rather
/// than each probing upward from `Name_2`.
#[derive(Clone)]
struct UniqueNames {
    taken: HashSet<String>,
    /// stem → (the first suffix tried for it, the next suffix to try); every
    /// suffix from the first up to the next is taken.
    next: HashMap<String, (usize, usize)>,
}

impl UniqueNames {
    fn new(taken: impl Iterator<Item = String>) -> UniqueNames {
        UniqueNames {
            taken: taken.collect(),
            next: HashMap::new(),
        }
    }

    /// `wanted` if free, else the first free `stem_k`: "Name_2" taken gives
    /// "Name_3", ...; "column_7" taken gives "column_7_2", ...
    fn unique(&mut self, wanted: String) -> String {
        if self.taken.insert(wanted.clone()) {
            return wanted;
        }
        let (stem, start) = match wanted.rsplit_once('_') {
            Some((stem, n)) if n.parse::<usize>().is_ok() && !stem.starts_with("column") => (
                stem.to_string(),
                n.parse::<usize>().unwrap_or(2).saturating_add(1),
            ),
            _ => (wanted, 2),
        };
        let (first, next) = self.next.get(&stem).copied().unwrap_or((start, start));
        // Only a start inside the run known taken may skip it.
        let continues = (first..=next).contains(&start);
        let mut k = if continues { next } else { start };
        loop {
            let candidate = format!("{stem}_{k}");
            k += 1;
            if self.taken.insert(candidate.clone()) {
                if continues {
                    self.next.insert(stem, (first, k));
                }
                return candidate;
            }
        }
    }
}

/// Encodes rows as JSON objects keyed by the column names. The keys are escaped
/// once; names for values beyond the header are made on first need.
#[derive(Clone)]
pub struct RowEncoder {
    keys: Vec<String>,
    names: Vec<String>,
    taken: UniqueNames,
    header_len: usize,
    last_len: usize,
}

impl RowEncoder {
    pub fn new(names: &[String]) -> RowEncoder {
        let mut encoder = RowEncoder {
            keys: Vec::with_capacity(names.len()),
            names: Vec::with_capacity(names.len()),
            taken: UniqueNames::new(names.iter().cloned()),
            header_len: names.len(),
            last_len: 256,
        };
        for name in names {
            encoder.push_key(name.clone());
        }
        encoder
    }

    /// Whether a record repeats the header, as a second export appended to
    /// the first does (its byte-order mark, if any, now inside the file).
    /// Tables of one column are left alone: a value may name its column.
    pub fn repeats_header(&self, record: &csv::ByteRecord) -> bool {
        self.header_len >= 2
            && record.len() == self.header_len
            && record
                .iter()
                .zip(&self.names)
                .enumerate()
                .all(|(i, (field, name))| {
                    let field = if i == 0 {
                        field.strip_prefix("\u{feff}".as_bytes()).unwrap_or(field)
                    } else {
                        field
                    };
                    field.trim_ascii() == name.trim().as_bytes()
                })
    }

    fn push_key(&mut self, name: String) {
        self.keys.push(json_key(&name));
        self.names.push(name);
    }

    /// The column names, including any made for values beyond the header.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The name of column `index` (0-based), making one for a value beyond the header.
    pub fn name(&mut self, index: usize) -> &str {
        while self.keys.len() <= index {
            let position = self.keys.len() + 1;
            let name = self.taken.unique(format!("column_{position}"));
            self.push_key(name);
        }
        &self.names[index]
    }

    /// Encodes one row. Values are written as they are, including empty strings.
    pub fn encode<'a>(&mut self, values: impl Iterator<Item = &'a str>) -> String {
        self.encode_nullable(values.map(Some))
    }

    /// Encodes one row where a value may be missing (None is written as JSON null:
    /// an error cell, not an empty one).
    pub fn encode_nullable<'a>(&mut self, values: impl Iterator<Item = Option<&'a str>>) -> String {
        let mut buf = String::with_capacity(self.last_len + 64);
        buf.push('{');
        for (i, value) in values.enumerate() {
            if i >= self.keys.len() {
                self.name(i);
            }
            if i > 0 {
                buf.push(',');
            }
            buf.push_str(&self.keys[i]);
            match value {
                Some(text) => push_json_string(&mut buf, text),
                None => buf.push_str("null"),
            }
        }
        buf.push('}');
        self.last_len = buf.len();
        buf
    }
}

/// A column name as the key of a raw_data object: `"name":`.
pub fn json_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len() + 3);
    push_json_string(&mut key, name);
    key.push(':');
    key
}

/// Appends `s` as a JSON string literal (RFC 8259 escapes; control characters,
/// NUL included, as \u00XX). Written here because it is the hot path of staging:
/// the text is already UTF-8, so it is copied in runs without re-validation.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run_start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        run_start = i + 1;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn blank_and_duplicate_headers_get_stable_names() {
        let (names, warnings) = name_columns(&s(&["Name", "", "Name", "IP", "Name", " "]));
        assert_eq!(
            names,
            s(&["Name", "column_2", "Name_2", "IP", "Name_3", "column_6"])
        );
        assert_eq!(warnings.len(), 4);
    }

    #[test]
    fn ten_thousand_duplicates_are_named_in_order() {
        let written = vec!["Name".to_string(); 10_000];
        let (names, warnings) = name_columns(&written);
        assert_eq!(names[1], "Name_2");
        assert_eq!(names[9_999], "Name_10000");
        assert_eq!(warnings.len(), 9_999);
        // Names written in the header are never given to another column.
        let (names, _) = name_columns(&s(&["Name", "Name", "Name_2", "Name", "Name_3"]));
        assert_eq!(names, s(&["Name", "Name_4", "Name_2", "Name_5", "Name_3"]));
    }

    #[test]
    fn generated_names_avoid_real_headers() {
        let (names, _) = name_columns(&s(&["column_2", "", "Name_2", "Name", "Name"]));
        assert_eq!(
            names,
            s(&["column_2", "column_2_2", "Name_2", "Name", "Name_3"])
        );
    }

    #[test]
    fn json_strings_match_serde() {
        for s in [
            "plain",
            "q\"uo\\te",
            "tab\tnl\ncr\r",
            "nul\0bell\u{7}",
            "ümlaut €",
            "",
        ] {
            let mut ours = String::new();
            push_json_string(&mut ours, s);
            assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), s);
            assert_eq!(ours, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn encodes_extra_values_and_escapes() {
        let mut enc = RowEncoder::new(&s(&["a \"q\"", "column_3"]));
        let json = enc.encode(["x\ny", "", "extra", "more"].into_iter());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["a \"q\""], "x\ny");
        assert_eq!(v["column_3"], "");
        assert_eq!(v["column_3_2"], "extra");
        assert_eq!(v["column_4"], "more");
    }
}

/// What the first rows of a table are, found by `header_shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderShape {
    /// The first row names the columns.
    Named,
    /// The first row reads like the rows below it: there is no header, the
    /// columns are numbered and every row is data.
    Absent,
    /// Group labels above the field labels (merged cells in a workbook): the
    /// two rows are one header, combined into one name per column.
    TwoRows,
}

impl HeaderShape {
    /// As stored in data_imports.read_metadata.header_shape.
    pub fn name(self) -> &'static str {
        match self {
            HeaderShape::Named => "named",
            HeaderShape::Absent => "absent",
            HeaderShape::TwoRows => "two_rows",
        }
    }
}

/// The kind of one cell's text, as far as telling a header from data needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellShape {
    Empty,
    Number,
    Date,
    Address,
    Version,
    Email,
    Text,
}

fn cell_shape(text: &str) -> CellShape {
    let t = text.trim();
    if t.is_empty() {
        return CellShape::Empty;
    }
    let b = t.as_bytes();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if t.contains('@') && !t.contains(' ') && t.contains('.') {
        return CellShape::Email;
    }
    if t.parse::<std::net::IpAddr>().is_ok() || is_mac(t) {
        return CellShape::Address;
    }
    // 2024-01-31, 31/01/2024, 31.01.2024, with an optional time.
    let date_part = t.split([' ', 'T']).next().unwrap_or(t);
    let parts: Vec<&str> = date_part.split(['-', '/', '.']).collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        && (parts[0].len() == 4 || parts[2].len() == 4)
    {
        return CellShape::Date;
    }
    if parts.len() >= 2
        && parts.len() <= 4
        && t.split('.').count() >= 2
        && t.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        && t.split('.').count() != 2
    {
        return CellShape::Version;
    }
    let numeric = t.replace([',', '.', ' ', '-', '+'], "");
    if !numeric.is_empty() && numeric.bytes().all(|c| c.is_ascii_digit()) && digits > 0 {
        return CellShape::Number;
    }
    CellShape::Text
}

fn is_mac(t: &str) -> bool {
    let hex: Vec<&str> = t.split([':', '-']).collect();
    hex.len() == 6
        && hex
            .iter()
            .all(|h| h.len() == 2 && h.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Whether the first of `rows` (a table's first non-blank rows, the first
/// being the header candidate) names columns, is data, or is a group row
/// above the names. A header's cells are words: a first row whose cells have
/// the shapes of the cells below them (dates, addresses, versions, e-mail
/// addresses, or several numbers), or repeat values found below them, is data.
pub fn header_shape(rows: &[Vec<String>]) -> HeaderShape {
    // A row that repeats the candidate (a second export joined to the first)
    // is the header again, not data whose values the header repeats.
    let bare = |c: &str| c.trim_start_matches('\u{feff}').trim().to_string();
    let repeats_first = |r: &Vec<String>| {
        r.len() == rows[0].len() && r.iter().zip(&rows[0]).all(|(a, b)| bare(a) == bare(b))
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| *i == 0 || !repeats_first(r))
        .map(|(_, r)| r.clone())
        .collect();
    if rows.len() < 2 {
        return HeaderShape::Named;
    }
    if reads_like_data(&rows[0], &rows[1..]) {
        return HeaderShape::Absent;
    }
    // A group row: few cells over a row of labels that is itself no data.
    let filled = |r: &[String]| r.iter().filter(|c| !c.trim().is_empty()).count();
    let (groups, labels) = (filled(&rows[0]), filled(&rows[1]));
    let labels_are_words = rows[1]
        .iter()
        .all(|c| matches!(cell_shape(c), CellShape::Text | CellShape::Empty));
    if rows.len() >= 3
        && labels >= 4
        && groups >= 1
        && groups * 5 <= labels * 3
        && labels_are_words
        && !reads_like_data(&rows[1], &rows[2..])
        // The rows under the labels hold values, not more words.
        && rows[2]
            .iter()
            .any(|c| !matches!(cell_shape(c), CellShape::Text | CellShape::Empty))
        && rows[0]
            .iter()
            .all(|c| matches!(cell_shape(c), CellShape::Text | CellShape::Empty))
    {
        return HeaderShape::TwoRows;
    }
    HeaderShape::Named
}

fn reads_like_data(first: &[String], below: &[Vec<String>]) -> bool {
    let mut typed = 0;
    let mut numbers = 0;
    let mut repeated = 0;
    for (column, cell) in first.iter().enumerate() {
        let shape = cell_shape(cell);
        let under: Vec<&str> = below
            .iter()
            .filter_map(|r| r.get(column).map(String::as_str))
            .filter(|c| !c.trim().is_empty())
            .collect();
        if under.is_empty() {
            continue;
        }
        let alike = under.iter().filter(|c| cell_shape(c) == shape).count();
        let mostly_alike = alike * 5 >= under.len() * 3;
        match shape {
            CellShape::Date | CellShape::Address | CellShape::Version | CellShape::Email
                if mostly_alike =>
            {
                typed += 1
            }
            CellShape::Number if mostly_alike => numbers += 1,
            CellShape::Text if under.iter().any(|c| c.trim() == cell.trim()) => repeated += 1,
            _ => {}
        }
    }
    typed >= 2 || (typed >= 1 && (numbers >= 1 || repeated >= 1)) || numbers >= 3 || repeated >= 2
}

/// One name per column from a group row and a label row: the label under its
/// group ("CPU - Cores"), a group carried right until the next one, as a
/// merged group cell covers the labels after it.
pub fn combine_two_rows(groups: &[String], labels: &[String]) -> Vec<String> {
    let width = groups.len().max(labels.len());
    let mut group = String::new();
    (0..width)
        .map(|i| {
            if let Some(g) = groups.get(i).filter(|g| !g.trim().is_empty()) {
                group = g.trim().to_string();
            }
            let label = labels.get(i).map_or("", |l| l.trim());
            match (group.is_empty(), label.is_empty()) {
                (_, true) => group.clone(),
                (true, false) => label.to_string(),
                (false, false) => format!("{group} - {label}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    fn rows(text: &[&[&str]]) -> Vec<Vec<String>> {
        text.iter()
            .map(|r| r.iter().map(|c| (*c).to_string()).collect())
            .collect()
    }

    #[test]
    fn a_first_row_like_the_rows_below_is_data() {
        let sccm = rows(&[
            &[
                "CZC1234ABC",
                "PC-0001",
                "Microsoft Windows 10 Enterprise",
                "10.0.19045",
                "HP EliteBook 840 G5",
                "2024-01-05",
            ],
            &[
                "CZC1234ABD",
                "PC-0002",
                "Microsoft Windows 11 Enterprise",
                "10.0.22631",
                "HP EliteBook 840 G8",
                "2024-01-06",
            ],
            &[
                "CZC1234ABE",
                "PC-0003",
                "Microsoft Windows 10 Enterprise",
                "10.0.19045",
                "Dell Latitude 5420",
                "2024-02-01",
            ],
        ]);
        assert_eq!(header_shape(&sccm), HeaderShape::Absent);
        let named = rows(&[
            &["Serial", "Name", "OS", "Version", "Model", "Last seen"],
            &[
                "CZC1234ABC",
                "PC-0001",
                "Windows 10",
                "10.0.19045",
                "HP",
                "2024-01-05",
            ],
            &[
                "CZC1234ABD",
                "PC-0002",
                "Windows 11",
                "10.0.22631",
                "HP",
                "2024-01-06",
            ],
        ]);
        assert_eq!(header_shape(&named), HeaderShape::Named);
        // Years as column names over amounts are still a header.
        let costs = rows(&[
            &["Server", "2022", "2023"],
            &["web01", "1200.50", "1300.00"],
            &["web02", "800.00", "810.25"],
        ]);
        assert_eq!(header_shape(&costs), HeaderShape::Named);
    }

    #[test]
    fn group_labels_above_field_labels_are_one_header() {
        let cloudamize = rows(&[
            &["Server", "", "", "CPU", "", "Memory", ""],
            &[
                "Name",
                "IP Address",
                "OS",
                "Cores",
                "Utilization %",
                "GB",
                "Utilization %",
            ],
            &[
                "web01",
                "10.0.0.1",
                "Windows Server 2019",
                "4",
                "12.5",
                "16",
                "40",
            ],
            &["db01", "10.0.0.2", "RHEL 8", "8", "55.0", "64", "71"],
        ]);
        assert_eq!(header_shape(&cloudamize), HeaderShape::TwoRows);
        let names = combine_two_rows(&cloudamize[0], &cloudamize[1]);
        assert_eq!(names[0], "Server - Name");
        assert_eq!(names[3], "CPU - Cores");
        assert_eq!(names[6], "Memory - Utilization %");
    }
}
