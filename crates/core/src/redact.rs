//! The one boundary for untrusted text. Everything an event, a build log, an AWS answer or an API
//! caller wrote passes [`Redactor::clean`] before it is stored, and so before it is posted or
//! served: terminal control characters are removed and credentials are replaced by `[REDACTED]`
//! (the patterns below, plus every secret the configuration holds). Escaping for a channel
//! (Slack mrkdwn, a terminal) happens where the text is formatted for it, on top of this.

mod patterns;
mod walk;

pub use patterns::{ends_private_key, opens_private_key, scrub};
pub use walk::Clean;

use std::borrow::Cow;

/// What replaces a credential.
pub const REDACTED: &str = "[REDACTED]";

/// Cleans untrusted text: [`strip_controls`], [`scrub`], and the configured secrets.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Values of the configured secrets (tokens, webhook URLs, signing secrets), longest first.
    known: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} configured secrets)", self.known.len())
    }
}

impl Redactor {
    /// A redactor that also removes each of `secrets` wherever it appears (values shorter than 6
    /// characters are not looked for: they would match ordinary words).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut known: Vec<String> = secrets
            .into_iter()
            .map(str::trim)
            .filter(|s| s.chars().count() >= 6)
            .map(str::to_string)
            .collect();
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
        known.dedup();
        Self { known }
    }

    /// `text` without control characters, credentials or configured secrets.
    pub fn clean<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let text = strip_controls(text);
        let text = match scrub(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => Cow::Owned(s),
        };
        if self.known.iter().any(|k| text.contains(k.as_str())) {
            let mut out = text.into_owned();
            for k in &self.known {
                out = out.replace(k.as_str(), REDACTED);
            }
            Cow::Owned(out)
        } else {
            text
        }
    }

    /// Cleans in place.
    pub fn clean_string(&self, text: &mut String) {
        if let Cow::Owned(s) = self.clean(text) {
            *text = s;
        }
    }

    /// Cleans lines of one text (a log excerpt): as [`Redactor::clean`], and every line of a
    /// private key block is removed, from its BEGIN line to its END line.
    pub fn clean_lines(&self, lines: &mut [String]) {
        let mut in_key = false;
        for line in lines.iter_mut() {
            if in_key {
                if patterns::ends_private_key(line) {
                    in_key = false;
                }
                *line = REDACTED.to_string();
                continue;
            }
            if patterns::opens_private_key(line) {
                in_key = true;
            }
            self.clean_string(line);
        }
    }
}

/// `text` without terminal control sequences and characters: ANSI escapes (CSI, OSC and the
/// rest), C0 and C1 controls except newline and tab, DEL, and the bidirectional overrides that
/// make text display in another order than it reads.
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_stripped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.peek() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    chars.next();
                    while let Some(&n) = chars.peek() {
                        chars.next();
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                }
                // OSC (titles, hyperlinks): up to BEL or ESC \.
                Some(']') => {
                    chars.next();
                    while let Some(n) = chars.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            }
            continue;
        }
        if c == '\r' {
            // A lone carriage return redraws the line on a terminal; keep the words apart.
            if chars.peek() != Some(&'\n') {
                out.push(' ');
            }
            continue;
        }
        if !is_stripped(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_stripped(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_go_and_text_stays() {
        assert_eq!(
            strip_controls("\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}ok\u{7}\u{8}"),
            "red ok"
        );
        assert_eq!(strip_controls("a\u{202e}b\u{9b}c\td\ne"), "abc\td\ne");
        assert_eq!(strip_controls("50%\r100%\r\n"), "50% 100%\n");
        assert!(matches!(strip_controls("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn configured_secrets_are_removed_wherever_they_appear() {
        let r = Redactor::new(["s3cr3t-value-123", "ab"]);
        assert_eq!(r.clean("x=1 s3cr3t-value-123!"), "x=1 [REDACTED]!");
        assert_eq!(r.clean("ab stays"), "ab stays");
    }

    #[test]
    fn a_private_key_block_goes_line_by_line() {
        let mut lines: Vec<String> = [
            "echo key",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "-----END OPENSSH PRIVATE KEY-----",
            "after",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Redactor::default().clean_lines(&mut lines);
        assert_eq!(lines[0], "echo key");
        assert!(lines[1..4].iter().all(|l| !l.contains("b3Bl")));
        assert_eq!(lines[4], "after");
    }
}
