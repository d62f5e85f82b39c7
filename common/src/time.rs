//! The time of a report: the volunteer's timestamp when plausible, else the collector's clock.

use strum::{EnumString, IntoStaticStr, VariantArray};

/// How far back a client timestamp may lie: 400 days.
pub const MAX_PAST_SECONDS: i64 = 400 * 86_400;
/// How far ahead a client timestamp may lie: 1 day.
pub const MAX_FUTURE_SECONDS: i64 = 86_400;

/// Where a report's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum TimeSource {
    /// The report's own `timestamp`.
    Client,
    /// The collector's `received_at`, because the timestamp was missing, empty or implausible.
    Received,
}

impl TimeSource {
    /// `client` or `received`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Unix seconds now, by the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339 in UTC (`2026-11-21T15:00:00Z`); times before 1970 as the epoch.
pub fn rfc3339(unix_seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A report's time in unix seconds, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportTime {
    /// Unix seconds.
    pub seconds: i64,
    /// Where it came from.
    pub source: TimeSource,
}

/// The report's time: `timestamp` when it is decimal unix seconds within
/// [`MAX_PAST_SECONDS`] before and [`MAX_FUTURE_SECONDS`] after `received_at`; else `received_at`.
///
/// Spartakus volunteers send an empty string (the Spartakus collector overwrote it), and its
/// README example carries a meaningless 15-digit number; neither is an error.
pub fn resolve(timestamp: &str, received_at: i64) -> ReportTime {
    let plausible = (1..=19).contains(&timestamp.len())
        && timestamp.bytes().all(|b| b.is_ascii_digit())
        && timestamp.parse::<i64>().is_ok_and(|t| {
            (received_at - MAX_PAST_SECONDS..=received_at + MAX_FUTURE_SECONDS).contains(&t)
        });
    if plausible {
        ReportTime {
            seconds: timestamp.parse().expect("checked above"),
            source: TimeSource::Client,
        }
    } else {
        ReportTime {
            seconds: received_at,
            source: TimeSource::Received,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_737_200;

    #[test]
    fn time_sources_keep_their_stored_names() {
        use crate::words::Words;
        assert_eq!(TimeSource::words(), ["client", "received"]);
        assert!(TimeSource::parse_back());
        assert!("Client".parse::<TimeSource>().is_err());
    }

    #[test]
    fn rfc3339_is_utc_seconds() {
        assert_eq!(rfc3339(NOW), "2025-11-21T15:00:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn plausible_timestamps_are_kept_others_become_received_at() {
        let day = 86_400;
        let cases = [
            (NOW.to_string(), Some(NOW)),
            ((NOW - 400 * day).to_string(), Some(NOW - 400 * day)),
            ((NOW - 400 * day - 1).to_string(), None),
            ((NOW + day).to_string(), Some(NOW + day)),
            ((NOW + day + 1).to_string(), None),
            (String::new(), None),
            ("867530909031976".to_string(), None),
            ("1763737200000".to_string(), None),
            ("-1763737200".to_string(), None),
            ("+1763737200".to_string(), None),
            (" 1763737200".to_string(), None),
            ("1763737200.5".to_string(), None),
            ("99999999999999999999999".to_string(), None),
            ("2026-11-21T15:00:00Z".to_string(), None),
        ];
        for (timestamp, want) in cases {
            let got = resolve(&timestamp, NOW);
            match want {
                Some(seconds) => assert_eq!(
                    got,
                    ReportTime {
                        seconds,
                        source: TimeSource::Client
                    },
                    "{timestamp}"
                ),
                None => assert_eq!(
                    got,
                    ReportTime {
                        seconds: NOW,
                        source: TimeSource::Received
                    },
                    "{timestamp}"
                ),
            }
        }
    }
}
