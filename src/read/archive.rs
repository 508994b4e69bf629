//! A `.zip` of exports read as the files inside it. Each supported entry is
//! inflated into a private temporary directory and imported as
//! `exports.zip/servers.csv`. Nothing the archive declares is trusted: the
//! bytes written are counted as they inflate, against a budget that follows
//! the archive's own size (a ratio, as for workbooks), so a zip bomb stops
//! after a bounded amount of work and fails alone, naming the entry.

use std::io::{Read, Write};
use std::path::Path;

use super::{IgnoredPath, InputFile, DELIMITED_EXTENSIONS, WORKBOOK_EXTENSIONS};

/// Inflated bytes allowed per byte of the archive: exports of text compress
/// 5–20:1, a column of one repeated value perhaps 100:1; a bomb far more.
pub const MAX_RATIO: u64 = 200;
/// A small archive may still inflate to this much (tiny zips of real files).
pub const MIN_BUDGET: u64 = 256 << 20;
/// Never more than this in all, whatever the archive's size.
pub const MAX_BUDGET: u64 = 64 << 30;
/// Entries looked at; an archive listing more is refused.
pub const MAX_ENTRIES: usize = 10_000;

/// The files of one archive, inflated, and what was left out.
pub struct Extracted {
    /// Removed (with the files) when this drops: keep it until the run ends.
    pub dir: tempfile::TempDir,
    pub files: Vec<InputFile>,
    pub ignored: Vec<IgnoredPath>,
    /// Entries that could not be inflated (damaged, encrypted, over the
    /// budget): display name and why.
    pub refused: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{display}: not a readable zip archive ({reason}); extract it and import the folder")]
    Damaged { display: String, reason: String },
    #[error("{display}: lists {entries} entries, more than the {MAX_ENTRIES} intake opens; extract it and import the folder")]
    TooManyEntries { display: String, entries: usize },
    #[error("{display}: cannot create a temporary directory to inflate it into: {source}")]
    Temp {
        display: String,
        source: std::io::Error,
    },
}

/// Whether `path` names a zip archive to open.
pub fn is_archive(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Inflates the supported entries of the archive at `path` (shown as
/// `display`) into a temporary directory.
pub fn extract(path: &Path, display: &str) -> Result<Extracted, ArchiveError> {
    let damaged = |reason: String| ArchiveError::Damaged {
        display: display.to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| damaged(e.to_string()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut archive = super::isolate::parser_call(|| {
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| e.to_string())
    })
    .map_err(damaged)?;
    if archive.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries {
            display: display.to_string(),
            entries: archive.len(),
        });
    }
    let dir = tempfile::Builder::new()
        .prefix("intake-zip-")
        .tempdir()
        .map_err(|source| ArchiveError::Temp {
            display: display.to_string(),
            source,
        })?;
    let mut budget = size.saturating_mul(MAX_RATIO).clamp(MIN_BUDGET, MAX_BUDGET);
    let mut extracted = Extracted {
        dir,
        files: Vec::new(),
        ignored: Vec::new(),
        refused: Vec::new(),
    };
    for index in 0..archive.len() {
        let entry = super::isolate::parser_call(|| {
            let entry = archive.by_index(index).map_err(|e| e.to_string())?;
            Ok((
                entry.name().map_err(|e| e.to_string())?.to_string(),
                entry.enclosed_name(),
                entry.is_dir(),
            ))
        });
        let (name, enclosed, is_dir) = match entry {
            Ok(entry) => entry,
            Err(reason) => {
                extracted
                    .refused
                    .push((format!("{display}/entry {}", index + 1), reason));
                continue;
            }
        };
        let shown = format!("{display}/{name}");
        if is_dir {
            continue;
        }
        let Some(relative) = enclosed else {
            extracted.refused.push((
                shown,
                "its name leaves the archive (an absolute path or ..); not extracted".into(),
            ));
            continue;
        };
        let file_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // macOS resource forks, hidden files and Office lock files.
        if relative.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c.starts_with('.') || c == "__MACOSX"
        }) || file_name.starts_with("~$")
        {
            continue;
        }
        let ext = relative
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ext == "zip" {
            extracted.ignored.push(IgnoredPath {
                path: shown,
                reason: "a zip inside a zip is not opened; extract it and import the folder".into(),
            });
            continue;
        }
        if !DELIMITED_EXTENSIONS.contains(&ext.as_str())
            && !WORKBOOK_EXTENSIONS.contains(&ext.as_str())
        {
            extracted.ignored.push(IgnoredPath {
                path: shown,
                reason: "not a supported file type (csv, tsv, txt, xlsx, xls, ods)".into(),
            });
            continue;
        }
        let target = extracted.dir.path().join(&relative);
        match inflate(&mut archive, index, &target, &mut budget) {
            Ok(()) => extracted.files.push(InputFile {
                path: target,
                display: shown,
            }),
            Err(reason) => {
                let _ = std::fs::remove_file(&target);
                extracted.refused.push((shown, reason));
            }
        }
    }
    Ok(extracted)
}

/// Inflates entry `index` to `target`, counting what it writes against
/// `budget` (what the entry declares is not believed).
fn inflate<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    index: usize,
    target: &Path,
    budget: &mut u64,
) -> Result<(), String> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let mut out = std::fs::File::create(target).map_err(|e| e.to_string())?;
    let allowed = *budget;
    let written = super::isolate::parser_call(|| {
        let entry = archive.by_index(index).map_err(|e| {
            if matches!(e, zip::result::ZipError::UnsupportedArchive(_)) {
                format!("{e} (an encrypted or unusually compressed entry: extract it yourself)")
            } else {
                e.to_string()
            }
        })?;
        // One byte past the budget tells a bomb from an entry that fits exactly.
        let mut limited = entry.take(allowed + 1);
        let mut buffer = vec![0u8; 256 << 10];
        let mut written: u64 = 0;
        loop {
            let n = limited.read(&mut buffer).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > allowed {
                return Err(format!(
                    "inflates to more than {} MiB, over {MAX_RATIO} times the archive's size (a zip bomb, or an archive to extract yourself and import as a folder)",
                    allowed >> 20
                ));
            }
            out.write_all(&buffer[..n]).map_err(|e| e.to_string())?;
        }
        Ok(written)
    })?;
    out.flush().map_err(|e| e.to_string())?;
    *budget -= written;
    Ok(())
}
