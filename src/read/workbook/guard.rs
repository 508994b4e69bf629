//! Checks a workbook's container before calamine opens it. An .xlsx, .xlsb or .ods
//! is a zip and calamine trusts its sizes; an .xls is an OLE compound file whose
//! sheets calamine expands into dense grids. Here the archive is walked in bounded
//! memory (entry count, declared and actual uncompressed sizes, compression ratio)
//! and the grid a sheet would allocate is estimated, so that a zip bomb or an
//! absurd dimension is refused with a clear error instead of exhausting memory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use quick_xml::events::Event;

/// What a workbook file is, judged by its first bytes and, for a zip, its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Office Open XML with XML parts (.xlsx, .xlsm).
    Xlsx,
    /// Office Open XML with binary parts (.xlsb).
    Xlsb,
    /// OpenDocument spreadsheet (.ods).
    Ods,
    /// Excel 97-2003 BIFF8 in an OLE compound file (.xls).
    Xls,
    /// An OOXML workbook encrypted with a password (an OLE file holding EncryptedPackage).
    Encrypted,
    /// Text: a CSV or tab-separated export saved with a workbook extension.
    Text,
    /// HTML or XML Spreadsheet 2003 saved with a workbook extension.
    Markup,
}

/// The limits a workbook must stay within. Real exports are far below them:
/// a 100,000-row RVTools export has a few dozen entries and compresses about 10:1.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
    /// Largest uncompressed:compressed ratio of an entry above `ratio_floor_bytes`.
    pub max_ratio: u64,
    pub ratio_floor_bytes: u64,
    /// Largest grid (rows × columns) a sheet read as a whole may allocate (.xls, .ods).
    pub max_grid_cells: u64,
}

pub const LIMITS: Limits = Limits {
    max_entries: 10_000,
    max_entry_bytes: 4 << 30,
    max_total_bytes: 8 << 30,
    max_ratio: 250,
    ratio_floor_bytes: 16 << 20,
    max_grid_cells: 5_000_000,
};

/// Why a file was refused or could not be opened.
#[derive(Debug)]
pub enum GuardError {
    Io(io::Error),
    /// Not a valid container (truncated, corrupt, or not what its extension says).
    Corrupt(String),
    /// Within the format, but beyond the limits: a zip bomb or an absurd grid.
    Refused(String),
    /// Password-protected.
    Encrypted,
}

impl From<io::Error> for GuardError {
    fn from(e: io::Error) -> Self {
        GuardError::Io(e)
    }
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const EMPTY_ZIP_MAGIC: &[u8] = b"PK\x05\x06";
const CFB_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// What the check learnt about a workbook besides its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub container: Container,
    /// Whether any worksheet of an .xlsx has merged ranges; when none has, the
    /// reader skips the extra pass over the sheet that finding them costs.
    pub has_merged_cells: bool,
}

/// Decides what the file holds and checks it against `limits`.
pub fn check(path: &Path, limits: &Limits) -> Result<Checked, GuardError> {
    let plain = |container| Checked {
        container,
        has_merged_cells: true,
    };
    let mut head = [0u8; 512];
    let n = read_up_to(&mut File::open(path)?, &mut head)?;
    let head = &head[..n];
    if head.starts_with(ZIP_MAGIC) || head.starts_with(EMPTY_ZIP_MAGIC) {
        return check_zip(path, limits);
    }
    if head.starts_with(CFB_MAGIC) {
        return check_compound(path, limits).map(plain);
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let trimmed = text.trim_ascii_start();
    if trimmed.first() == Some(&b'<') {
        return Ok(plain(Container::Markup));
    }
    let looks_textual = !head.is_empty()
        && (head.starts_with(b"\xFF\xFE")
            || head.starts_with(b"\xFE\xFF")
            || std::str::from_utf8(text).is_ok()
            || text.iter().all(|&b| b >= 0x20 || b"\t\r\n".contains(&b)));
    if looks_textual {
        return Ok(plain(Container::Text));
    }
    Err(GuardError::Corrupt(
        "it is neither a zip (xlsx, xlsb, ods) nor an OLE file (xls): the file is corrupt or not a workbook".into(),
    ))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Walks the zip: counts entries from the end-of-central-directory record before
/// the zip crate allocates them, then inflates every entry into a counter to
/// compare its actual size with the declared one and the limits.
fn check_zip(path: &Path, limits: &Limits) -> Result<Checked, GuardError> {
    let mut file = File::open(path)?;
    if let Some(entries) = declared_entry_count(&mut file)? {
        if entries > limits.max_entries as u64 {
            return Err(GuardError::Refused(format!(
                "the archive declares {entries} entries (a workbook has a few dozen; the limit is {})",
                limits.max_entries
            )));
        }
    }
    file.seek(SeekFrom::Start(0))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
    if archive.len() > limits.max_entries {
        return Err(GuardError::Refused(format!(
            "the archive has {} entries (the limit is {})",
            archive.len(),
            limits.max_entries
        )));
    }
    let mut names = Vec::with_capacity(archive.len());
    let mut declared_total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.into_owned();
        if entry.encrypted() {
            return Err(GuardError::Encrypted);
        }
        let declared = entry.size();
        let compressed = entry.compressed_size();
        check_entry_size(&name, declared, compressed, limits)?;
        declared_total = declared_total.saturating_add(declared);
        if declared_total > limits.max_total_bytes {
            return Err(GuardError::Refused(format!(
                "the entries declare more than {} uncompressed in total",
                human_bytes(limits.max_total_bytes)
            )));
        }
        names.push((name, declared, compressed));
    }
    // Inflate each entry into a counter: a lying header is caught here, in a
    // 64 KiB buffer, before calamine trusts it.
    let mut buf = vec![0u8; 64 << 10];
    let mut actual_total = 0u64;
    let merge_cell = memchr::memmem::Finder::new(b"mergeCell ");
    let mut has_merged_cells = false;
    for (i, (name, declared, compressed)) in names.iter().enumerate() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        let cap = limits.max_entry_bytes.min(declared.saturating_add(1));
        let mut actual = 0u64;
        let is_sheet = name.starts_with("xl/worksheets/") && name.ends_with(".xml");
        // The tail of the previous chunk, so a match across chunks is found.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = match entry.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    return Err(GuardError::Corrupt(format!(
                    "entry {name} cannot be decompressed ({e}); the file is truncated or damaged"
                )))
                }
            };
            if n == 0 {
                break;
            }
            if is_sheet && !has_merged_cells {
                carry.extend_from_slice(&buf[..n.min(16)]);
                has_merged_cells =
                    merge_cell.find(&carry).is_some() || merge_cell.find(&buf[..n]).is_some();
                carry.clear();
                carry.extend_from_slice(&buf[n.saturating_sub(16)..n]);
            }
            actual += n as u64;
            if actual > cap {
                return Err(GuardError::Refused(format!(
                    "entry {name} inflates beyond its declared size of {} (a zip bomb)",
                    human_bytes(*declared)
                )));
            }
        }
        check_entry_size(name, actual, *compressed, limits)?;
        actual_total += actual;
        if actual_total > limits.max_total_bytes {
            return Err(GuardError::Refused(format!(
                "the entries inflate to more than {} in total",
                human_bytes(limits.max_total_bytes)
            )));
        }
    }
    let has = |wanted: &str| names.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(wanted));
    let checked = |container| Checked {
        container,
        has_merged_cells,
    };
    if has("xl/workbook.bin") {
        Ok(checked(Container::Xlsb))
    } else if has("xl/workbook.xml") || names.iter().any(|(n, _, _)| n.ends_with("workbook.xml")) {
        Ok(checked(Container::Xlsx))
    } else if has("content.xml") {
        check_ods_grid(&mut archive, limits)?;
        Ok(checked(Container::Ods))
    } else {
        Err(GuardError::Corrupt(
            "it is a zip archive without a workbook inside (no xl/workbook.xml or content.xml)"
                .into(),
        ))
    }
}

fn check_entry_size(
    name: &str,
    size: u64,
    compressed: u64,
    limits: &Limits,
) -> Result<(), GuardError> {
    if size > limits.max_entry_bytes {
        return Err(GuardError::Refused(format!(
            "entry {name} is {} uncompressed (the limit is {})",
            human_bytes(size),
            human_bytes(limits.max_entry_bytes)
        )));
    }
    if size > limits.ratio_floor_bytes && size / compressed.max(1) > limits.max_ratio {
        return Err(GuardError::Refused(format!(
            "entry {name} expands {}:1 ({} from {}), more than the {}:1 a real workbook reaches (a zip bomb)",
            size / compressed.max(1),
            human_bytes(size),
            human_bytes(compressed),
            limits.max_ratio
        )));
    }
    Ok(())
}

/// The entry count of the end-of-central-directory record, read from the file's
/// tail; None when the record is not found (the zip crate then reports it).
fn declared_entry_count(file: &mut File) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(at) = tail.windows(4).rposition(|w| w == b"PK\x05\x06") else {
        return Ok(None);
    };
    let record = &tail[at..];
    if record.len() < 22 {
        return Ok(None);
    }
    let entries = u16::from_le_bytes([record[10], record[11]]);
    // 0xFFFF means the count is in the zip64 record; the crate's count is checked then.
    Ok((entries != u16::MAX).then_some(u64::from(entries)))
}

fn zip_error(e: zip::result::ZipError) -> GuardError {
    match e {
        zip::result::ZipError::Io(e) => GuardError::Corrupt(format!(
            "the zip archive cannot be read ({e}); the file is truncated or damaged"
        )),
        zip::result::ZipError::UnsupportedArchive(what) if what.contains("assword") => {
            GuardError::Encrypted
        }
        other => GuardError::Corrupt(format!(
            "the zip archive is invalid ({other}); the file is truncated or damaged"
        )),
    }
}

/// Estimates the grid calamine allocates for each table of an .ods: repeated
/// rows and columns (`number-rows-repeated="1048576"`) cost nothing in the file
/// but are expanded in memory, so they are summed here while streaming content.xml.
fn check_ods_grid<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    limits: &Limits,
) -> Result<(), GuardError> {
    let entry = archive.by_name("content.xml").map_err(zip_error)?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut buf = Vec::new();
    let mut table = String::new();
    let (mut width, mut row, mut row_repeat) = (0u64, 0u64, 1u64);
    let (mut col, mut row_width, mut cell_repeat, mut cell_filled) = (0u64, 0u64, 1u64, false);
    let attr = |e: &quick_xml::events::BytesStart, key: &str| -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key)
            .map(|a| a.value.to_string())
    };
    let too_big = |table: &str, rows: u64, cols: u64| {
        GuardError::Refused(format!(
            "sheet '{table}' expands to {rows} rows × {cols} columns through repeated cells, more than the {} cells intake reads from an .ods; delete the empty rows and columns or save it as .xlsx",
            limits.max_grid_cells
        ))
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| GuardError::Corrupt(format!("content.xml is not valid XML ({e})")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty_element = matches!(event, Event::Empty(_));
                match e.name().as_ref() {
                    "table:table" => {
                        table = attr(e, "table:name").unwrap_or_default();
                        (width, row) = (0, 0);
                    }
                    "table:table-row" => {
                        row_repeat = attr(e, "table:number-rows-repeated")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1);
                        (col, row_width) = (0, 0);
                        if empty_element {
                            row += row_repeat;
                        }
                    }
                    "table:table-cell" | "table:covered-table-cell" => {
                        cell_repeat = attr(e, "table:number-columns-repeated")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1);
                        cell_filled = attr(e, "office:value-type").is_some()
                            || attr(e, "table:formula").is_some();
                        if empty_element {
                            col += cell_repeat;
                            if cell_filled {
                                row_width = col;
                            }
                        }
                    }
                    "text:p" if !empty_element => cell_filled = true,
                    _ => {}
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                "table:table-cell" | "table:covered-table-cell" => {
                    col = col.saturating_add(cell_repeat);
                    if cell_filled {
                        row_width = col;
                    }
                }
                "table:table-row" => {
                    row = row.saturating_add(row_repeat);
                    if row_width > 0 {
                        let rows_end = row;
                        width = width.max(row_width);
                        if rows_end.saturating_mul(width) > limits.max_grid_cells {
                            return Err(too_big(&table, rows_end, width));
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

/// Checks an OLE compound file: an encrypted OOXML package is reported as such,
/// and for an .xls the BIFF cell records of each sheet are scanned for the grid
/// calamine would allocate (it expands every sheet when the workbook is opened).
fn check_compound(path: &Path, limits: &Limits) -> Result<Container, GuardError> {
    let mut cfb = cfb::CompoundFile::open(File::open(path)?).map_err(|e| {
        GuardError::Corrupt(format!(
            "the OLE container cannot be read ({e}); the file is truncated or damaged"
        ))
    })?;
    if cfb.is_stream("/EncryptedPackage") || cfb.is_stream("/EncryptionInfo") {
        return Err(GuardError::Encrypted);
    }
    let stream_name = ["/Workbook", "/Book", "/WORKBOOK", "/BOOK"]
        .into_iter()
        .find(|name| cfb.is_stream(name))
        .ok_or_else(|| {
            GuardError::Corrupt(
                "the OLE file holds no Workbook stream: it is not an Excel workbook (a Word or other Office file?)".into(),
            )
        })?;
    let mut stream =
        BufReader::new(cfb.open_stream(stream_name).map_err(|e| {
            GuardError::Corrupt(format!("the Workbook stream cannot be read ({e})"))
        })?);
    scan_biff(&mut stream, limits)?;
    Ok(Container::Xls)
}

/// Walks BIFF records: FILEPASS means a password; cell records give each sheet's
/// bounding box, and the sum of the boxes is what calamine will allocate.
fn scan_biff(stream: &mut impl Read, limits: &Limits) -> Result<(), GuardError> {
    const BOF: u16 = 0x0809;
    const EOF: u16 = 0x000A;
    const FILEPASS: u16 = 0x002F;
    const CELL_RECORDS: &[u16] = &[
        0x0006, 0x00BD, 0x00BE, 0x00FD, 0x0201, 0x0203, 0x0204, 0x0205, 0x027E,
    ];
    let mut header = [0u8; 4];
    let mut body = vec![0u8; 8224];
    let mut sheet_box: Option<(u32, u32, u32, u32)> = None;
    let mut grid_total = 0u64;
    let mut sheets = 0usize;
    loop {
        if read_up_to(stream, &mut header)? < 4 {
            break;
        }
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        if len > body.len() {
            body.resize(len, 0);
        }
        if read_up_to(stream, &mut body[..len])? < len {
            break; // a truncated tail: calamine reports it when it opens the file
        }
        match kind {
            FILEPASS => return Err(GuardError::Encrypted),
            BOF => sheet_box = None,
            EOF => {
                if let Some((r0, r1, c0, c1)) = sheet_box.take() {
                    sheets += 1;
                    let grid = u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1);
                    grid_total += grid;
                    if grid_total > limits.max_grid_cells {
                        return Err(GuardError::Refused(format!(
                            "sheet {sheets} spans {} rows × {} columns; with the sheets before it that is more than the {} cells intake expands from an .xls. Save the workbook as .xlsx, which is read as a stream",
                            r1 - r0 + 1,
                            c1 - c0 + 1,
                            limits.max_grid_cells
                        )));
                    }
                }
            }
            k if CELL_RECORDS.contains(&k) && len >= 4 => {
                let row = u32::from(u16::from_le_bytes([body[0], body[1]]));
                let first = u32::from(u16::from_le_bytes([body[2], body[3]]));
                // MULRK and MULBLANK end with the last column they cover.
                let last = if matches!(k, 0x00BD | 0x00BE) && len >= 6 {
                    u32::from(u16::from_le_bytes([body[len - 2], body[len - 1]]))
                } else {
                    first
                };
                let (r0, r1, c0, c1) = sheet_box.unwrap_or((row, row, first, last));
                sheet_box = Some((
                    r0.min(row),
                    r1.max(row),
                    c0.min(first),
                    c1.max(last.max(first)),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// 1536 → "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biff_boxes_add_up_across_sheets() {
        let record = |kind: u16, body: &[u8]| {
            let mut v = kind.to_le_bytes().to_vec();
            v.extend((body.len() as u16).to_le_bytes());
            v.extend(body);
            v
        };
        let cell = |row: u16, col: u16| {
            let mut b = row.to_le_bytes().to_vec();
            b.extend(col.to_le_bytes());
            b.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            record(0x0203, &b)
        };
        let mut stream = Vec::new();
        stream.extend(record(0x0809, &[0; 16]));
        stream.extend(cell(0, 0));
        stream.extend(cell(60_000, 50));
        stream.extend(record(0x000A, &[]));
        let small = Limits {
            max_grid_cells: 1_000_000,
            ..LIMITS
        };
        let err = scan_biff(&mut stream.as_slice(), &small).unwrap_err();
        assert!(matches!(err, GuardError::Refused(m) if m.contains("60001 rows × 51 columns")));
        assert!(scan_biff(&mut stream.as_slice(), &LIMITS).is_ok());
        let mut locked = record(0x0809, &[0; 16]);
        locked.extend(record(0x002F, &[1, 0]));
        assert!(matches!(
            scan_biff(&mut locked.as_slice(), &LIMITS),
            Err(GuardError::Encrypted)
        ));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
