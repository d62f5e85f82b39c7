//! Versions (`version`, `masterVersion`, `kubeletVersion`, runtimes' versions): the numeric core,
//! and a suffix only when every word of it is public.

use std::borrow::Cow;

use super::vocabulary::OTHER;

/// Longest version string kept with its suffix; a longer one keeps only `major.minor[.patch]`.
pub const MAX_VERSION_LEN: usize = 64;

/// A version such as `v1.31.2-eks-1234`, or [`OTHER`].
///
/// The core is `[v]major.minor[.patch[.build]]`. A suffix (after `-`, `+` or `~`) is kept only when
/// every token in it is a number, a git hash, or a word from a list of known distribution and
/// pre-release markers; otherwise only the core is kept, so a private build tag such as
/// `v1.30.1+acme-internal` cannot carry a company's name.
pub fn version(raw: &str) -> Cow<'_, str> {
    match version_core_len(raw) {
        None => Cow::Borrowed(OTHER),
        Some(core) if core == raw.len() => Cow::Borrowed(raw),
        Some(core) => {
            let suffix = &raw[core..];
            let keep_suffix = raw.len() <= MAX_VERSION_LEN
                && suffix.starts_with(['-', '+', '~'])
                && suffix
                    .split(['-', '+', '~', '.', '_'])
                    .filter(|token| !token.is_empty())
                    .all(version_token_allowed);
            Cow::Borrowed(if keep_suffix { raw } else { &raw[..core] })
        }
    }
}

/// Length of the `[v]major.minor[.patch[.build]]` prefix of `s` (components of 1-6 digits), if
/// it has one.
pub(super) fn version_core_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'v'));
    let mut components = 0;
    let mut end = 0;
    while components < 4 {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if !(1..=6).contains(&(i - start)) {
            break;
        }
        components += 1;
        end = i;
        if bytes.get(i) != Some(&b'.') {
            break;
        }
        i += 1;
    }
    (components >= 2).then_some(end)
}

/// Words that may appear in a version suffix: pre-release markers and the build tags of public
/// distributions (EKS, GKE, AKS, k3s, RKE2, OpenShift, distro packages, ...).
const VERSION_WORDS: &[&str] = &[
    "alpha", "beta", "rc", "pre", "dev", "snapshot", "git", "dirty", "hotfix", "patch", "build",
    "release", "fips", "lts", "eks", "gke", "aks", "k3s", "rke2r", "rke2", "tke", "ack", "doks",
    "do", "lke", "ovh", "iks", "ocp", "okd", "vmware", "tkg", "mke", "k0s", "microk8s", "kind",
    "minikube", "talos", "ubuntu", "deb", "debian", "el", "amzn", "fc", "bp", "ce", "ee", "rke",
    "ds", "azure", "gcp", "aws", "nvidia", "moby", "docker",
];

fn version_token_allowed(token: &str) -> bool {
    let bytes = token.as_bytes();
    if token.len() > 40 {
        return false;
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let is_hex = |b: &[u8]| {
        b.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    if bytes.len() >= 6 && is_hex(bytes) {
        return true;
    }
    if bytes.len() >= 7 && bytes[0] == b'g' && is_hex(&bytes[1..]) {
        return true;
    }
    let word = token
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(|c: char| c.is_ascii_digit());
    VERSION_WORDS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::check;

    #[test]
    fn versions() {
        check(
            version,
            &[
                ("v1.31.2", "v1.31.2"),
                ("v1.31.2-eks-1234", "v1.31.2-eks-1234"),
                ("v1.27.7-eks-4f4795d", "v1.27.7-eks-4f4795d"),
                ("v1.27.3-gke.100", "v1.27.3-gke.100"),
                ("v1.27.7+k3s2", "v1.27.7+k3s2"),
                ("v1.27.7+rke2r1", "v1.27.7+rke2r1"),
                ("v1.27.6+f67aeb3", "v1.27.6+f67aeb3"),
                (
                    "v1.29.0-alpha.1.234+a1b2c3d4e5f6a7",
                    "v1.29.0-alpha.1.234+a1b2c3d4e5f6a7",
                ),
                ("v1.30.1+acme-internal", "v1.30.1"),
                ("v1.30.1-john.smith", "v1.30.1"),
                ("1.7.2-0ubuntu1~22.04.1", "1.7.2-0ubuntu1~22.04.1"),
                ("v1.0.0", "v1.0.0"),
                ("v1.3", "v1.3"),
                ("1.2.3.4.5", "1.2.3.4"),
                ("v1.31.2 built by jane@example.com", "v1.31.2"),
                (&format!("v1.2.3-{}", "1".repeat(70)), "v1.2.3"),
                ("v1", OTHER),
                ("1234567.1", OTHER),
                ("kubelet", OTHER),
                ("", OTHER),
                ("vv1.2", OTHER),
            ],
        );
    }
}
