//! Route coverage as data: `openim-routes.toml` lists OpenIM v3.8's REST routes and whether we
//! serve each one; these tests keep it equal to the route table and the README's summary.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

use super::*;

#[derive(serde::Deserialize)]
struct Routes {
    route: Vec<Route>,
}

#[derive(serde::Deserialize)]
struct Route {
    path: String,
    service: String,
    #[serde(default)]
    method: Option<String>,
    served: bool,
}

const FILE: &str = "crates/openim-api/openim-routes.toml";

fn openim_routes() -> Vec<Route> {
    let text = include_str!("../../openim-routes.toml");
    toml::from_str::<Routes>(text).unwrap_or_else(|e| panic!("{FILE}: {e}")).route
}

#[test]
fn the_route_file_agrees_with_the_route_table() {
    let routes = openim_routes();
    let ours: BTreeSet<&str> = paths().into_iter().collect();
    assert_eq!(ours.len(), paths().len(), "a path is routed twice");
    let listed: BTreeSet<&str> = routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(listed.len(), routes.len(), "{FILE} lists a path twice");

    let missing: Vec<&str> =
        routes.iter().filter(|r| r.served && !ours.contains(r.path.as_str())).map(|r| r.path.as_str()).collect();
    assert!(missing.is_empty(), "{FILE} says these are served, but the route table has no such path: {missing:?}");
    let unmarked: Vec<&str> =
        routes.iter().filter(|r| !r.served && ours.contains(r.path.as_str())).map(|r| r.path.as_str()).collect();
    assert!(unmarked.is_empty(), "served, but `served = false` in {FILE}: {unmarked:?}");
    let unknown: Vec<&&str> = ours.iter().filter(|p| !listed.contains(**p)).collect();
    assert!(unknown.is_empty(), "routed but not an OpenIM v3.8 route (add it to {FILE} if it is one): {unknown:?}");
}

/// Every listed route answers as the file says: a served one is routed (not 404, not 405), an
/// unserved one is a 404. Requests carry no token, so nothing reaches a service.
#[tokio::test]
async fn served_routes_answer_and_the_others_are_404() {
    let addrs = openim_common::config::RpcAddresses {
        auth: "http://127.0.0.1:9".into(),
        user: "http://127.0.0.1:9".into(),
        friend: "http://127.0.0.1:9".into(),
        group: "http://127.0.0.1:9".into(),
        conversation: "http://127.0.0.1:9".into(),
        msg: "http://127.0.0.1:9".into(),
        third: "http://127.0.0.1:9".into(),
        msggateway: Vec::new(),
    };
    let key = openim_common::service_auth::ServiceKey::derive("route-tests");
    let clients = openim_common::rpc::Clients::remote(&addrs, &key).unwrap();
    let app = crate::router(openim_common::config::Share::default(), clients, crate::ObjectRoutes::default());
    for r in openim_routes() {
        let method = r.method.as_deref().unwrap_or("POST");
        // Wildcard routes (`/object/*name`) are probed with a concrete name.
        let uri = r.path.replace("*name", "some/object");
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("operationID", "route-test")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status();
        if r.served {
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {} is marked served but answers {status}",
                r.path
            );
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {} is marked unserved but answers", r.path);
        }
    }
}

/// The README's coverage table, per OpenIM service.
fn coverage_table(routes: &[Route]) -> String {
    let mut by_service: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in routes {
        let e = by_service.entry(r.service.as_str()).or_default();
        e.0 += usize::from(r.served);
        e.1 += 1;
    }
    let served: usize = by_service.values().map(|v| v.0).sum();
    let mut out = String::from("| OpenIM service | routes served |\n| --- | --- |\n");
    for (service, (s, t)) in &by_service {
        out.push_str(&format!("| {service} | {s} / {t} |\n"));
    }
    out.push_str(&format!("| **all** | **{served} / {}** |\n", routes.len()));
    out
}

#[test]
fn the_readme_shows_the_route_coverage() {
    let readme = include_str!("../../../../README.md");
    let table = coverage_table(&openim_routes());
    assert!(readme.contains(&table), "README.md's route coverage is out of date; it should read:\n\n{table}");
}
