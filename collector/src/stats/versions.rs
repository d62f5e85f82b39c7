//! Minor versions and the skew between a kubelet and its API server.

use std::borrow::Cow;

use common::sanitize::OTHER;

/// `major.minor` of a version such as `v1.31.2-eks-1`, if it has one.
fn minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.strip_prefix('v').unwrap_or(version).split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// `v1.31` of `v1.31.2-eks-1`: borrowed when the version is written so, or `other`.
pub fn minor_label(version: &str) -> Cow<'_, str> {
    let Some((major, minor)) = minor(version) else {
        return Cow::Borrowed(OTHER);
    };
    let label = format!("v{major}.{minor}");
    match version.get(..label.len()) {
        Some(prefix) if prefix == label => Cow::Borrowed(prefix),
        _ => Cow::Owned(label),
    }
}

/// How many minor versions a kubelet lags its server: `0` to `3+`, `newer`, or `other` across
/// major versions; `None` when either version is missing or has no minor.
pub fn skew(server: Option<&str>, kubelet: Option<&str>) -> Option<&'static str> {
    let (Some(server), Some(kubelet)) = (server.and_then(minor), kubelet.and_then(minor)) else {
        return None;
    };
    if server.0 != kubelet.0 {
        return Some(OTHER);
    }
    Some(match i64::from(server.1) - i64::from(kubelet.1) {
        lag if lag < 0 => "newer",
        0 => "0",
        1 => "1",
        2 => "2",
        _ => "3+",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minors_and_skew() {
        assert_eq!(minor_label("weird"), OTHER);
        assert!(matches!(minor_label("v1.31.2"), Cow::Borrowed("v1.31")));
        assert_eq!(minor_label("1.31.2"), "v1.31");
        assert_eq!(skew(Some("v2.0.0"), Some("v1.31.0")), Some(OTHER));
        assert_eq!(skew(Some("v1.30.0"), Some("v1.31.0")), Some("newer"));
        assert_eq!(skew(Some("v1.31.0"), Some("v1.27.9")), Some("3+"));
        assert_eq!(skew(None, Some("v1.27.9")), None);
    }
}
