//! TLS on the collector's public listener, with a CA made for the test: the volunteer (with
//! `--collector-ca-file`) and curl deliver reports over HTTP/1.1 and HTTP/2 (ALPN), a rotated
//! certificate is served without a restart, and a rotation that cannot be read keeps the
//! certificate in use.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::kube_standin::{ClusterSize, Faults, cluster};
use e2e::{Collector, binary, report, run_captured, volunteer_command};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA, and server certificates it signs for 127.0.0.1.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "collector test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Authority {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate (PEM, and DER to compare with what is served) and its key, named `name`.
    fn server(&self, name: &str) -> (String, Vec<u8>, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), cert.der().to_vec(), key.serialize_pem())
    }
}

/// Replaces `path` at once, as a rotation does (write beside, then rename over).
fn replace(path: &Path, text: &str) {
    let beside = path.with_extension("new");
    std::fs::write(&beside, text).unwrap();
    std::fs::rename(&beside, path).unwrap();
}

/// The certificate a new connection is served, after a request over it.
async fn served(url: &str, ca: &reqwest::Certificate) -> (u16, reqwest::Version, Vec<u8>) {
    let client = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .tls_info(true)
        .build()
        .unwrap();
    let answer = client.get(url).send().await.unwrap();
    let der = answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the peer's certificate")
        .to_vec();
    (answer.status().as_u16(), answer.version(), der)
}

/// Posts a report with curl over `http` ("--http1.1" or "--http2"): status and HTTP version.
fn curl(url: &str, ca: &Path, http: &str, body: &Path) -> String {
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            http,
        ])
        .arg("--cacert")
        .arg(ca)
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn volunteer_and_curl_deliver_over_tls_and_a_rotated_certificate_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &authority.pem).unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (first_pem, first_der, first_key) = authority.server("first");
    std::fs::write(&cert_file, &first_pem).unwrap();
    std::fs::write(&key_file, &first_key).unwrap();
    let (cert, key) = (
        cert_file.display().to_string(),
        key_file.display().to_string(),
    );
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &["--tls-cert-file", &cert, "--tls-key-file", &key],
    )
    .await;
    let base = format!("https://127.0.0.1:{}", collector.public.port());
    let ca = reqwest::Certificate::from_pem(authority.pem.as_bytes()).unwrap();

    // HTTP/2 by ALPN, with the first certificate; plain HTTP on the port gets no answer.
    let (status, version, der) = served(&format!("{base}/healthz"), &ca).await;
    assert_eq!((status, version), (200, reqwest::Version::HTTP_2));
    assert_eq!(der, first_der);
    assert!(
        reqwest::get(collector.public_url("/healthz"))
            .await
            .is_err()
    );

    // curl, over both protocols.
    let body = dir.path().join("report.json");
    let ingest = format!("{base}/api/v1");
    for (http, cluster_id, expected) in [
        (
            "--http1.1",
            "5b0b5d3e-9d1c-4a3e-8f51-0a7f6f1d2c01",
            "204 1.1",
        ),
        ("--http2", "5b0b5d3e-9d1c-4a3e-8f51-0a7f6f1d2c02", "204 2"),
    ] {
        std::fs::write(&body, report(cluster_id, 1_763_737_200).to_string()).unwrap();
        assert_eq!(curl(&ingest, &ca_file, http, &body), expected);
    }

    // The volunteer, trusting the CA.
    let cluster = cluster(
        ClusterSize {
            nodes: 3,
            namespaces: 2,
            pods: 10,
        },
        Faults::default(),
    )
    .await;
    let ca_path = ca_file.display().to_string();
    let deliver = || {
        run_captured(
            volunteer_command(
                &cluster.kubeconfig,
                &[
                    "--collector",
                    &base,
                    "--collector-ca-file",
                    &ca_path,
                    "--period",
                    "0",
                ],
            ),
            Duration::from_secs(30),
        )
    };
    let (code, _, log) = deliver().await;
    assert_eq!(code, Some(0), "{log}");

    // Rotated in place: new connections get the second certificate, without a restart.
    let (second_pem, second_der, second_key) = authority.server("second");
    replace(&key_file, &second_key);
    replace(&cert_file, &second_pem);
    let started = Instant::now();
    loop {
        let (status, _, der) = served(&format!("{base}/healthz"), &ca).await;
        assert_eq!(status, 200);
        if der == second_der {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never rotated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, _, log) = deliver().await;
    assert_eq!(code, Some(0), "{log}");

    // A rotation that cannot be used (a key of another certificate) keeps the second one.
    let (_, _, stray_key) = authority.server("stray");
    replace(&key_file, &stray_key);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let (status, _, der) = served(&format!("{base}/healthz"), &ca).await;
        assert_eq!((status, der.as_slice()), (200, second_der.as_slice()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = collector.log.lock().unwrap().join("\n");
    assert!(log.contains("does not belong to the certificate"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "a key reached the log");

    let clusters = reqwest::get(collector.admin_url("/api/v1/clusters"))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        clusters["clusters"].as_array().unwrap().len(),
        3,
        "{clusters}"
    );
}

#[tokio::test]
async fn a_certificate_that_cannot_be_read_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    std::fs::write(&cert, "not a certificate").unwrap();
    let mut command = e2e::collector_command(&binary("collector"), &dir.path().join("data"));
    command
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&cert);
    let stderr = e2e::expect_startup_error(command).await;
    assert!(stderr.contains("tls.crt"), "{stderr}");
}
