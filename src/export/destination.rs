//! Where an export or a report is written: `-` is standard output; an
//! existing device, FIFO or socket (`/dev/stdout`, a named pipe) is written
//! through, never replaced; a symbolic link is followed, so the link stays
//! and what it points at gets the output; a regular file (or a new one) is
//! written beside itself and renamed into place when complete, keeping the
//! mode of the file it replaces and, for a new file, the mode the umask
//! gives. Nothing is written anywhere but the path given and, while it is
//! written, a temporary file beside it.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ExportError;

/// Where output goes, decided from what the path is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `-`: standard output.
    Stdout,
    /// An existing special file (device, FIFO, socket), opened and written.
    Through(PathBuf),
    /// A regular file or a new one: written beside and renamed over it.
    Replace(PathBuf),
}

impl Destination {
    /// What `path` names: symbolic links are followed to what they point at.
    pub fn of(path: &Path) -> Destination {
        if path.as_os_str() == "-" {
            return Destination::Stdout;
        }
        // /dev/stdout, /dev/fd/3, /proc/self/fd/1: the descriptor itself,
        // whatever the link resolves to (a pipe, a file the shell opened).
        if path.starts_with("/dev") || path.starts_with("/proc") {
            return Destination::Through(path.to_path_buf());
        }
        let target = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(path) {
                Ok(resolved) => resolved,
                // A dangling link: opening it creates what it points at.
                Err(_) => return Destination::Through(path.to_path_buf()),
            },
            _ => path.to_path_buf(),
        };
        match std::fs::metadata(&target) {
            Ok(meta) if is_special(&meta.file_type()) => Destination::Through(target),
            _ => Destination::Replace(target),
        }
    }

    /// Whether the output can be read back while it is written (a binary
    /// format that seeks needs it; a pipe or a terminal cannot).
    pub fn is_file(&self) -> bool {
        matches!(self, Destination::Replace(_))
    }

    /// The path to name in messages.
    pub fn label(&self) -> String {
        match self {
            Destination::Stdout => "standard output".into(),
            Destination::Through(p) | Destination::Replace(p) => p.display().to_string(),
        }
    }

    /// Writes with `write`, which gets a seekable file: a regular file is
    /// written beside itself and renamed into place; a special file or
    /// standard output gets a finished copy from an unnamed temporary file,
    /// so it never sees half an output either.
    pub fn write_file(
        &self,
        write: impl FnOnce(&mut File) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        match self {
            Destination::Replace(path) => replace_file(path, write),
            Destination::Stdout | Destination::Through(_) => {
                let io = |source| ExportError::Io {
                    path: PathBuf::from(self.label()),
                    source,
                };
                let mut scratch = tempfile::tempfile().map_err(io)?;
                write(&mut scratch)?;
                scratch.seek(SeekFrom::Start(0)).map_err(io)?;
                self.write_stream(|out| {
                    std::io::copy(&mut scratch, out).map_err(io)?;
                    Ok(())
                })
            }
        }
    }

    /// Writes with `write`, which gets a stream: standard output, the
    /// special file opened for writing, or a file beside a regular one.
    pub fn write_stream(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let io = |source| ExportError::Io {
            path: PathBuf::from(self.label()),
            source,
        };
        match self {
            Destination::Stdout => {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                write(&mut out)?;
                out.flush().map_err(io)
            }
            Destination::Through(path) => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
                    .map_err(io)?;
                let mut out = std::io::BufWriter::new(file);
                write(&mut out)?;
                out.flush().map_err(io)
            }
            Destination::Replace(path) => replace_file(path, |file| {
                let mut out = std::io::BufWriter::new(file);
                write(&mut out)?;
                out.flush().map_err(io)
            }),
        }
    }
}

fn is_special(kind: &std::fs::FileType) -> bool {
    kind.is_fifo() || kind.is_char_device() || kind.is_block_device() || kind.is_socket()
}

/// Writes a file beside `path` with `write` and renames it over `path` once
/// complete, so a reader never sees half of it and a failed write leaves
/// whatever `path` held before. The file keeps the mode of the one it
/// replaces; a new one gets 0666 less the umask, as any program's would.
pub fn replace_file(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".intake-")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io)?;
    write(temp.as_file_mut())?;
    if let Ok(existing) = std::fs::metadata(path) {
        let mode = existing.permissions().mode() & 0o7777;
        temp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .map_err(io)?;
    }
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_path_names_decides_how_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("report.html");
        assert_eq!(Destination::of(Path::new("-")), Destination::Stdout);
        assert_eq!(Destination::of(&plain), Destination::Replace(plain.clone()));
        std::fs::write(&plain, "old").unwrap();
        let link = dir.path().join("latest.html");
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        let resolved = std::fs::canonicalize(&plain).unwrap();
        assert_eq!(Destination::of(&link), Destination::Replace(resolved));
        assert_eq!(
            Destination::of(Path::new("/dev/null")),
            Destination::Through("/dev/null".into())
        );
    }
}
