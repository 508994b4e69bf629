//! Checks a workbook's container before calamine opens it. An .xlsx, .xlsb or .ods
//! is a zip and calamine trusts its sizes; an .xls is an OLE compound file whose
//! sheets calamine expands into dense grids. Here the archive is walked in bounded
//! memory (entry count, declared and actual uncompressed sizes, compression ratio,
//! the longest value or tag of an XML part, a shared-string count no part holds,
//! sheets that are one part), and what calamine would expand from an .xls or an
//! .ods is added up (`xls_cost`, `ods_cost`), so that a bomb or an absurd
//! dimension is refused with a clear error instead of exhausting memory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::xlsx_cost;

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
    /// Longest text value or tag in an XML part (quick-xml holds each whole).
    pub max_token_bytes: u64,
    /// Most text the cells of an .xlsx may expand to through its shared
    /// strings, as a multiple of the sheets' XML, above `min_shared_bytes_refused`.
    pub max_shared_expansion: u64,
    pub min_shared_bytes_refused: u64,
    /// Most memory the sheets read as a whole may take once expanded (their
    /// grids and text, and the one being read copied once more).
    pub max_expanded_bytes: u64,
}

pub const LIMITS: Limits = Limits {
    max_entries: 10_000,
    max_entry_bytes: 4 << 30,
    max_total_bytes: 8 << 30,
    max_ratio: 250,
    ratio_floor_bytes: 16 << 20,
    max_grid_cells: 5_000_000,
    max_expanded_bytes: 256 << 20,
    max_token_bytes: 4 << 20,
    max_shared_expansion: 32,
    min_shared_bytes_refused: 1 << 30,
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

pub(super) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
    // The shared strings first: the sheets' references are weighed by them.
    let is_shared_strings = |n: &str| n.to_ascii_lowercase().ends_with("sharedstrings.xml");
    let first = names.iter().position(|(n, _, _)| is_shared_strings(n));
    let order = first
        .into_iter()
        .chain((0..names.len()).filter(|&i| Some(i) != first));
    let mut string_sizes: Vec<u64> = Vec::new();
    let (mut sheet_bytes, mut named_bytes, mut naming_cells) = (0u64, 0u64, 0u64);
    for i in order {
        let (name, declared, compressed) = &names[i];
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        let cap = limits.max_entry_bytes.min(declared.saturating_add(1));
        let mut actual = 0u64;
        let is_sheet = name.starts_with("xl/worksheets/") && name.ends_with(".xml");
        let mut strings = is_shared_strings(name).then(SharedStringCount::default);
        let mut sizer = strings.is_some().then(xlsx_cost::StringSizes::default);
        let mut refs = is_sheet.then(|| xlsx_cost::SharedRefs::new(&string_sizes));
        // The sheets and shared strings are walked tag by tag below, which
        // bounds their tokens too; every other XML part is only watched.
        let walked = sizer.is_some() || refs.is_some();
        let mut tokens = (is_xml(name) && !walked).then(TokenWatch::default);
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
            if let Some(tokens) = tokens.as_mut() {
                tokens.feed(&buf[..n]);
                if tokens.longest > limits.max_token_bytes {
                    return Err(GuardError::Refused(format!(
                        "{name} holds a single value or tag of more than {} (Excel keeps at most 32,767 characters in a cell)",
                        human_bytes(limits.max_token_bytes)
                    )));
                }
            }
            if let Some(strings) = strings.as_mut() {
                strings.feed(&buf[..n]);
            }
            // A refusal names the part it is in.
            let in_part = |e: GuardError| match e {
                GuardError::Refused(why) => GuardError::Refused(format!("{name}: {why}")),
                other => other,
            };
            if let Some(sizer) = sizer.as_mut() {
                sizer
                    .feed(&buf[..n], limits.max_token_bytes)
                    .map_err(in_part)?;
            }
            if let Some(refs) = refs.as_mut() {
                refs.feed(&buf[..n], limits.max_token_bytes)
                    .map_err(in_part)?;
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
        if let Some(strings) = strings {
            strings.check(name)?;
        }
        if let Some(refs) = refs {
            sheet_bytes += actual;
            named_bytes = named_bytes.saturating_add(refs.bytes);
            naming_cells += refs.cells;
            let allowed = sheet_bytes
                .saturating_mul(limits.max_shared_expansion)
                .max(limits.min_shared_bytes_refused);
            if named_bytes > allowed {
                return Err(GuardError::Refused(format!(
                    "{naming_cells} cells name shared strings holding {} of text in all, {}:1 of the sheets' own {} (one long string repeated by many cells?)",
                    human_bytes(named_bytes),
                    named_bytes / sheet_bytes.max(1),
                    human_bytes(sheet_bytes)
                )));
            }
        }
        if let Some(sizer) = sizer {
            string_sizes = sizer.sizes;
        }
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
        check_sheet_parts(&mut archive)?;
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

fn is_xml(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".xml") || name.ends_with(".rels")
}

/// The longest run of an XML part between two `<`: a text value or a tag
/// with its attributes, which quick-xml holds whole in memory.
#[derive(Default)]
struct TokenWatch {
    since_open: u64,
    longest: u64,
}

impl TokenWatch {
    fn feed(&mut self, bytes: &[u8]) {
        let mut from = 0;
        for at in memchr::memchr_iter(b'<', bytes) {
            self.longest = self.longest.max(self.since_open + (at - from) as u64);
            self.since_open = 0;
            from = at + 1;
        }
        self.since_open += (bytes.len() - from) as u64;
        self.longest = self.longest.max(self.since_open);
    }
}

/// The strings a shared-string part holds, against the `uniqueCount` it
/// declares: calamine reserves room for the declared count before reading
/// one string (24 bytes each), so a count no file could hold aborts it.
#[derive(Default)]
struct SharedStringCount {
    head: Vec<u8>,
    carry: Vec<u8>,
    held: u64,
}

impl SharedStringCount {
    fn feed(&mut self, bytes: &[u8]) {
        if self.head.len() < 4096 {
            let take = bytes.len().min(4096 - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        // `<si>` or `<si ` (never `<sis`), found across chunk ends too.
        let opener = memchr::memmem::Finder::new(b"<si");
        let mut joined = std::mem::take(&mut self.carry);
        let keep_from = joined.len();
        joined.extend_from_slice(&bytes[..bytes.len().min(4)]);
        let is_item = |text: &[u8], at: usize| matches!(text.get(at + 3), Some(b'>' | b' ' | b'/'));
        self.held += opener
            .find_iter(&joined)
            .filter(|&at| at < keep_from && is_item(&joined, at))
            .count() as u64;
        self.held += opener
            .find_iter(bytes)
            .filter(|&at| is_item(bytes, at))
            .count() as u64;
        self.carry = bytes[bytes.len().saturating_sub(3)..].to_vec();
    }

    fn declared(&self) -> Option<u64> {
        let head = String::from_utf8_lossy(&self.head);
        let at = head.find("uniqueCount=")? + "uniqueCount=".len();
        let rest = head[at..].trim_start_matches(['"', '\'']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        // More digits than a u64 holds reads as the largest count.
        Some(digits.parse().unwrap_or(u64::MAX))
    }

    fn check(&self, name: &str) -> Result<(), GuardError> {
        let Some(declared) = self.declared() else {
            return Ok(());
        };
        // A count a little off is harmless (some writers get it wrong);
        // one that reserves far more than the part holds is not.
        if declared > self.held.saturating_mul(2).max(1 << 20) {
            return Err(GuardError::Corrupt(format!(
                "{name} declares {declared} shared strings (uniqueCount) but holds {}",
                self.held
            )));
        }
        Ok(())
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

/// Sheet entries a workbook may list.
const MAX_SHEETS: usize = 4096;

/// Each sheet of an .xlsx must be a part of its own: calamine reads a part
/// once per sheet entry naming it, so 2,000 entries at one part stage it
/// 2,000 times. Read from xl/workbook.xml and its relationships.
fn check_sheet_parts<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Result<(), GuardError> {
    let elements = |archive: &mut zip::ZipArchive<R>, part: &str, tag: &str, keys: [&str; 2]| {
        let Ok(entry) = archive.by_name(part) else {
            return Ok(Vec::new());
        };
        let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry));
        let mut buf = Vec::new();
        let mut found = Vec::new();
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e))
                    if e.local_name().as_ref() == tag =>
                {
                    let value = |key: &str| {
                        e.attributes()
                            .flatten()
                            .find(|a| a.key.as_ref() == key || a.key.local_name().as_ref() == key)
                            .map(|a| a.value.to_string())
                            .unwrap_or_default()
                    };
                    found.push((value(keys[0]), value(keys[1])));
                    if found.len() > MAX_SHEETS * 4 {
                        break;
                    }
                }
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(GuardError::Corrupt(format!(
                        "{part} is not valid XML ({e})"
                    )))
                }
            }
            buf.clear();
        }
        Ok(found)
    };
    let sheets = elements(archive, "xl/workbook.xml", "sheet", ["name", "id"])?;
    if sheets.len() > MAX_SHEETS {
        return Err(GuardError::Refused(format!(
            "the workbook lists more than {MAX_SHEETS} sheets"
        )));
    }
    let targets = elements(
        archive,
        "xl/_rels/workbook.xml.rels",
        "Relationship",
        ["Id", "Target"],
    )?;
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (name, id) in &sheets {
        let Some((_, target)) = targets.iter().find(|(rid, _)| rid == id) else {
            continue;
        };
        let part = target.trim_start_matches('/').trim_start_matches("xl/");
        if let Some(first) = seen.insert(part, name) {
            return Err(GuardError::Corrupt(format!(
                "sheets '{first}' and '{name}' are one part ({part}); a workbook lists each sheet once"
            )));
        }
    }
    Ok(())
}

/// Streams an .ods's content.xml through `ods_cost`, which adds up what
/// calamine would expand from it.
fn check_ods_grid<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    limits: &Limits,
) -> Result<(), GuardError> {
    let entry = archive.by_name("content.xml").map_err(zip_error)?;
    super::ods_cost::check_content(BufReader::new(entry), limits)
}

/// Checks an OLE compound file: an encrypted OOXML package is reported as such,
/// and for an .xls `xls_cost` works out what calamine would build (it expands
/// every sheet when the workbook is opened).
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
    let stream = cfb
        .open_stream(stream_name)
        .map_err(|e| GuardError::Corrupt(format!("the Workbook stream cannot be read ({e})")))?;
    let stream_len = stream.len();
    super::xls_cost::check_workbook_stream(stream, stream_len, limits)?;
    Ok(Container::Xls)
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
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
