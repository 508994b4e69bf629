//! What the cells of an .xlsx expand to through its shared strings: a cell
//! `<c t="s"><v>7</v></c>` costs a few bytes in the sheet but is staged as
//! the whole of string 7, however long, each time a cell names it. One long
//! string named by thousands of cells turns a 40 KB file into gigabytes of
//! rows. The guard sizes every shared string once (`StringSizes`), then
//! `SharedRefs` adds up the strings the sheets name while they are inflated.
//! Both walk the XML's tags in chunks, holding only an unfinished tag and
//! the text before it.

use super::guard::{human_bytes, GuardError};

/// Walks XML fed in chunks, handing on each tag (without `<` `>`) with the
/// text before it.
#[derive(Default)]
struct TagWalk {
    /// From the end of the last whole tag to the end of the last chunk.
    carry: Vec<u8>,
}

impl TagWalk {
    fn feed(
        &mut self,
        chunk: &[u8],
        limit: u64,
        on_tag: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), GuardError> {
        let joined;
        let text: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            self.carry.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.carry);
            &joined
        };
        let mut at = 0;
        while let Some(open) = memchr::memchr(b'<', &text[at..]).map(|i| at + i) {
            let Some(close) = memchr::memchr(b'>', &text[open..]).map(|i| open + i) else {
                break;
            };
            on_tag(&text[at..open], &text[open + 1..close]);
            at = close + 1;
        }
        if (text.len() - at) as u64 > limit {
            return Err(GuardError::Refused(format!(
                "a value or tag runs past {} (Excel keeps at most 32,767 characters in a cell)",
                human_bytes(limit)
            )));
        }
        self.carry = text[at..].to_vec();
        Ok(())
    }
}

/// The text size of each shared string (`<si>`), in order: every byte that
/// is not a tag, entities and phonetic runs included (an upper bound).
#[derive(Default)]
pub struct StringSizes {
    walk: TagWalk,
    current: Option<u64>,
    pub sizes: Vec<u64>,
}

impl StringSizes {
    pub fn feed(&mut self, chunk: &[u8], limit: u64) -> Result<(), GuardError> {
        let (current, sizes) = (&mut self.current, &mut self.sizes);
        self.walk.feed(chunk, limit, &mut |text, tag| {
            if let Some(size) = current.as_mut() {
                *size += text.len() as u64;
            }
            match tag {
                b"si" => *current = Some(0),
                b"si/" => sizes.push(0),
                b"/si" => sizes.push(current.take().unwrap_or_default()),
                _ if tag.starts_with(b"si ") => *current = Some(0),
                _ => {}
            }
        })
    }
}

/// Adds up the shared strings the cells of a sheet name, fed the sheet's
/// XML in chunks as it is inflated.
pub struct SharedRefs<'s> {
    sizes: &'s [u64],
    walk: TagWalk,
    /// Whether the cell being read is of type "s".
    in_shared_cell: bool,
    /// Bytes of text the cells named, and how many cells named one.
    pub bytes: u64,
    pub cells: u64,
}

impl<'s> SharedRefs<'s> {
    pub fn new(sizes: &'s [u64]) -> SharedRefs<'s> {
        SharedRefs {
            sizes,
            walk: TagWalk::default(),
            in_shared_cell: false,
            bytes: 0,
            cells: 0,
        }
    }

    pub fn feed(&mut self, chunk: &[u8], limit: u64) -> Result<(), GuardError> {
        let (sizes, shared, bytes, cells) = (
            self.sizes,
            &mut self.in_shared_cell,
            &mut self.bytes,
            &mut self.cells,
        );
        self.walk.feed(chunk, limit, &mut |text, tag| match tag {
            [b'c'] | [b'c', b' ' | b'/', ..] => {
                *shared = memchr::memmem::find(tag, b"t=\"s\"").is_some()
                    || memchr::memmem::find(tag, b"t='s'").is_some();
            }
            b"/v" if *shared => {
                let index = std::str::from_utf8(text)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if let Some(size) = index.and_then(|i| sizes.get(i)) {
                    *bytes = bytes.saturating_add(*size);
                    *cells += 1;
                }
                *shared = false;
            }
            _ => {}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cell_naming_a_string_costs_its_size_across_chunk_ends() {
        let sst: &[u8] = br#"<sst count="4"><si><t>Name</t></si><si><t>0123456789</t></si><si/><si><r><t>ab</t></r><r><t>c</t></r></si></sst>"#;
        let sheet: &[u8] = br#"<sheetData><row r="1"><c r="A1" t="s"><v>1</v></c><c r="B1"><v>1</v></c><c r="C1" t="inlineStr"><is><t>x</t></is></c><c r="D1" t="s"><v> 3 </v></c><c r="E1" t="s"><v>99</v></c></row></sheetData>"#;
        for split in 0..sst.len().max(sheet.len()) {
            let mut strings = StringSizes::default();
            strings.feed(&sst[..split.min(sst.len())], 1 << 20).unwrap();
            strings.feed(&sst[split.min(sst.len())..], 1 << 20).unwrap();
            assert_eq!(strings.sizes, vec![4, 10, 0, 3], "split at {split}");
            let mut refs = SharedRefs::new(&strings.sizes);
            refs.feed(&sheet[..split.min(sheet.len())], 1 << 20)
                .unwrap();
            refs.feed(&sheet[split.min(sheet.len())..], 1 << 20)
                .unwrap();
            assert_eq!((refs.bytes, refs.cells), (13, 2), "split at {split}");
        }
    }

    #[test]
    fn an_unfinished_value_past_the_limit_is_refused() {
        let mut strings = StringSizes::default();
        strings.feed(b"<sst><si><t>", 16).unwrap();
        assert!(strings.feed(&[b'x'; 64], 16).is_err());
    }
}
