//! The OpenAPI 3 documents of the two listeners, each stating what its handlers enforce.

use axum::http::header;
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use common::ClusterIdRule;
use common::validate::MAX_RELAXED_CLUSTER_ID;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, RefOr};
use utoipa_axum::router::OpenApiRouter;

use utoipa_axum::routes;

use super::state::{ApiSettings, AppState};
use crate::stats::dimensions::{self, EXTENSION_PREFIX};

/// The documented routes of each part of the two listeners.
pub(super) fn ingest_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(super::ingest::post_report))
}

pub(super) fn health_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(super::health::healthz))
        .routes(routes!(super::health::readyz))
        .routes(routes!(super::health::version))
}

pub(super) fn stats_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(super::stats::dimensions))
        .routes(routes!(super::stats::weekly))
        .routes(routes!(super::stats::export))
}

pub(super) fn admin_routes() -> OpenApiRouter<AppState> {
    stats_routes()
        .routes(routes!(super::clusters::list_clusters))
        .routes(routes!(super::clusters::cluster_reports))
        .routes(routes!(super::clusters::delete_cluster))
        .routes(routes!(super::clusters::stats))
        .routes(routes!(super::deliveries::deliveries))
        .routes(routes!(super::deliveries::requeue))
        .routes(routes!(super::import::import))
}

pub(super) fn metrics_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(super::health::metrics))
}

/// The OpenAPI 3 document of the public listener with `settings`: ingest and health, the weekly
/// statistics when they are public, and the cluster ids this collector takes.
pub fn public_openapi(settings: &ApiSettings) -> OpenApi {
    let mut routes = vec![ingest_routes(), health_routes()];
    if settings.public_stats {
        routes.push(stats_routes());
    }
    let mut document = document(
        "Anonymous Kubernetes usage reports (Spartakus v1 compatible): the public listener \
         (default :8080), where volunteers post their reports. The admin listener (default \
         127.0.0.1:9090) serves its own document at the same path.",
        routes,
        "ingest_token",
    );
    state_cluster_id_rule(&mut document, settings.cluster_id_rule);
    document
}

/// The OpenAPI 3 document of the admin listener: the read API, erasure, import, deliveries, the
/// weekly statistics and `/metrics`.
pub fn admin_openapi() -> OpenApi {
    document(
        "Anonymous Kubernetes usage reports (Spartakus v1 compatible): the admin listener \
         (default 127.0.0.1:9090), behind the admin token when one is set (`/metrics` never is). \
         The public listener serves its own document at the same path.",
        vec![admin_routes(), metrics_routes()],
        "admin_token",
    )
}

/// `GET /openapi.json`, answering `document` (serialized once).
pub(super) fn serve_document(document: OpenApi) -> MethodRouter<AppState> {
    let body = Bytes::from(document.to_json().expect("an OpenAPI document serializes"));
    get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    })
}

/// A document of `routes`, generated from the handlers' annotations, with the bearer scheme they
/// name.
fn document(description: &str, routes: Vec<OpenApiRouter<AppState>>, scheme: &str) -> OpenApi {
    let mut document = OpenApi::default();
    document.info = InfoBuilder::new()
        .title("collector")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .build();
    for routes in routes {
        document.merge(routes.split_for_parts().1);
    }
    state_grammars(&mut document);
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            scheme,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    document
}

/// The grammars the handlers' annotations cannot state (built from the registry, one of two
/// forms, a non-empty body), where the document has the operation.
fn state_grammars(document: &mut OpenApi) {
    let names: Vec<&str> = dimensions::names().collect();
    debug_assert!(
        names
            .iter()
            .all(|name| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')),
        "dimension names need no escaping in a pattern"
    );
    let dimension = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(
            "^(?:{}|{EXTENSION_PREFIX}.+)$",
            names.join("|")
        )));
    set_parameter_schema(document, "/api/v1/stats/weekly", "dimension", dimension);
    let since = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]{1,12}$"))
                .description(Some("Unix seconds")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        );
    set_parameter_schema(document, "/api/v1/deliveries/requeue", "since", since);
    let import = document
        .paths
        .paths
        .get_mut("/api/v1/import")
        .and_then(|item| item.post.as_mut())
        .and_then(|operation| operation.request_body.as_mut());
    if let Some(RefOr::T(body)) = import {
        for content in body.content.values_mut() {
            if let RefOr::T(content) = content {
                content.schema = Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .into(),
                );
            }
        }
    }
}

/// Replaces the schema of the query parameter `name` of the operations at `path`.
fn set_parameter_schema(
    document: &mut OpenApi,
    path: &str,
    name: &str,
    schema: impl Into<RefOr<Schema>>,
) {
    let schema = schema.into();
    let Some(item) = document.paths.paths.get_mut(path) else {
        return;
    };
    let operations = [&mut item.get, &mut item.post].into_iter().flatten();
    for parameters in operations.filter_map(|operation| operation.parameters.as_mut()) {
        for parameter in parameters {
            if let RefOr::T(parameter) = parameter
                && parameter.name == name
            {
                parameter.schema = Some(schema.clone());
            }
        }
    }
}

/// Puts the schema of the `clusterID`s this collector takes into the `Report` schema.
fn state_cluster_id_rule(document: &mut OpenApi, rule: ClusterIdRule) {
    let report = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("Report"));
    if let Some(RefOr::T(Schema::Object(report))) = report {
        report
            .properties
            .insert("clusterID".into(), cluster_id_schema(rule).into());
    }
}

/// What `clusterID` must look like under `rule`.
fn cluster_id_schema(rule: ClusterIdRule) -> ObjectBuilder {
    let id = ObjectBuilder::new().schema_type(Type::String);
    match rule {
        ClusterIdRule::Uuid => {
            // Every form the uuid crate parses: hyphenated, simple, braced and URN, in either
            // case; none of them the nil UUID.
            let hex = |n: usize| format!("[0-9A-Fa-f]{{{n}}}");
            let hyphenated = format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12));
            let urn = "[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:";
            let nil = format!(r"(?:{urn})?\{{?[0-]+\}}?$");
            id.pattern(Some(format!(
                r"^(?!{nil})(?:{simple}|{hyphenated}|\{{{hyphenated}\}}|{urn}{hyphenated})$",
                simple = hex(32)
            )))
            .description(Some(
                "Stable identifier of the cluster: a UUID (hyphenated, simple, braced or URN), not \
                 the nil one",
            ))
        }
        ClusterIdRule::Relaxed => id
            .min_length(Some(1))
            .max_length(Some(MAX_RELAXED_CLUSTER_ID))
            .pattern(Some("^[A-Za-z0-9._-]+$"))
            .description(Some(
                "Stable identifier of the cluster: 1-128 characters of `[A-Za-z0-9._-]` (this \
                 collector takes relaxed ids)",
            )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::admin_openapi;
    use crate::api::clusters::WINDOW_DIGITS;
    use crate::api::deliveries::UNIX_SECONDS_DIGITS;
    use crate::api::query::MAX_PAGE;
    use crate::api::stats::MAX_WEEKS;
    use crate::stats::dimensions;
    use crate::store::CURSOR_SEQ_DIGITS;

    /// The schema of the parameter `name` of `method path` in `document`.
    fn parameter_schema(document: &Value, path: &str, method: &str, name: &str) -> Value {
        document["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no {name}"))["schema"]
            .clone()
    }

    /// The query parameters' bounds in the admin document are the ones the handlers enforce.
    #[test]
    fn the_documented_bounds_of_paging_and_weeks_are_the_enforced_ones() {
        let document = serde_json::to_value(admin_openapi()).unwrap();
        let parameter = |path: &str, name: &str| parameter_schema(&document, path, "get", name);
        for path in [
            "/api/v1/clusters",
            "/api/v1/clusters/{id}/reports",
            "/api/v1/deliveries",
        ] {
            let limit = parameter(path, "limit");
            assert_eq!(
                (&limit["minimum"], &limit["maximum"]),
                (&1.into(), &MAX_PAGE.into()),
                "{path}"
            );
        }
        let weeks = parameter("/api/v1/stats/weekly", "weeks");
        assert_eq!(
            (&weeks["minimum"], &weeks["maximum"]),
            (&1.into(), &MAX_WEEKS.into())
        );
    }

    /// The patterns of the string parameters state the parsers' own limits and names.
    #[test]
    fn the_documented_grammars_are_the_parsed_ones() {
        let document = serde_json::to_value(admin_openapi()).unwrap();
        let schema =
            |path: &str, method: &str, name: &str| parameter_schema(&document, path, method, name);
        assert_eq!(
            schema("/api/v1/stats", "get", "window")["pattern"],
            format!("^[1-9][0-9]{{0,{}}}[smhdw]$", WINDOW_DIGITS - 1)
        );
        assert_eq!(
            schema("/api/v1/deliveries", "get", "after")["pattern"],
            format!(r"^[\s\S]*:[0-9]{{1,{CURSOR_SEQ_DIGITS}}}$")
        );
        assert_eq!(
            schema("/api/v1/deliveries/requeue", "post", "since")["oneOf"][0]["pattern"],
            format!("^[0-9]{{1,{UNIX_SECONDS_DIGITS}}}$")
        );
        let dimension = schema("/api/v1/stats/weekly", "get", "dimension");
        let listed = dimension["pattern"]
            .as_str()
            .and_then(|pattern| pattern.strip_prefix("^(?:"))
            .and_then(|pattern| pattern.strip_suffix("|extension:.+)$"))
            .unwrap_or_else(|| panic!("{dimension}"));
        assert!(listed.split('|').eq(dimensions::names()), "{listed}");
    }
}
