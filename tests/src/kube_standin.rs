//! A Kubernetes API server stand-in: a synthetic cluster of configurable size served as real
//! Kubernetes JSON (built from k8s-openapi types) with real pagination (`limit`/`continue`),
//! metadata-only lists, injectable 403/404/410 answers, and canary strings planted in every
//! identifying field so that a test can prove none reaches a report.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::core::v1::{
    ContainerImage, Node, NodeAddress, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    FieldsV1, ListMeta, ManagedFieldsEntry, ObjectMeta, Time,
};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

/// Every canary planted in the cluster contains this; none may appear in a report.
pub const CANARY: &str = "zqxcanary";
/// IP addresses planted on nodes (TEST-NET-3): none may appear in a report.
pub const CANARY_IP_PREFIX: &str = "203.0.113.";
/// The `kube-system` namespace's UID (the volunteer derives ids and keys from it; it must never
/// appear in a report either).
pub const KUBE_SYSTEM_UID: &str = "6b1f3a52-7c3e-4d1a-9f0b-zqxcanary0001";

/// The size of the synthetic cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSize {
    /// Nodes.
    pub nodes: usize,
    /// Namespaces (besides none: `kube-system` is namespace 0).
    pub namespaces: usize,
    /// Pods; the other kinds scale from pods and namespaces.
    pub pods: usize,
}

impl ClusterSize {
    /// Objects of a resource (plural name) in the whole cluster.
    pub fn count(&self, plural: &str) -> usize {
        let (pods, namespaces) = (self.pods, self.namespaces);
        match plural {
            "nodes" => self.nodes,
            "namespaces" => namespaces,
            "pods" => pods,
            "services" => pods / 4,
            "deployments" => pods / 6,
            "statefulsets" => pods / 50,
            "daemonsets" => 2 + namespaces / 20,
            "jobs" => pods / 20,
            "cronjobs" => pods / 100,
            "persistentvolumeclaims" => pods / 10,
            "configmaps" => namespaces * 2,
            "secrets" => namespaces * 3,
            "ingresses" => namespaces / 3,
            _ => 0,
        }
    }
}

/// Answers to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Resources (plural names) answered 403.
    pub forbidden: HashSet<String>,
    /// Resources answered 404 (an API the cluster does not serve).
    pub not_found: HashSet<String>,
    /// Resources whose first request with a continue token is answered 410.
    pub expire_first_continue: HashSet<String>,
}

/// The stand-in's state.
pub struct StandIn {
    size: ClusterSize,
    /// Unix seconds at start: creation times are set relative to it.
    epoch: i64,
    faults: Faults,
    expired: Mutex<HashSet<String>>,
    requests: AtomicU64,
}

impl StandIn {
    /// A cluster of `size` with `faults`.
    pub fn new(size: ClusterSize, faults: Faults) -> Arc<Self> {
        Arc::new(StandIn {
            size,
            epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
            faults,
            expired: Mutex::new(HashSet::new()),
            requests: AtomicU64::new(0),
        })
    }

    /// Requests served so far (every path but `/_standin/`).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Serves the stand-in on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, standin: Arc<StandIn>) {
    axum::serve(listener, router(standin)).await.unwrap();
}

/// Binds `127.0.0.1:0`, serves in the background, returns the address.
pub async fn spawn(standin: Arc<StandIn>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, standin));
    address
}

/// A kubeconfig that points at `address` over plain HTTP, without credentials.
pub fn kubeconfig(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: http://{address}\n\
         contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n\
         current-context: standin\nusers:\n- name: standin\n  user: {{}}\n"
    )
}

/// A stand-in cluster served in the background, and a kubeconfig file that points at it.
pub struct Cluster {
    /// Holds the kubeconfig file.
    _dir: tempfile::TempDir,
    /// The kubeconfig file (for `KUBECONFIG`).
    pub kubeconfig: std::path::PathBuf,
    /// The stand-in (request counts).
    pub standin: Arc<StandIn>,
}

/// Starts a stand-in cluster of `size` with `faults` on loopback.
pub async fn cluster(size: ClusterSize, faults: Faults) -> Cluster {
    let standin = StandIn::new(size, faults);
    let address = spawn(standin.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, self::kubeconfig(address)).unwrap();
    Cluster {
        _dir: dir,
        kubeconfig,
        standin,
    }
}

/// Asserts that no identifier planted in the cluster appears in `text` (case-insensitively).
pub fn assert_no_canaries(text: &str, what: &str) {
    for canary in [
        CANARY,
        CANARY_IP_PREFIX,
        KUBE_SYSTEM_UID,
        "203-0-113",
        "i-zqx",
        "jane.doe",
    ] {
        assert!(
            !text
                .to_ascii_lowercase()
                .contains(&canary.to_ascii_lowercase()),
            "{what} contains the canary {canary:?}:\n{text}"
        );
    }
}

/// The stand-in's routes.
pub fn router(standin: Arc<StandIn>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/_standin/requests", get(request_count))
        .route("/api/v1/namespaces/{namespace}", get(get_namespace))
        .route("/api/v1/{plural}", get(list_core))
        .route(
            "/api/v1/namespaces/{namespace}/{plural}",
            get(list_core_namespaced),
        )
        .route("/apis/{group}/{version}/{plural}", get(list_group))
        .route(
            "/apis/{group}/{version}/namespaces/{namespace}/{plural}",
            get(list_group_namespaced),
        )
        .fallback(|| async {
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        })
        .with_state(standin)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

async fn version(State(standin): State<Arc<StandIn>>) -> Response {
    standin.requests.fetch_add(1, Ordering::Relaxed);
    axum::Json(json!({
        "major": "1", "minor": "31", "gitVersion": "v1.31.2-eks-zqxcanary",
        "gitCommit": "zqxcanary0000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.1", "compiler": "gc",
        "platform": "linux/amd64"
    }))
    .into_response()
}

async fn request_count(State(standin): State<Arc<StandIn>>) -> Response {
    axum::Json(json!({"requests": standin.requests()})).into_response()
}

async fn get_namespace(
    State(standin): State<Arc<StandIn>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
) -> Response {
    standin.requests.fetch_add(1, Ordering::Relaxed);
    if standin.faults.forbidden.contains("namespaces/kube-system") {
        return status(403, "Forbidden", "namespaces \"kube-system\" is forbidden");
    }
    let index = (0..standin.size.namespaces).find(|i| namespace_name(*i) == namespace);
    let Some(index) = index else {
        return status(
            404,
            "NotFound",
            &format!("namespaces \"{namespace}\" not found"),
        );
    };
    let meta = namespace_meta(standin.epoch, index);
    if wants_metadata(&headers) {
        axum::Json(json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta}))
            .into_response()
    } else {
        axum::Json(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))
            .into_response()
    }
}

async fn list_core(
    State(standin): State<Arc<StandIn>>,
    Path(plural): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list(&standin, "", &plural, None, query, &headers)
}

async fn list_core_namespaced(
    State(standin): State<Arc<StandIn>>,
    Path((namespace, plural)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list(&standin, "", &plural, Some(namespace), query, &headers)
}

async fn list_group(
    State(standin): State<Arc<StandIn>>,
    Path((group, _version, plural)): Path<(String, String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list(&standin, &group, &plural, None, query, &headers)
}

async fn list_group_namespaced(
    State(standin): State<Arc<StandIn>>,
    Path((group, _version, namespace, plural)): Path<(String, String, String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    list(&standin, &group, &plural, Some(namespace), query, &headers)
}

/// The API group each served resource lives in.
fn group_of(plural: &str) -> Option<&'static str> {
    match plural {
        "nodes"
        | "namespaces"
        | "pods"
        | "services"
        | "persistentvolumeclaims"
        | "configmaps"
        | "secrets" => Some(""),
        "deployments" | "statefulsets" | "daemonsets" => Some("apps"),
        "jobs" | "cronjobs" => Some("batch"),
        "ingresses" => Some("networking.k8s.io"),
        _ => None,
    }
}

fn list(
    standin: &StandIn,
    group: &str,
    plural: &str,
    namespace: Option<String>,
    query: ListQuery,
    headers: &HeaderMap,
) -> Response {
    standin.requests.fetch_add(1, Ordering::Relaxed);
    if group_of(plural) != Some(group) || standin.faults.not_found.contains(plural) {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    if standin.faults.forbidden.contains(plural) {
        return status(
            403,
            "Forbidden",
            &format!("{plural} is forbidden: User cannot list resource \"{plural}\""),
        );
    }
    let cluster_scoped = matches!(plural, "nodes" | "namespaces");
    if cluster_scoped && namespace.is_some() {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    // Objects of a namespaced kind are spread round-robin: object i lives in namespace
    // i % namespaces. A namespaced list walks only that namespace's objects.
    let total = standin.size.count(plural);
    let namespaces = standin.size.namespaces.max(1);
    let namespace_index = match &namespace {
        Some(name) => match (0..namespaces).find(|i| namespace_name(*i) == *name) {
            Some(index) => Some(index),
            None => return list_body(plural, headers, Vec::new(), None),
        },
        None => None,
    };
    let in_scope = match namespace_index {
        Some(index) if total > index => (total - index).div_ceil(namespaces),
        Some(_) => 0,
        None => total,
    };

    let offset = match &query.continue_token {
        None => 0,
        Some(token) => {
            if standin.faults.expire_first_continue.contains(plural)
                && standin.expired.lock().unwrap().insert(plural.to_string())
            {
                return status(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result.",
                );
            }
            match token
                .strip_prefix("offset-")
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(offset) => offset,
                None => return status(400, "BadRequest", "invalid continue token"),
            }
        }
    };
    let limit = query.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let end = offset.saturating_add(limit).min(in_scope);
    let next = (end < in_scope).then(|| format!("offset-{end}"));
    let items: Vec<Value> = (offset..end)
        .map(|position| {
            let index = match namespace_index {
                Some(ns) => ns + position * namespaces,
                None => position,
            };
            let epoch = standin.epoch;
            match plural {
                "nodes" if !wants_metadata(headers) => {
                    serde_json::to_value(node(epoch, index)).unwrap()
                }
                "nodes" => json!({"metadata": node(epoch, index).metadata}),
                "namespaces" => json!({"metadata": namespace_meta(epoch, index)}),
                _ if wants_metadata(headers) => {
                    json!({"metadata": object_meta(epoch, plural, index, namespaces)})
                }
                // Full objects carry their payload, canaries included: reading them instead
                // of metadata would be a privacy regression the canary test must catch.
                _ => full_object(plural, object_meta(epoch, plural, index, namespaces), index),
            }
        })
        .collect();
    list_body(plural, headers, items, next)
}

fn list_body(
    plural: &str,
    headers: &HeaderMap,
    items: Vec<Value>,
    next: Option<String>,
) -> Response {
    let metadata = ListMeta {
        continue_: next,
        resource_version: Some("4242".into()),
        ..ListMeta::default()
    };
    let body = if wants_metadata(headers) {
        let items: Vec<Value> = items
            .into_iter()
            .map(|mut item| {
                let map = item.as_object_mut().unwrap();
                map.insert("apiVersion".into(), "meta.k8s.io/v1".into());
                map.insert("kind".into(), "PartialObjectMetadata".into());
                item
            })
            .collect();
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
               "metadata": metadata, "items": items})
    } else {
        let kind = match plural {
            "nodes" => "NodeList",
            "namespaces" => "NamespaceList",
            _ => "List",
        };
        json!({"apiVersion": "v1", "kind": kind, "metadata": metadata, "items": items})
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&body).unwrap(),
    )
        .into_response()
}

fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=PartialObjectMetadata"))
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code}),
        )
        .unwrap(),
    )
        .into_response()
}

fn time(epoch: i64, seconds_ago: i64) -> Time {
    Time(Timestamp::from_second(epoch - seconds_ago).unwrap())
}

/// Labels, annotations and managed fields, each carrying canaries (metadata lists return them).
fn canary_meta(epoch: i64, kind: &str, index: usize) -> ObjectMeta {
    ObjectMeta {
        labels: Some(BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                format!("{CANARY}-app-{index}"),
            ),
            (
                format!("team.{CANARY}.example/owner"),
                format!("{CANARY}.jane.doe"),
            ),
        ])),
        annotations: Some(BTreeMap::from([(
            format!("{CANARY}.example/contact"),
            format!("{CANARY}-oncall@acme-{CANARY}.example"),
        )])),
        managed_fields: Some(vec![ManagedFieldsEntry {
            api_version: Some("v1".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(json!({"f:metadata": {"f:labels": {
                format!("f:team.{CANARY}.example/owner"): {}}}}))),
            manager: Some(format!("{CANARY}-deployer")),
            operation: Some("Update".into()),
            time: Some(time(epoch, 60)),
            ..ManagedFieldsEntry::default()
        }]),
        uid: Some(format!("{kind}-{index}-{CANARY}-uid")),
        resource_version: Some(format!("{}", 1000 + index)),
        ..ObjectMeta::default()
    }
}

/// Namespace 0 is `kube-system`; the others carry canary names.
pub fn namespace_name(index: usize) -> String {
    if index == 0 {
        "kube-system".into()
    } else {
        format!("{CANARY}-ns-{index}")
    }
}

fn namespace_meta(epoch: i64, index: usize) -> ObjectMeta {
    let mut meta = canary_meta(epoch, "namespace", index);
    meta.name = Some(namespace_name(index));
    if index == 0 {
        meta.uid = Some(KUBE_SYSTEM_UID.into());
    }
    meta.creation_timestamp = Some(time(epoch, 400 * 86_400));
    meta
}

fn object_meta(epoch: i64, plural: &str, index: usize, namespaces: usize) -> ObjectMeta {
    let mut meta = canary_meta(epoch, plural, index);
    meta.name = Some(format!("{CANARY}-{plural}-{index}"));
    meta.namespace = Some(namespace_name(index % namespaces));
    // Ages from a minute to about a year, spread deterministically.
    meta.creation_timestamp = Some(time(epoch, 60 + (index as i64 * 7_919) % (365 * 86_400)));
    meta
}

/// A full object of a namespaced kind: metadata plus the kind's payload, with canaries.
fn full_object(plural: &str, metadata: ObjectMeta, index: usize) -> Value {
    let ip = format!("{CANARY_IP_PREFIX}{}", index % 250 + 1);
    let image = format!("registry.{CANARY}.example/payments/api:{CANARY}-{index}");
    match plural {
        "configmaps" => json!({"metadata": metadata,
            "data": {format!("{CANARY}.properties"): format!("db.password={CANARY}-config-secret")}}),
        "secrets" => json!({"metadata": metadata, "type": "Opaque",
            // base64("zqxcanary-secret-value")
            "data": {"password": "enF4Y2FuYXJ5LXNlY3JldC12YWx1ZQ=="},
            "stringData": {"token": format!("{CANARY}-secret-token")}}),
        "pods" => json!({"metadata": metadata,
            "spec": {"containers": [{"name": format!("{CANARY}-app"), "image": image,
                "env": [{"name": "API_KEY", "value": format!("{CANARY}-api-key")}]}],
                "nodeName": format!("ip-203-0-113-{index}.{CANARY}.corp.example")},
            "status": {"podIP": ip, "hostIP": ip}}),
        "services" => json!({"metadata": metadata,
            "spec": {"clusterIP": ip, "externalName": format!("db.{CANARY}.example")}}),
        "deployments" | "statefulsets" | "daemonsets" | "jobs" | "cronjobs" => {
            json!({"metadata": metadata,
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
        }
        "ingresses" => json!({"metadata": metadata,
            "spec": {"rules": [{"host": format!("shop.{CANARY}.example")}]}}),
        _ => json!({"metadata": metadata}),
    }
}

/// A node with canaries in its name, addresses, machine ids, provider id, images and labels.
pub fn node(epoch: i64, index: usize) -> Node {
    let name = format!("ip-203-0-113-{index}.{CANARY}.corp.example");
    let mut metadata = canary_meta(epoch, "node", index);
    metadata.name = Some(name.clone());
    metadata.creation_timestamp = Some(time(epoch, 30 * 86_400));
    let quantity = |q: &str| Quantity(q.to_string());
    Node {
        metadata,
        spec: Some(NodeSpec {
            provider_id: Some(format!("aws:///{CANARY}-zone-1a/i-{CANARY}{index:08}")),
            pod_cidr: Some(format!("{CANARY_IP_PREFIX}0/24")),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: format!("{CANARY_IP_PREFIX}{}", index % 250 + 1),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: name,
                },
            ]),
            capacity: Some(BTreeMap::from([
                ("cpu".to_string(), quantity("8")),
                ("memory".to_string(), quantity("32Gi")),
                ("pods".to_string(), quantity("110")),
                ("ephemeral-storage".to_string(), quantity("100Gi")),
                (format!("{CANARY}.example/license"), quantity("1")),
                (
                    "nvidia.com/gpu".to_string(),
                    quantity(if index.is_multiple_of(4) { "1" } else { "0" }),
                ),
            ])),
            images: Some(
                (0..20)
                    .map(|i| ContainerImage {
                        names: Some(vec![format!(
                            "registry.{CANARY}.example/payments/api-{i}:{CANARY}-release"
                        )]),
                        size_bytes: Some(100_000_000),
                    })
                    .collect(),
            ),
            node_info: Some(NodeSystemInfo {
                architecture: if index.is_multiple_of(3) {
                    "arm64"
                } else {
                    "amd64"
                }
                .into(),
                boot_id: format!("{CANARY}-boot-{index}"),
                container_runtime_version: "containerd://1.7.22".into(),
                kernel_version: format!("6.1.109-{CANARY}.amzn2023.x86_64"),
                kube_proxy_version: "v1.31.2".into(),
                kubelet_version: "v1.31.2-eks-a1b2c3d".into(),
                machine_id: format!("{CANARY}machineid{index:08}"),
                operating_system: "linux".into(),
                os_image: format!("Amazon Linux 2023.5.20240805 ({CANARY} hardened)"),
                system_uuid: format!("ec2{CANARY}-{index:08}"),
                ..NodeSystemInfo::default()
            }),
            ..NodeStatus::default()
        }),
    }
}
