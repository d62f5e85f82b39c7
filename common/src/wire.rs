//! The `/api/v1` wire contract between a sender (the volunteer, or the collector's `http` sink)
//! and a collector: where reports go, how bodies are compressed, which answers are worth another
//! try and how long to wait before it. Pure: no sockets, no async.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::ops::RangeInclusive;
use std::time::Duration;

use url::Url;

use crate::Error;

/// The ingest path, appended to a collector's base URL.
pub const INGEST_PATH: &str = "/api/v1";

/// Longest `Retry-After` honoured.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// First retry delay of [`backoff`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The share of the backoff window a retry waits: full jitter over the upper half, drawn by the
/// caller (this module has no randomness of its own).
pub const BACKOFF_JITTER: RangeInclusive<f64> = 0.5..=1.0;

/// What to do after one attempt to deliver: the shape of every retry decision (the volunteer's,
/// and each sink's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The peer stored it.
    Delivered,
    /// Worth another try: the peer or the network may recover.
    Retry,
    /// Refused, or not safe to send again: never retried.
    Dead,
}

/// `<collector>/api/v1`: appended to the collector URL's path (so a collector behind a path
/// prefix works), unless the URL already ends with it.
pub fn ingest_url(collector: &Url) -> Url {
    let mut url = collector.clone();
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with(INGEST_PATH) {
        url.set_path(&format!("{path}{INGEST_PATH}"));
    }
    url
}

/// A collector's answer: 2xx stored; 408, 429, 5xx and no answer at all (`None`) are worth
/// another try; every other status is final.
pub fn collector_verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        None | Some(408 | 429 | 500..=599) => Verdict::Retry,
        Some(_) => Verdict::Dead,
    }
}

/// The wait a `Retry-After` header asks for: whole seconds, capped at [`RETRY_AFTER_CAP`]; HTTP
/// dates are not honoured.
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    header?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds).min(RETRY_AFTER_CAP))
}

/// The delay before retry `attempt` (1-based): a window doubling from [`BACKOFF_BASE`] up to
/// `cap`, of which `jitter` (drawn from [`BACKOFF_JITTER`]) is waited.
pub fn backoff(attempt: u32, cap: Duration, jitter: f64) -> Duration {
    let window = BACKOFF_BASE
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(cap);
    window.mul_f64(jitter.clamp(*BACKOFF_JITTER.start(), *BACKOFF_JITTER.end()))
}

/// How a body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// gzip (`Content-Encoding: gzip`).
    Gzip,
}

impl Encoding {
    /// The encoding a `Content-Encoding` value names (case-insensitive; empty is identity), or
    /// `None` for one the wire does not use.
    pub fn from_header(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            _ => None,
        }
    }
}

/// No deflate stream inflates to more than 1,032 times its size (a 258-byte match in as little
/// as 2 bits), so a gzip body of `n` bytes holds at most `1032 × n` bytes.
pub const GZIP_MAX_RATIO: usize = 1032;

/// Compresses a body with gzip.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Decodes a body received with `encoding`, refusing one that is larger than `limit` bytes once
/// decoded (a gzip bomb is stopped at the limit, not inflated).
///
/// An inflated body is allocated once at the size its gzip trailer states, and grows (by
/// doubling) only when the trailer understated it, never past what the body can inflate to:
/// `limit`, or [`GZIP_MAX_RATIO`] times its size if less (one byte more, to see the end). That
/// is what [`crate::cost`] charges for it, whatever the trailer says.
pub fn decode_body(wire: &[u8], encoding: Encoding, limit: usize) -> Result<Cow<'_, [u8]>, Error> {
    match encoding {
        Encoding::Identity if wire.len() > limit => Err(Error::TooLarge { limit }),
        Encoding::Identity => Ok(Cow::Borrowed(wire)),
        Encoding::Gzip => inflate(wire, limit).map(Cow::Owned),
    }
}

fn inflate(wire: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let ceiling = limit.min(wire.len().saturating_mul(GZIP_MAX_RATIO));
    let stated = gzip_stated_size(wire).unwrap_or(wire.len().saturating_mul(4));
    // One byte of room past the end lets the last read see the end without growing.
    let mut json = Vec::with_capacity(stated.min(ceiling) + 1);
    let mut decoder = flate2::read::MultiGzDecoder::new(wire);
    loop {
        let room = json.capacity() - json.len();
        let read = (&mut decoder)
            .take(room as u64)
            .read_to_end(&mut json)
            .map_err(Error::Gzip)?;
        // Past the ceiling: over the limit (deflate cannot inflate further than the ratio).
        if json.len() > ceiling {
            return Err(Error::TooLarge { limit });
        }
        if read < room {
            return Ok(json);
        }
        let grown = json.capacity().saturating_mul(2).min(ceiling + 1);
        json.reserve_exact(grown - json.len());
    }
}

/// The inflated size a gzip body's trailer states (its last member's, modulo 2^32): a hint for
/// allocating, never trusted as a limit.
fn gzip_stated_size(wire: &[u8]) -> Option<usize> {
    const SMALLEST_GZIP: usize = 20;
    if wire.len() < SMALLEST_GZIP {
        return None;
    }
    let trailer: [u8; 4] = wire[wire.len() - 4..].try_into().ok()?;
    usize::try_from(u32::from_le_bytes(trailer)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_answers() {
        let table = [
            (None, Verdict::Retry),
            (Some(200), Verdict::Delivered),
            (Some(202), Verdict::Delivered),
            (Some(204), Verdict::Delivered),
            (Some(400), Verdict::Dead),
            (Some(401), Verdict::Dead),
            (Some(403), Verdict::Dead),
            (Some(404), Verdict::Dead),
            (Some(408), Verdict::Retry),
            (Some(409), Verdict::Dead),
            (Some(413), Verdict::Dead),
            (Some(415), Verdict::Dead),
            (Some(429), Verdict::Retry),
            (Some(500), Verdict::Retry),
            (Some(502), Verdict::Retry),
            (Some(503), Verdict::Retry),
            (Some(504), Verdict::Retry),
        ];
        for (status, expected) in table {
            assert_eq!(collector_verdict(status), expected, "{status:?}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let cap = Duration::from_secs(300);
        for attempt in 1..40 {
            let window =
                (BACKOFF_BASE.as_secs_f64() * 2f64.powi(attempt as i32 - 1)).min(cap.as_secs_f64());
            for jitter in [0.5, 0.75, 1.0] {
                let delay = backoff(attempt, cap, jitter).as_secs_f64();
                assert!(
                    (delay - window * jitter).abs() < 1e-6,
                    "{attempt} {jitter}: {delay}"
                );
            }
        }
        assert!(backoff(u32::MAX, cap, 1.0) <= cap);
        assert_eq!(
            backoff(20, Duration::from_secs(2), 1.0),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_capped_at_an_hour() {
        assert_eq!(retry_after(Some("30")), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("86400")), Some(RETRY_AFTER_CAP));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn ingest_urls() {
        let cases = [
            ("https://c.example.com", "https://c.example.com/api/v1"),
            ("https://c.example.com/", "https://c.example.com/api/v1"),
            (
                "https://c.example.com/telemetry/",
                "https://c.example.com/telemetry/api/v1",
            ),
            (
                "http://127.0.0.1:8080/api/v1",
                "http://127.0.0.1:8080/api/v1",
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(ingest_url(&given.parse().unwrap()).as_str(), expected);
        }
    }

    #[test]
    fn an_inflated_body_is_allocated_from_its_trailer_and_grows_within_the_limit() {
        let inflated = |wire: &[u8], limit| match decode_body(wire, Encoding::Gzip, limit) {
            Ok(Cow::Owned(json)) => json,
            other => panic!("{other:?}"),
        };
        let json = vec![b' '; 100_000];
        let honest = inflated(&gzip(&json), 1 << 20);
        assert_eq!(honest, json);
        assert_eq!(honest.capacity(), json.len() + 1);

        // Two members, of which the trailer states only the last's size: the body still inflates
        // whole, within twice its size. (A single member whose trailer lies fails its check.)
        let mut two = gzip(&json[..10]);
        two.extend(gzip(&json[10..]));
        let body = inflated(&two, 1 << 20);
        assert_eq!(body, json);
        assert!(body.capacity() <= 2 * json.len() + 2, "{}", body.capacity());
        let mut lying = gzip(&json);
        let end = lying.len();
        lying[end - 4..].fill(0);
        assert!(matches!(
            decode_body(&lying, Encoding::Gzip, 1 << 20),
            Err(Error::Gzip(_))
        ));
        assert_eq!(inflated(&gzip(&json), 150_000).len(), json.len());
        assert!(matches!(
            decode_body(&gzip(&json), Encoding::Gzip, 99_999),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn bodies_round_trip_and_bombs_stop_at_the_limit() {
        let json = br#"{"version":"v1.1.0"}"#;
        assert_eq!(
            *decode_body(&gzip(json), Encoding::Gzip, 1024).unwrap(),
            json[..]
        );
        assert_eq!(
            *decode_body(json, Encoding::Identity, 1024).unwrap(),
            json[..]
        );
        let bomb = gzip(&vec![b' '; 1 << 20]);
        assert!(bomb.len() < 4096);
        assert!(matches!(
            decode_body(&bomb, Encoding::Gzip, 1000),
            Err(Error::TooLarge { limit: 1000 })
        ));
        assert!(matches!(
            decode_body(json, Encoding::Identity, 4),
            Err(Error::TooLarge { limit: 4 })
        ));
        assert!(matches!(
            decode_body(b"not gzip", Encoding::Gzip, 1000),
            Err(Error::Gzip(_))
        ));
    }

    #[test]
    fn content_encodings() {
        for (value, expected) in [
            ("", Some(Encoding::Identity)),
            ("identity", Some(Encoding::Identity)),
            ("gzip", Some(Encoding::Gzip)),
            (" GZIP ", Some(Encoding::Gzip)),
            ("x-gzip", Some(Encoding::Gzip)),
            ("br", None),
            ("deflate", None),
        ] {
            assert_eq!(Encoding::from_header(value), expected, "{value}");
        }
    }
}
