//! The facts a node reports: one list, and one accessor on the node. Code that handles node facts
//! iterates the list (sanitizing, validation, storage, statistics, sinks); where a fact must be
//! named one by one (a Kubernetes field, an API field), a match on it keeps the places in step.

use strum::{IntoStaticStr, VariantArray};

use super::Node;

/// The facts a node reports besides its id and capacity, each a closed vocabulary or a version;
/// every place that handles node facts goes through this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "camelCase")]
pub enum NodeFact {
    /// `operatingSystem`
    OperatingSystem,
    /// `osImage`
    OsImage,
    /// `kernelVersion`
    KernelVersion,
    /// `architecture`
    Architecture,
    /// `containerRuntimeVersion`
    ContainerRuntimeVersion,
    /// `kubeletVersion`
    KubeletVersion,
    /// `cloudProvider`
    CloudProvider,
}

impl NodeFact {
    /// Every fact, in wire order.
    pub const ALL: &[NodeFact] = <NodeFact as VariantArray>::VARIANTS;

    /// The facts nodes are counted by in statistics and summaries: every one but the kernel
    /// version, whose builds tell little about a fleet.
    pub const COUNTED: [NodeFact; 6] = [
        NodeFact::OperatingSystem,
        NodeFact::OsImage,
        NodeFact::Architecture,
        NodeFact::ContainerRuntimeVersion,
        NodeFact::KubeletVersion,
        NodeFact::CloudProvider,
    ];

    /// The fact's field name on the wire.
    pub fn wire_name(self) -> &'static str {
        self.into()
    }

    /// The name of the fact's distribution over a fleet, in statistics and analytics summaries.
    pub fn plural(self) -> &'static str {
        match self {
            NodeFact::OperatingSystem => "operatingSystems",
            NodeFact::OsImage => "osImages",
            NodeFact::KernelVersion => "kernelVersions",
            NodeFact::Architecture => "architectures",
            NodeFact::ContainerRuntimeVersion => "containerRuntimes",
            NodeFact::KubeletVersion => "kubeletVersions",
            NodeFact::CloudProvider => "cloudProviders",
        }
    }
}

impl Node {
    /// The value of one fact, if reported.
    pub fn fact(&self, fact: NodeFact) -> Option<&str> {
        match fact {
            NodeFact::OperatingSystem => &self.operating_system,
            NodeFact::OsImage => &self.os_image,
            NodeFact::KernelVersion => &self.kernel_version,
            NodeFact::Architecture => &self.architecture,
            NodeFact::ContainerRuntimeVersion => &self.container_runtime_version,
            NodeFact::KubeletVersion => &self.kubelet_version,
            NodeFact::CloudProvider => &self.cloud_provider,
        }
        .as_deref()
    }

    /// The slot of one fact, to set or rewrite it.
    pub fn fact_mut(&mut self, fact: NodeFact) -> &mut Option<String> {
        match fact {
            NodeFact::OperatingSystem => &mut self.operating_system,
            NodeFact::OsImage => &mut self.os_image,
            NodeFact::KernelVersion => &mut self.kernel_version,
            NodeFact::Architecture => &mut self.architecture,
            NodeFact::ContainerRuntimeVersion => &mut self.container_runtime_version,
            NodeFact::KubeletVersion => &mut self.kubelet_version,
            NodeFact::CloudProvider => &mut self.cloud_provider,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names are part of the format: stored reports and dashboards hold them.
    #[test]
    fn facts_keep_their_wire_names() {
        let facts: Vec<&str> = NodeFact::ALL.iter().map(|f| f.wire_name()).collect();
        assert_eq!(
            facts,
            [
                "operatingSystem",
                "osImage",
                "kernelVersion",
                "architecture",
                "containerRuntimeVersion",
                "kubeletVersion",
                "cloudProvider"
            ]
        );
    }

    #[test]
    fn facts_are_read_and_written_through_one_accessor() {
        let mut node = Node::default();
        for (i, fact) in NodeFact::ALL.iter().enumerate() {
            *node.fact_mut(*fact) = Some(format!("value-{i}"));
        }
        assert_eq!(node.os_image.as_deref(), Some("value-1"));
        assert_eq!(node.cloud_provider.as_deref(), Some("value-6"));
        for (i, fact) in NodeFact::ALL.iter().enumerate() {
            assert_eq!(node.fact(*fact), Some(format!("value-{i}").as_str()));
        }
    }
}
