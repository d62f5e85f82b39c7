//! Test support: a real `kube::Client` on a `tower_test` mock, answered by an
//! [`ApiServerVerifier`] that checks each request against a scenario (the controller-rs pattern).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and the answer to give.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Expected path and query, exactly (e.g. `/api/v1/nodes?&limit=2`).
    pub uri: String,
    /// Status of the answer.
    pub status: u16,
    /// JSON body of the answer.
    pub body: Value,
}

impl Exchange {
    /// A 200 with `body`.
    pub fn ok(uri: impl Into<String>, body: Value) -> Self {
        Exchange {
            uri: uri.into(),
            status: 200,
            body,
        }
    }

    /// An error answer with a Kubernetes `Status` body.
    pub fn status(uri: impl Into<String>, code: u16, reason: &str) -> Self {
        Exchange {
            uri: uri.into(),
            status: code,
            body: json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": reason, "reason": reason, "code": code}),
        }
    }
}

/// Answers a mock API server's requests from a scenario, in order, asserting each one.
pub struct ApiServerVerifier(Handle);

/// A client on a mock service, and the verifier holding its other end.
pub fn client() -> (Client, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServerVerifier(handle))
}

impl ApiServerVerifier {
    /// Serves `scenario` in a task; awaiting the handle fails the test if a request differed or
    /// an expected one never came.
    pub fn run(mut self, scenario: Vec<Exchange>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for expected in scenario {
                let next = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
                    .await
                    .unwrap_or_else(|_| panic!("expected a request for {}", expected.uri));
                let (request, send) = next.expect("the client is still alive");
                assert_eq!(request.method(), http::Method::GET);
                let uri = request.uri().to_string();
                assert_eq!(uri, expected.uri, "unexpected request");
                let response = Response::builder()
                    .status(StatusCode::from_u16(expected.status).unwrap())
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&expected.body).unwrap()))
                    .unwrap();
                send.send_response(response);
            }
        })
    }
}

/// A `PartialObjectMetadataList` page.
pub fn metadata_list(items: &[Value], continue_token: Option<&str>) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|metadata| {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": metadata})
        })
        .collect();
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
           "metadata": {"continue": continue_token.unwrap_or(""), "resourceVersion": "100"},
           "items": items})
}

/// Metadata of one namespaced object.
pub fn object_meta(namespace: &str, name: &str, created: &str) -> Value {
    json!({"name": name, "namespace": namespace, "creationTimestamp": created,
           "uid": format!("uid-{namespace}-{name}")})
}

/// A `NodeList` page of nodes named `names`.
pub fn node_list(names: &[&str], continue_token: Option<&str>) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({
                "metadata": {"name": name},
                "spec": {"providerID": format!("aws:///eu-west-1a/i-{name}")},
                "status": {
                    "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                    "nodeInfo": {
                        "machineID": format!("machine-{name}"), "systemUUID": format!("uuid-{name}"),
                        "bootID": "b", "kernelVersion": "5.15.0-1051-azure",
                        "osImage": "Ubuntu 22.04.4 LTS", "containerRuntimeVersion": "containerd://1.7.11",
                        "kubeletVersion": "v1.31.2", "kubeProxyVersion": "v1.31.2",
                        "operatingSystem": "linux", "architecture": "amd64"
                    }
                }
            })
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "NodeList",
           "metadata": {"continue": continue_token.unwrap_or(""), "resourceVersion": "100"},
           "items": items})
}
