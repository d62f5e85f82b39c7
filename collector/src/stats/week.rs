//! ISO weeks in UTC: the unit every published statistic is counted in.

use std::fmt;

/// Seconds in a day.
const DAY: i64 = 86_400;
/// Seconds in a week.
pub const WEEK_SECONDS: i64 = 7 * DAY;

/// One ISO week (Monday 00:00 UTC to the next Monday), by the unix second it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week(i64);

impl Week {
    /// The week that contains `unix_seconds`.
    pub fn of(unix_seconds: i64) -> Week {
        let day = unix_seconds.div_euclid(DAY);
        // 1970-01-01 was a Thursday: three days after a Monday.
        let monday = day - (day + 3).rem_euclid(7);
        Week(monday * DAY)
    }

    /// The week starting at `start` (a Monday 00:00 UTC, as stored); `None` for another second.
    pub fn from_start(start: i64) -> Option<Week> {
        (Week::of(start).0 == start).then_some(Week(start))
    }

    /// Unix seconds of its first second.
    pub fn start(self) -> i64 {
        self.0
    }

    /// Unix seconds of the next week's first second.
    pub fn end(self) -> i64 {
        self.0 + WEEK_SECONDS
    }

    /// The week `n` weeks later (earlier for a negative `n`).
    pub fn plus(self, n: i64) -> Week {
        Week(self.0 + n * WEEK_SECONDS)
    }

    /// Its first day, `YYYY-MM-DD`.
    pub fn start_date(self) -> String {
        self.civil().to_string()
    }

    fn civil(self) -> jiff::civil::Date {
        jiff::Timestamp::from_second(self.0)
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
            .unwrap_or_default()
    }
}

/// The ISO 8601 week label, `2026-W49`.
impl fmt::Display for Week {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iso = self.civil().iso_week_date();
        write!(f, "{:04}-W{:02}", iso.year(), iso.week())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(date: &str) -> i64 {
        let date: jiff::civil::Date = date.parse().unwrap();
        date.to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second()
    }

    #[test]
    fn weeks_start_on_monday_in_utc_and_carry_iso_labels() {
        // 2026-12-01 is a Tuesday in ISO week 49.
        let week = Week::of(unix("2026-12-01") + 3_600);
        assert_eq!(week.start(), unix("2026-11-30"));
        assert_eq!(week.to_string(), "2026-W49");
        assert_eq!(week.start_date(), "2026-11-30");
        assert_eq!(Week::of(week.end() - 1), week);
        assert_eq!(Week::of(week.end()), week.plus(1));
        // ISO years: 2021-01-03 (a Sunday) belongs to 2020's week 53, 2024-12-30 to 2025-W01.
        assert_eq!(Week::of(unix("2021-01-03")).to_string(), "2020-W53");
        assert_eq!(Week::of(unix("2024-12-30")).to_string(), "2025-W01");
        assert_eq!(Week::of(-1).to_string(), "1970-W01");
        assert_eq!(Week::from_start(week.start()), Some(week));
        assert_eq!(Week::from_start(week.start() + 1), None);
    }
}
