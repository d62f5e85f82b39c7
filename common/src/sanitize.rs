//! The privacy contract: every field is reduced to a closed vocabulary, a version, a bounded
//! number or a hash before it is sent (volunteer) and again before it is stored (collector).
//!
//! Every function here is idempotent: sanitizing sanitized output changes nothing, so the
//! collector's second pass over a report from our volunteer is a no-op, while raw data from old
//! Spartakus volunteers is reduced.

use sha2::{Digest, Sha256};
use std::borrow::Cow;

use crate::extensions::{self, DropReason};
use crate::report::{ObjectKind, Report, SKIP_REASONS, SKIPPABLE_SECTIONS, Skipped};

/// What a field becomes when its value is not in the vocabulary.
pub const OTHER: &str = "other";
/// What `cloudProvider` becomes when the provider is not in the allow-list.
pub const UNKNOWN_PROVIDER: &str = "unknown";
/// Longest version string kept with its suffix; a longer one keeps only `major.minor[.patch]`.
pub const MAX_VERSION_LEN: usize = 64;

/// Fields the sanitizer may rewrite, for counting what it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `version`
    Version,
    /// `masterVersion`
    MasterVersion,
    /// `nodes[].id`
    NodeId,
    /// `nodes[].operatingSystem`
    OperatingSystem,
    /// `nodes[].osImage`
    OsImage,
    /// `nodes[].kernelVersion`
    KernelVersion,
    /// `nodes[].architecture`
    Architecture,
    /// `nodes[].containerRuntimeVersion`
    ContainerRuntimeVersion,
    /// `nodes[].kubeletVersion`
    KubeletVersion,
    /// `nodes[].cloudProvider`
    CloudProvider,
    /// `nodes[].capacity` (entries dropped)
    Capacity,
    /// `skipped` (entries dropped or reasons rewritten)
    Skipped,
}

impl Field {
    /// Every field, for metrics.
    pub const ALL: [Field; 12] = [
        Field::Version,
        Field::MasterVersion,
        Field::NodeId,
        Field::OperatingSystem,
        Field::OsImage,
        Field::KernelVersion,
        Field::Architecture,
        Field::ContainerRuntimeVersion,
        Field::KubeletVersion,
        Field::CloudProvider,
        Field::Capacity,
        Field::Skipped,
    ];

    /// The field's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Version => "version",
            Field::MasterVersion => "masterVersion",
            Field::NodeId => "id",
            Field::OperatingSystem => "operatingSystem",
            Field::OsImage => "osImage",
            Field::KernelVersion => "kernelVersion",
            Field::Architecture => "architecture",
            Field::ContainerRuntimeVersion => "containerRuntimeVersion",
            Field::KubeletVersion => "kubeletVersion",
            Field::CloudProvider => "cloudProvider",
            Field::Capacity => "capacity",
            Field::Skipped => "skipped",
        }
    }
}

/// What sanitizing one report changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    rewritten: [u32; Field::ALL.len()],
    /// Extensions left out, with their keys (never their values) and why.
    pub dropped_extensions: Vec<(String, DropReason)>,
}

impl Changes {
    fn count(&mut self, field: Field) {
        self.rewritten[field as usize] += 1;
    }

    /// How many values of `field` were rewritten or dropped.
    pub fn rewritten(&self, field: Field) -> u32 {
        self.rewritten[field as usize]
    }

    /// True when the report went through unchanged.
    pub fn is_empty(&self) -> bool {
        self.rewritten.iter().all(|n| *n == 0) && self.dropped_extensions.is_empty()
    }
}

/// Reduces every field of a (validated) report to the privacy contract, in place.
pub fn report(report: &mut Report) -> Changes {
    let mut changes = Changes::default();
    let c = &mut changes;
    replace(c, Field::Version, &mut report.version, version);
    if let Some(master) = &mut report.master_version {
        replace(c, Field::MasterVersion, master, version);
    }
    for node in &mut report.nodes {
        replace(c, Field::NodeId, &mut node.id, node_id);
        let optional: [(Field, &mut Option<String>, Rule); 7] = [
            (
                Field::OperatingSystem,
                &mut node.operating_system,
                operating_system,
            ),
            (Field::OsImage, &mut node.os_image, os_image),
            (
                Field::KernelVersion,
                &mut node.kernel_version,
                kernel_version,
            ),
            (Field::Architecture, &mut node.architecture, architecture),
            (
                Field::ContainerRuntimeVersion,
                &mut node.container_runtime_version,
                container_runtime,
            ),
            (Field::KubeletVersion, &mut node.kubelet_version, version),
            (
                Field::CloudProvider,
                &mut node.cloud_provider,
                cloud_provider,
            ),
        ];
        for (field, value, rule) in optional {
            if let Some(value) = value {
                replace(c, field, value, rule);
            }
        }
        // Keep allowed entries with a quantity value, the first of each resource name.
        let capacity = &node.capacity;
        let keep: Vec<bool> = (0..capacity.len())
            .map(|i| {
                let entry = &capacity[i];
                is_allowed_resource(&entry.resource)
                    && is_quantity(&entry.value)
                    && !capacity[..i].iter().any(|e| e.resource == entry.resource)
            })
            .collect();
        let mut verdicts = keep.iter();
        node.capacity
            .retain(|_| *verdicts.next().expect("one verdict per entry"));
        for _ in keep.iter().filter(|kept| !**kept) {
            c.count(Field::Capacity);
        }
    }
    c.dropped_extensions = extensions::retain_valid(&mut report.extensions);
    let before = report.skipped.clone();
    report.skipped = skipped(std::mem::take(&mut report.skipped));
    if report.skipped != before {
        c.count(Field::Skipped);
    }
    changes
}

/// A sanitizing rule for one string field; it borrows its input when it keeps it.
type Rule = for<'a> fn(&'a str) -> Cow<'a, str>;

fn replace(changes: &mut Changes, field: Field, value: &mut String, rule: Rule) {
    let clean = match rule(value) {
        Cow::Borrowed(kept) if kept == value.as_str() => return,
        clean => clean.into_owned(),
    };
    *value = clean;
    changes.count(field);
}

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
fn version_core_len(s: &str) -> Option<usize> {
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

/// `linux`, `windows`, ... or [`OTHER`].
pub fn operating_system(raw: &str) -> Cow<'_, str> {
    const KNOWN: &[&str] = &[
        "linux",
        "windows",
        "darwin",
        "freebsd",
        "netbsd",
        "openbsd",
        "dragonfly",
        "illumos",
        "solaris",
        "aix",
        "plan9",
    ];
    from_list(raw, KNOWN, OTHER)
}

/// A Go architecture name (`amd64`, `arm64`, ...) or [`OTHER`].
pub fn architecture(raw: &str) -> Cow<'_, str> {
    const KNOWN: &[&str] = &[
        "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le",
        "mips64", "mipsle", "mips", "loong64", "wasm",
    ];
    from_list(raw, KNOWN, OTHER)
}

/// Public cloud providers whose name may appear as the scheme of a node's `spec.providerID`:
/// Spartakus's list plus current ones.
pub const CLOUD_PROVIDERS: &[&str] = &[
    // Spartakus v1's list.
    "aws",
    "azure",
    "cloudstack",
    "gce",
    "mesos",
    "openstack",
    "ovirt",
    "photon",
    "rackspace",
    "vsphere",
    // Current public providers and local distributions.
    "alicloud",
    "digitalocean",
    "equinixmetal",
    "exoscale",
    "hcloud",
    "huaweicloud",
    "ibm",
    "ibmcloud",
    "k3s",
    "kind",
    "kubevirt",
    "linode",
    "oci",
    "packet",
    "scaleway",
    "tencentcloud",
    "upcloud",
    "vultr",
];

/// A provider from [`CLOUD_PROVIDERS`], or [`UNKNOWN_PROVIDER`].
pub fn cloud_provider(raw: &str) -> Cow<'_, str> {
    from_list(raw, CLOUD_PROVIDERS, UNKNOWN_PROVIDER)
}

/// The provider named by the scheme of a node's `spec.providerID` (`aws:///eu-west-1a/i-0abc`):
/// the scheme when it is in the allow-list, else [`UNKNOWN_PROVIDER`]. Instance ids and zones
/// never leave.
pub fn cloud_provider_from_provider_id(provider_id: &str) -> Cow<'_, str> {
    match provider_id.split_once("://") {
        Some((scheme, _)) => cloud_provider(scheme),
        None => Cow::Borrowed(UNKNOWN_PROVIDER),
    }
}

/// The vocabulary word `raw` names (case-insensitively), else `fallback`.
fn from_list<'a>(raw: &str, list: &[&'static str], fallback: &'static str) -> Cow<'a, str> {
    Cow::Borrowed(
        list.iter()
            .find(|known| known.eq_ignore_ascii_case(raw))
            .unwrap_or(&fallback),
    )
}

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

/// Vendor domains whose extended resources (`nvidia.com/gpu`, `gpu.intel.com/i915`) are kept.
pub const RESOURCE_VENDOR_DOMAINS: &[&str] = &[
    "nvidia.com",
    "amd.com",
    "intel.com",
    "xilinx.com",
    "habana.ai",
    "amazonaws.com",
    "aws.amazon.com",
    "google.com",
    "qualcomm.com",
    "arm.com",
    "devices.kubevirt.io",
    "squat.ai",
];

/// Standard resource names kept as they are.
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "pods",
    "ephemeral-storage",
    "storage",
    "alpha.kubernetes.io/nvidia-gpu",
    "attachable-volumes-aws-ebs",
    "attachable-volumes-azure-disk",
    "attachable-volumes-gce-pd",
    "attachable-volumes-cinder",
];

/// True for a standard resource name or an extended resource of an allow-listed vendor domain;
/// other capacity entries are dropped.
pub fn is_allowed_resource(raw: &str) -> bool {
    if STANDARD_RESOURCES.contains(&raw) || is_hugepages(raw) {
        return true;
    }
    let Some((domain, _)) = raw.split_once('/') else {
        return false;
    };
    let vendor = RESOURCE_VENDOR_DOMAINS.iter().any(|allowed| {
        domain == *allowed
            || domain
                .strip_suffix(allowed)
                .is_some_and(|sub| sub.ends_with('.'))
    });
    vendor && extensions::qualified_name_problem(raw).is_none()
}

/// `hugepages-<size>`, e.g. `hugepages-2Mi`.
fn is_hugepages(raw: &str) -> bool {
    let Some(size) = raw.strip_prefix("hugepages-") else {
        return false;
    };
    let digits = size.bytes().take_while(u8::is_ascii_digit).count();
    (1..=6).contains(&digits) && matches!(&size[digits..], "" | "Ki" | "Mi" | "Gi" | "Ti")
}

/// True for a non-negative Kubernetes quantity of at most 32 characters (`4`, `15437428Ki`,
/// `500m`, `1.5Gi`, `1e3`).
pub fn is_quantity(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > 32 {
        return false;
    }
    let whole = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = whole;
    let mut fraction = 0;
    if bytes.get(i) == Some(&b'.') {
        fraction = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        i += 1 + fraction;
    }
    if whole + fraction == 0 {
        return false;
    }
    let suffix = &raw[i..];
    match suffix.as_bytes() {
        [] => true,
        [b'e' | b'E', exponent @ ..] => {
            let digits = exponent
                .strip_prefix(b"+")
                .or(exponent.strip_prefix(b"-"))
                .unwrap_or(exponent);
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
        _ => matches!(
            suffix,
            "Ki" | "Mi"
                | "Gi"
                | "Ti"
                | "Pi"
                | "Ei"
                | "n"
                | "u"
                | "m"
                | "k"
                | "M"
                | "G"
                | "T"
                | "P"
                | "E"
        ),
    }
}

/// The node id when it is already a 32-hex-character hash (lowercased); anything else, such as a
/// raw node name sent by a third-party volunteer, is replaced by a hash of itself.
pub fn node_id(raw: &str) -> Cow<'_, str> {
    if raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Cow::Borrowed(raw);
    }
    if raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Cow::Owned(raw.to_ascii_lowercase());
    }
    let digest = Sha256::new()
        .chain_update(b"k8s-usage/collector/node-id\0")
        .chain_update(raw.as_bytes())
        .finalize();
    Cow::Owned(hex::encode(&digest[..16]))
}

/// Keeps entries naming a known section (first one wins); an unknown reason becomes `error`.
pub fn skipped(entries: Vec<Skipped>) -> Vec<Skipped> {
    let mut kept: Vec<Skipped> = Vec::with_capacity(entries.len());
    for mut entry in entries {
        let known_section = SKIPPABLE_SECTIONS.contains(&entry.section.as_str())
            || entry
                .section
                .strip_prefix("objects.")
                .is_some_and(|kind| ObjectKind::ALL.iter().any(|k| k.as_str() == kind));
        if !known_section || kept.iter().any(|k| k.section == entry.section) {
            continue;
        }
        if !SKIP_REASONS.contains(&entry.reason.as_str()) {
            entry.reason = "error".to_string();
        }
        kept.push(entry);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Extension, Node, Resource};

    fn check(rule: Rule, cases: &[(&str, &str)]) {
        for (raw, want) in cases {
            let got = rule(raw);
            assert_eq!(&got, want, "input {raw:?}");
            assert_eq!(rule(&got), got, "not idempotent on {raw:?}");
        }
    }

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

    #[test]
    fn operating_systems_and_architectures() {
        check(
            operating_system,
            &[("linux", "linux"), ("Windows", "windows"), ("haiku", OTHER)],
        );
        check(
            architecture,
            &[
                ("amd64", "amd64"),
                ("arm64", "arm64"),
                ("x86_64", OTHER),
                ("s390x", "s390x"),
            ],
        );
    }

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

    #[test]
    fn cloud_providers() {
        check(
            cloud_provider,
            &[
                ("aws", "aws"),
                ("gce", "gce"),
                ("unknown", "unknown"),
                ("acme", "unknown"),
            ],
        );
        let cases = [
            ("aws:///eu-west-1a/i-0123456789abcdef0", "aws"),
            ("gce://my-project/us-central1-a/node-1", "gce"),
            (
                "azure:///subscriptions/123/resourceGroups/rg/providers/x",
                "azure",
            ),
            ("hcloud://12345", "hcloud"),
            ("kind://docker/kind/kind-control-plane", "kind"),
            ("foo://bar", "unknown"),
            ("", "unknown"),
            ("aws", "unknown"),
        ];
        for (provider_id, want) in cases {
            assert_eq!(
                cloud_provider_from_provider_id(provider_id),
                want,
                "{provider_id}"
            );
        }
    }

    #[test]
    fn capacity_resources_and_quantities() {
        let resources = [
            ("cpu", true),
            ("memory", true),
            ("pods", true),
            ("ephemeral-storage", true),
            ("hugepages-2Mi", true),
            ("hugepages-1Gi", true),
            ("alpha.kubernetes.io/nvidia-gpu", true),
            ("nvidia.com/gpu", true),
            ("nvidia.com/mig-1g.10gb", true),
            ("gpu.intel.com/i915", true),
            ("amd.com/gpu", true),
            ("acme.com/gpu", false),
            ("notnvidia.com/gpu", false),
            ("openshift.io/sriov-prod-db", false),
            ("nvidia.com/", false),
            ("widgets", false),
        ];
        for (name, kept) in resources {
            assert_eq!(is_allowed_resource(name), kept, "{name}");
        }
        let quantities = [
            ("4", true),
            ("15437428Ki", true),
            ("500m", true),
            ("1.5Gi", true),
            ("1e3", true),
            ("-1", false),
            ("lots", false),
            ("4 cores", false),
            ("", false),
        ];
        for (value, kept) in quantities {
            assert_eq!(is_quantity(value), kept, "{value}");
        }
    }

    #[test]
    fn node_ids_are_hashes() {
        assert_eq!(
            node_id("c8863d09ecc5be8d9791f72acd275fc2"),
            "c8863d09ecc5be8d9791f72acd275fc2"
        );
        assert_eq!(
            node_id("C8863D09ECC5BE8D9791F72ACD275FC2"),
            "c8863d09ecc5be8d9791f72acd275fc2"
        );
        let hashed = node_id("ip-10-0-3-7.eu-west-1.compute.internal");
        assert_eq!(hashed.len(), 32);
        assert!(!hashed.contains("10-0-3-7"));
        assert_eq!(node_id(&hashed), hashed);
    }

    #[test]
    fn skipped_sections_are_a_closed_vocabulary() {
        let entry = |section: &str, reason: &str| Skipped {
            section: section.into(),
            reason: reason.into(),
        };
        let kept = skipped(vec![
            entry("nodes", "forbidden"),
            entry("objects.pods", "expired"),
            entry("objects.widgets", "forbidden"),
            entry("secret-db-names", "forbidden"),
            entry("namespaces", "cosmic rays"),
            entry("nodes", "notFound"),
        ]);
        assert_eq!(
            kept,
            vec![
                entry("nodes", "forbidden"),
                entry("objects.pods", "expired"),
                entry("namespaces", "error"),
            ]
        );
    }

    #[test]
    fn a_raw_spartakus_report_is_reduced_and_counted() {
        let mut report = Report {
            version: "v1.0.0".into(),
            cluster_id: "2f9c93d3-156c-47aa-8802-578ffca9b50e".into(),
            master_version: Some("v1.3.5".into()),
            nodes: vec![Node {
                id: "node-1.acme.internal".into(),
                operating_system: Some("linux".into()),
                os_image: Some("Debian GNU/Linux 7 (wheezy)".into()),
                kernel_version: Some("3.16.0-4-amd64".into()),
                architecture: Some("amd64".into()),
                container_runtime_version: Some("docker://1.11.2".into()),
                kubelet_version: Some("v1.3.2".into()),
                cloud_provider: Some("aws".into()),
                capacity: vec![
                    Resource {
                        resource: "cpu".into(),
                        value: "4".into(),
                    },
                    Resource {
                        resource: "acme.com/license-server".into(),
                        value: "1".into(),
                    },
                    Resource {
                        resource: "cpu".into(),
                        value: "8".into(),
                    },
                ],
            }],
            extensions: vec![Extension {
                name: "not a key".into(),
                value: "x".into(),
            }],
            ..Report::default()
        };
        let changes = super::report(&mut report);
        let node = &report.nodes[0];
        assert_eq!(node.os_image.as_deref(), Some("debian 7"));
        assert_eq!(node.kernel_version.as_deref(), Some("3.16.0"));
        assert_eq!(node.capacity.len(), 1);
        assert_eq!(node.id.len(), 32);
        assert_eq!(changes.rewritten(Field::OsImage), 1);
        assert_eq!(changes.rewritten(Field::KernelVersion), 1);
        assert_eq!(changes.rewritten(Field::NodeId), 1);
        assert_eq!(changes.rewritten(Field::Capacity), 2);
        assert_eq!(changes.rewritten(Field::KubeletVersion), 0);
        assert_eq!(changes.dropped_extensions.len(), 1);
        assert!(report.extensions.is_empty());

        let again = super::report(&mut report.clone());
        assert!(again.is_empty(), "second pass changed {again:?}");
    }
}
