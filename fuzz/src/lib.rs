//! What each fuzz target checks of one input: no panic, and the properties its function
//! promises, each checked against an oracle of its own (a second decode, the plain gzip reader,
//! the Kubernetes grammar as regular expressions), never against the function's own tables.
#![forbid(unsafe_code)]

use std::io::Read;
use std::sync::LazyLock;

use common::extensions::{DropReason, retain_valid};
use common::report::Extension;
use common::wire::{Encoding, decode_body};
use common::{ClusterIdRule, Error, Report, admit_body, sanitize, validate};
use regex::Regex;

/// The receive time every admission is checked at (2025-11-21T15:00:00Z).
const RECEIVED_AT: i64 = 1_763_737_200;
/// Longest extension value the README allows: 1 KiB.
const EXTENSION_VALUE_BYTES: usize = 1024;

/// The report decoder: a decoded report serializes to JSON that decodes to the same report,
/// with no unknown field left.
pub fn decoder(data: &[u8]) {
    let Ok(decoded) = common::decode::decode(data) else {
        return;
    };
    let json = serde_json::to_vec(&decoded.report).expect("a decoded report serializes");
    let again = common::decode::decode(&json).expect("a serialized report decodes");
    assert_eq!(
        again.report, decoded.report,
        "the round trip changed the report"
    );
    assert_eq!(
        again.unknown_fields, 0,
        "serializing wrote a field the format does not know"
    );
}

/// The whole admission path, bytes to a report to store. The first byte picks gzip (odd) or
/// not and the cluster-id rule; the rest is the body. An admitted report is valid, sanitizing it
/// again changes nothing, and its canonical form decodes to it and is admitted again to the same
/// content.
pub fn admission(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let encoding = if mode & 1 == 1 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let rule = if mode & 2 == 2 {
        ClusterIdRule::Relaxed
    } else {
        ClusterIdRule::Uuid
    };
    let Ok(admitted) = admit_body(body, encoding, 1 << 20, rule, RECEIVED_AT) else {
        return;
    };
    let report = &admitted.report;
    if let Err(problems) = validate::validate(report, rule) {
        panic!("an admitted report is invalid: {problems:?}");
    }
    let mut twice = report.clone();
    let changes = sanitize::report(&mut twice);
    assert!(changes.is_empty(), "sanitizing twice changed {changes:?}");
    assert_eq!(&twice, report, "sanitizing is not idempotent");

    let stored: Report = common::decode::decode(&admitted.canonical)
        .expect("the canonical form decodes")
        .report;
    let mut without_time = report.clone();
    without_time.timestamp.clear();
    assert_eq!(stored, without_time, "the canonical form is another report");
    // Sanitizing may lengthen a report (a node id becomes a 32-character hash): no size limit.
    let again = admit_body(
        &admitted.canonical,
        Encoding::Identity,
        usize::MAX,
        rule,
        RECEIVED_AT,
    )
    .expect("the canonical form of an admitted report is admitted");
    assert_eq!(
        again.content_sha256, admitted.content_sha256,
        "admitting the canonical form again changed the content"
    );
}

/// Gunzip with its cap. The first two bytes are the limit; the rest is the body. The capped
/// decoder answers what the plain gzip reader does: the same bytes when they fit in the limit,
/// "too large" when they do not, a gzip error when the stream breaks before the limit.
pub fn gunzip(data: &[u8]) {
    let [high, low, body @ ..] = data else {
        return;
    };
    let limit = usize::from(u16::from_be_bytes([*high, *low]));
    let mut plain = Vec::new();
    let oracle = flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut plain);
    match (decode_body(body, Encoding::Gzip, limit), oracle) {
        (Err(Error::TooLarge { .. }), Ok(_)) => {
            assert!(
                plain.len() > limit,
                "refused {} bytes, limit {limit}",
                plain.len()
            );
        }
        (Ok(inflated), Ok(_)) => {
            assert!(
                inflated.len() <= limit,
                "{} bytes past the limit {limit}",
                inflated.len()
            );
            assert_eq!(&*inflated, &plain[..], "inflated to other bytes");
        }
        (Err(Error::Gzip(_)), Err(_)) => {}
        (answer, oracle) => panic!(
            "capped decoder: {:?}; plain reader: {oracle:?} after {} bytes (limit {limit})",
            answer.map(|bytes| bytes.len()),
            plain.len()
        ),
    }
}

/// A Kubernetes qualified name (apimachinery's `IsQualifiedName`): an optional DNS-1123
/// subdomain prefix of at most 253 characters and `/`, then a name of at most 63.
static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$").unwrap());
static SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$").unwrap()
});

fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && SUBDOMAIN.is_match(p));
    prefix_ok && name.len() <= 63 && NAME.is_match(name)
}

/// The extensions filter. The input is `key=value` lines. What is kept is the input's valid
/// pairs in order, each key once, and everything else is dropped with its reason.
pub fn extensions(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let input: Vec<Extension> = text
        .split('\n')
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            Extension {
                name: name.to_string(),
                value: value.to_string(),
            }
        })
        .collect();
    let mut kept = input.clone();
    let dropped = retain_valid(&mut kept);
    assert_eq!(kept.len() + dropped.len(), input.len());

    let mut seen = std::collections::HashSet::new();
    let (mut kept_iter, mut dropped_iter) = (kept.iter(), dropped.iter());
    for extension in &input {
        let printable = !extension.value.chars().any(char::is_control);
        let valid = is_qualified_name(&extension.name)
            && extension.value.len() <= EXTENSION_VALUE_BYTES
            && printable;
        if valid && seen.insert(extension.name.clone()) {
            assert_eq!(
                kept_iter.next(),
                Some(extension),
                "a valid pair was not kept"
            );
        } else {
            let (name, reason) = dropped_iter.next().expect("an invalid pair was kept");
            assert_eq!(name, &extension.name);
            if valid {
                assert_eq!(*reason, DropReason::Duplicate, "{name:?}");
            } else {
                assert_ne!(*reason, DropReason::Duplicate, "{name:?}");
            }
        }
    }
}
