//! Dialect sniffing: the delimiter (`,` `;` tab `|` or a space), the quote
//! character (`"` or `'`), backslash escapes, and spaces after the delimiter
//! (`a, "b, c"`). Each candidate parses the head of the file with the real
//! CSV parser, so delimiters inside quoted fields do not count, and the most
//! consistent table wins (CleverCSV's measure: regular row widths times
//! cells that read as values).

use serde::Serialize;

pub const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
// A space is a candidate too (see `sniff_dialect`), tried after these.
const SAMPLE_RECORDS: usize = 200;

/// How the delimiter of a file was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DelimiterSource {
    Detected,
    /// Nothing split the records; the default for the file's extension was used.
    Default,
    Override,
}

/// Parses a --delimiter value: one character, or a name (comma, semicolon, tab, pipe).
pub fn parse_delimiter(arg: &str) -> Result<u8, String> {
    let byte = match arg.to_ascii_lowercase().as_str() {
        "," | "comma" => b',',
        ";" | "semicolon" => b';',
        "\t" | "\\t" | "tab" => b'\t',
        "|" | "pipe" => b'|',
        other if other.len() == 1 && other.is_ascii() => other.as_bytes()[0],
        _ => {
            return Err(format!(
            "'{arg}' is not a delimiter: give one ASCII character or comma, semicolon, tab, pipe"
        ))
        }
    };
    if byte == b'"' || byte == b'\n' || byte == b'\r' {
        return Err(format!("'{arg}' cannot be a delimiter"));
    }
    Ok(byte)
}

/// A printable name of a delimiter for summaries.
pub fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".to_string(),
        b',' => "comma".to_string(),
        b';' => "semicolon".to_string(),
        b'|' => "pipe".to_string(),
        other => (other as char).to_string(),
    }
}

/// How a delimited file is written: its delimiter, its quote character,
/// whether a backslash escapes a quote inside a quoted value, and whether
/// spaces after a delimiter are padding (`a, "b, c"`: the quote still opens
/// the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dialect {
    #[serde(serialize_with = "as_char")]
    pub delimiter: u8,
    #[serde(serialize_with = "as_char")]
    pub quote: u8,
    #[serde(serialize_with = "as_optional_char")]
    pub escape: Option<u8>,
    pub skip_initial_space: bool,
}

fn as_char<S: serde::Serializer>(b: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&(*b as char).to_string())
}

fn as_optional_char<S: serde::Serializer>(b: &Option<u8>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&(*b as char).to_string()),
        None => s.serialize_none(),
    }
}

impl Dialect {
    /// RFC 4180 with `delimiter`: double quotes, `""` inside them.
    pub fn standard(delimiter: u8) -> Dialect {
        Dialect {
            delimiter,
            quote: b'"',
            escape: None,
            skip_initial_space: false,
        }
    }

    /// Whether the file is read as RFC 4180 (the parallel reader's rules).
    pub fn is_standard(&self) -> bool {
        self.quote == b'"' && self.escape.is_none() && !self.skip_initial_space
    }

    /// "comma", "comma and space, quotes ', escapes \\".
    pub fn describe(&self) -> String {
        let mut out = delimiter_name(self.delimiter);
        if self.skip_initial_space {
            out.push_str(" and space");
        }
        if self.quote != b'"' {
            out.push_str(&format!(", quotes {}", self.quote as char));
        }
        if let Some(e) = self.escape {
            out.push_str(&format!(", escapes {}", e as char));
        }
        out
    }
}

/// What sniffing decided, and the dialect that came closest when another
/// reading of the file was nearly as consistent (reported, never silent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sniffed {
    pub dialect: Dialect,
    pub score: f64,
    pub runner_up: Option<(Dialect, f64)>,
}

/// A runner-up within this share of the winner's score is reported as an
/// ambiguity.
const AMBIGUOUS: f64 = 0.9;
/// How much more consistent a space-delimited reading must be than the best
/// other one to win.
const SPACE_MARGIN: f64 = 1.25;

/// Picks the delimiter of `sample` (see `sniff_dialect`).
pub fn sniff(sample: &[u8], complete: bool) -> Option<u8> {
    sniff_dialect(sample, complete).map(|s| s.dialect.delimiter)
}

/// Picks the dialect of `sample` (UTF-8 text from the start of the file) the
/// way CleverCSV does: each candidate dialect parses the sample, and the
/// parse scores its consistency, the regularity of the rows' widths
/// (pattern score) times the share of cells that read as a known kind of
/// value (type score). A quote left in a value, a value starting with a
/// space, a record split inside a quoted value all lower the score of the
/// dialect that leaves them. `complete` says whether the sample is the whole
/// file; if not, its last record may be cut and is ignored. None when no
/// candidate splits the records into two or more fields.
pub fn sniff_dialect(sample: &[u8], complete: bool) -> Option<Sniffed> {
    // Candidates in order of preference: a later one must score higher to win.
    let mut candidates: Vec<Dialect> = Vec::new();
    let has = |b: u8| memchr::memchr(b, sample).is_some();
    for delimiter in CANDIDATES.into_iter().chain([b' ']) {
        if !has(delimiter) {
            continue;
        }
        for quote in [b'"', b'\''] {
            if quote != b'"' && !has(quote) {
                continue;
            }
            for escape in [None, Some(b'\\')] {
                if escape.is_some() && !has(b'\\') {
                    continue;
                }
                for skip_initial_space in [false, true] {
                    if skip_initial_space
                        && (delimiter == b' ' || !followed_by_space(sample, delimiter))
                    {
                        continue;
                    }
                    candidates.push(Dialect {
                        delimiter,
                        quote,
                        escape,
                        skip_initial_space,
                    });
                }
            }
        }
    }
    let mut scored: Vec<(Dialect, f64)> = candidates
        .into_iter()
        .filter_map(|d| {
            let rows = parse(sample, d, complete);
            // A space splits prose and values too: a header that still holds
            // another delimiter is a table of that delimiter, not of spaces.
            if d.delimiter == b' '
                && rows
                    .first()
                    .is_some_and(|header| header.iter().any(|c| c.contains([',', ';', '\t', '|'])))
            {
                return None;
            }
            let score = consistency(&rows);
            (score > 0.0).then_some((d, score))
        })
        .collect();
    // Stable: of equal scores the earlier (preferred) candidate stays first.
    scored.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    // A space-delimited reading wins only clearly: prose and values with
    // spaces split into words too.
    let best_other = scored
        .iter()
        .find(|(d, _)| d.delimiter != b' ')
        .map_or(0.0, |(_, s)| *s);
    if let Some(at) = scored.iter().position(|(d, _)| d.delimiter != b' ') {
        if scored[0].0.delimiter == b' ' && scored[0].1 < best_other * SPACE_MARGIN {
            let other = scored.remove(at);
            scored.insert(0, other);
        }
    }
    let (dialect, score) = *scored.first()?;
    let runner_up = scored
        .iter()
        .skip(1)
        .find(|(d, _)| d.delimiter != dialect.delimiter || d.quote != dialect.quote)
        .copied()
        .filter(|(_, s)| *s >= score * AMBIGUOUS);
    Some(Sniffed {
        dialect,
        score,
        runner_up,
    })
}

/// Whether most occurrences of `delimiter` in the sample's first lines are
/// followed by a space (`a, b, c`).
fn followed_by_space(sample: &[u8], delimiter: u8) -> bool {
    let (mut total, mut spaced) = (0usize, 0usize);
    for (i, &b) in sample.iter().enumerate().take(64 << 10) {
        if b == delimiter {
            total += 1;
            if sample.get(i + 1) == Some(&b' ') {
                spaced += 1;
            }
        }
    }
    total > 0 && spaced * 2 > total
}

/// The first records of `sample` read with `dialect`, as text.
fn parse(sample: &[u8], dialect: Dialect, complete: bool) -> Vec<Vec<String>> {
    let text = if dialect.skip_initial_space {
        std::borrow::Cow::Owned(skip_initial_spaces(sample, dialect))
    } else {
        std::borrow::Cow::Borrowed(sample)
    };
    let mut reader = builder(dialect).from_reader(text.as_ref());
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    while rows.len() < SAMPLE_RECORDS {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                rows.push(
                    record
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                );
            }
            Ok(false) | Err(_) => break,
        }
    }
    // The last record of a cut sample is likely cut too.
    if !complete && rows.len() > 1 && reader.is_done() {
        rows.pop();
    }
    rows
}

/// The csv crate's reader for `dialect`: every line a record, of any width.
pub fn builder(dialect: Dialect) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .escape(dialect.escape)
        .double_quote(dialect.escape.is_none())
        .has_headers(false)
        .flexible(true);
    builder
}

/// `text` without the spaces that follow a delimiter outside quoted values,
/// so a quote after `, ` opens a quoted value (what Python's
/// skipinitialspace does). `SkipInitialSpace` does the same while streaming.
pub fn skip_initial_spaces(text: &[u8], dialect: Dialect) -> Vec<u8> {
    let mut filter = SkipInitialSpace::new(dialect);
    let mut out = text.to_vec();
    let n = filter.filter(&mut out);
    out.truncate(n);
    out
}

/// Drops the spaces after each delimiter outside quoted values, across
/// buffer boundaries.
#[derive(Debug, Clone)]
pub struct SkipInitialSpace {
    dialect: Dialect,
    in_quotes: bool,
    after_delimiter: bool,
    escaped: bool,
}

impl SkipInitialSpace {
    pub fn new(dialect: Dialect) -> Self {
        SkipInitialSpace {
            dialect,
            in_quotes: false,
            after_delimiter: false,
            escaped: false,
        }
    }

    /// Filters `buf` in place and returns its new length.
    pub fn filter(&mut self, buf: &mut [u8]) -> usize {
        let mut kept = 0;
        for i in 0..buf.len() {
            let b = buf[i];
            if self.in_quotes {
                if self.escaped {
                    self.escaped = false;
                } else if Some(b) == self.dialect.escape {
                    self.escaped = true;
                } else if b == self.dialect.quote {
                    // `""` closes and reopens: the state comes out right either way.
                    self.in_quotes = false;
                }
            } else if self.after_delimiter && b == b' ' {
                continue;
            } else if b == self.dialect.quote {
                self.in_quotes = true;
            }
            self.after_delimiter = !self.in_quotes && b == self.dialect.delimiter;
            buf[kept] = b;
            kept += 1;
        }
        kept
    }
}

/// A quote that opens a cell of the header (the first non-blank line) and
/// is never closed on that line nor on the next: a stray quote that would
/// swallow the rest of the file into one header cell. Returns its byte
/// offset in `head` and the 0-based column it opens. A quoted header cell
/// that spans two lines (`"Provisioned` / `MiB"`) is not stray.
pub fn stray_header_quote(head: &[u8], dialect: Dialect) -> Option<(u64, usize)> {
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut i = start;
    let mut column = 0;
    let mut field_start = true;
    while i < head.len() {
        let b = head[i];
        if b == b'\n' || b == b'\r' {
            return None;
        }
        if field_start && b == dialect.quote {
            // Where does this quoted cell end?
            let mut j = i + 1;
            let mut breaks = 0;
            loop {
                let Some(&c) = head.get(j) else {
                    return Some((i as u64, column));
                };
                if Some(c) == dialect.escape {
                    j += 2;
                    continue;
                }
                if c == dialect.quote {
                    if head.get(j + 1) == Some(&dialect.quote) && dialect.escape.is_none() {
                        j += 2;
                        continue;
                    }
                    break;
                }
                if c == b'\n' {
                    breaks += 1;
                    if breaks > 1 {
                        return Some((i as u64, column));
                    }
                }
                j += 1;
            }
            if breaks > 0 {
                return None; // a header cell over two lines, closed properly
            }
            i = j + 1;
            field_start = false;
            continue;
        }
        if b == dialect.delimiter {
            column += 1;
            field_start = true;
        } else if !(dialect.skip_initial_space && field_start && b == b' ') {
            field_start = false;
        }
        i += 1;
    }
    None
}

/// One table of a file that holds several (a second header and its rows
/// after the first table): the byte range of the text as the parser sees it
/// (after the stray header quote and the padding after delimiters are
/// dropped) and the line breaks before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPart {
    pub start: u64,
    pub end: Option<u64>,
    pub lines_before: u64,
}

/// The tables of `text` (the whole file, as the parser sees it) when it holds
/// more than one: a record that reads as a header (every cell filled, none a
/// number, no two alike), after a blank line or where the width changes,
/// whose width differs from the table above's header and whose next record
/// has its width, starts a new table. One part or none: the file is one table.
pub fn tables_in(text: &[u8], dialect: Dialect) -> Vec<TextPart> {
    let mut reader = builder(dialect).from_reader(text);
    let mut record = csv::ByteRecord::new();
    // (offset, line breaks inside, width, header-like, cells) of each record.
    let mut records: Vec<(u64, usize, usize, bool, Vec<String>)> = Vec::new();
    while records.len() < 100_000 {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                let Some(position) = record.position() else {
                    continue;
                };
                let inside = record
                    .iter()
                    .map(|f| memchr::memchr_iter(b'\n', f).count())
                    .sum::<usize>();
                let cells: Vec<String> = record
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).trim().to_lowercase())
                    .collect();
                let header_like = cells.len() >= 2
                    && cells.iter().all(|t| {
                        !t.is_empty()
                            && t.parse::<f64>().is_err()
                            && t.chars().any(char::is_alphabetic)
                    })
                    && {
                        let mut sorted: Vec<&String> = cells.iter().collect();
                        sorted.sort();
                        sorted.windows(2).all(|w| w[0] != w[1])
                    };
                records.push((position.byte(), inside, record.len(), header_like, cells));
            }
            Ok(false) | Err(_) => break,
        }
    }
    let breaks_in =
        |from: u64, to: u64| memchr::memchr_iter(b'\n', &text[from as usize..to as usize]).count();
    let first_byte = |offset: u64| {
        text[offset as usize..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(text.len() as u64, |p| offset + p as u64)
    };
    let mut starts: Vec<usize> = Vec::new();
    let mut header = match records.first() {
        Some(_) => 0,
        None => return Vec::new(),
    };
    // Data rows of the current table, and how many of them read as headers.
    let (mut rows, mut header_like_rows) = (0usize, 0usize);
    for k in 1..records.len() {
        let (offset, _, width, header_like, ref cells) = records[k];
        let previous = &records[k - 1];
        // More line breaks since the record before than it holds and ends
        // with, counted from the first byte of each (a record's position may
        // be the blank line above it, or the `\n` of a CRLF).
        let blank_before = breaks_in(first_byte(previous.0), first_byte(offset)) > previous.1 + 1;
        let width_changes = width != previous.2;
        let next_agrees = records.get(k + 1).is_some_and(|n| n.2 == width);
        let header_width = records[header].2;
        // A table of the same width starts after a blank line only when the
        // table above has a header (not title lines above one) over data
        // rows (not text that reads like headers) and names other columns.
        let same_width_table = width == header_width
            && blank_before
            && records[header].3
            && header_like_rows * 2 < rows
            && *cells != records[header].4;
        let new_width_table = width != header_width && (blank_before || width_changes);
        if k >= 2 && header_like && next_agrees && (new_width_table || same_width_table) {
            starts.push(k);
            header = k;
            (rows, header_like_rows) = (0, 0);
        } else {
            rows += 1;
            header_like_rows += usize::from(header_like);
        }
    }
    if starts.is_empty() {
        return Vec::new();
    }
    let mut parts = vec![TextPart {
        start: 0,
        end: None,
        lines_before: 0,
    }];
    for k in starts {
        let offset = records[k].0;
        parts.last_mut().expect("one part at least").end = Some(offset);
        parts.push(TextPart {
            start: offset,
            end: None,
            lines_before: breaks_in(0, offset) as u64,
        });
    }
    parts
}

/// CleverCSV's data consistency: pattern score × type score.
fn consistency(rows: &[Vec<String>]) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    // Pattern score: rows grouped by width; each group adds its size times
    // (width − 1) / width, and the sum is divided by the number of groups.
    let mut widths: std::collections::BTreeMap<usize, usize> = Default::default();
    for row in rows {
        *widths.entry(row.len()).or_default() += 1;
    }
    let pattern: f64 = widths
        .iter()
        .map(|(&width, &n)| n as f64 * (width as f64 - 1.0) / width as f64)
        .sum::<f64>()
        / widths.len() as f64;
    if pattern <= 0.0 {
        return 0.0;
    }
    let cells: usize = rows.iter().map(Vec::len).sum();
    let typed = rows
        .iter()
        .flat_map(|row| row.iter())
        .filter(|cell| known_kind(cell))
        .count();
    // A small floor keeps a parse whose cells are all unknown comparable.
    let types = (typed as f64 / cells.max(1) as f64).max(1e-3);
    pattern * types
}

/// Whether a cell reads as a kind of value (CleverCSV's type detection, in
/// short): empty, a number (decimal comma, thousands, units, percent), a
/// date or time, an address (IP, MAC, e-mail, URL, path), or clean text
/// (letters, digits, spaces and common punctuation, with no quote character
/// and no padding at either end).
fn known_kind(cell: &str) -> bool {
    if cell.is_empty() {
        return true;
    }
    if cell.starts_with(char::is_whitespace) || cell.ends_with(char::is_whitespace) {
        return false;
    }
    // A number as exports write them: "1,546.6", "15,5", "16 GB", "45%".
    let digits = cell.chars().filter(char::is_ascii_digit).count();
    if digits > 0
        && cell
            .trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%')
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | ' ' | '\''))
    {
        return true;
    }
    // A quote left in a value, or another reading's delimiter inside it.
    if cell.contains(['"', '\'', ',', ';', '\t', '|']) {
        return false;
    }
    if cell.contains('\\') && !looks_like_path(cell) {
        return false;
    }
    cell.chars().all(|c| {
        c.is_alphanumeric()
            || matches!(
                c,
                ' ' | '.'
                    | '-'
                    | '_'
                    | ':'
                    | '/'
                    | '('
                    | ')'
                    | '&'
                    | '+'
                    | '%'
                    | '#'
                    | '@'
                    | '='
                    | '['
                    | ']'
                    | '\\'
                    | '*'
                    | '$'
                    | '€'
                    | '£'
                    | '!'
                    | '?'
            )
    })
}

fn looks_like_path(cell: &str) -> bool {
    cell.starts_with("\\\\") || cell.get(1..3) == Some(":\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_with_decimal_commas() {
        let s = b"Name;RAM GB;CPU\nweb01;15,5;4\ndb01;31,25;8\napp01;8;2\n";
        assert_eq!(sniff(s, true), Some(b';'));
    }

    #[test]
    fn quoted_semicolons_do_not_fool_comma() {
        let s = b"name,notes,ip\n\"web01\",\"a;b;c;d\",10.0.0.1\n\"db01\",\"x;y;z;w\",10.0.0.2\n";
        assert_eq!(sniff(s, true), Some(b','));
    }

    #[test]
    fn tabs_and_pipes() {
        assert_eq!(sniff(b"a\tb\tc\n1\t2\t3\n", true), Some(b'\t'));
        assert_eq!(sniff(b"a|b|c\n1|2|3\n", true), Some(b'|'));
    }

    #[test]
    fn one_column_has_no_delimiter() {
        assert_eq!(sniff(b"hostname\nweb01\ndb01\n", true), None);
    }

    fn dialect_of(text: &str) -> Dialect {
        sniff_dialect(text.as_bytes(), true)
            .expect("a dialect")
            .dialect
    }

    #[test]
    fn comma_then_space_keeps_quotes_working() {
        let d = dialect_of(
            "TIME, VALUE, DESCRIPTION\n10:00, 3.5, \"pump started, pressure low\"\n10:05, 4.1, \"valve open, flow ok\"\n10:10, 4.0, \"steady\"\n",
        );
        assert_eq!((d.delimiter, d.skip_initial_space), (b',', true));
        let rows = parse(b"a, \"b, c\", d\n1, \"x, y\", 2\n", d, true);
        assert_eq!(rows[0], ["a", "b, c", "d"]);
    }

    #[test]
    fn a_space_delimits_when_it_makes_the_table() {
        let d = dialect_of(
            "id name \"product description\" price\n1 widget \"large, blue\" 3.50\n2 gadget \"small, red\" 1.25\n3 bolt \"steel, M8\" 0.10\n",
        );
        assert_eq!((d.delimiter, d.quote), (b' ', b'"'));
        // Values with spaces in a comma file stay a comma file.
        let d = dialect_of("Server Name,Operating System\nweb 01,Windows 2019\ndb 02,Ubuntu 22.04\napp 03,RHEL 8\n");
        assert_eq!(d.delimiter, b',');
    }

    #[test]
    fn apostrophes_quote_and_backslashes_escape() {
        let d = dialect_of(
            "'Name','ProductDescription','Price'\n'web01','a box, large',12\n'db01','a crate, small',7\n'app01','plain',3\n",
        );
        assert_eq!((d.delimiter, d.quote), (b',', b'\''));
        let d = dialect_of(
            "name,comment,n\nweb01,\"said \\\"hi, there\\\" twice\",1\ndb01,\"no \\\"quotes, here\\\" at all\",2\napp01,plain,3\n",
        );
        assert_eq!((d.delimiter, d.escape), (b',', Some(b'\\')));
        let rows = parse(b"a,\"x \\\"y, z\\\" w\",b\n", d, true);
        assert_eq!(rows[0], ["a", "x \"y, z\" w", "b"]);
    }

    #[test]
    fn a_plain_file_keeps_the_standard_dialect() {
        let d = dialect_of("a,b,c\n1,2,3\n4,5,6\n");
        assert_eq!(d, Dialect::standard(b','));
    }

    #[test]
    fn a_stray_quote_in_the_header_is_found() {
        let d = Dialect::standard(b',');
        let stray = b"Server Name,\"OS,Environment\nweb01,Ubuntu,prod\ndb01,RHEL,prod\n";
        assert_eq!(stray_header_quote(stray, d), Some((12, 1)));
        let two_lines = b"Name,\"Provisioned\nMiB\",OS\nweb01,10,Ubuntu\n";
        assert_eq!(stray_header_quote(two_lines, d), None);
        assert_eq!(stray_header_quote(b"\"a\",\"b\"\n1,2\n", d), None);
    }

    #[test]
    fn a_second_table_after_a_blank_line_is_its_own_part() {
        let d = Dialect::standard(b',');
        let text = b"Server Name,OS,Environment\nweb01,Ubuntu,production\ndb01,RHEL,production\n\nApplication,Owner\nCRM,alice\nPayroll,bob\n";
        let parts = tables_in(text, d);
        assert_eq!(parts.len(), 2, "{parts:?}");
        // The part may start at the blank line above its header.
        let rest = &text[parts[1].start as usize..];
        let skipped = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        assert_eq!(&rest[skipped..][..11], b"Application");
        assert_eq!(parts[1].lines_before as usize + skipped, 4);
        assert_eq!(parts[0].end, Some(parts[1].start));
        // Rows of text the width of the header, after a blank line, are rows.
        let one = b"Name,OS\nweb01,Ubuntu\n\nweb02,RHEL\ndb01,Debian\n";
        assert!(tables_in(one, d).is_empty());
        // The same width after a blank line: a table when it names other
        // columns and the rows above are data; a repeated header is not one.
        let same = b"Server,OS,CPUs\nweb01,Ubuntu,4\ndb01,RHEL,8\n\nApplication,Owner,Tier\nCRM,alice,1\nPayroll,bob,2\n";
        assert_eq!(tables_in(same, d).len(), 2);
        let repeated =
            b"Server,OS,CPUs\nweb01,Ubuntu,4\n\nServer,OS,CPUs\ndb01,RHEL,8\napp01,Debian,2\n";
        assert!(tables_in(repeated, d).is_empty());
        // Title lines above the header are not a table of their own.
        let titled = b"Server inventory, south;;;\nExported 2026-03-01;;;\n;;;\nName;IP;RAM;OS\nweb01;10.0.0.1;15,5;RHEL 8\nweb02;10.0.0.2;8;\n";
        assert!(tables_in(titled, Dialect::standard(b';')).is_empty());
        // Lines that end in CRLF are not blank lines.
        let crlf = b"name,class,id\r\nweb01,server,0a\r\ndb01,server,0b\r\napp01,computer,0c\r\nweb02,server,0d\r\n";
        assert!(tables_in(crlf, d).is_empty());
        let crlf_two = b"name,class,id\r\nweb01,server,1\r\ndb01,server,2\r\n\r\nApp,Owner,Tier\r\nCRM,alice,1\r\nERP,bob,2\r\n";
        assert_eq!(tables_in(crlf_two, d).len(), 2);
        // A ragged row is not a table.
        let ragged = b"a,b,c\n1,2,3\n\nx,y\n4,5,6\n";
        assert!(tables_in(ragged, d).is_empty());
    }

    #[test]
    fn parse_names() {
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter("ab").is_err());
        assert!(parse_delimiter("\"").is_err());
    }
}
