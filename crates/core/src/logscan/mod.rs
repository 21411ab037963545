//! Reading a build log the way the runbook's investigator does (Incident 1 steps 2–3, Incidents
//! 4 and 5 step 1): find the command that failed ([`frame`]), score every line of its output by
//! the formats of the tools people run ([`tools`]), prefer what is new since the last green
//! build ([`diff`]), and take the failure block — the most telling lines first, at most
//! `max_lines` — with the class that the failing tool's own output proves ([`classify`]), or the
//! first matching user-defined cause. Pure; secrets are scrubbed from every line that leaves.

mod classify;
pub mod diff;
pub mod figures;
pub mod frame;
pub mod lines;
pub mod tools;

pub use crate::redact::scrub;
pub use figures::AuditCounts;
pub use frame::Ci;
pub use lines::Log;

use crate::config::Cause;
use crate::finding::RootCauseClass;
use frame::Framing;
use serde::Serialize;
use std::collections::HashSet;
use tools::Kind;

/// Longest line kept in an excerpt.
const LINE_LIMIT: usize = 300;
/// Most lines in an excerpt, whatever the configuration says (the post shows fewer).
pub const MAX_EXCERPT_LINES: usize = 40;
/// Lines just before the failing command's exit that are always offered.
const TAIL_LINES: usize = 8;
/// Longest block taken after one telling line (a jest `●` block, a stack trace).
const BLOCK_LINES: usize = 12;

/// How to read a log.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// Extra terms whose lines are shown (the configured `pattern`s).
    pub patterns: &'a [String],
    /// Lines kept after each line that matches a configured pattern.
    pub context: usize,
    /// Most lines in the excerpt (capped at [`MAX_EXCERPT_LINES`]).
    pub max_lines: usize,
    pub coverage_threshold: f64,
    /// User-defined known causes, first match wins.
    pub causes: &'a [Cause],
}

impl<'a> Options<'a> {
    /// How the daemon reads a build log: the `build_log` search's patterns and line budget, the
    /// coverage threshold and the configured causes.
    pub fn from_config(
        config: &'a crate::config::Config,
        search: &'a crate::config::LogSearch,
    ) -> Self {
        Self {
            patterns: &search.patterns,
            context: search.context_lines as usize,
            max_lines: search.max_lines as usize,
            coverage_threshold: config.thresholds.coverage_percent,
            causes: &config.diagnosis.causes,
        }
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            patterns: &[],
            context: 0,
            max_lines: MAX_EXCERPT_LINES,
            coverage_threshold: 80.0,
            causes: &[],
        }
    }
}

/// One line of an excerpt, with its line number in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExcerptLine {
    pub line: usize,
    pub text: String,
}

/// A user-defined cause that matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnownCause {
    pub name: String,
    pub hint: Option<String>,
    pub runbook_url: Option<String>,
    /// Configured as known-flaky: a retry of the stage is offered.
    #[serde(default)]
    pub flaky: bool,
    /// The line it matched.
    pub line: usize,
}

/// Whether the log was compared with the last green build's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Comparison {
    /// No green log was given.
    NotCompared,
    /// The comparison was wanted but could not be made (no green build, a failed call).
    Skipped { reason: String },
    Compared {
        /// Lines of the failed log that the green log does not have.
        new_lines: usize,
        /// Lines of the failed log that the green log has too.
        shared_lines: usize,
    },
}

/// What a build log says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogFindings {
    pub class: RootCauseClass,
    /// One-line summary for the post: the class, the failing command, the first failing test
    /// or error.
    pub summary: String,
    /// The matched user-defined cause, when one matched (it decided the class).
    pub cause: Option<KnownCause>,
    /// The CI whose framing was recognised.
    pub ci: Option<Ci>,
    /// The command that failed and its exit status, when the CI names them.
    pub failing_command: Option<String>,
    pub exit_status: Option<i32>,
    /// The failure block: most telling lines first, scrubbed, at most `max_lines`.
    pub excerpt: Vec<ExcerptLine>,
    pub comparison: Comparison,
    /// Coverage figure from the log, in percent.
    pub coverage_percent: Option<f64>,
    /// cfn-guard rules reported as failing.
    pub guard_rules: Vec<String>,
    /// `npm audit` counts by severity.
    pub audit: Option<AuditCounts>,
    /// Failing tests named in the log (first ten).
    pub failing_tests: Vec<String>,
}

impl LogFindings {
    /// The security scan reported CRITICAL findings.
    pub fn critical(&self) -> bool {
        self.class == RootCauseClass::SecurityScan && self.audit.is_some_and(|a| a.critical > 0)
    }

    /// The excerpt's texts, most telling first.
    pub fn excerpt_texts(&self) -> Vec<String> {
        self.excerpt.iter().map(|l| l.text.clone()).collect()
    }
}

/// A pattern compiled once, on first use.
pub(crate) fn re(
    cell: &'static std::sync::OnceLock<regex::Regex>,
    pattern: &str,
) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("pattern is valid"))
}

pub(crate) fn clip(line: &str, limit: usize) -> String {
    let line = line.trim_end();
    if line.chars().count() <= limit {
        return line.to_string();
    }
    let mut out: String = line.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A line's score after the region and the comparison are taken into account.
struct Scored {
    base: Option<(u8, Kind)>,
    weight: f32,
}

/// Reads a failed build's log, optionally against the last green build's log of the same action.
pub fn analyse(log: &Log, green: Option<&Log>, options: &Options<'_>) -> LogFindings {
    let framing = frame::frame(log);
    let region = if framing.found || framing.timed_out {
        framing.start..framing.end.max(framing.start)
    } else {
        0..log.len()
    };
    let shared = green.map(|g| diff::shared(log, &diff::normal_forms(g)));
    let scored = score_lines(log, &framing, &region, shared.as_deref(), options);
    let verdict = classify::classify(log, &framing, &region, &scored_bases(&scored), options);
    let max_lines = options.max_lines.clamp(1, MAX_EXCERPT_LINES);
    let excerpt = select(log, &framing, &region, &scored, options, max_lines);
    let comparison = match &shared {
        None => Comparison::NotCompared,
        Some(flags) => {
            let lines = log
                .lines
                .iter()
                .zip(flags)
                .filter(|(l, _)| !l.text.trim().is_empty());
            let (shared_lines, new_lines) =
                lines.fold(
                    (0, 0),
                    |(s, n), (_, shared)| {
                        if *shared {
                            (s + 1, n)
                        } else {
                            (s, n + 1)
                        }
                    },
                );
            Comparison::Compared {
                new_lines,
                shared_lines,
            }
        }
    };
    LogFindings {
        class: verdict.class,
        summary: verdict.summary,
        cause: verdict.cause,
        ci: framing.ci,
        failing_command: framing.command.as_deref().map(|c| clip(&scrub(c), 200)),
        exit_status: framing.exit_status,
        excerpt,
        comparison,
        coverage_percent: verdict.coverage_percent,
        guard_rules: verdict.guard_rules,
        audit: verdict.audit,
        failing_tests: verdict.failing_tests,
    }
}

fn scored_bases(scored: &[Scored]) -> Vec<Option<(u8, Kind)>> {
    scored.iter().map(|s| s.base).collect()
}

fn score_lines(
    log: &Log,
    framing: &Framing,
    region: &std::ops::Range<usize>,
    shared: Option<&[bool]>,
    options: &Options<'_>,
) -> Vec<Scored> {
    let narrowed = region.len() < log.len();
    log.lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let text = line.text.as_str();
            if line.overwritten || Framing::is_framing(text) {
                return Scored {
                    base: None,
                    weight: 0.0,
                };
            }
            let mut base = tools::score(text);
            if options
                .patterns
                .iter()
                .any(|p| !p.is_empty() && text.contains(p.as_str()))
            {
                base = match base {
                    None => Some((4, Kind::Generic)),
                    Some((s, k)) if s >= 2 => Some((s.max(5), k)),
                    other => other,
                };
            }
            let mut weight = base.map_or(0.0, |(s, _)| f32::from(s));
            if narrowed && i < region.start {
                weight *= 0.35;
            } else if narrowed && i >= region.end {
                // After the failure: post-build diagnostics (stack events, reports) often say why.
                weight *= 0.6;
            }
            if let Some(shared) = shared {
                if shared.get(i).copied().unwrap_or(false) {
                    weight *= 0.3;
                } else if weight > 0.0 {
                    weight += 1.0;
                }
            }
            let _ = framing;
            Scored { base, weight }
        })
        .collect()
}

/// A line that may be shown: not blank, not CI framing, not drawn over, not boilerplate.
fn showable(log: &Log, scored: &[Scored], i: usize) -> bool {
    let line = &log.lines[i];
    !line.overwritten
        && !line.text.trim().is_empty()
        && !Framing::is_framing(&line.text)
        && scored[i].base.is_none_or(|(s, _)| s > 1)
}

/// The lines after a telling line that belong to it: indented continuation, stack frames,
/// other scored lines; one blank line is crossed when indented text follows.
fn block(log: &Log, scored: &[Scored], anchor: usize, context: usize) -> Vec<usize> {
    let mut out = vec![anchor];
    let mut j = anchor + 1;
    while j < log.len() && out.len() < BLOCK_LINES.max(context + 1) {
        let text = log.lines[j].text.as_str();
        if Framing::is_framing(text) || log.lines[j].overwritten {
            break;
        }
        if text.trim().is_empty() {
            let next_indented = log
                .lines
                .get(j + 1)
                .is_some_and(|n| n.text.starts_with([' ', '\t']) && !n.text.trim().is_empty());
            if !next_indented {
                break;
            }
            j += 1;
            continue;
        }
        let continues = out.len() <= context
            || text.starts_with([' ', '\t'])
            || scored[j].base.is_some_and(|(s, _)| s >= 2);
        if !continues {
            break;
        }
        if scored[j].base.is_none_or(|(s, _)| s > 1) {
            out.push(j);
        }
        j += 1;
    }
    out
}

fn select(
    log: &Log,
    framing: &Framing,
    region: &std::ops::Range<usize>,
    scored: &[Scored],
    options: &Options<'_>,
    max_lines: usize,
) -> Vec<ExcerptLine> {
    // Candidate blocks: (priority, first index, lines).
    let mut blocks: Vec<(f32, usize, Vec<usize>)> = Vec::new();
    for (i, s) in scored.iter().enumerate() {
        if s.weight >= 5.0 {
            let context = if options
                .patterns
                .iter()
                .any(|p| !p.is_empty() && log.lines[i].text.contains(p.as_str()))
            {
                options.context
            } else {
                0
            };
            blocks.push((s.weight, i, block(log, scored, i, context)));
        }
    }
    // The CI's own timeout line (framing, so never a block of its own otherwise).
    if let Some(at) = framing.timeout_line {
        let mut lines = vec![at];
        if log
            .lines
            .get(at + 1)
            .is_some_and(|l| l.text.contains("Phase context status code"))
        {
            lines.push(at + 1);
        }
        blocks.push((10.0, at, lines));
    }
    // The lines just before the failing command's exit (or the end of the log).
    let tail_end = if framing.found || framing.timed_out {
        region.end
    } else {
        log.len()
    };
    let mut tail: Vec<usize> = (region.start..tail_end)
        .rev()
        .filter(|&i| showable(log, scored, i))
        .take(TAIL_LINES)
        .collect();
    tail.reverse();
    // Blocks that touch become one segment, as telling as its best line.
    blocks.sort_by_key(|b| b.1);
    let mut segments: Vec<(f32, Vec<usize>)> = Vec::new();
    for (weight, _, lines) in blocks {
        match segments.last_mut() {
            Some((w, seg))
                if lines
                    .first()
                    .is_some_and(|&f| f <= seg.last().copied().unwrap_or(0) + 2) =>
            {
                *w = w.max(weight);
                seg.extend(lines);
                seg.sort_unstable();
                seg.dedup();
            }
            _ => segments.push((weight, lines)),
        }
    }
    // The tail stays a segment of its own: merged, its earlier lines would come first.
    if !tail.is_empty() {
        segments.push((6.5, tail.clone()));
    }
    segments.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.first().cmp(&b.1.first())));

    let mut chosen: Vec<usize> = Vec::new();
    let mut taken: HashSet<usize> = HashSet::new();
    let mut seen_texts: HashSet<String> = HashSet::new();
    'segments: for (_, lines) in &segments {
        for &i in lines {
            if chosen.len() >= max_lines {
                break 'segments;
            }
            if taken.contains(&i) {
                continue;
            }
            let normal = diff::normalise(&log.lines[i].text);
            if !seen_texts.insert(normal) {
                continue;
            }
            taken.insert(i);
            chosen.push(i);
        }
    }
    // Fill up with the lines before the tail, nearest first: never nothing, and the lines just
    // before the exit are where most failures explain themselves.
    if chosen.len() < max_lines {
        let start = tail.first().copied().unwrap_or(tail_end);
        let mut extra: Vec<usize> = (region.start.min(start)..start)
            .rev()
            .filter(|&i| showable(log, scored, i) && !taken.contains(&i))
            .take(max_lines - chosen.len())
            .collect();
        extra.reverse();
        chosen.extend(extra);
    }
    chosen
        .into_iter()
        .map(|i| ExcerptLine {
            line: log.lines[i].number,
            text: clip(&scrub(&log.lines[i].text), LINE_LIMIT),
        })
        .collect()
}
