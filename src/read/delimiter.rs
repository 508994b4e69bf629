//! Delimiter sniffing among `,` `;` tab and `|`. Each candidate parses the head of
//! the file with the real CSV parser, so delimiters inside quoted fields do not
//! count; the candidate that splits the most records into the same number (> 1) of
//! fields wins.

use serde::Serialize;

pub const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
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

/// Picks the delimiter of `sample` (UTF-8 text from the start of the file).
/// `complete` says whether the sample is the whole file; if not, its last record
/// may be cut and is ignored. Returns None when no candidate splits the records.
pub fn sniff(sample: &[u8], complete: bool) -> Option<u8> {
    let mut best: Option<(u8, (usize, usize, usize))> = None;
    for &candidate in &CANDIDATES {
        let counts = field_counts(sample, candidate, complete);
        if counts.is_empty() {
            continue;
        }
        let header = counts[0];
        // The mode of the field counts and how many records have it.
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        let (mut mode, mut mode_n, mut run_start) = (sorted[0], 0, 0);
        for i in 1..=sorted.len() {
            if i == sorted.len() || sorted[i] != sorted[run_start] {
                if i - run_start > mode_n {
                    mode = sorted[run_start];
                    mode_n = i - run_start;
                }
                run_start = i;
            }
        }
        if mode < 2 {
            continue;
        }
        // Share of records that agree, in tenths (so 93% and 95% tie), then the
        // header agreeing, then more fields.
        let agreement = mode_n * 10 / counts.len();
        let score = (agreement, usize::from(header == mode), mode);
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best.map(|(d, _)| d)
}

fn field_counts(sample: &[u8], delimiter: u8, complete: bool) -> Vec<usize> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(sample);
    let mut counts = Vec::new();
    let mut record = csv::ByteRecord::new();
    while counts.len() < SAMPLE_RECORDS {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                counts.push(record.len());
            }
            Ok(false) => break,
            Err(_) => break,
        }
    }
    // The last record of a cut sample is likely cut too.
    if !complete && counts.len() > 1 && reader.is_done() {
        counts.pop();
    }
    counts
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

    #[test]
    fn parse_names() {
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter("ab").is_err());
        assert!(parse_delimiter("\"").is_err());
    }
}
