//! Text from the data made safe to print. Headers, values and file names come
//! from files nobody controls; printed raw, an escape sequence in one could
//! retitle the terminal, clear the screen or hide text. Everything intake
//! prints for people goes through `escape_controls`, and JSON output through
//! `escape_json_controls`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
