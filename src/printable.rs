//! Text from the data made safe to print. Headers, values and file names come
//! from files nobody controls; printed raw, an escape sequence in one could
//! retitle the terminal, clear the screen or hide text. Everything intake
//! prints for people goes through `escape_controls`, and JSON output through
//! `escape_json_controls`. File names are shortened in the middle to fit a
//! terminal (`short_path`), keeping the part that tells files apart.

use std::borrow::Cow;

/// Whether a character must not reach a terminal as it is: C0 and C1
/// controls (ESC, CSI, OSC, BEL, BS, CR ...), DEL, and the bidirectional
/// overrides that reorder what is shown. A line break is the output's own.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each unsafe character written as a Rust-style escape
/// (`\u{1b}`); borrowed when there is none (nearly always).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with the characters serde_json leaves raw (DEL, C1 controls,
/// bidirectional overrides) written as `\uXXXX`. They can occur only inside
/// strings, where the escape means the same character, so the JSON is
/// unchanged for a parser.
pub fn escape_json_controls(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe_in_json) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe_in_json(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe_in_json(c: char) -> bool {
    // serde_json escapes C0 itself; what is left here is raw in its output.
    is_unsafe(c) && !matches!(c, '\u{0}'..='\u{1f}')
}

/// `path` relative to the working directory when it is below it, else as given.
pub fn relative_path(path: &str) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            std::path::Path::new(path)
                .strip_prefix(&cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| path.to_string())
}

/// `path` relative to the working directory when it is below it, then cut
/// in the middle to `max` characters ("exports/…/servers.csv").
pub fn short_path(path: &str, max: usize) -> String {
    let relative = relative_path(path);
    let chars: Vec<char> = relative.chars().collect();
    if chars.len() <= max || max < 5 {
        return relative;
    }
    // The file's own name is what tells files apart: the directories give way first.
    let name = std::path::Path::new(&relative)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name_chars = name.chars().count();
    if name_chars + 2 <= max {
        let head = max - name_chars - 2;
        // A stub of a directory ("/w…/") says nothing: the name alone then.
        if head < 4 {
            return format!("…/{name}");
        }
        let mut out: String = chars[..head].iter().collect();
        out.push_str("…/");
        out.push_str(&name);
        return out;
    }
    // The name alone does not fit: its middle goes, its start and its
    // extension stay ("RVTools_e…all.xlsx").
    let name: Vec<char> = name.chars().collect();
    if name.len() <= max {
        return name.iter().collect();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let mut out: String = name[..head].iter().collect();
    out.push('…');
    out.extend(&name[name.len() - tail..]);
    out
}

/// A file or sheet as `short_path` shows it, the sheet whole:
/// "exports/…/inventory.xlsx [vInfo]".
pub fn short_label(path: &str, sheet: Option<&str>, max: usize) -> String {
    match sheet {
        Some(sheet) => {
            let sheet_part = format!(" [{sheet}]");
            let room = max.saturating_sub(sheet_part.chars().count()).max(12);
            format!("{}{sheet_part}", short_path(path, room))
        }
        None => short_path(path, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_path_keeps_the_part_that_tells_files_apart() {
        // Directories give way to the file's name.
        assert_eq!(
            short_path("/srv/engagements/acme/exports/servers.csv", 24),
            "/srv/engage…/servers.csv"
        );
        // A directory stub too short to read is left out.
        assert_eq!(
            short_path("/work/main/samples/aws_migration_hub_import.csv", 32),
            "…/aws_migration_hub_import.csv"
        );
        // A name longer than the room loses its middle, keeps its extension.
        assert_eq!(
            short_path("/data/RVTools_export_all_2026_03.xlsx", 20),
            "RVTools_ex…6_03.xlsx"
        );
        assert_eq!(
            short_label("/data/RVTools_export_all.xlsx", Some("vPartition"), 30),
            "RVTools_…all.xlsx [vPartition]"
        );
        assert_eq!(short_path("servers.csv", 30), "servers.csv");
    }

    #[test]
    fn escape_sequences_are_shown_not_run() {
        assert_eq!(escape_controls("web01"), "web01");
        assert!(matches!(escape_controls("plain\ntext"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("\u{1b}]0;pwned\u{7}name"),
            "\\u{1b}]0;pwned\\u{7}name"
        );
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_controls("x\ry\tz"), "x\\ry\\tz");
        assert_eq!(escape_controls("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape_controls("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(escape_controls("Größe €"), "Größe €");
    }

    #[test]
    fn json_keeps_its_meaning() {
        let value = serde_json::json!({"name": "a\u{9b}b\u{7f}c\u{1b}d"});
        let text = serde_json::to_string(&value).unwrap();
        let safe = escape_json_controls(&text);
        assert!(!safe.chars().any(|c| c.is_control()));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }
}
