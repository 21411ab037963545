//! Storm control: per channel, at most `max_incidents - 1` individual posts in
//! any `window_secs`; beyond that, one summary post per window lists what happened (counts by
//! environment and type, the first few incident keys). Every incident is still stored, diagnosed
//! and escalated; only the posting is grouped. Follow-ups in the Slack thread of an incident
//! posted on its own are neither grouped nor counted (the outbox asks the store for the thread).

use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};

/// A stream of posts: one channel (`slack #x`, `sns arn`), whatever their kind.
pub type Lane = String;

/// Remembers recent posts per lane.
#[derive(Debug)]
pub struct StormGuard {
    max_individual: usize,
    window: Duration,
    sent: HashMap<Lane, VecDeque<DateTime<Utc>>>,
    summaries: HashMap<Lane, DateTime<Utc>>,
}

impl StormGuard {
    pub fn new(max_incidents: u64, window_secs: u64) -> Self {
        Self {
            max_individual: usize::try_from(max_incidents.saturating_sub(1).max(1))
                .unwrap_or(usize::MAX),
            window: Duration::seconds(i64::try_from(window_secs).unwrap_or(60)),
            sent: HashMap::new(),
            summaries: HashMap::new(),
        }
    }

    /// Whether one more individual post fits in the lane's window.
    pub fn allows(&mut self, lane: &Lane, now: DateTime<Utc>) -> bool {
        let window = self.window;
        let recent = self.sent.entry(lane.clone()).or_default();
        while recent.front().is_some_and(|t| now - *t >= window) {
            recent.pop_front();
        }
        recent.len() < self.max_individual
    }

    pub fn record(&mut self, lane: &Lane, now: DateTime<Utc>) {
        self.sent.entry(lane.clone()).or_default().push_back(now);
    }

    /// When the lane may send its next summary (now, or the end of the current window).
    pub fn next_summary_at(&self, lane: &Lane, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.summaries.get(lane) {
            Some(last) if now - *last < self.window => *last + self.window,
            _ => now,
        }
    }

    pub fn record_summary(&mut self, lane: &Lane, now: DateTime<Utc>) {
        self.summaries.insert(lane.clone(), now);
        self.record(lane, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn at_most_max_posts_per_window_per_lane() {
        let t =
            |s: i64| Utc.with_ymd_and_hms(2026, 1, 27, 10, 0, 0).unwrap() + Duration::seconds(s);
        let mut guard = StormGuard::new(5, 60);
        let lane: Lane = "slack #x".into();
        let other: Lane = "sns arn".into();
        for i in 0..4 {
            assert!(guard.allows(&lane, t(i)));
            guard.record(&lane, t(i));
        }
        assert!(
            !guard.allows(&lane, t(5)),
            "the 5th post of the window is the summary"
        );
        assert!(guard.allows(&other, t(5)), "lanes are separate");
        assert_eq!(guard.next_summary_at(&lane, t(5)), t(5));
        guard.record_summary(&lane, t(5));
        assert_eq!(
            guard.next_summary_at(&lane, t(30)),
            t(65),
            "one summary per window"
        );
        assert!(guard.allows(&lane, t(70)), "the window moved on");
    }
}
