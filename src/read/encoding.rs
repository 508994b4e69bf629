//! Encoding detection and the content pre-pass. One pass over the file's bytes
//! computes the content hash (re-import detection), checks whether the bytes are
//! valid UTF-8 and looks for a byte-order mark or BOM-less UTF-16; only when the
//! file is not UTF-8 is chardetng asked to guess (in practice Windows-1252).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};
use serde::Serialize;

/// How the encoding of a file was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingSource {
    /// A byte-order mark at the start of the file.
    Bom,
    /// The bytes are valid UTF-8, or chardetng's guess for the rest.
    Detected,
    /// Given with --encoding.
    Override,
}

/// What the pre-pass learned about a file.
#[derive(Debug, Clone)]
pub struct ContentScan {
    pub size: u64,
    pub hash: String,
    pub encoding: &'static Encoding,
    pub encoding_source: EncodingSource,
    pub has_bom: bool,
}

const CHUNK: usize = 1 << 20;
/// How much of a non-UTF-8 file chardetng sees.
const GUESS_BYTES: usize = 4 << 20;

/// Looks an encoding up by its WHATWG label ("utf-8", "latin1", "cp1252", "utf-16le").
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let label = label.trim();
    let normalised = match label.to_ascii_lowercase().as_str() {
        "cp1252" | "win1252" | "windows1252" => "windows-1252",
        "utf8" => "utf-8",
        "utf16le" | "utf-16" => "utf-16le",
        "utf16be" => "utf-16be",
        other => return Encoding::for_label(other.as_bytes()),
    };
    Encoding::for_label(normalised.as_bytes())
}

/// Reads the whole file once: hash, size, encoding.
pub fn scan(path: &Path, forced: Option<&'static Encoding>) -> io::Result<ContentScan> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size: u64 = 0;
    let mut first = true;
    let mut bom: Option<(&'static Encoding, usize)> = None;
    let mut utf16_guess: Option<&'static Encoding> = None;
    let mut utf8 = Utf8Check::default();
    let mut guesser = chardetng::EncodingDetector::new();
    let mut guessed_bytes = 0usize;
    // chardetng only runs once UTF-8 has failed; it then sees the head of the file too.
    let mut head: Vec<u8> = Vec::new();

    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        size += n as u64;
        if first {
            first = false;
            head = chunk.to_vec();
            bom = Encoding::for_bom(chunk);
            if bom.is_none() {
                utf16_guess = bomless_utf16(chunk);
            }
        }
        if forced.is_some() || bom.is_some() || utf16_guess.is_some() {
            continue; // still hashing
        }
        let was_valid = utf8.valid;
        utf8.feed(chunk);
        if was_valid && !utf8.valid {
            // The head, then the chunk where UTF-8 broke.
            if size > n as u64 {
                guesser.feed(&head, false);
                guessed_bytes += head.len();
            }
            guesser.feed(chunk, false);
            guessed_bytes += n;
        } else if !utf8.valid && guessed_bytes < GUESS_BYTES {
            guesser.feed(chunk, false);
            guessed_bytes += n;
        }
    }
    utf8.finish();

    let (encoding, encoding_source) = if let Some(enc) = forced {
        (enc, EncodingSource::Override)
    } else if let Some((enc, _)) = bom {
        (enc, EncodingSource::Bom)
    } else if let Some(enc) = utf16_guess {
        (enc, EncodingSource::Detected)
    } else if utf8.valid {
        (UTF_8, EncodingSource::Detected)
    } else {
        guesser.feed(&[], true);
        let guess = guesser.guess(None, true);
        // A guess of UTF-8 for bytes that are not UTF-8 is no guess at all.
        let enc = if guess == UTF_8 { WINDOWS_1252 } else { guess };
        (enc, EncodingSource::Detected)
    };
    Ok(ContentScan {
        size,
        hash: hasher.finalize().to_hex().to_string(),
        encoding,
        encoding_source,
        has_bom: bom.is_some(),
    })
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// UTF-16 text without a BOM shows as a NUL in every other byte of ASCII text.
fn bomless_utf16(head: &[u8]) -> Option<&'static Encoding> {
    let sample = &head[..head.len().min(4096) & !1];
    if sample.len() < 8 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_nul = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_nul = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|&&b| b == 0)
        .count();
    if odd_nul * 10 >= pairs * 7 && even_nul * 10 <= pairs {
        Some(UTF_16LE)
    } else if even_nul * 10 >= pairs * 7 && odd_nul * 10 <= pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Streaming UTF-8 validation across chunk boundaries.
#[derive(Default)]
struct Utf8Check {
    carry: Vec<u8>,
    invalid: bool,
    valid: bool,
    started: bool,
}

impl Utf8Check {
    fn feed(&mut self, chunk: &[u8]) {
        if !self.started {
            self.started = true;
            self.valid = true;
        }
        if self.invalid {
            return;
        }
        let joined;
        let bytes: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            joined = [self.carry.as_slice(), chunk].concat();
            &joined
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => self.carry.clear(),
            Err(e) if e.error_len().is_none() => {
                self.carry = bytes[e.valid_up_to()..].to_vec();
            }
            Err(_) => {
                self.invalid = true;
                self.valid = false;
            }
        }
    }

    fn finish(&mut self) {
        if !self.started {
            self.valid = true;
        }
        if !self.carry.is_empty() {
            self.valid = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_valid() {
        let text = "Müller;Zürich".as_bytes();
        let mut check = Utf8Check::default();
        check.feed(&text[..2]);
        check.feed(&text[2..]);
        check.finish();
        assert!(check.valid);
    }

    #[test]
    fn truncated_utf8_at_end_is_invalid() {
        let mut check = Utf8Check::default();
        check.feed(&[b'a', 0xC3]);
        check.finish();
        assert!(!check.valid);
    }

    #[test]
    fn bomless_utf16le_is_recognised() {
        let bytes: Vec<u8> = "Name\tIP\r\nweb01\t10.0.0.1\r\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(bomless_utf16(&bytes), Some(UTF_16LE));
        assert_eq!(bomless_utf16(b"Name,IP\nweb01,10.0.0.1\n"), None);
    }

    #[test]
    fn labels_include_common_aliases() {
        assert_eq!(encoding_for_label("cp1252"), Some(WINDOWS_1252));
        assert_eq!(encoding_for_label("latin1"), Some(WINDOWS_1252));
        assert_eq!(encoding_for_label("UTF8"), Some(UTF_8));
        assert_eq!(encoding_for_label("no-such"), None);
    }
}
