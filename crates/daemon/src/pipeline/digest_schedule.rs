//! When the digest runs: pure functions of the `[digest]` schedule and a given `now` (UTC, so
//! there are no daylight-saving gaps), and the claim key that makes each period's digest go out
//! once across replicas and restarts (`Backend::claim_once`).

use chrono::{DateTime, Datelike, SecondsFormat, TimeDelta, Utc};
use pipeline_responder_core::config::{DigestConfig, DigestEvery};

/// The most recent scheduled time at or before `now`.
pub fn last_run(config: &DigestConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    let back = match config.every {
        DigestEvery::Day => 0,
        DigestEvery::Week(day) => {
            let (today, wanted) = (today.weekday(), day);
            (7 + today.num_days_from_monday() - wanted.num_days_from_monday()) % 7
        }
    };
    let candidate = (today - TimeDelta::days(i64::from(back)))
        .and_time(config.at)
        .and_utc();
    if candidate <= now {
        candidate
    } else {
        candidate - period(config)
    }
}

/// The first scheduled time strictly after `now`.
pub fn next_run(config: &DigestConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    last_run(config, now) + period(config)
}

/// The claim key of the period whose run is at `run`: e.g. "digest/2026-11-30T09:00:00Z".
pub fn period_key(run: DateTime<Utc>) -> String {
    format!("digest/{}", run.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn period(config: &DigestConfig) -> TimeDelta {
    match config.every {
        DigestEvery::Week(_) => TimeDelta::weeks(1),
        DigestEvery::Day => TimeDelta::days(1),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::{NaiveTime, TimeZone, Weekday};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn weekly(day: Weekday, h: u32, m: u32) -> DigestConfig {
        DigestConfig {
            every: DigestEvery::Week(day),
            at: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
            ..DigestConfig::default()
        }
    }

    fn daily(h: u32, m: u32, s: u32) -> DigestConfig {
        DigestConfig {
            every: DigestEvery::Day,
            at: NaiveTime::from_hms_opt(h, m, s).unwrap(),
            window_days: 1,
            ..DigestConfig::default()
        }
    }

    // 2026-11-30 is a Monday.
    const MONDAY: (i32, u32, u32) = (2026, 11, 30);

    #[test]
    fn weekly_from_a_wednesday_looks_back_to_monday_and_ahead_to_the_next() {
        let config = weekly(Weekday::Mon, 9, 0);
        assert_eq!(config, DigestConfig::default(), "the default schedule");
        let wednesday = utc(2026, 12, 2, 14, 30, 7);
        assert_eq!(last_run(&config, wednesday), utc(2026, 11, 30, 9, 0, 0));
        assert_eq!(next_run(&config, wednesday), utc(2026, 12, 7, 9, 0, 0));
    }

    #[test]
    fn weekly_just_before_the_time_is_still_the_previous_week() {
        let config = weekly(Weekday::Mon, 9, 0);
        let (y, m, d) = MONDAY;
        let now = utc(y, m, d, 8, 59, 59);
        assert_eq!(last_run(&config, now), utc(2026, 11, 23, 9, 0, 0));
        assert_eq!(next_run(&config, now), utc(2026, 11, 30, 9, 0, 0));
        // Sub-second too: 08:59:59.999 is before 09:00.
        let almost = now + TimeDelta::milliseconds(999);
        assert_eq!(next_run(&config, almost), utc(2026, 11, 30, 9, 0, 0));
    }

    #[test]
    fn weekly_at_exactly_the_time_is_this_run_and_the_next_is_a_week_later() {
        let config = weekly(Weekday::Mon, 9, 0);
        let (y, m, d) = MONDAY;
        let now = utc(y, m, d, 9, 0, 0);
        assert_eq!(last_run(&config, now), now);
        assert_eq!(next_run(&config, now), utc(2026, 12, 7, 9, 0, 0));
        let after = now + TimeDelta::nanoseconds(1);
        assert_eq!(last_run(&config, after), now);
    }

    #[test]
    fn weekly_on_every_day_of_the_week_and_on_a_later_weekday() {
        // A Sunday digest seen from each day of the week of Monday 2026-11-30.
        let config = weekly(Weekday::Sun, 18, 0);
        for offset in 0..7 {
            let now = utc(2026, 11, 30, 12, 0, 0) + TimeDelta::days(offset);
            let last = last_run(&config, now);
            let next = next_run(&config, now);
            assert_eq!(last.weekday(), Weekday::Sun, "{now}");
            assert!(last <= now && now < next, "{last} <= {now} < {next}");
            assert_eq!(next - last, TimeDelta::weeks(1));
            assert!(now - last < TimeDelta::weeks(1));
        }
        let monday = utc(2026, 11, 30, 12, 0, 0);
        assert_eq!(last_run(&config, monday), utc(2026, 11, 29, 18, 0, 0));
        assert_eq!(next_run(&config, monday), utc(2026, 12, 6, 18, 0, 0));
    }

    #[test]
    fn daily_with_seconds() {
        let config = daily(17, 45, 30);
        let before = utc(2026, 6, 10, 17, 45, 29);
        assert_eq!(last_run(&config, before), utc(2026, 6, 9, 17, 45, 30));
        assert_eq!(next_run(&config, before), utc(2026, 6, 10, 17, 45, 30));
        let exactly = utc(2026, 6, 10, 17, 45, 30);
        assert_eq!(last_run(&config, exactly), exactly);
        assert_eq!(next_run(&config, exactly), utc(2026, 6, 11, 17, 45, 30));
        let after = utc(2026, 6, 10, 23, 59, 59);
        assert_eq!(last_run(&config, after), exactly);
    }

    #[test]
    fn across_a_month_and_a_year_boundary() {
        // Daily at 09:00 on New Year's Day before nine: the last run was in the old year.
        let config = daily(9, 0, 0);
        let new_year = utc(2027, 1, 1, 0, 30, 0);
        assert_eq!(last_run(&config, new_year), utc(2026, 12, 31, 9, 0, 0));
        assert_eq!(next_run(&config, new_year), utc(2027, 1, 1, 9, 0, 0));
        // Daily across the end of a 30-day month.
        let end_of_november = utc(2026, 11, 30, 22, 0, 0);
        assert_eq!(
            next_run(&config, end_of_november),
            utc(2026, 12, 1, 9, 0, 0)
        );
        // Weekly on Monday, from Friday 2027-01-01: the last run was Monday 2026-12-28.
        let config = weekly(Weekday::Mon, 9, 0);
        assert_eq!(last_run(&config, new_year), utc(2026, 12, 28, 9, 0, 0));
        assert_eq!(next_run(&config, new_year), utc(2027, 1, 4, 9, 0, 0));
        // Weekly on Monday from Tuesday 2026-12-01: the last run was in November.
        let december = utc(2026, 12, 1, 8, 0, 0);
        assert_eq!(last_run(&config, december), utc(2026, 11, 30, 9, 0, 0));
        // And a February of a leap year: Monday 2028-02-28, then Monday 2028-03-06.
        let leap = utc(2028, 2, 29, 12, 0, 0);
        assert_eq!(last_run(&config, leap), utc(2028, 2, 28, 9, 0, 0));
        assert_eq!(next_run(&config, leap), utc(2028, 3, 6, 9, 0, 0));
    }

    #[test]
    fn the_period_key_names_the_run_in_utc_to_the_second() {
        assert_eq!(
            period_key(utc(2026, 11, 30, 9, 0, 0)),
            "digest/2026-11-30T09:00:00Z"
        );
        let config = daily(17, 45, 30);
        let run = last_run(
            &config,
            utc(2026, 6, 10, 20, 0, 0) + TimeDelta::milliseconds(123),
        );
        assert_eq!(period_key(run), "digest/2026-06-10T17:45:30Z");
        // Every moment of one period gives the same key; the next period another.
        let config = DigestConfig::default();
        let a = period_key(last_run(&config, utc(2026, 12, 1, 0, 0, 0)));
        let b = period_key(last_run(&config, utc(2026, 12, 7, 8, 59, 59)));
        let c = period_key(last_run(&config, utc(2026, 12, 7, 9, 0, 0)));
        assert_eq!(a, b);
        assert_ne!(b, c);
    }
}
