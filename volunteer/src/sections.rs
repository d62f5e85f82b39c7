//! What the volunteer reads: where each counted kind of object is listed, when the flags make
//! it read `kube-system`, and why a section that could not be read is skipped.

use common::report::{ObjectKind, SkipReason};
use kube::api::ApiResource;

use crate::config::Config;

/// Where one counted kind of object is listed.
#[derive(Debug, Clone, Copy)]
pub struct KindSource {
    /// The report's kind.
    pub kind: ObjectKind,
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind name.
    pub kind_name: &'static str,
    /// Resource (plural) name.
    pub plural: &'static str,
}

/// Every kind the volunteer counts (Secrets only with `--count-secrets`).
pub const KINDS: [KindSource; 11] = [
    source(ObjectKind::Pods, "", "v1", "Pod", "pods"),
    source(ObjectKind::Services, "", "v1", "Service", "services"),
    source(
        ObjectKind::Deployments,
        "apps",
        "v1",
        "Deployment",
        "deployments",
    ),
    source(
        ObjectKind::StatefulSets,
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
    ),
    source(
        ObjectKind::DaemonSets,
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
    ),
    source(ObjectKind::Jobs, "batch", "v1", "Job", "jobs"),
    source(ObjectKind::CronJobs, "batch", "v1", "CronJob", "cronjobs"),
    source(
        ObjectKind::PersistentVolumeClaims,
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
    ),
    source(ObjectKind::ConfigMaps, "", "v1", "ConfigMap", "configmaps"),
    source(ObjectKind::Secrets, "", "v1", "Secret", "secrets"),
    source(
        ObjectKind::Ingresses,
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
    ),
];

const fn source(
    kind: ObjectKind,
    group: &'static str,
    version: &'static str,
    kind_name: &'static str,
    plural: &'static str,
) -> KindSource {
    KindSource {
        kind,
        group,
        version,
        kind_name,
        plural,
    }
}

impl KindSource {
    /// The API resource to list.
    pub fn api_resource(&self) -> ApiResource {
        let api_version = if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version,
            kind: self.kind_name.into(),
            plural: self.plural.into(),
        }
    }
}

/// True when these flags make the volunteer read the `kube-system` namespace (for the default
/// cluster id or the node-id key).
pub fn needs_kube_system(config: &Config) -> bool {
    config.cluster_id.is_none() || config.node_id_key_file.is_none()
}

/// Why a section could not be read, in the report's vocabulary.
pub fn skip_reason(error: &kube::Error) -> SkipReason {
    match error {
        kube::Error::Api(status) => match status.code {
            401 => SkipReason::Unauthorized,
            403 => SkipReason::Forbidden,
            404 => SkipReason::NotFound,
            410 => SkipReason::Expired,
            408 | 504 => SkipReason::Timeout,
            429 | 500..=599 => SkipReason::Unavailable,
            _ => SkipReason::Error,
        },
        _ => SkipReason::Error,
    }
}
