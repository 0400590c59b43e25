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

/// A snapshot with its two bodies rendered once when published, so a request costs a clone
/// of bytes, not a serialisation: many dashboards polling must not slow consumption.
#[derive(Debug)]
pub struct Rendered {
    pub snapshot: MetricsSnapshot,
    json: bytes::Bytes,
    prometheus: bytes::Bytes,
}

impl Rendered {
    pub fn new(snapshot: MetricsSnapshot) -> Self {
        let json = serde_json::to_vec(&snapshot)
            .unwrap_or_else(|e| format!("{{\"error\":\"serialising metrics: {e}\"}}").into_bytes());
        let prometheus = prometheus::render(&snapshot);
        Self {
            snapshot,
            json: json.into(),
            prometheus: prometheus.into(),
        }
    }
}

/// What the handlers read: the latest rendered snapshot, if one has been published.
pub type Published = watch::Receiver<Option<Arc<Rendered>>>;

fn latest(published: &Published) -> Option<Arc<Rendered>> {
    published.borrow().clone()
}

fn body_reply(body: &bytes::Bytes, content_type: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.clone().into());
    response.headers_mut().insert(
        "content-type",
        warp::http::HeaderValue::from_static(content_type),
    );
    response
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

fn prometheus_reply(rendered: &Rendered) -> warp::reply::Response {
    body_reply(&rendered.prometheus, prometheus::CONTENT_TYPE)
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
                Some(rendered) if wants_prometheus(accept.as_deref()) => {
                    prometheus_reply(&rendered)
                }
                Some(rendered) => body_reply(&rendered.json, "application/json"),
            },
        );
    let prometheus_path = warp::path!("metrics" / "prometheus")
        .and(warp::get())
        .and(state.clone())
        .map(|published: Published| match latest(&published) {
            None => not_ready(),
            Some(rendered) => prometheus_reply(&rendered),
        });
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(state)
        .map(|published: Published| {
            let ready = latest(&published).is_some_and(|r| {
                r.snapshot.group.state == "Stable" && r.snapshot.group.assigned_partitions > 0
            });
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
