//! The rules one field must follow: ids, strings, integers and object statistics.

use uuid::Uuid;

use super::problems::Problems;
use super::{ClusterIdRule, MAX_INTEGER, MAX_RELAXED_CLUSTER_ID, MAX_STRING_CHARS};
use crate::report::{OBJECTS_PER_NAMESPACE_BUCKETS, ObjectStats};

pub(super) fn cluster_id_problem(id: &str, rule: ClusterIdRule) -> Option<String> {
    if id.is_empty() {
        return Some("required".into());
    }
    match rule {
        ClusterIdRule::Uuid => match Uuid::try_parse(id) {
            Ok(uuid) if uuid.is_nil() => Some("must not be the nil UUID".into()),
            Ok(_) => None,
            Err(_) => Some(
                "must be a UUID (e.g. the output of uuidgen); this collector does not accept \
                 other ids"
                    .into(),
            ),
        },
        ClusterIdRule::Relaxed => {
            let ok = id.len() <= MAX_RELAXED_CLUSTER_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            (!ok)
                .then(|| format!("must be 1-{MAX_RELAXED_CLUSTER_ID} characters of [A-Za-z0-9._-]"))
        }
    }
}

pub(super) fn object_stats(p: &mut Problems, kind: &str, stats: &ObjectStats) {
    p.check(integer_problem(stats.total), || {
        format!("objects.{kind}.total")
    });
    if stats.per_namespace.len() != OBJECTS_PER_NAMESPACE_BUCKETS {
        p.push(
            format!("objects.{kind}.perNamespace"),
            format!(
                "must have exactly {OBJECTS_PER_NAMESPACE_BUCKETS} buckets, has {}",
                stats.per_namespace.len()
            ),
        );
    }
    for (i, count) in stats.per_namespace.iter().enumerate() {
        p.check(integer_problem(*count), || {
            format!("objects.{kind}.perNamespace[{i}]")
        });
    }
    if let Some(age) = &stats.age_seconds {
        let fields = [
            ("p50", age.p50),
            ("p90", age.p90),
            ("p99", age.p99),
            ("max", age.max),
        ];
        for (name, value) in fields {
            p.check(integer_problem(value), || {
                format!("objects.{kind}.ageSeconds.{name}")
            });
        }
        if !fields.windows(2).all(|pair| pair[0].1 <= pair[1].1) {
            p.push(
                format!("objects.{kind}.ageSeconds"),
                "percentiles must not decrease: p50 <= p90 <= p99 <= max",
            );
        }
    }
}

pub(super) fn integer_problem(value: i64) -> Option<String> {
    (!(0..=MAX_INTEGER).contains(&value))
        .then(|| format!("{value} is out of range; integers must be between 0 and {MAX_INTEGER}"))
}

pub(super) fn required(value: &str) -> Option<String> {
    if value.is_empty() {
        Some("required".into())
    } else {
        optional(value)
    }
}

pub(super) fn optional(value: &str) -> Option<String> {
    string_problem(value, MAX_STRING_CHARS)
}

/// Why `value` is not a printable string of at most `max_chars` characters, if it is not.
pub fn string_problem(value: &str, max_chars: usize) -> Option<String> {
    // Plain ASCII, the common case, is checked byte by byte.
    let (too_long, control) = if value.is_ascii() {
        (
            value.len() > max_chars,
            value.bytes().any(|b| b < 0x20 || b == 0x7f),
        )
    } else {
        (
            value.chars().count() > max_chars,
            value.chars().any(char::is_control),
        )
    };
    if too_long {
        Some(format!("longer than {max_chars} characters"))
    } else if control {
        Some("contains control characters".to_string())
    } else {
        None
    }
}
