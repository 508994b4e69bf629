//! Property tests over the code that meets files nobody controls: the value
//! parsers of every catalogue field (through cleansing), the encoding and
//! delimiter sniffers, the header finders of CSV and workbooks, the rules
//! parser and the workbook guard. Each runs a bounded number of cases (CI
//! time); `PROPTEST_CASES` raises it for a longer hunt.

use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};

use intake::catalogue::{self, FieldKind, FIELDS};
use intake::cleanse::{values, AppliedMapping, Cleanser};
use intake::read::csv_parallel::Parallelism;
use intake::read::delimiter;
use intake::read::encoding;
use intake::read::header::name_columns;
use intake::read::stream::{collect_text, CollectedTable};
use intake::read::workbook::guard;
use intake::read::workbook::table::{find_header, SheetTable};
use intake::read::workbook::{CellKind, CellValue, SheetRow};
use intake::read::{CsvSource, EncodingSource, InputFile, ReadOptions};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text as exports write it, and worse: numbers in every notation, markers
/// for "unknown", dates, units, and arbitrary Unicode (controls included).
fn export_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-+]?[0-9]{1,20}([.,][0-9]{1,6})?",
        "[-+]?[0-9]{1,3}([., '][0-9]{3}){0,6}([.,][0-9]{1,3})? ?(GB|MB|TB|KiB|%|€|EUR)?",
        "-?[0-9]{1,4}[./-][0-9]{1,4}[./-][0-9]{1,5}( [0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2})?)?",
        "(N/A|n/a|unknown|-1|-|TBD|none|NULL|\\?)",
        "[0-9a-fA-F:.-]{1,40}",
        "(İ|K|ẞ|Ⱥ|ǅ|ﬀ){0,4}(rhel|RHEL|Windows|ubuntu|SLES) ?[0-9.]{0,6}",
        "(1e400|NaN|inf|-inf|9e15|8999999999999999|18446744073709551616)",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Whatever a cell holds, cleansing any catalogue field either leaves it
    /// out (with an error) or stores a value in the field's domain: nothing
    /// the schema forbids reaches the inventory's INSERT.
    #[test]
    fn every_cleansed_value_is_in_its_fields_domain(
        field in 0..FIELDS.len(),
        value in export_value(),
        factor in export_value(),
    ) {
        let field = &FIELDS[field];
        let rules = match field.kind {
            FieldKind::Integer => json!({"multiply_by": "factor"}),
            FieldKind::Size => json!({"from_unit": "MB", "flag_below": 256.0}),
            _ => json!({}),
        };
        let cleanser = Cleanser::new(vec![
            AppliedMapping { source: "value".into(), field, rules },
            AppliedMapping { source: "name".into(), field: catalogue::field("name").unwrap(), rules: json!({}) },
        ]);
        let raw = json!({"value": value, "factor": factor, "name": "web01"}).to_string();
        let record = cleanser.cleanse_json(&raw);
        let cleansed: serde_json::Map<String, Value> = serde_json::from_str(&record.cleansed_data).unwrap();
        for (name, stored) in &cleansed {
            // A client OS makes the row an end-user device: a kind the
            // inventory stores as asset_type server with its
            // `_device_class` mark (machine_kinds tests what is stored).
            let device = name == "asset_type" && stored == catalogue::END_USER_DEVICE;
            if let Some(f) = catalogue::field(name) {
                prop_assert!(f.accepts(stored) || device, "{name} = {stored} from {value:?}");
            }
        }
        let errors: Vec<Value> = serde_json::from_str(&record.validation_errors).unwrap();
        if !cleansed.contains_key(field.name) && !value.trim().is_empty() {
            // Left out: the raw value is kept in the errors, unless another
            // field took it (an OS name also fills os_version).
            let kept = errors.iter().any(|e| e["raw_value"] == value.trim());
            prop_assert!(kept || field.kind == FieldKind::Hostname || field.kind == FieldKind::Fqdn
                || field.name == "os_version" || field.name == "name",
                "{} dropped {value:?} silently: {errors:?}", field.name);
        }
    }

    /// A date is a real calendar date in the stored form, or nothing.
    #[test]
    fn dates_are_real_or_absent(text in export_value()) {
        if let Some(date) = values::parse_date(&text) {
            prop_assert!(catalogue::field("end_of_life_date").unwrap().accepts(&json!(date)), "{text:?} → {date}");
        }
    }

    /// The delimiter sniffer takes any bytes, and finds the delimiter of a
    /// plain table.
    #[test]
    fn the_delimiter_of_a_plain_table_is_found(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cells in proptest::collection::vec("[a-zA-Z0-9 ._-]{1,12}", 12..40),
        width in 3usize..6,
        which in 0usize..4,
    ) {
        let _ = delimiter::sniff(&bytes, true);
        let d = delimiter::CANDIDATES[which];
        let rows: Vec<String> = cells.chunks_exact(width).map(|r| r.join(&(d as char).to_string())).collect();
        prop_assume!(rows.len() >= 2);
        let text = rows.join("\n") + "\n";
        prop_assert_eq!(delimiter::sniff(text.as_bytes(), true), Some(d));
    }

    /// The encoding pre-pass reads any bytes; valid UTF-8 is read as UTF-8
    /// and a UTF-16LE byte-order mark decides.
    #[test]
    fn encodings_are_scanned_from_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        text in "\\PC{0,200}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, &bytes).unwrap();
        let scan = encoding::scan(&path, None).unwrap();
        prop_assert_eq!(scan.size, bytes.len() as u64);
        std::fs::write(&path, text.as_bytes()).unwrap();
        let scan = encoding::scan(&path, None).unwrap();
        if text.contains(|c: char| !c.is_ascii()) {
            prop_assert_eq!(scan.encoding.name(), "UTF-8");
        }
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(&path, &utf16).unwrap();
        prop_assert_eq!(encoding::scan(&path, None).unwrap().encoding.name(), "UTF-16LE");
    }

    /// Header names are unique, never blank, one per column, however many
    /// repeat (10,000 "Name" columns are named in linear time).
    #[test]
    fn header_names_are_unique_and_complete(
        headers in proptest::collection::vec(prop_oneof!["(Name|Name_2|Name_3|column_2|IP|)", "\\PC{0,6}"], 0..300),
    ) {
        let (names, _) = name_columns(&headers);
        prop_assert_eq!(names.len(), headers.len());
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        prop_assert_eq!(unique.len(), names.len());
        prop_assert!(names.iter().all(|n| !n.trim().is_empty()));
    }

    /// A CSV's header finder reads any bytes without failing other than with
    /// an error, and the rows it then reads are JSON objects.
    #[test]
    fn csv_headers_are_found_in_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096), d in 0usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, &bytes).unwrap();
        let opened = CsvSource::open(
            &path, "f.csv", encoding_rs::WINDOWS_1252, EncodingSource::Override,
            delimiter::Dialect::standard(delimiter::CANDIDATES[d]), None, None, 4096, Arc::new(AtomicU64::new(0)),
        );
        if let Ok(mut source) = opened {
            let mut warnings = Vec::new();
            while let Ok(Some(row)) = source.next_row(&mut warnings) {
                prop_assert!(serde_json::from_str::<serde_json::Map<String, Value>>(&row.raw_data).is_ok());
            }
        }
    }

    /// A delimited file parsed on several threads, in chunks of any size,
    /// gives the rows, line numbers, warnings and blank rows one reader
    /// gives: the chunks are cut only where a record ends (quotes, `""`,
    /// line breaks inside values, `\r\n` and lone `\r` included).
    #[test]
    fn a_csv_parsed_in_parallel_reads_as_one_reader_reads_it(
        pieces in proptest::collection::vec(prop_oneof![
            Just("a"), Just("bc"), Just(","), Just(";"), Just("\""), Just("\"\""),
            Just("\n"), Just("\r\n"), Just("\r"), Just(" "), Just("é"), Just("\0"),
            Just("12\" monitor"), Just(",,,\n"),
        ], 0..400),
        chunk_bytes in 1usize..200,
        parsers in 2usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let mut text = b"name,value,extra\n".to_vec();
        text.extend(pieces.concat().into_bytes());
        std::fs::write(&path, &text).unwrap();
        let input = InputFile { path: path.clone(), display: "f.csv".into() };
        let options = ReadOptions::default();
        // Generated text can read as prose (lines of words, no delimiter),
        // which the probe refuses before any parser runs: nothing to compare.
        let probe = intake::read::probe_text(&input, &options);
        prop_assume!(!matches!(probe, Err(intake::read::ReadError::NotATable { .. })));
        let probe = probe.unwrap();
        let one = collect_text(&input, &probe, &options, Parallelism::with_parsers(1));
        let several = collect_text(&input, &probe, &options, Parallelism {
            parsers,
            chunk_bytes,
            min_file_bytes: 0,
        });
        let rows = |t: &CollectedTable| t.rows.iter().map(|r| (r.record_index, r.raw_data.clone())).collect::<Vec<_>>();
        let warnings = |t: &CollectedTable| t.warnings.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>();
        prop_assert_eq!(rows(&one), rows(&several));
        prop_assert_eq!(warnings(&one), warnings(&several));
        prop_assert_eq!(one.blank_rows, several.blank_rows);
        prop_assert_eq!(&one.error, &several.error);
        prop_assert_eq!(format!("{:?}", one.header), format!("{:?}", several.header));
    }

    /// A sheet's cells, in any order and at any column, become rows whose
    /// size follows the cells that exist, and whose record indexes are
    /// unique.
    #[test]
    fn sheet_rows_follow_the_cells_that_exist(
        rows in proptest::collection::vec(
            (0u32..40, proptest::collection::vec((prop_oneof![0u32..20, 0u32..400_000_000], "\\PC{0,8}", any::<bool>()), 0..12)),
            0..40),
        merged in proptest::collection::vec((0u32..40, 0u32..30, 0u32..40, 0u32..20_000), 0..4),
    ) {
        let mut table = SheetTable::new(merged.iter().map(|&(r0, c0, r1, c1)| (r0.min(r1), c0.min(c1), r0.max(r1), c0.max(c1))).collect());
        let mut cells_seen = 0;
        for (row, cells) in &rows {
            let mut cells: Vec<(u32, CellValue)> = cells.iter().map(|(c, t, number)| (*c, CellValue {
                kind: if *number { CellKind::Number } else { CellKind::Text },
                text: Some(t.clone()),
                problem: None,
            })).collect();
            // The reader sorts a row's cells and keeps one per column.
            cells.sort_by_key(|(c, _)| *c);
            cells.dedup_by_key(|(c, _)| *c);
            cells_seen += cells.len();
            table.push(SheetRow { row: *row, cells });
        }
        table.finish();
        let (out, _) = table.take_rows();
        let header_len = table.header().map_or(0, |h| h.columns.len());
        prop_assert!(header_len <= cells_seen.max(intake::read::workbook::table::MAX_COLUMNS as usize));
        let mut indexes = std::collections::HashSet::new();
        for row in &out {
            prop_assert!(indexes.insert(row.record_index), "record {} twice", row.record_index);
            let object: serde_json::Map<String, Value> = serde_json::from_str(&row.raw_data).unwrap();
            // Header columns, plus at most the cells a row has and the merged
            // ranges' fills within the table.
            prop_assert!(object.len() <= header_len + 12, "{} keys for a header of {header_len}", object.len());
        }
    }

    /// find_header reads any rows a sheet can hold.
    #[test]
    fn a_header_is_found_or_not_in_any_rows(
        rows in proptest::collection::vec(
            (0u32..30, proptest::collection::btree_map(prop_oneof![0u32..20, 0u32..400_000_000], "\\PC{0,8}", 0..10)),
            0..25),
    ) {
        let rows: Vec<SheetRow> = rows.into_iter().map(|(row, cells)| SheetRow {
            row,
            cells: cells.into_iter().map(|(c, t)| (c, CellValue { kind: CellKind::Text, text: Some(t), problem: None })).collect(),
        }).collect();
        let header = find_header(rows.iter());
        prop_assert_eq!(header.columns.len(), header.sheet_cols.len());
    }

    /// The rules parser answers any text with rules or an error naming a line.
    #[test]
    fn any_rules_text_is_parsed_or_refused(text in prop_oneof![
        any::<String>(),
        "(\\[columns\\]\n)?(\"[a-z #]{1,8}\" = (\"[a-z_]{1,12}\"|\\{ field = \"[a-z_]{1,12}\", unit = \"[A-Za-z]{1,3}\" \\})\n){0,5}",
        "auto_approve_threshold = -?[0-9]\\.[0-9]\n",
    ]) {
        let _ = intake::map::Rules::parse(&text, "rules.toml");
    }

    /// The workbook guard decides on any bytes, and on any zip.
    #[test]
    fn the_workbook_guard_decides_on_any_file(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        entries in proptest::collection::vec(("[a-zA-Z_/\\[\\].]{1,24}", proptest::collection::vec(any::<u8>(), 0..512)), 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.xlsx");
        std::fs::write(&path, &bytes).unwrap();
        let _ = guard::check(&path, &guard::LIMITS);
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, body) in &entries {
            if zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).is_ok() {
                zip.write_all(body).unwrap();
            }
        }
        zip.finish().unwrap();
        let _ = guard::check(&path, &guard::LIMITS);
    }
}

/// Reads every sheet of a workbook file the way an import does, collecting
/// nothing: what matters is that it returns.
fn read_whole_workbook(path: &std::path::Path) {
    let input = InputFile {
        path: path.to_path_buf(),
        display: path.display().to_string(),
    };
    let Ok(intake::read::FileProbe::Workbook(book)) =
        intake::read::probe(&input, &ReadOptions::default())
    else {
        return;
    };
    let sheets = book
        .sheets
        .iter()
        .map(|s| {
            let to_read = intake::read::stream::SheetToRead {
                name: s.name.clone(),
                has_merged_cells: book.has_merged_cells,
                role: None,
            };
            (to_read, CollectedTable::default())
        })
        .collect();
    let read = intake::read::stream::stream_workbook(&input, book.container, sheets, 500);
    assert!(read.is_ok());
}

/// The parts of a zip, inflated.
fn zip_parts(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            (entry.name().unwrap().to_string(), bytes)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: config().cases / 4 + 1, ..config() })]

    /// Damage inside a real workbook (bytes of its .xls Workbook stream, or
    /// of an .xlsx/.ods part, overwritten, cut or repeated) fails that file
    /// or reads it: never a panic, never an abort. The readers run in this
    /// process, so a panic that escaped the isolation fails the test.
    #[test]
    fn damaged_workbooks_fail_alone(
        which in 0usize..3,
        part in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (source, name) = [
            ("workbooks/legacy_excel97.xls", "damaged.xls"),
            ("workbooks/merged_cells.xlsx", "damaged.xlsx"),
            ("workbooks/opendocument.ods", "damaged.ods"),
        ][which];
        let source = crate::common::fixture(source);
        let path = dir.path().join(name);
        let damage = |bytes: &mut Vec<u8>| {
            for (at, value, kind) in &edits {
                if bytes.is_empty() {
                    break;
                }
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes[at] = *value,
                    1 => bytes.truncate(at.max(1)),
                    _ => {
                        let piece: Vec<u8> = bytes[at..].iter().take(64).copied().collect();
                        bytes.splice(at..at, piece);
                    }
                }
            }
        };
        if which == 0 {
            let mut book = cfb::open(&source).unwrap();
            let mut stream = Vec::new();
            std::io::Read::read_to_end(&mut book.open_stream("/Workbook").unwrap(), &mut stream).unwrap();
            damage(&mut stream);
            let mut out = cfb::create(&path).unwrap();
            out.create_stream("/Workbook").unwrap().write_all(&stream).unwrap();
            out.flush().unwrap();
        } else {
            let mut parts = zip_parts(&source);
            let chosen = part.index(parts.len());
            damage(&mut parts[chosen].1);
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
            for (name, bytes) in &parts {
                zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
                zip.write_all(bytes).unwrap();
            }
            zip.finish().unwrap();
        }
        read_whole_workbook(&path);
    }
}
