//! A node object reduced to the report's vocabulary as it streams in: the keyed id and every
//! fact through the sanitizer; names, addresses and instance ids never leave.

use common::anonymize::{NodeIdHash, NodeIdKey, NodeIdentity, node_id};
use common::report::{self, NodeFact};
use common::sanitize;
use k8s_openapi::api::core::v1::Node;

/// One node as it enters the report: hashed id, every fact through the sanitizer.
pub fn report_node(node: &Node, algorithm: NodeIdHash, key: &NodeIdKey) -> report::Node {
    let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
    let identity = NodeIdentity {
        name: node.metadata.name.as_deref().unwrap_or_default(),
        machine_id: info.map_or("", |i| i.machine_id.as_str()),
        system_uuid: info.map_or("", |i| i.system_uuid.as_str()),
    };
    let capacity = node
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .map(|capacity| {
            capacity
                .iter()
                .filter(|(name, quantity)| {
                    sanitize::is_allowed_resource(name) && sanitize::is_quantity(&quantity.0)
                })
                .map(|(name, quantity)| report::Resource {
                    resource: name.clone(),
                    value: quantity.0.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let provider_id = node
        .spec
        .as_ref()
        .and_then(|spec| spec.provider_id.as_deref())
        .unwrap_or_default();
    let mut reduced = report::Node {
        id: node_id(algorithm, key, identity),
        capacity,
        ..report::Node::default()
    };
    for fact in NodeFact::ALL {
        let raw = match fact {
            NodeFact::OperatingSystem => info.map(|i| &i.operating_system),
            NodeFact::OsImage => info.map(|i| &i.os_image),
            NodeFact::KernelVersion => info.map(|i| &i.kernel_version),
            NodeFact::Architecture => info.map(|i| &i.architecture),
            NodeFact::ContainerRuntimeVersion => info.map(|i| &i.container_runtime_version),
            NodeFact::KubeletVersion => info.map(|i| &i.kubelet_version),
            // Every node has a provider: the scheme of its providerID, or `unknown`.
            NodeFact::CloudProvider => {
                let provider = sanitize::cloud_provider_from_provider_id(provider_id);
                *reduced.fact_mut(*fact) = Some(provider.into_owned());
                continue;
            }
        };
        *reduced.fact_mut(*fact) = raw
            .filter(|value| !value.is_empty())
            .map(|value| sanitize::fact_rule(*fact)(value).into_owned());
    }
    reduced
}
