//! Comparing a failed log with the last green build's log of the same action (the CiDiff idea):
//! volatile parts (timestamps, durations, ids, hashes, temp paths, ports, long counters) are
//! normalised away, and the failed log's lines whose normal form the green log also has are
//! "shared" — usually set-up noise that is not why the build failed.

use super::lines::Log;
use super::re;
use regex::Regex;
use std::collections::HashSet;
use std::sync::OnceLock;

/// A line with its volatile parts replaced by placeholders. Small numbers stay: `Failures: 1`
/// and `Failures: 0` must differ.
pub fn normalise(text: &str) -> String {
    static VOLATILE: OnceLock<Regex> = OnceLock::new();
    static SPACE: OnceLock<Regex> = OnceLock::new();
    let volatile = re(
        &VOLATILE,
        r"(?x)
          \d{4}[-/]\d\d[-/]\d\d(?:[T\x20]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?  # dates
        | \b\d{1,2}:\d\d(?::\d\d(?:[.,]\d+)?)?\b                                               # times
        | \b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b                      # uuids
        | \b[0-9a-f]{7,64}\b                                                                    # hashes
        | \b\d+(?:\.\d+)?\s?(?:ms|s|sec|secs|seconds|m|min|mins|minutes|h|µs|us|ns)\b           # durations
        | \b\d+(?:\.\d+)?\s?(?:[kKMGT]i?B|bytes|B/s|kB/s|MB/s)\b                                # sizes
        | (?:/tmp|/var/folders|/private/var|C:\\Users\\[^\\\s]+\\AppData\\Local\\Temp)[/\\][^\s:'\x22]*  # temp paths
        | /codebuild/output/src\d+                                                              # CodeBuild work dirs
        | :\d{4,5}\b                                                                            # ports
        | \b\d{4,}\b                                                                            # long counters, ids
        | \b\d+\.\d+\b                                                                          # fractional figures
        ",
    );
    let space = re(&SPACE, r"\s+");
    let out = volatile.replace_all(text.trim(), "_");
    space.replace_all(&out, " ").into_owned()
}

/// The normal forms of a log's lines.
pub fn normal_forms(log: &Log) -> HashSet<String> {
    log.lines
        .iter()
        .filter(|l| !l.overwritten && !l.text.trim().is_empty())
        .map(|l| normalise(&l.text))
        .collect()
}

/// For each line of `failed`, whether the green log has it too.
pub fn shared(failed: &Log, green: &HashSet<String>) -> Vec<bool> {
    failed
        .lines
        .iter()
        .map(|l| !l.text.trim().is_empty() && green.contains(&normalise(&l.text)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_parts_are_normalised_and_counts_are_kept() {
        assert_eq!(
            normalise("[Container] 2024/05/14 10:02:09.870152 Running command npm ci"),
            normalise("[Container] 2024/06/01 23:59:01.000001 Running command npm ci"),
        );
        assert_eq!(
            normalise(
                "added 1290 packages in 31.2s, build 6a1b2c3d4e on port :49153 in /tmp/npm-1234/x"
            ),
            normalise(
                "added 1291 packages in 12s, build 99aa00bbcc on port :50001 in /tmp/npm-9/y"
            ),
        );
        assert_ne!(
            normalise("Tests run: 5, Failures: 1, Errors: 0"),
            normalise("Tests run: 5, Failures: 0, Errors: 0"),
        );
    }
}
