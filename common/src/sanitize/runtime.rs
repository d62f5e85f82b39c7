//! Container runtimes: a known runtime's name and its version.

use std::borrow::Cow;

use super::version::version;
use super::vocabulary::OTHER;

/// Container runtimes a node may report (the scheme of `containerRuntimeVersion`).
const RUNTIMES: &[&str] = &[
    "containerd",
    "cri-o",
    "docker",
    "frakti",
    "podman",
    "rkt",
    "singularity",
    "virtlet",
];

/// `name://version` for a known runtime (`containerd://1.7.11`), `name` when the version is not
/// version-like, or [`OTHER`].
pub fn container_runtime(raw: &str) -> Cow<'_, str> {
    let (scheme, version_part) = raw.split_once("://").unwrap_or((raw, ""));
    let Some(name) = RUNTIMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(scheme))
    else {
        return Cow::Borrowed(OTHER);
    };
    match version(version_part) {
        v if v == OTHER => Cow::Borrowed(name),
        Cow::Borrowed(v) if *name == scheme && v.len() == version_part.len() => Cow::Borrowed(raw),
        v => Cow::Owned(format!("{name}://{v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::check;

    #[test]
    fn runtimes() {
        check(
            container_runtime,
            &[
                ("docker://1.11.2", "docker://1.11.2"),
                ("containerd://1.7.11-1", "containerd://1.7.11-1"),
                ("cri-o://1.28.1", "cri-o://1.28.1"),
                ("containerd://1.6.22-k3s1", "containerd://1.6.22-k3s1"),
                ("CONTAINERD://1.7.0", "containerd://1.7.0"),
                ("containerd://dev-build", "containerd"),
                ("acme-runtime://1.0.0", OTHER),
                ("runtime", OTHER),
                ("docker", "docker"),
            ],
        );
    }
}
