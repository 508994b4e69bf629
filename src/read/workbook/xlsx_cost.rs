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
                // CDATA is text, though the walk sees it as a tag.
                if tag.starts_with(b"![CDATA[") {
                    *size += tag.len() as u64;
                }
            }
            let tag = Tag::of(tag);
            if tag.local != b"si" {
                return;
            }
            match (tag.closing, tag.self_closing) {
                (false, false) => *current = Some(0),
                (false, true) => sizes.push(0),
                (true, _) => sizes.push(current.take().unwrap_or_default()),
            }
        })
    }
}

/// A tag as the walk hands it on (without `<` `>`): its local name (a
/// prefix such as `x:` dropped, as the parser drops it) and its attributes.
struct Tag<'t> {
    local: &'t [u8],
    closing: bool,
    self_closing: bool,
    attributes: &'t [u8],
}

impl<'t> Tag<'t> {
    fn of(tag: &'t [u8]) -> Tag<'t> {
        let closing = tag.first() == Some(&b'/');
        let self_closing = tag.last() == Some(&b'/');
        let body = &tag[usize::from(closing)..tag.len() - usize::from(self_closing && !closing)];
        let end = body
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(body.len());
        let name = &body[..end];
        let local = match memchr::memrchr(b':', name) {
            Some(colon) => &name[colon + 1..],
            None => name,
        };
        Tag {
            local,
            closing,
            self_closing,
            attributes: &body[end..],
        }
    }

    /// Whether attribute `name` (any prefix, spaces around `=`, either
    /// quote) has the value `value`.
    fn has(&self, name: &[u8], value: &[u8]) -> bool {
        let mut rest = self.attributes;
        loop {
            let start = rest.iter().position(|b| !b.is_ascii_whitespace());
            let Some(start) = start else { return false };
            rest = &rest[start..];
            let Some(eq) = memchr::memchr(b'=', rest) else {
                return false;
            };
            let key = rest[..eq].trim_ascii_end();
            let key = match memchr::memrchr(b':', key) {
                Some(colon) => &key[colon + 1..],
                None => key,
            };
            let after = rest[eq + 1..].trim_ascii_start();
            let Some(&quote) = after.first().filter(|q| matches!(q, b'"' | b'\'')) else {
                return false;
            };
            let Some(close) = memchr::memchr(quote, &after[1..]) else {
                return false;
            };
            if key == name && &after[1..1 + close] == value {
                return true;
            }
            rest = &after[close + 2..];
        }
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
        self.walk.feed(chunk, limit, &mut |text, tag| {
            // Most tags are <c>, <v> and their ends: told apart by a byte or two.
            let tag = Tag::of(tag);
            match (tag.local, tag.closing) {
                (b"c", false) => *shared = !tag.self_closing && tag.has(b"t", b"s"),
                (b"c", true) => *shared = false,
                (b"v", true) if *shared => {
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
            }
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
    fn prefixed_elements_spaced_attributes_and_single_quotes_are_counted_too() {
        let sst: &[u8] = br#"<x:sst><x:si><x:t>0123456789</x:t></x:si><si><t><![CDATA[abcdef]]></t></si></x:sst>"#;
        let sheet: &[u8] = br#"<x:sheetData><x:row><x:c r="A1" t = 's'><x:v>0</x:v></x:c><x:c r="B1" s="1" t="s" ><x:v>0</x:v></x:c><x:c t="s"/><x:c r="C1"><x:v>0</x:v></x:c></x:row></x:sheetData>"#;
        let mut strings = StringSizes::default();
        strings.feed(sst, 1 << 20).unwrap();
        assert_eq!(strings.sizes[0], 10);
        assert!(strings.sizes[1] >= 6, "CDATA counts: {:?}", strings.sizes);
        let mut refs = SharedRefs::new(&strings.sizes);
        refs.feed(sheet, 1 << 20).unwrap();
        assert_eq!((refs.bytes, refs.cells), (20, 2));
    }

    #[test]
    fn an_unfinished_value_past_the_limit_is_refused() {
        let mut strings = StringSizes::default();
        strings.feed(b"<sst><si><t>", 16).unwrap();
        assert!(strings.feed(&[b'x'; 64], 16).is_err());
    }
}
