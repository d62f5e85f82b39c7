//! Node images and kernels: a distribution and its version, a kernel version and its public
//! flavour; a private build's name never survives.

use std::borrow::Cow;

use super::version::version_core_len;
use super::vocabulary::OTHER;

/// Distributions an `osImage` may be reduced to: the vocabulary id, then the lowercase phrases
/// that identify it in a raw `osImage`. Order matters: more specific phrases come first.
const DISTRIBUTIONS: &[(&str, &[&str])] = &[
    ("rhcos", &["red hat enterprise linux coreos", "rhcos"]),
    ("rhel", &["red hat enterprise linux", "rhel"]),
    ("centos-stream", &["centos stream"]),
    ("centos", &["centos"]),
    ("fedora-coreos", &["fedora coreos"]),
    ("fedora", &["fedora"]),
    ("ubuntu", &["ubuntu"]),
    ("debian", &["debian"]),
    ("rocky", &["rocky linux"]),
    ("almalinux", &["almalinux"]),
    ("oraclelinux", &["oracle linux"]),
    ("amazonlinux", &["amazon linux"]),
    ("bottlerocket", &["bottlerocket"]),
    ("cos", &["container-optimized os"]),
    ("flatcar", &["flatcar"]),
    ("coreos", &["container linux by coreos", "coreos"]),
    ("talos", &["talos"]),
    ("photon", &["photon os", "vmware photon"]),
    ("sle-micro", &["sle micro", "suse linux enterprise micro"]),
    ("sles", &["suse linux enterprise", "sles"]),
    ("opensuse-leap", &["opensuse leap"]),
    ("opensuse", &["opensuse"]),
    ("alpine", &["alpine"]),
    ("azurelinux", &["azure linux"]),
    ("mariner", &["cbl-mariner", "mariner"]),
    ("windows", &["windows"]),
    (
        "docker-desktop",
        &["docker desktop", "docker for mac", "docker for windows"],
    ),
    ("buildroot", &["buildroot"]),
    ("nixos", &["nixos"]),
    ("arch", &["arch linux"]),
    ("gentoo", &["gentoo"]),
    ("k3os", &["k3os"]),
    ("gardenlinux", &["garden linux"]),
    ("linuxkit", &["linuxkit"]),
    ("boot2docker", &["boot2docker"]),
    ("clearlinux", &["clear linux"]),
    ("rancheros", &["rancheros"]),
    ("openeuler", &["openeuler"]),
    ("kylin", &["kylin"]),
    ("anolis", &["anolis"]),
    ("alinux", &["alibaba cloud linux"]),
    ("tencentos", &["tencentos"]),
    ("euleros", &["euleros"]),
];

/// Distribution and version, e.g. `ubuntu 22.04`, `debian 12`, `cos`, or [`OTHER`].
pub fn os_image(raw: &str) -> Cow<'_, str> {
    // Already in the vocabulary: `<id>` or `<id> <version>`.
    let (head, tail) = raw.split_once(' ').unwrap_or((raw, ""));
    if DISTRIBUTIONS.iter().any(|(id, _)| *id == head)
        && (tail.is_empty() || distribution_version(tail) == Some(tail))
    {
        return Cow::Borrowed(raw);
    }
    let lower = raw.to_ascii_lowercase();
    for (id, phrases) in DISTRIBUTIONS {
        if let Some(at) = phrases
            .iter()
            .find_map(|phrase| lower.find(phrase).map(|start| start + phrase.len()))
        {
            return match distribution_version(&raw[at..]) {
                Some(version) => Cow::Owned(format!("{id} {version}")),
                None => Cow::Borrowed(id),
            };
        }
    }
    Cow::Borrowed(OTHER)
}

/// The first `major[.minor]` (at most 8 digits a component, optionally after a `v`) standing
/// alone in `s`: not glued to letters, dots or further digits.
fn distribution_version(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = 0;
    while i < bytes.len() {
        let glued = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.');
        let start = if bytes[i] == b'v' && !glued { i + 1 } else { i };
        let major = if start < bytes.len() && (start > i || !glued) {
            digits(start)
        } else {
            0
        };
        if (1..=8).contains(&major) {
            let mut end = start + major;
            if bytes.get(end) == Some(&b'.') {
                let minor = digits(end + 1);
                if (1..=8).contains(&minor) {
                    end += 1 + minor;
                }
            }
            if !bytes.get(end).is_some_and(u8::is_ascii_digit) {
                return Some(&s[start..end]);
            }
        }
        // Skip this word or number, or this one separator.
        let in_word = |b: u8| b.is_ascii_alphanumeric() || b == b'.';
        if in_word(bytes[i]) {
            while i < bytes.len() && in_word(bytes[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Kernel flavours worth keeping: the token as found in a kernel release string, and its name.
const KERNEL_FLAVOURS: &[(&str, &str)] = &[
    ("azure", "azure"),
    ("aws", "aws"),
    ("gcp", "gcp"),
    ("gke", "gke"),
    ("oracle", "oracle"),
    ("uek", "oracle"),
    ("ibm", "ibm"),
    ("kvm", "kvm"),
    ("linuxkit", "linuxkit"),
    ("wsl2", "wsl2"),
    ("amzn2023", "amzn2023"),
    ("amzn2", "amzn2"),
    ("el7", "el7"),
    ("el8", "el8"),
    ("el9", "el9"),
    ("el10", "el10"),
    ("generic", "generic"),
    ("lowlatency", "lowlatency"),
    ("cloud", "cloud"),
    ("rt", "rt"),
    ("talos", "talos"),
    ("flatcar", "flatcar"),
    ("raspi", "raspi"),
    ("tegra", "tegra"),
];

/// `major.minor[.patch]` plus a known flavour, e.g. `5.15.0-azure`, or [`OTHER`].
pub fn kernel_version(raw: &str) -> Cow<'_, str> {
    let Some(core_len) = version_core_len(raw).filter(|_| !raw.starts_with('v')) else {
        return Cow::Borrowed(OTHER);
    };
    // Keep at most three components (Windows reports `10.0.17763.5122`: build 17763 matters).
    let core = match raw[..core_len].match_indices('.').nth(2) {
        Some((third_dot, _)) => &raw[..third_dot],
        None => &raw[..core_len],
    };
    let flavour = raw[core_len..]
        .split(['-', '.', '+', '_', '~', ' '])
        .find_map(|token| {
            KERNEL_FLAVOURS
                .iter()
                .find(|(found, _)| found.eq_ignore_ascii_case(token))
                .map(|(_, name)| *name)
        });
    match flavour {
        Some(flavour)
            if raw.len() == core.len() + 1 + flavour.len()
                && raw.ends_with(flavour)
                && raw.as_bytes()[core.len()] == b'-' =>
        {
            Cow::Borrowed(raw)
        }
        Some(flavour) => Cow::Owned(format!("{core}-{flavour}")),
        None => Cow::Borrowed(core),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::check;

    #[test]
    fn os_images() {
        check(
            os_image,
            &[
                ("Debian GNU/Linux 7 (wheezy)", "debian 7"),
                ("Debian GNU/Linux 12 (bookworm)", "debian 12"),
                ("Debian GNU/Linux trixie/sid", "debian"),
                ("Ubuntu 22.04.4 LTS", "ubuntu 22.04"),
                ("Container-Optimized OS from Google", "cos"),
                ("Amazon Linux 2", "amazonlinux 2"),
                ("Amazon Linux 2023.5.20240805", "amazonlinux 2023.5"),
                ("Bottlerocket OS 1.19.2 (aws-k8s-1.29)", "bottlerocket 1.19"),
                (
                    "Red Hat Enterprise Linux CoreOS 414.92.202310210434-0 (Plow)",
                    "rhcos 414.92",
                ),
                ("Red Hat Enterprise Linux 8.9 (Ootpa)", "rhel 8.9"),
                ("CentOS Linux 7 (Core)", "centos 7"),
                ("CentOS Stream 9", "centos-stream 9"),
                ("Fedora CoreOS 39.20231101.3.0", "fedora-coreos 39.20231101"),
                (
                    "Flatcar Container Linux by Kinvolk 3510.2.1 (Oklo)",
                    "flatcar 3510.2",
                ),
                ("Talos (v1.6.0)", "talos 1.6"),
                ("Windows Server 2022 Datacenter", "windows 2022"),
                ("Docker for Mac", "docker-desktop"),
                ("Docker Desktop", "docker-desktop"),
                ("Alpine Linux v3.18", "alpine 3.18"),
                ("SUSE Linux Enterprise Server 15 SP5", "sles 15"),
                ("openSUSE Leap 15.5", "opensuse-leap 15.5"),
                ("CBL-Mariner/Linux", "mariner"),
                ("Buildroot 2021.02.4", "buildroot 2021.02"),
                ("AcmeCorp Hardened Linux 3 by jane.doe", OTHER),
                ("", OTHER),
            ],
        );
    }

    #[test]
    fn kernels() {
        check(
            kernel_version,
            &[
                ("3.16.0-4-amd64", "3.16.0"),
                ("5.15.0-1051-azure", "5.15.0-azure"),
                ("5.10.198-187.748.amzn2.x86_64", "5.10.198-amzn2"),
                ("4.18.0-513.5.1.el8_9.x86_64", "4.18.0-el8"),
                ("6.1.58+", "6.1.58"),
                ("4.9.75-linuxkit-aufs", "4.9.75-linuxkit"),
                ("5.15.133.1-microsoft-standard-WSL2", "5.15.133-wsl2"),
                ("10.0.17763.5122", "10.0.17763"),
                ("6.5.0-acme-jsmith", "6.5.0"),
                ("kernel", OTHER),
                ("v5.4", OTHER),
            ],
        );
    }
}
