//! What calamine will build from an .xls, worked out from its Workbook stream
//! before calamine opens it. calamine expands every sheet when the workbook
//! is opened: for each sheet entry (BoundSheet8) it reads the records from
//! the entry's position to the sheet's EOF, skipping nested substreams
//! (embedded charts), collects one cell per cell record, reserves what the
//! DIMENSIONS record declares, and lays the cells out in a dense grid over
//! their bounding box; a LabelSst cell copies its shared string. This walk
//! follows the same records the same way, per entry (twenty entries at one
//! sheet cost twenty sheets), and adds up cells and bytes, so that a file of
//! a few KB cannot make gigabytes, and the records calamine would index out
//! of bounds on are reported here as damage instead.

use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::mem::size_of;

use super::guard::{human_bytes, read_up_to, GuardError, Limits};

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const FILEPASS: u16 = 0x002F;
const BOUND_SHEET: u16 = 0x0085;
const SST: u16 = 0x00FC;
const CONTINUE: u16 = 0x003C;
const DIMENSIONS: u16 = 0x0200;
const MERGE_CELLS: u16 = 0x00E5;
const FORMULA: u16 = 0x0006;
const FORMULA_STRING: u16 = 0x0207;
const MUL_RK: u16 = 0x00BD;
const LABEL_SST: u16 = 0x00FD;
/// Records that hold one cell at (row, column) in their first four bytes
/// and that calamine keeps: Number, Label, RString, BoolErr, Rk. (Blank and
/// MulBlank are not kept, so they cost nothing.)
const ONE_CELL: &[u16] = &[0x0203, 0x0204, 0x00D6, 0x0205, 0x027E];
/// Sheet entries a workbook may list; Excel's own limit is set by memory,
/// real exports have a handful.
const MAX_SHEET_ENTRIES: usize = 4096;

/// One BIFF record: its type, the byte it starts at, its body.
struct Record {
    kind: u16,
    at: u64,
    body: Vec<u8>,
}

/// Reads records one at a time; None at the end of the stream or at a
/// truncated record (where calamine stops with an error of its own).
struct Records<R> {
    stream: R,
    at: u64,
}

impl<R: Read> Records<R> {
    fn next(&mut self) -> io::Result<Option<Record>> {
        let mut header = [0u8; 4];
        if read_up_to(&mut self.stream, &mut header)? < 4 {
            return Ok(None);
        }
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let mut body = vec![0u8; len];
        if read_up_to(&mut self.stream, &mut body)? < len {
            return Ok(None);
        }
        let at = self.at;
        self.at += 4 + len as u64;
        Ok(Some(Record { kind, at, body }))
    }
}

fn u16_at(body: &[u8], at: usize) -> Option<u16> {
    body.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(body: &[u8], at: usize) -> Option<u32> {
    body.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The workbook globals: where each sheet entry points, and the UTF-8 size
/// each shared string will have.
struct Globals {
    /// (position in the stream, the entry's number from 1)
    sheet_entries: Vec<(u64, usize)>,
    shared_string_bytes: Vec<u64>,
}

/// What one sheet entry makes calamine build.
#[derive(Debug, Default, Clone, Copy)]
struct SheetCost {
    cells: u64,
    /// Bytes of text the cells own (labels, shared-string copies).
    text_bytes: u64,
    /// The grid over the cells' bounding box.
    grid: u64,
    rows: u64,
    columns: u64,
    /// Cells the DIMENSIONS record makes calamine reserve.
    declared: u64,
}

impl SheetCost {
    /// Resident bytes once the sheet is expanded: the grid and its text.
    fn bytes(&self) -> u64 {
        self.grid
            .saturating_mul(size_of::<calamine::Data>() as u64)
            .saturating_add(self.text_bytes)
    }
}

/// Checks the Workbook stream of an .xls against `limits`.
pub fn check_workbook_stream<R: Read + Seek>(
    stream: R,
    stream_len: u64,
    limits: &Limits,
) -> Result<(), GuardError> {
    let mut stream = BufReader::new(stream);
    let globals = read_globals(&mut stream)?;
    if globals.sheet_entries.len() > MAX_SHEET_ENTRIES {
        return Err(GuardError::Refused(format!(
            "the workbook lists {} sheets (the limit is {MAX_SHEET_ENTRIES})",
            globals.sheet_entries.len()
        )));
    }
    let mut costs: Vec<(u64, SheetCost)> = Vec::new();
    let (mut grid_total, mut bytes_total, mut largest) = (0u64, 0u64, 0u64);
    for &(position, number) in &globals.sheet_entries {
        if position >= stream_len {
            return Err(GuardError::Corrupt(format!(
                "sheet {number} is said to start at byte {position}, past the end of the workbook stream ({stream_len} bytes)"
            )));
        }
        // Entries that point at the same sheet are walked once, counted each time.
        let cost = match costs.iter().find(|(at, _)| *at == position) {
            Some((_, cost)) => *cost,
            None => {
                stream.seek(SeekFrom::Start(position))?;
                let cost = walk_sheet(&mut stream, position, number, &globals, limits)?;
                costs.push((position, cost));
                cost
            }
        };
        let too_big = |what: String| {
            GuardError::Refused(format!(
                "sheet {number} spans {} rows × {} columns ({} cells, {}); {what}. Save the workbook as .xlsx, which is read as a stream",
                cost.rows,
                cost.columns,
                cost.cells,
                human_bytes(cost.bytes())
            ))
        };
        if cost.declared > limits.max_grid_cells.max(1 << 24) {
            return Err(too_big(format!(
                "its DIMENSIONS record declares {} cells, more than an .xls sheet can hold",
                cost.declared
            )));
        }
        grid_total = grid_total.saturating_add(cost.grid);
        bytes_total = bytes_total.saturating_add(cost.bytes());
        largest = largest.max(cost.bytes());
        if grid_total > limits.max_grid_cells {
            return Err(too_big(format!(
                "with the sheets before it that is more than the {} cells intake expands from an .xls",
                limits.max_grid_cells
            )));
        }
        // The sheet being read is copied once more while it is visited.
        if bytes_total.saturating_add(largest) > limits.max_expanded_bytes {
            return Err(too_big(format!(
                "with the sheets before it that expands to more than the {} intake allows an .xls",
                human_bytes(limits.max_expanded_bytes)
            )));
        }
    }
    Ok(())
}

/// The globals substream, up to its EOF as calamine reads it.
fn read_globals<R: Read>(stream: &mut R) -> Result<Globals, GuardError> {
    let mut records = Records { stream, at: 0 };
    let mut globals = Globals {
        sheet_entries: Vec::new(),
        shared_string_bytes: Vec::new(),
    };
    // The SST record with the CONTINUE records that follow it.
    let mut sst: Option<Vec<Vec<u8>>> = None;
    while let Some(record) = records.next()? {
        if record.kind != CONTINUE {
            if let Some(parts) = sst.take() {
                globals.shared_string_bytes = shared_string_sizes(&parts);
            }
        }
        match record.kind {
            FILEPASS => return Err(GuardError::Encrypted),
            BOUND_SHEET => {
                let number = globals.sheet_entries.len() + 1;
                if record.body.len() < 8 {
                    return Err(GuardError::Corrupt(format!(
                        "sheet entry {number} (BoundSheet8) is {} bytes, shorter than the 8 it must hold",
                        record.body.len()
                    )));
                }
                let position = u32_at(&record.body, 0).unwrap_or_default();
                globals.sheet_entries.push((u64::from(position), number));
            }
            SST => sst = Some(vec![record.body]),
            CONTINUE => {
                if let Some(parts) = sst.as_mut() {
                    parts.push(record.body);
                }
            }
            EOF => break,
            _ => {}
        }
    }
    if let Some(parts) = sst.take() {
        globals.shared_string_bytes = shared_string_sizes(&parts);
    }
    Ok(globals)
}

/// The most UTF-8 bytes each shared string can decode to, read from the SST
/// record and its CONTINUE records ([MS-XLS] 2.4.265, XLUnicodeRichExtendedString):
/// a string's characters may run on into the next record, which then starts
/// with a fresh flags byte.
fn shared_string_sizes(parts: &[Vec<u8>]) -> Vec<u64> {
    let mut cursor = Cursor {
        parts,
        part: 0,
        at: 8,
    };
    let declared = parts
        .first()
        .and_then(|first| u32_at(first, 4))
        .unwrap_or_default();
    let mut sizes = Vec::new();
    while (sizes.len() as u64) < u64::from(declared) {
        let Some(chars) = cursor.u16() else { break };
        let Some(flags) = cursor.byte() else { break };
        let runs = if flags & 0x08 != 0 {
            cursor.u16().unwrap_or_default()
        } else {
            0
        };
        let extra = if flags & 0x04 != 0 {
            cursor.u32().unwrap_or_default()
        } else {
            0
        };
        let mut wide = flags & 0x01 != 0;
        let mut left = u64::from(chars);
        let mut utf8 = 0u64;
        while left > 0 {
            if cursor.at_end_of_part() {
                if !cursor.next_part() {
                    break;
                }
                // A string continued in the next record: its flags byte again.
                let Some(flags) = cursor.byte() else { break };
                wide = flags & 0x01 != 0;
            }
            let width = if wide { 2 } else { 1 };
            let here = (cursor.left_in_part() / width).min(left);
            if here == 0 {
                cursor.skip(cursor.left_in_part());
                continue;
            }
            utf8 += cursor.utf8_size(here, wide);
            left -= here;
        }
        cursor.skip(u64::from(runs) * 4 + u64::from(extra));
        sizes.push(utf8);
        if cursor.exhausted() {
            break;
        }
    }
    sizes
}

/// A position in a record split over several parts.
struct Cursor<'a> {
    parts: &'a [Vec<u8>],
    part: usize,
    at: usize,
}

impl Cursor<'_> {
    fn left_in_part(&self) -> u64 {
        self.parts
            .get(self.part)
            .map_or(0, |p| p.len().saturating_sub(self.at) as u64)
    }

    fn at_end_of_part(&self) -> bool {
        self.left_in_part() == 0
    }

    fn next_part(&mut self) -> bool {
        if self.part + 1 < self.parts.len() {
            self.part += 1;
            self.at = 0;
            true
        } else {
            false
        }
    }

    fn exhausted(&self) -> bool {
        self.at_end_of_part() && self.part + 1 >= self.parts.len()
    }

    fn byte(&mut self) -> Option<u8> {
        while self.at_end_of_part() {
            if !self.next_part() {
                return None;
            }
        }
        let b = self.parts[self.part][self.at];
        self.at += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }

    /// The UTF-8 size of the next `chars` characters of this part, which
    /// it holds, as Latin-1 bytes or UTF-16 units; the cursor moves past them.
    fn utf8_size(&mut self, chars: u64, wide: bool) -> u64 {
        let width = if wide { 2 } else { 1 };
        let end = self.at + (chars * width) as usize;
        let bytes = &self.parts[self.part][self.at..end];
        self.at = end;
        if wide {
            bytes
                .chunks_exact(2)
                .map(|u| match u16::from_le_bytes([u[0], u[1]]) {
                    0..0x80 => 1,
                    0x80..0x800 => 2,
                    // A surrogate pair is four bytes, two per unit.
                    0xD800..0xE000 => 2,
                    _ => 3,
                })
                .sum()
        } else {
            bytes.iter().map(|&b| if b < 0x80 { 1 } else { 2 }).sum()
        }
    }

    /// Skips `n` bytes across parts (rich-text runs and extended data are
    /// not split with a flags byte).
    fn skip(&mut self, mut n: u64) {
        while n > 0 {
            let here = self.left_in_part().min(n);
            self.at += here as usize;
            n -= here;
            if n > 0 && !self.next_part() {
                return;
            }
        }
    }
}

/// Walks one sheet from its entry's position as calamine does: the first BOF
/// is the sheet's own, a later BOF opens a nested substream whose records are
/// skipped up to its EOF, the sheet ends at its EOF or the stream's end.
fn walk_sheet<R: Read>(
    stream: &mut R,
    position: u64,
    number: usize,
    globals: &Globals,
    limits: &Limits,
) -> Result<SheetCost, GuardError> {
    let mut records = Records {
        stream,
        at: position,
    };
    let mut cost = SheetCost::default();
    let mut bounds: Option<(u32, u32, u32, u32)> = None;
    let mut grow = |row: u32, first: u32, last: u32| {
        let (r0, r1, c0, c1) = bounds.unwrap_or((row, row, first, last));
        bounds = Some((r0.min(row), r1.max(row), c0.min(first), c1.max(last)));
    };
    let (mut seen_sheet_bof, mut depth) = (false, 0usize);
    let mut formula_at = (0u32, 0u32);
    let mut walked = 0u64;
    while let Some(record) = records.next()? {
        walked += 1;
        // Records are walked per distinct entry; a stream is a few million at most.
        if walked > limits.max_grid_cells.saturating_mul(4) {
            return Err(GuardError::Refused(format!(
                "sheet {number} holds more than {walked} records"
            )));
        }
        let body = &record.body;
        if depth > 0 {
            match record.kind {
                BOF => depth += 1,
                EOF => depth -= 1,
                _ => {}
            }
            continue;
        }
        match record.kind {
            BOF if seen_sheet_bof => depth += 1,
            BOF => seen_sheet_bof = true,
            EOF => break,
            DIMENSIONS => cost.declared = declared_cells(body),
            MERGE_CELLS => {
                let ranges = u16_at(body, 0).unwrap_or_default();
                if 2 + usize::from(ranges) * 8 > body.len() {
                    return Err(GuardError::Corrupt(format!(
                        "sheet {number}: a MergeCells record at byte {} lists {ranges} ranges but holds {} bytes",
                        record.at,
                        body.len()
                    )));
                }
            }
            kind if ONE_CELL.contains(&kind) || kind == LABEL_SST || kind == FORMULA => {
                let (Some(row), Some(col)) = (u16_at(body, 0), u16_at(body, 2)) else {
                    continue;
                };
                let (row, col) = (u32::from(row), u32::from(col));
                grow(row, col, col);
                cost.cells += 1;
                if kind == FORMULA {
                    formula_at = (row, col);
                } else if kind == LABEL_SST {
                    let index = u32_at(body, 6).unwrap_or(u32::MAX) as usize;
                    cost.text_bytes += globals
                        .shared_string_bytes
                        .get(index)
                        .copied()
                        .unwrap_or_default();
                } else {
                    // A label's text is in the record (and its CONTINUEs, rare).
                    cost.text_bytes += 2 * body.len() as u64;
                }
            }
            FORMULA_STRING => {
                grow(formula_at.0, formula_at.1, formula_at.1);
                cost.cells += 1;
                cost.text_bytes += 2 * body.len() as u64;
            }
            MUL_RK if body.len() >= 6 => {
                let row = u32::from(u16_at(body, 0).unwrap_or_default());
                let first = u16_at(body, 2).unwrap_or_default();
                let last = u16_at(body, body.len() - 2).unwrap_or_default();
                // calamine checks the length and fails the file otherwise.
                if last >= first && body.len() == 6 + 6 * usize::from(last - first + 1) {
                    grow(row, u32::from(first), u32::from(last));
                    cost.cells += u64::from(last - first + 1);
                }
            }
            _ => {}
        }
    }
    if let Some((r0, r1, c0, c1)) = bounds {
        cost.rows = u64::from(r1 - r0) + 1;
        cost.columns = u64::from(c1 - c0) + 1;
        cost.grid = cost.rows * cost.columns;
    }
    Ok(cost)
}

/// The cells calamine reserves for a DIMENSIONS record (its own reading of
/// the record: BIFF8 rows are 32-bit, the last row and column are one past).
fn declared_cells(body: &[u8]) -> u64 {
    let (first_row, last_row, mut first_col, last_col) = match body.len() {
        10 => (
            u32::from(u16_at(body, 0).unwrap_or_default()),
            u32::from(u16_at(body, 2).unwrap_or_default()),
            u32::from(u16_at(body, 4).unwrap_or_default()),
            u32::from(u16_at(body, 6).unwrap_or_default()),
        ),
        14 | 16 => (
            u32_at(body, 0).unwrap_or_default(),
            u32_at(body, 4).unwrap_or_default(),
            u32::from(u16_at(body, 8).unwrap_or_default()),
            u32::from(u16_at(body, 10).unwrap_or_default()),
        ),
        _ => return 0,
    };
    if first_col > 0xFF || last_col < first_col {
        first_col = 0;
    }
    if last_row == 0 || last_col == 0 {
        return 1;
    }
    // calamine subtracts in u32: a last row before the first wraps around.
    let rows = u64::from((last_row - 1).wrapping_sub(first_row).wrapping_add(1));
    let cols = u64::from((last_col - 1).wrapping_sub(first_col).wrapping_add(1));
    rows.saturating_mul(cols)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::read::workbook::guard::LIMITS;

    /// A BIFF record: type, length, body.
    pub fn record(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = kind.to_le_bytes().to_vec();
        v.extend((body.len() as u16).to_le_bytes());
        v.extend(body);
        v
    }

    fn number(row: u16, col: u16) -> Vec<u8> {
        let mut b = row.to_le_bytes().to_vec();
        b.extend(col.to_le_bytes());
        b.extend([0; 10]);
        record(0x0203, &b)
    }

    fn bound_sheet(position: u32) -> Vec<u8> {
        let mut b = position.to_le_bytes().to_vec();
        b.extend([0, 0, 1, 0, b'S']);
        record(BOUND_SHEET, &b)
    }

    /// A stream whose globals list `entries` sheets, all at the one sheet
    /// `sheet_records` makes (wrapped in its BOF; EOF added when `close`).
    fn stream(entries: usize, sheet_records: &[Vec<u8>], close: bool) -> Vec<u8> {
        let globals_len = 20 + entries * 13 + 4;
        let mut s = record(BOF, &[0; 16]);
        for _ in 0..entries {
            s.extend(bound_sheet(globals_len as u32));
        }
        s.extend(record(EOF, &[]));
        assert_eq!(s.len(), globals_len);
        s.extend(record(BOF, &[0; 16]));
        for r in sheet_records {
            s.extend(r);
        }
        if close {
            s.extend(record(EOF, &[]));
        }
        s
    }

    fn check(s: &[u8], limits: &Limits) -> Result<(), GuardError> {
        check_workbook_stream(std::io::Cursor::new(s), s.len() as u64, limits)
    }

    fn small() -> Limits {
        Limits {
            max_grid_cells: 1_000_000,
            ..LIMITS
        }
    }

    #[test]
    fn one_sheet_within_the_limit_passes_and_past_it_is_refused() {
        let s = stream(1, &[number(0, 0), number(60_000, 50)], true);
        let err = check(&s, &small()).unwrap_err();
        assert!(
            matches!(err, GuardError::Refused(ref m) if m.contains("60001 rows × 51 columns")),
            "{err:?}"
        );
        assert!(check(&s, &LIMITS).is_ok());
    }

    #[test]
    fn twenty_entries_at_one_sheet_cost_twenty_sheets() {
        let s = stream(20, &[number(0, 0), number(60_000, 0)], true);
        assert!(check(&s, &small()).is_err());
        let one = stream(1, &[number(0, 0), number(60_000, 0)], true);
        assert!(check(&one, &small()).is_ok());
    }

    #[test]
    fn a_nested_substream_does_not_hide_the_sheet_and_a_missing_eof_still_counts() {
        let nested = [
            number(0, 0),
            record(BOF, &[0; 16]),
            number(1, 1),
            record(EOF, &[]),
            number(60_000, 50),
        ];
        assert!(check(&stream(1, &nested, true), &small()).is_err());
        let unclosed = [number(0, 0), number(60_000, 50)];
        assert!(check(&stream(1, &unclosed, false), &small()).is_err());
    }

    #[test]
    fn rstring_cells_are_counted() {
        let mut b = 60_000u16.to_le_bytes().to_vec();
        b.extend(50u16.to_le_bytes());
        b.extend([0; 8]);
        let s = stream(1, &[number(0, 0), record(0x00D6, &b)], true);
        assert!(check(&s, &small()).is_err());
    }

    #[test]
    fn damaged_entries_and_merge_lists_are_corrupt_not_panics() {
        let mut s = record(BOF, &[0; 16]);
        s.extend(bound_sheet(1 << 30));
        s.extend(record(EOF, &[]));
        assert!(
            matches!(check(&s, &LIMITS), Err(GuardError::Corrupt(m)) if m.contains("past the end"))
        );
        let mut short = record(BOF, &[0; 16]);
        short.extend(record(BOUND_SHEET, &[1, 2, 3]));
        assert!(
            matches!(check(&short, &LIMITS), Err(GuardError::Corrupt(m)) if m.contains("shorter"))
        );
        let merge = record(MERGE_CELLS, &[200, 0, 0, 0]);
        let s = stream(1, &[number(0, 0), merge], true);
        assert!(
            matches!(check(&s, &LIMITS), Err(GuardError::Corrupt(m)) if m.contains("MergeCells"))
        );
        let mut locked = record(BOF, &[0; 16]);
        locked.extend(record(FILEPASS, &[1, 0]));
        assert!(matches!(
            check(&locked, &LIMITS),
            Err(GuardError::Encrypted)
        ));
    }

    #[test]
    fn a_shared_string_costs_its_size_each_time_a_cell_names_it() {
        // One 8,000-character string, referenced by 30,000 cells: 480 MB.
        let mut sst = 1u32.to_le_bytes().to_vec();
        sst.extend(1u32.to_le_bytes());
        sst.extend(8000u16.to_le_bytes());
        sst.push(0);
        sst.extend(vec![b'x'; 8000]);
        let mut globals = record(BOF, &[0; 16]);
        globals.extend(record(SST, &sst));
        let globals_len = globals.len() + 13 + 4;
        globals.extend(bound_sheet(globals_len as u32));
        globals.extend(record(EOF, &[]));
        let mut s = globals;
        s.extend(record(BOF, &[0; 16]));
        for row in 0..30_000u16 {
            let mut b = row.to_le_bytes().to_vec();
            b.extend([0, 0, 0, 0, 0, 0, 0, 0]);
            s.extend(record(LABEL_SST, &b));
        }
        s.extend(record(EOF, &[]));
        let err = check(&s, &LIMITS).unwrap_err();
        assert!(
            matches!(err, GuardError::Refused(ref m) if m.contains("expands to more than")),
            "{err:?}"
        );
    }

    #[test]
    fn a_string_continued_in_the_next_record_is_measured_whole() {
        let mut first = 1u32.to_le_bytes().to_vec();
        first.extend(1u32.to_le_bytes());
        first.extend(10u16.to_le_bytes());
        first.push(0);
        first.extend(b"abcd");
        let mut rest = vec![1u8]; // the rest is UTF-16
        rest.extend([b'e', 0, b'f', 0, b'g', 0, b'h', 0, b'i', 0, b'j', 0]);
        assert_eq!(shared_string_sizes(&[first, rest]), vec![10]);
        let mut accented = 1u32.to_le_bytes().to_vec();
        accented.extend(1u32.to_le_bytes());
        accented.extend(2u16.to_le_bytes());
        accented.extend([1, 0xE9, 0, 0x20, 0xAC]);
        assert_eq!(shared_string_sizes(&[accented]), vec![2 + 3]);
    }

    #[test]
    fn an_absurd_dimensions_record_is_refused() {
        let mut dims = 0u32.to_le_bytes().to_vec();
        dims.extend(4_000_000_000u32.to_le_bytes());
        dims.extend(0u16.to_le_bytes());
        dims.extend(200u16.to_le_bytes());
        dims.extend([0, 0]);
        let s = stream(1, &[record(DIMENSIONS, &dims), number(0, 0)], true);
        let err = check(&s, &LIMITS).unwrap_err();
        assert!(
            matches!(err, GuardError::Refused(ref m) if m.contains("DIMENSIONS")),
            "{err:?}"
        );
    }
}
