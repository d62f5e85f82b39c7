//! History from elsewhere: the lines of an import (this collector's own JSON-lines records, or
//! bare Spartakus-shaped reports as a Spartakus BigQuery export has them), framed out of a
//! stream without holding it whole, and each read into a report admitted as if received then.

use std::io::Write;

use common::time::unix_now;
use common::{Admitted, ClusterIdRule, admit};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// How far ahead of the collector's clock an imported receive time may lie.
const MAX_FUTURE_SECONDS: i64 = 300;

/// One line of an import, as far as telling the two shapes apart needs.
#[derive(Deserialize)]
struct Line<'a> {
    /// A record's report id.
    id: Option<Uuid>,
    /// A record's receive time (RFC 3339).
    #[serde(rename = "receivedAt")]
    received_at: Option<String>,
    /// A record's report.
    #[serde(borrow)]
    report: Option<&'a RawValue>,
    /// A bare report's time (unix seconds, a string as Spartakus writes it, or a number).
    timestamp: Option<serde_json::Value>,
}

/// Reads one import line into an admitted report received when the line says; the error says
/// why a line cannot be imported. Receive times before `earliest` (unix seconds: the retention
/// period's start) are refused, since retention would delete the report at once.
pub fn read_line(line: &[u8], rule: ClusterIdRule, earliest: i64) -> Result<Admitted, String> {
    let parsed: Line<'_> = serde_json::from_slice(line)
        .map_err(|e| format!("not a JSON object of a record or a report: {e}"))?;
    let (body, received_at, id) = match parsed.report {
        Some(report) => {
            let received = parsed
                .received_at
                .ok_or("a record needs its receivedAt (RFC 3339)")?;
            let time: jiff::Timestamp = received
                .parse()
                .map_err(|e| format!("receivedAt {received:?} is not an RFC 3339 time: {e}"))?;
            (report.get().as_bytes(), time.as_second(), parsed.id)
        }
        None => {
            let seconds = match &parsed.timestamp {
                Some(serde_json::Value::String(text)) => text.parse::<i64>().ok(),
                Some(serde_json::Value::Number(number)) => number.as_i64(),
                _ => None,
            };
            let seconds = seconds.ok_or(
                "a bare report needs its timestamp (unix seconds), which is taken as its \
                 receive time",
            )?;
            (line, seconds, None)
        }
    };
    if received_at > unix_now() + MAX_FUTURE_SECONDS {
        return Err(format!(
            "received at {} is in the future",
            common::time::rfc3339(received_at)
        ));
    }
    if received_at < earliest {
        return Err(format!(
            "received at {}, before the retention period (from {}): it would be deleted at once",
            common::time::rfc3339(received_at),
            common::time::rfc3339(earliest)
        ));
    }
    let mut admitted = admit(body, rule, received_at).map_err(|error| {
        let problems: Vec<String> = error
            .problems()
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        if problems.is_empty() {
            error.to_string()
        } else {
            format!("{error}: {}", problems.join("; "))
        }
    })?;
    if let Some(id) = id {
        admitted.id = id;
    }
    Ok(admitted)
}

/// A line of the stream, or one too long to keep.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// A line without its newline (never empty).
    Line(Vec<u8>),
    /// A line longer than the limit, skipped.
    TooLong,
}

/// Splits a byte stream into lines as its chunks arrive, gunzipping it first when asked, and
/// never holding more than one line (of at most `max_line` bytes) and one chunk.
pub struct LineSplitter {
    gunzip: Option<flate2::write::MultiGzDecoder<Vec<u8>>>,
    partial: Vec<u8>,
    skipping: bool,
    max_line: usize,
}

impl LineSplitter {
    /// A splitter for a stream that is gzip-compressed or not.
    pub fn new(gzip: bool, max_line: usize) -> Self {
        LineSplitter {
            gunzip: gzip.then(|| flate2::write::MultiGzDecoder::new(Vec::new())),
            partial: Vec::new(),
            skipping: false,
            max_line,
        }
    }

    /// The lines `chunk` completes.
    pub fn push(&mut self, chunk: &[u8]) -> std::io::Result<Vec<Framed>> {
        match &mut self.gunzip {
            Some(gunzip) => {
                gunzip.write_all(chunk)?;
                // Out of the decoder's buffer now, so that a stream cut short keeps its lines.
                gunzip.flush()?;
                let decoded = std::mem::take(gunzip.get_mut());
                Ok(self.split(&decoded))
            }
            None => Ok(self.split(chunk)),
        }
    }

    /// The last line, when the stream does not end with a newline.
    pub fn finish(mut self) -> std::io::Result<Vec<Framed>> {
        let mut lines = match self.gunzip.take() {
            Some(gunzip) => {
                let rest = gunzip.finish()?;
                self.split(&rest)
            }
            None => Vec::new(),
        };
        if self.skipping {
            lines.push(Framed::TooLong);
        } else if !self.partial.iter().all(u8::is_ascii_whitespace) {
            lines.push(Framed::Line(std::mem::take(&mut self.partial)));
        }
        Ok(lines)
    }

    fn split(&mut self, mut bytes: &[u8]) -> Vec<Framed> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let end = bytes.iter().position(|b| *b == b'\n');
            let piece = &bytes[..end.unwrap_or(bytes.len())];
            if !self.skipping {
                if self.partial.len() + piece.len() > self.max_line {
                    self.skipping = true;
                    self.partial = Vec::new();
                } else {
                    self.partial.extend_from_slice(piece);
                }
            }
            let Some(end) = end else { break };
            if std::mem::take(&mut self.skipping) {
                lines.push(Framed::TooLong);
            } else if !self.partial.iter().all(u8::is_ascii_whitespace) {
                lines.push(Framed::Line(std::mem::take(&mut self.partial)));
            } else {
                self.partial.clear();
            }
            bytes = &bytes[end + 1..];
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(splitter: &mut LineSplitter, chunks: &[&[u8]]) -> Vec<Framed> {
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(splitter.push(chunk).unwrap());
        }
        out
    }

    #[test]
    fn lines_are_framed_across_chunks_and_long_ones_skipped() {
        let mut splitter = LineSplitter::new(false, 8);
        let out = lines(
            &mut splitter,
            &[b"{\"a\":", b"1}\n\n  \n{\"b\"", b":2}\n0123456789abc\n{}"],
        );
        assert_eq!(
            out,
            [
                Framed::Line(b"{\"a\":1}".to_vec()),
                Framed::Line(b"{\"b\":2}".to_vec()),
                Framed::TooLong,
            ]
        );
        assert_eq!(splitter.finish().unwrap(), [Framed::Line(b"{}".to_vec())]);
    }

    #[test]
    fn gzip_streams_are_gunzipped_as_they_arrive() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"x\":1}\n{\"y\":2}").unwrap();
        let compressed = gz.finish().unwrap();
        let mut splitter = LineSplitter::new(true, 64);
        let (first, rest) = compressed.split_at(compressed.len() / 2);
        let mut out = lines(&mut splitter, &[first, rest]);
        out.extend(splitter.finish().unwrap());
        assert_eq!(
            out,
            [
                Framed::Line(b"{\"x\":1}".to_vec()),
                Framed::Line(b"{\"y\":2}".to_vec())
            ]
        );
    }

    #[test]
    fn records_and_bare_reports_are_received_when_they_say() {
        let now = unix_now();
        let cluster = "5e8a31c2-7f4b-4c55-9a8e-2b1d3c4e5f60";
        let id = Uuid::from_u128(7);
        let record = format!(
            r#"{{"id":"{id}","receivedAt":"{}","report":{{"version":"v1.0.0","timestamp":"","clusterID":"{cluster}"}}}}"#,
            common::time::rfc3339(now - 86_400)
        );
        let admitted = read_line(record.as_bytes(), ClusterIdRule::Uuid, 0).unwrap();
        assert_eq!(admitted.received_at, now - 86_400);
        assert_eq!(admitted.id, id);

        let bare = format!(
            r#"{{"version":"v1.0.0","timestamp":"{}","clusterID":"{cluster}"}}"#,
            now - 3_600
        );
        let admitted = read_line(bare.as_bytes(), ClusterIdRule::Uuid, 0).unwrap();
        assert_eq!(admitted.received_at, now - 3_600);
        assert_eq!(
            read_line(bare.as_bytes(), ClusterIdRule::Uuid, 0)
                .unwrap()
                .id,
            admitted.id,
            "a bare report's id is the same on every import"
        );

        let errors = [
            (
                r#"{"version":"v1.0.0","clusterID":"x"}"#.to_string(),
                "needs its timestamp",
            ),
            (
                bare.replace(&(now - 3_600).to_string(), &(now + 86_400).to_string()),
                "future",
            ),
            (bare.clone(), "retention"),
            (r#"{"report":{}}"#.to_string(), "receivedAt"),
            ("[1]".to_string(), "not a JSON object"),
            (bare.replace(cluster, "not-a-uuid"), "clusterID"),
        ];
        for (index, (line, expected)) in errors.iter().enumerate() {
            let earliest = if index == 2 { now } else { 0 };
            let error = read_line(line.as_bytes(), ClusterIdRule::Uuid, earliest).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
