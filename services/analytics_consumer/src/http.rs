//! The HTTP endpoint (warp): `/metrics` as JSON or Prometheus text, `/metrics/prometheus`,
//! `/healthz`, `/readyz`, and the dashboard at `/`.
//!
//! Handlers only read the latest published snapshot from a watch channel (an `Arc` clone, no
//! lock held across an await), so serving never slows consumption. Unknown paths and methods
//! get JSON errors with the right status.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply;

use crate::metrics::MetricsSnapshot;
use crate::prometheus;

const DASHBOARD: &str = include_str!("dashboard.html");

/// What the handlers read: the latest snapshot, if one has been published.
pub type Published = watch::Receiver<Option<Arc<MetricsSnapshot>>>;

fn latest(published: &Published) -> Option<Arc<MetricsSnapshot>> {
    published.borrow().clone()
}

/// Prometheus scrapers ask for text (or OpenMetrics, for which text 0.0.4 is the fallback);
/// browsers and scripts get JSON.
fn wants_prometheus(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/plain") || a.contains("openmetrics"))
}

fn not_ready() -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": "no metrics yet", "status": 503})),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .into_response()
}

fn prometheus_reply(snapshot: &MetricsSnapshot) -> warp::reply::Response {
    warp::reply::with_header(
        prometheus::render(snapshot),
        "content-type",
        prometheus::CONTENT_TYPE,
    )
    .into_response()
}

pub fn routes(
    published: Published,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let state = warp::any().map(move || published.clone());
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .and(state.clone())
        .map(
            |accept: Option<String>, published: Published| match latest(&published) {
                None => not_ready(),
                Some(snapshot) if wants_prometheus(accept.as_deref()) => {
                    prometheus_reply(&snapshot)
                }
                Some(snapshot) => warp::reply::json(&*snapshot).into_response(),
            },
        );
    let prometheus_path = warp::path!("metrics" / "prometheus")
        .and(warp::get())
        .and(state.clone())
        .map(|published: Published| match latest(&published) {
            None => not_ready(),
            Some(snapshot) => prometheus_reply(&snapshot),
        });
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(state)
        .map(|published: Published| {
            let ready = latest(&published)
                .is_some_and(|s| s.group.state == "Stable" && s.group.assigned_partitions > 0);
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            warp::reply::with_status(warp::reply::json(&json!({"ready": ready})), status)
                .into_response()
        });
    let dashboard = warp::path::end()
        .and(warp::get())
        .map(|| warp::reply::html(DASHBOARD).into_response());
    metrics
        .or(prometheus_path)
        .unify()
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(dashboard)
        .unify()
        .recover(reject_as_json)
        .unify()
}

async fn reject_as_json(rejection: warp::Rejection) -> Result<warp::reply::Response, Infallible> {
    let (status, message) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not found")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else {
        (StatusCode::BAD_REQUEST, "bad request")
    };
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({"error": message, "status": status.as_u16()})),
        status,
    )
    .into_response())
}

#[cfg(test)]
mod tests;
