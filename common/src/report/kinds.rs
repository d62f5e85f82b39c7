//! The closed list of object kinds a report counts, and the statistics of each by kind.

use strum::{EnumString, IntoStaticStr, VariantArray};

use super::{ObjectStats, Objects};

/// The closed list of object kinds a report may count.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    IntoStaticStr,
    EnumString,
    VariantArray,
)]
#[strum(serialize_all = "lowercase")]
pub enum ObjectKind {
    /// `pods`
    Pods,
    /// `services`
    Services,
    /// `deployments`
    Deployments,
    /// `statefulsets`
    StatefulSets,
    /// `daemonsets`
    DaemonSets,
    /// `jobs`
    Jobs,
    /// `cronjobs`
    CronJobs,
    /// `persistentvolumeclaims`
    PersistentVolumeClaims,
    /// `configmaps`
    ConfigMaps,
    /// `secrets`
    Secrets,
    /// `ingresses`
    Ingresses,
}

impl ObjectKind {
    /// Every kind, in wire order.
    pub const ALL: &[ObjectKind] = <ObjectKind as VariantArray>::VARIANTS;

    /// The kind's name on the wire (its lowercase plural resource name).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Objects {
    /// True when no kind was counted.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The statistics of one kind.
    pub fn get(&self, kind: ObjectKind) -> Option<&ObjectStats> {
        self.slot(kind).as_ref()
    }

    /// Sets (or clears) the statistics of one kind.
    pub fn set(&mut self, kind: ObjectKind, stats: Option<ObjectStats>) {
        *self.slot_mut(kind) = stats;
    }

    /// The counted kinds with their statistics, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectKind, &ObjectStats)> {
        ObjectKind::ALL
            .iter()
            .filter_map(|kind| self.get(*kind).map(|stats| (*kind, stats)))
    }

    fn slot(&self, kind: ObjectKind) -> &Option<ObjectStats> {
        match kind {
            ObjectKind::Pods => &self.pods,
            ObjectKind::Services => &self.services,
            ObjectKind::Deployments => &self.deployments,
            ObjectKind::StatefulSets => &self.statefulsets,
            ObjectKind::DaemonSets => &self.daemonsets,
            ObjectKind::Jobs => &self.jobs,
            ObjectKind::CronJobs => &self.cronjobs,
            ObjectKind::PersistentVolumeClaims => &self.persistentvolumeclaims,
            ObjectKind::ConfigMaps => &self.configmaps,
            ObjectKind::Secrets => &self.secrets,
            ObjectKind::Ingresses => &self.ingresses,
        }
    }

    fn slot_mut(&mut self, kind: ObjectKind) -> &mut Option<ObjectStats> {
        match kind {
            ObjectKind::Pods => &mut self.pods,
            ObjectKind::Services => &mut self.services,
            ObjectKind::Deployments => &mut self.deployments,
            ObjectKind::StatefulSets => &mut self.statefulsets,
            ObjectKind::DaemonSets => &mut self.daemonsets,
            ObjectKind::Jobs => &mut self.jobs,
            ObjectKind::CronJobs => &mut self.cronjobs,
            ObjectKind::PersistentVolumeClaims => &mut self.persistentvolumeclaims,
            ObjectKind::ConfigMaps => &mut self.configmaps,
            ObjectKind::Secrets => &mut self.secrets,
            ObjectKind::Ingresses => &mut self.ingresses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::Words;

    /// The wire names are part of the format: stored reports and dashboards hold them.
    #[test]
    fn kinds_keep_their_wire_names() {
        assert_eq!(
            ObjectKind::words(),
            [
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
                "ingresses"
            ]
        );
        assert!(ObjectKind::parse_back());
    }
}
