//! Properties of the privacy contract (README, "The privacy contract"), for any report: what
//! admission keeps of every field is in its closed vocabulary, bounded form or hash format,
//! checked by predicates written here from the README's table (never by the sanitizer's own
//! lists); no planted identifier survives outside the fields the contract leaves to operators
//! and vendors; sanitizing is idempotent; admission never panics; and the canonical form of an
//! admitted report decodes to the same report.

use std::sync::LazyLock;

use common::report::{AgePercentiles, Extension, Node, ObjectStats, Objects, Resource, Skipped};
use common::{ClusterIdRule, Report, admit, sanitize};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use regex::Regex;

const RECEIVED_AT: i64 = 1_763_737_200;
/// Every planted identifier starts with this; it has letters past `f`, so no hex rule keeps it.
const CANARY: &str = "zqxw";

/// A planted identifier: what an operator or a machine might name (a host, a team, a build).
fn canary() -> impl Strategy<Value = String> {
    "[g-z]{4}[0-9]{0,3}".prop_map(|tail| format!("{CANARY}{tail}"))
}

/// A value for a string field: a plausible one, one with a planted identifier in it, any
/// printable ASCII, or any text.
fn text(plausible: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(plausible).prop_map(str::to_string),
        3 => (proptest::sample::select(plausible), canary(), "[-+~._/: ]?", "[ -~]{0,6}").prop_map(
            |(known, planted, glue, tail)| format!("{known}{glue}{planted}{tail}")
        ),
        2 => "[ -~]{0,40}",
        1 => "\\PC{0,16}",
    ]
}

const VERSIONS: &[&str] = &[
    "v1.31.2",
    "v1.31.2-eks-1234",
    "v1.30.1+k3s1",
    "1.29",
    "v1.28.3-gke.1286000",
    "v1.30.1+acme-internal",
    "v1.27.0-rc.1",
    "v1.26.5-3+abcdef0123",
];
const SYSTEMS: &[&str] = &["linux", "windows", "Linux", "haiku", "darwin"];
const ARCHITECTURES: &[&str] = &["amd64", "arm64", "x86_64", "s390x", "arm"];
const IMAGES: &[&str] = &[
    "Ubuntu 22.04.4 LTS",
    "Debian GNU/Linux 12 (bookworm)",
    "Amazon Linux 2",
    "Container-Optimized OS from Google",
    "Flatcar Container Linux by Kinvolk 3815.2.0 (Oklo)",
    "Bottlerocket OS 1.19.2 (aws-k8s-1.29)",
    "AcmeCorp Hardened Linux",
];
const KERNELS: &[&str] = &[
    "5.15.0-1051-azure",
    "6.1.0-18-amd64",
    "5.10.205-195.807.amzn2.x86_64",
    "6.5.0-acme-jsmith",
];
const RUNTIMES: &[&str] = &[
    "containerd://1.7.11",
    "containerd://1.7.11-1",
    "cri-o://1.29.1",
    "docker://24.0.7",
    "acme-runtime://1.0",
];
const PROVIDERS: &[&str] = &[
    "aws:///eu-west-1a/i-0123456789abcdef0",
    "gce://my-project/us-central1-a/node-1",
    "azure:///subscriptions/123/resourceGroups/rg",
    "kind://docker/kind/kind-control-plane",
    "aws",
    "acme",
];
const RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "pods",
    "ephemeral-storage",
    "hugepages-2Mi",
    "nvidia.com/gpu",
    "openshift.io/sriov-prod-db",
    "example.com/widget",
];
const QUANTITIES: &[&str] = &["4", "16Gi", "15437428Ki", "500m", "1.5Gi", "1e3", "4 cores"];
const NODE_IDS: &[&str] = &[
    "c8863d09ecc5be8d9791f72acd275fc2",
    "C8863D09ECC5BE8D9791F72ACD275FC2",
    "ip-10-0-3-7.ec2.internal",
];
const SECTIONS: &[&str] = &["nodes", "namespaces", "objects.pods", "objects.widgets"];
const REASONS: &[&str] = &["forbidden", "notFound", "cosmic rays", "timeout"];

fn node() -> impl Strategy<Value = Node> {
    let facts = (
        text(SYSTEMS),
        text(IMAGES),
        text(KERNELS),
        text(ARCHITECTURES),
        text(RUNTIMES),
        text(VERSIONS),
        text(PROVIDERS),
    );
    let capacity = proptest::collection::vec(
        (text(RESOURCES), text(QUANTITIES))
            .prop_map(|(resource, value)| Resource { resource, value }),
        0..5,
    );
    (text(NODE_IDS), facts, capacity).prop_map(
        |(id, (os, image, kernel, arch, runtime, kubelet, provider), capacity)| Node {
            id: if id.is_empty() { "x".into() } else { id },
            operating_system: Some(os),
            os_image: Some(image),
            kernel_version: Some(kernel),
            architecture: Some(arch),
            container_runtime_version: Some(runtime),
            kubelet_version: Some(kubelet),
            cloud_provider: Some(provider),
            capacity,
        },
    )
}

fn stats() -> impl Strategy<Value = ObjectStats> {
    (
        0..10_000i64,
        proptest::option::of(proptest::array::uniform4(0..100i64)),
    )
        .prop_map(|(total, ages)| ObjectStats {
            total,
            per_namespace: vec![0; common::report::OBJECTS_PER_NAMESPACE_BUCKETS],
            age_seconds: ages.map(|mut ages| {
                ages.sort_unstable();
                let [p50, p90, p99, max] = ages;
                AgePercentiles { p50, p90, p99, max }
            }),
        })
}

fn report() -> impl Strategy<Value = Report> {
    let extensions = proptest::collection::vec(
        (
            text(&["example.com/team", "Deployed By"]),
            text(&["platform"]),
        )
            .prop_map(|(name, value)| Extension { name, value }),
        0..4,
    );
    let skipped = proptest::collection::vec(
        (text(SECTIONS), text(REASONS)).prop_map(|(section, reason)| Skipped { section, reason }),
        0..3,
    );
    (
        text(VERSIONS),
        proptest::option::of(text(VERSIONS)),
        proptest::collection::vec(node(), 0..4),
        extensions,
        proptest::option::of(0..5000i64),
        proptest::option::of(stats()),
        skipped,
    )
        .prop_map(
            |(version, master_version, nodes, extensions, namespaces, pods, skipped)| Report {
                version: if version.is_empty() {
                    "v".into()
                } else {
                    version
                },
                timestamp: RECEIVED_AT.to_string(),
                cluster_id: "2f9c93d3-156c-47aa-8802-578ffca9b50e".into(),
                master_version,
                nodes,
                extensions,
                namespaces,
                objects: Objects {
                    pods,
                    ..Objects::default()
                },
                skipped,
            },
        )
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

/// `[v]major.minor[.patch[.build]]`, then a suffix of numbers, hex hashes and short words, at
/// most 64 characters with a suffix; or `other`.
fn is_version(value: &str) -> bool {
    static CORE: LazyLock<Regex> = LazyLock::new(|| regex(r"^v?[0-9]{1,6}(\.[0-9]{1,6}){1,3}"));
    let Some(core) = CORE.find(value) else {
        return value == "other";
    };
    let suffix = &value[core.end()..];
    suffix.is_empty()
        || (value.len() <= 64
            && suffix.starts_with(['-', '+', '~'])
            && suffix
                .split(['-', '+', '~', '.', '_'])
                .all(|token| token.len() <= 40 && !token.contains(CANARY)))
}

/// Go's operating systems (`go tool dist list`), or `other`.
const GOOS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
    "other",
];
/// Go's architectures, or `other`.
const GOARCH: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64",
    "ppc64le", "riscv64", "s390x", "sparc64", "wasm", "other",
];
/// The vendor domains the README names for extended resources.
const VENDOR_DOMAINS: &[&str] = &[
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
const STANDARD_RESOURCES: &[&str] = &["cpu", "memory", "pods", "ephemeral-storage", "storage"];
const KINDS: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "persistentvolumeclaims",
    "configmaps",
    "secrets",
    "ingresses",
];
const SKIP_REASONS: &[&str] = &[
    "forbidden",
    "unauthorized",
    "notFound",
    "expired",
    "timeout",
    "unavailable",
    "disabled",
    "error",
];

/// A vendor's extended resource: `[sub.]vendor-domain/name`.
fn is_vendor_resource(resource: &str) -> bool {
    resource.split_once('/').is_some_and(|(domain, _)| {
        VENDOR_DOMAINS
            .iter()
            .any(|vendor| domain == *vendor || domain.ends_with(&format!(".{vendor}")))
    })
}

/// Every field of a sanitized report is of its documented form; the planted identifiers survive
/// only where the contract leaves the words to others: extension pairs (the operator's) and the
/// names of vendors' extended resources.
fn assert_in_contract(report: &Report) -> Result<(), TestCaseError> {
    static NODE_ID: LazyLock<Regex> = LazyLock::new(|| regex("^[0-9a-f]{32}$"));
    static WORDS: LazyLock<Regex> = LazyLock::new(|| regex(r"^[a-z0-9][a-z0-9 .-]{0,39}$"));
    static KERNEL: LazyLock<Regex> =
        LazyLock::new(|| regex(r"^[0-9]{1,6}\.[0-9]{1,6}(\.[0-9]{1,6})?(-[a-z0-9]{1,12})?$"));
    static RUNTIME: LazyLock<Regex> = LazyLock::new(|| regex(r"^[a-z][a-z0-9-]{0,20}://(.+)$"));
    static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
        regex(
            r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$",
        )
    });
    static HUGEPAGES: LazyLock<Regex> =
        LazyLock::new(|| regex(r"^hugepages-[0-9]{1,6}(Ki|Mi|Gi|Ti)?$"));

    prop_assert!(is_version(&report.version), "version {:?}", report.version);
    if let Some(master) = &report.master_version {
        prop_assert!(is_version(master), "masterVersion {master:?}");
    }
    for node in &report.nodes {
        prop_assert!(NODE_ID.is_match(&node.id), "id {:?}", node.id);
        if let Some(os) = &node.operating_system {
            prop_assert!(GOOS.contains(&os.as_str()), "operatingSystem {os:?}");
        }
        if let Some(arch) = &node.architecture {
            prop_assert!(GOARCH.contains(&arch.as_str()), "architecture {arch:?}");
        }
        if let Some(image) = &node.os_image {
            prop_assert!(WORDS.is_match(image), "osImage {image:?}");
        }
        if let Some(kernel) = &node.kernel_version {
            prop_assert!(
                kernel == "other" || KERNEL.is_match(kernel),
                "kernel {kernel:?}"
            );
        }
        if let Some(runtime) = &node.container_runtime_version {
            let version = RUNTIME.captures(runtime).map(|c| c[1].to_string());
            prop_assert!(
                runtime == "other" || version.is_some_and(|v| is_version(&v)),
                "containerRuntimeVersion {runtime:?}"
            );
        }
        if let Some(kubelet) = &node.kubelet_version {
            prop_assert!(is_version(kubelet), "kubeletVersion {kubelet:?}");
        }
        if let Some(provider) = &node.cloud_provider {
            prop_assert!(
                !provider.is_empty()
                    && provider.len() <= 16
                    && provider
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "cloudProvider {provider:?}"
            );
        }
        for entry in &node.capacity {
            let resource = entry.resource.as_str();
            prop_assert!(
                STANDARD_RESOURCES.contains(&resource)
                    || resource.starts_with("attachable-volumes-")
                    || resource == "alpha.kubernetes.io/nvidia-gpu"
                    || HUGEPAGES.is_match(resource)
                    || is_vendor_resource(resource),
                "capacity resource {resource:?}"
            );
            prop_assert!(
                entry.value.len() <= 32 && QUANTITY.is_match(&entry.value),
                "capacity value {:?}",
                entry.value
            );
        }
    }
    for skipped in &report.skipped {
        let section = skipped.section.as_str();
        let known = ["masterVersion", "nodes", "nodeIdKey", "namespaces"].contains(&section)
            || section
                .strip_prefix("objects.")
                .is_some_and(|kind| KINDS.contains(&kind));
        prop_assert!(known, "skipped section {section:?}");
        prop_assert!(
            SKIP_REASONS.contains(&skipped.reason.as_str()),
            "skipped reason {:?}",
            skipped.reason
        );
    }

    let mut outside = report.clone();
    outside.extensions.clear();
    for node in &mut outside.nodes {
        node.capacity
            .retain(|entry| !is_vendor_resource(&entry.resource));
    }
    let json = serde_json::to_string(&outside).unwrap();
    prop_assert!(
        !json.contains(CANARY),
        "a planted identifier survived: {json}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn admitted_reports_keep_only_what_the_contract_allows(report in report()) {
        let body = serde_json::to_vec(&report).unwrap();
        // A report validation refuses is not stored: nothing of it to check.
        if let Ok(admitted) = admit(&body, ClusterIdRule::Uuid, RECEIVED_AT) {
            assert_in_contract(&admitted.report)?;

            let mut twice = admitted.report.clone();
            let changes = sanitize::report(&mut twice);
            prop_assert!(changes.is_empty(), "sanitizing again changed {changes:?}");
            prop_assert_eq!(&twice, &admitted.report);

            let stored = common::decode::decode(&admitted.canonical).unwrap().report;
            let mut without_time = admitted.report.clone();
            without_time.timestamp.clear();
            prop_assert_eq!(stored, without_time);
        }
    }

    #[test]
    fn admission_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for rule in [ClusterIdRule::Uuid, ClusterIdRule::Relaxed] {
            let _ = admit(&body, rule, RECEIVED_AT);
        }
    }

    #[test]
    fn admission_never_panics_on_reports_cut_or_mutated(
        report in report(),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let body = serde_json::to_vec(&report).unwrap();
        let _ = admit(&body[..cut.index(body.len() + 1)], ClusterIdRule::Uuid, RECEIVED_AT);
        let mut mutated = body.clone();
        let at = flip.0.index(mutated.len());
        mutated[at] ^= flip.1;
        let _ = admit(&mutated, ClusterIdRule::Relaxed, RECEIVED_AT);
    }
}

/// Guards the properties above against checking nothing: validation refuses only reports with
/// control characters or overlong strings, a minority of what is generated.
#[test]
fn most_generated_reports_are_admitted() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = report();
    let admitted = (0..200)
        .filter(|_| {
            let report = strategy.new_tree(&mut runner).unwrap().current();
            admit(
                &serde_json::to_vec(&report).unwrap(),
                ClusterIdRule::Uuid,
                RECEIVED_AT,
            )
            .is_ok()
        })
        .count();
    assert!(admitted >= 60, "{admitted} of 200 admitted");
}

/// The predicates bite: a report as a volunteer might read it, with planted identifiers in the
/// node's facts, is outside the contract until sanitized.
#[test]
fn the_predicates_refuse_raw_values() {
    let planted = format!("{CANARY}host7");
    for set in [
        |n: &mut Node, v: String| n.os_image = Some(format!("AcmeOS {v}")),
        |n: &mut Node, v: String| n.kernel_version = Some(format!("6.5.0-{v}")),
        |n: &mut Node, v: String| n.kubelet_version = Some(format!("v1.30.1+{v}")),
        |n: &mut Node, v: String| n.id = v,
        |n: &mut Node, v: String| n.cloud_provider = Some(format!("aws:///{v}")),
    ] {
        let mut node = Node {
            id: "c8863d09ecc5be8d9791f72acd275fc2".into(),
            ..Node::default()
        };
        set(&mut node, planted.clone());
        let raw = Report {
            version: "v1.1.0".into(),
            nodes: vec![node],
            ..Report::default()
        };
        assert!(assert_in_contract(&raw).is_err(), "{raw:?}");
        let mut sanitized = raw.clone();
        sanitize::report(&mut sanitized);
        assert_in_contract(&sanitized).unwrap();
    }
}
