//! What the volunteer reads: where each counted kind of object is listed, when the flags make
//! it read `kube-system`, and why a section that could not be read is skipped.

use common::report::{ObjectKind, SkipReason};
use kube::api::ApiResource;

use crate::config::Config;

/// Where one counted kind of object is listed (its resource is the kind's wire name).
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
}

/// Every kind the volunteer counts (Secrets only with `--count-secrets`).
pub const KINDS: [KindSource; 11] = [
    source(ObjectKind::Pods, "", "v1", "Pod"),
    source(ObjectKind::Services, "", "v1", "Service"),
    source(ObjectKind::Deployments, "apps", "v1", "Deployment"),
    source(ObjectKind::StatefulSets, "apps", "v1", "StatefulSet"),
    source(ObjectKind::DaemonSets, "apps", "v1", "DaemonSet"),
    source(ObjectKind::Jobs, "batch", "v1", "Job"),
    source(ObjectKind::CronJobs, "batch", "v1", "CronJob"),
    source(
        ObjectKind::PersistentVolumeClaims,
        "",
        "v1",
        "PersistentVolumeClaim",
    ),
    source(ObjectKind::ConfigMaps, "", "v1", "ConfigMap"),
    source(ObjectKind::Secrets, "", "v1", "Secret"),
    source(ObjectKind::Ingresses, "networking.k8s.io", "v1", "Ingress"),
];

const fn source(
    kind: ObjectKind,
    group: &'static str,
    version: &'static str,
    kind_name: &'static str,
) -> KindSource {
    KindSource {
        kind,
        group,
        version,
        kind_name,
    }
}

impl KindSource {
    /// The resource (plural) name, as RBAC rules and list URLs name it.
    pub fn plural(&self) -> &'static str {
        self.kind.as_str()
    }

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
            plural: self.plural().into(),
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
