//! Untrusted text in a post. Build logs, commit messages, event fields and API input are written
//! by whoever can push a commit or publish to a watched topic; in Slack they must stay text:
//! `&`, `<`, `>` escaped (no `<!channel>`, `<@U…>` or `<url|disguise>`), plain `@channel`,
//! `@here`, `@everyone` broken, and web URLs to hosts we do not link to defanged
//! (`hxxps://evil[.]example/…`; an `s3://` or `git://` address is not a link and stays). SNS bodies are plain text and keep the text as it is; secrets
//! are already gone, scrubbed at the store boundary every stored string passes.

use pipeline_responder_core::config::Config;
use regex::Regex;
use reqwest::Url;
use std::borrow::Cow;
use std::sync::OnceLock;

/// How untrusted text is written for one channel.
#[derive(Debug, Clone)]
pub enum Markup {
    /// Slack mrkdwn: escaped, mentions broken, foreign links defanged.
    Slack(Hosts),
    /// Plain text (SNS, e-mail): as it is.
    Plain,
}

impl Markup {
    /// Slack markup linking only to the hosts `config` allows.
    pub fn slack(config: &Config) -> Self {
        Self::Slack(Hosts::of(config))
    }

    /// `text` made safe for this channel.
    pub fn esc<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self {
            Self::Plain => Cow::Borrowed(text),
            Self::Slack(hosts) => slack_text(text, hosts),
        }
    }

    /// Whether a button may link to `url`.
    pub fn may_link(&self, url: &str) -> bool {
        match self {
            Self::Plain => false,
            Self::Slack(hosts) => hosts.allows(url),
        }
    }
}

/// The hosts a post may link to: the AWS console (global and the configured region's) and the
/// hosts of URLs the operator configured (runbook links of causes, health checks).
#[derive(Debug, Clone, Default)]
pub struct Hosts(Vec<String>);

impl Hosts {
    pub fn of(config: &Config) -> Self {
        let region = config.aws.region.to_ascii_lowercase();
        let mut hosts = vec![
            "console.aws.amazon.com".to_string(),
            format!("{region}.console.aws.amazon.com"),
        ];
        let configured = config
            .diagnosis
            .causes
            .iter()
            .filter_map(|c| c.runbook_url.as_deref())
            .chain(
                config
                    .environments
                    .iter()
                    .filter_map(|e| e.health_url.as_deref()),
            );
        for url in configured {
            if let Some(host) = https_host(url) {
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
        Self(hosts)
    }

    /// `url` is https and its host is one of ours (exactly; no user info, no other port).
    pub fn allows(&self, url: &str) -> bool {
        let Ok(parsed) = Url::parse(url) else {
            return false;
        };
        parsed.scheme() == "https"
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.port().is_none()
            && https_host(url).is_some_and(|h| self.0.contains(&h))
    }
}

fn https_host(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    (parsed.scheme() == "https")
        .then(|| parsed.host_str().map(str::to_ascii_lowercase))
        .flatten()
}

fn url_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Regex::new(
            r"(?i)\b(?:(?:https?|ftp|javascript|data|file|vbscript)://|www\.)[^\s<>|`'\x22]+",
        )
        .expect("the URL pattern is valid")
    })
}

fn mention_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Regex::new(r"(?i)[@＠﹫](channel|here|everyone)\b").expect("the mention pattern is valid")
    })
}

fn slack_text<'a>(text: &'a str, hosts: &Hosts) -> Cow<'a, str> {
    let risky = text.contains(['&', '<', '>', '@', '＠', '﹫'])
        || text.contains("://")
        || text.to_ascii_lowercase().contains("www.");
    if !risky {
        return Cow::Borrowed(text);
    }
    // Links first (on the raw text, so a URL is judged as written), then mentions, then the
    // three characters Slack reserves.
    let linked = url_pattern().replace_all(text, |c: &regex::Captures<'_>| {
        let url = &c[0];
        if hosts.allows(url) {
            url.to_string()
        } else {
            defang(url)
        }
    });
    let unmentioned = mention_pattern().replace_all(&linked, "@\u{200B}$1");
    let escaped = unmentioned
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Cow::Owned(escaped)
}

/// `https://evil.example/x` → `hxxps://evil[.]example/x`: still readable, no longer a link.
fn defang(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i], &url[i + 3..]),
        None => ("", url),
    };
    let (host, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = host.replace('.', "[.]").replace(':', "[:]");
    if scheme.is_empty() {
        return format!("{host}{path}");
    }
    let scheme = scheme
        .to_ascii_lowercase()
        .replacen("http", "hxxp", 1)
        .replacen("ftp", "fxp", 1);
    format!("{scheme}[:]//{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Hosts {
        Hosts(vec![
            "console.aws.amazon.com".into(),
            "eu-west-1.console.aws.amazon.com".into(),
            "wiki.example.com".into(),
        ])
    }

    fn slack(text: &str) -> String {
        Markup::Slack(hosts()).esc(text).into_owned()
    }

    #[test]
    fn slack_control_sequences_stay_text() {
        let out = slack(
            "<!channel> <@U0ADMIN> <https://evil.example/phish|Acknowledge here> & <!subteam^S1>",
        );
        assert!(!out.contains('<') && !out.contains('>'), "{out}");
        assert!(out.contains("&lt;!channel&gt;"), "{out}");
        assert!(out.contains("&amp; "), "{out}");
        assert!(out.contains("hxxps[:]//evil[.]example/phish"), "{out}");
    }

    #[test]
    fn plain_mentions_are_broken() {
        for text in ["@channel", "ping @HERE now", "@everyone!", "＠channel"] {
            let out = slack(text);
            assert!(
                !out.to_lowercase().contains("@channel")
                    && !out.to_lowercase().contains("@here")
                    && !out.to_lowercase().contains("@everyone")
                    && !out.contains("＠channel"),
                "{text} → {out}"
            );
        }
        assert_eq!(slack("user@example.com"), "user@example.com");
    }

    #[test]
    fn only_our_hosts_stay_links() {
        let ok = "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/x";
        assert_eq!(slack(ok), ok);
        assert_eq!(
            slack("see https://wiki.example.com/runbook"),
            "see https://wiki.example.com/runbook"
        );
        for bad in [
            "https://console.aws.amazon.com.evil.example/x",
            "https://user:pw@console.aws.amazon.com/x",
            "http://console.aws.amazon.com/x",
            "https://evil.example",
            "www.evil.example/x",
            "javascript://console.aws.amazon.com/%0aalert(1)",
        ] {
            let out = slack(bad);
            assert_ne!(out, bad, "{bad} stayed a link");
            assert!(!out.contains("://"), "{bad} → {out}");
        }
        assert!(!hosts().allows("https://evil.example/"));
        assert_eq!(slack("s3://bucket/key.zip"), "s3://bucket/key.zip");
        assert!(hosts().allows("https://console.aws.amazon.com/x"));
    }

    #[test]
    fn plain_text_is_left_alone() {
        let text = "<!channel> https://evil.example & @here";
        assert_eq!(Markup::Plain.esc(text), text);
    }
}
