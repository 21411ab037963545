//! A build log as lines a person would read: split on `\n`, `\r\n` or a lone `\r` (a lone `\r`
//! is a terminal redraw: the piece before it was overwritten), ANSI escapes and control
//! characters removed, and the per-line prefixes that CI systems add (GitHub Actions timestamps
//! and job/step columns, CodeBuild's `[Container]` clock, Jenkins and GitLab timestamps) taken
//! off. Line numbers stay those of the file, so that an excerpt can point into it.

use super::re;
use regex::Regex;
use std::sync::OnceLock;

/// One line of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the log as given (pieces split on `\n`, `\r\n` or `\r`).
    pub number: usize,
    /// The text without colour codes, control characters or CI line prefixes.
    pub text: String,
    /// The piece ended with a lone `\r` and something was drawn over it (a progress redraw).
    pub overwritten: bool,
}

/// A log split into [`Line`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    pub lines: Vec<Line>,
    /// Inside a private key block: its lines are kept as `[REDACTED]` (the numbering stays).
    in_private_key: bool,
}

impl Log {
    /// Reads a whole log file's text.
    pub fn from_text(text: &str) -> Self {
        let mut log = Log::default();
        log.push_text(text);
        log
    }

    /// Reads log events (CloudWatch Logs messages), each of which may hold several lines.
    pub fn from_lines<S: AsRef<str>>(messages: &[S]) -> Self {
        let mut log = Log::default();
        for m in messages {
            log.push_text(m.as_ref());
        }
        log
    }

    fn push_text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => {
                    self.push_piece(&text[start..i], false);
                    i += 1;
                    start = i;
                }
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    self.push_piece(&text[start..i], false);
                    i += 2;
                    start = i;
                }
                b'\r' => {
                    // Overwritten only when something follows on the same line.
                    let redrawn = i + 1 < bytes.len();
                    self.push_piece(&text[start..i], redrawn);
                    i += 1;
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start < bytes.len() {
            self.push_piece(&text[start..], false);
        }
    }

    fn push_piece(&mut self, raw: &str, overwritten: bool) {
        let number = self.lines.len() + 1;
        let mut text = clean(raw);
        if self.in_private_key {
            self.in_private_key = !crate::redact::ends_private_key(&text);
            text = crate::redact::REDACTED.to_string();
        } else if crate::redact::opens_private_key(&text) {
            self.in_private_key = true;
        }
        self.lines.push(Line {
            number,
            text,
            overwritten,
        });
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The texts, for the figure parsers.
    pub fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }
}

/// ANSI escapes and control characters out, CI prefixes off, trailing space trimmed.
pub fn clean(raw: &str) -> String {
    let text = strip_escapes(raw);
    strip_ci_prefix(&text).trim_end().to_string()
}

/// Removes ANSI CSI/OSC sequences and control characters other than tab.
fn strip_escapes(raw: &str) -> String {
    if !raw.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    // Parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    // OSC ends at BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Takes off the prefix a CI system puts before each line.
fn strip_ci_prefix(text: &str) -> &str {
    static GITHUB_FULL: OnceLock<Regex> = OnceLock::new();
    static ISO: OnceLock<Regex> = OnceLock::new();
    static BRACKETED: OnceLock<Regex> = OnceLock::new();
    // `gh run view --log`: job \t step \t timestamp.
    let github_full = re(
        &GITHUB_FULL,
        r"^[^\t]*\t[^\t]*\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?",
    );
    // GitHub Actions raw logs and GitLab's timestamps (`...Z 00O `, `...Z 00E+`).
    let iso = re(
        &ISO,
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)(?: \d\d[OE]\+?)? ?",
    );
    // Jenkins timestamper: `[2024-05-14T10:02:09.870Z] ` or `10:02:09 `.
    let bracketed = re(
        &BRACKETED,
        r"^(?:\[\d{4}-\d\d-\d\dT[\d:.]+Z?\]|\d\d:\d\d:\d\d(?:\.\d+)?)\s+",
    );
    static BUILDKIT: OnceLock<Regex> = OnceLock::new();
    // docker buildx plain progress: `#9 1.411 npm ERR! ...` (step number, seconds).
    let buildkit = re(&BUILDKIT, r"^#\d+ \d+\.\d+ ");
    for prefix in [github_full, iso, bracketed] {
        if let Some(m) = prefix.find(text) {
            let rest = &text[m.end()..];
            return buildkit.find(rest).map_or(rest, |b| &rest[b.end()..]);
        }
    }
    if let Some(m) = buildkit.find(text) {
        return &text[m.end()..];
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_every_line_break_and_marks_redraws() {
        let log = Log::from_text("a\r\nb\rc\nd\r\n\u{1b}[31me\u{1b}[0m\rend\r");
        let texts: Vec<_> = log.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c", "d", "e", "end"]);
        assert!(log.lines[1].overwritten);
        assert!(!log.lines[2].overwritten);
        assert!(log.lines[4].overwritten);
        assert!(!log.lines[5].overwritten, "a final \\r overwrites nothing");
        assert_eq!(log.lines[5].number, 6);
    }

    #[test]
    fn ci_prefixes_come_off() {
        assert_eq!(
            clean("2021-12-01T13:01:04.3785538Z > Task :test FAILED"),
            "> Task :test FAILED"
        );
        assert_eq!(
            clean("build\tbuild cidiff\t2021-12-01T13:01:04.3785538Z > Task :test FAILED"),
            "> Task :test FAILED"
        );
        assert_eq!(
            clean("2024-05-14T10:02:09.870152Z 00O $ npm test"),
            "$ npm test"
        );
        assert_eq!(clean("[2024-05-14T10:02:09.870Z] + npm test"), "+ npm test");
        assert_eq!(clean("\u{1b}]0;title\u{7}\u{1b}[1mbold\u{1b}[22m"), "bold");
        assert_eq!(clean("plain"), "plain");
    }
}
