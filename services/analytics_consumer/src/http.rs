//! The HTTP endpoint (warp): `/metrics` as JSON or Prometheus text, `/metrics/prometheus`,
//! `/healthz`, `/readyz`, the dashboard at `/`, and the playground's `/history` and
//! `/control` (`control_api`), whose `pipeline` figures are spliced into `/metrics`.
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

use crate::control_api::{ControlApi, MAX_BODY_BYTES, WriteHeaders};
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

fn not_found() -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": "not found", "status": 404})),
        StatusCode::NOT_FOUND,
    )
    .into_response()
}

fn not_ready() -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": "no metrics yet", "status": 503})),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .into_response()
}

fn prometheus_reply(rendered: &Rendered, api: Option<&ControlApi>) -> warp::reply::Response {
    match api.map(|api| api.view.borrow().clone()) {
        Some(view) if !view.json.is_empty() => {
            let mut text = rendered.prometheus.to_vec();
            text.extend_from_slice(prometheus::render_pipeline(&view.figures).as_bytes());
            body_reply(&text.into(), prometheus::CONTENT_TYPE)
        }
        _ => body_reply(&rendered.prometheus, prometheus::CONTENT_TYPE),
    }
}

/// The metrics JSON with `"pipeline": {...}` added as its last field, spliced as bytes so
/// that neither document is serialised again per request.
fn json_reply(rendered: &Rendered, api: Option<&ControlApi>) -> warp::reply::Response {
    let view = api.map(|api| api.view.borrow().clone());
    match view {
        Some(view) if !view.json.is_empty() && rendered.json.ends_with(b"}") => {
            let mut body = Vec::with_capacity(rendered.json.len() + view.json.len() + 16);
            body.extend_from_slice(&rendered.json[..rendered.json.len() - 1]);
            body.extend_from_slice(b",\"pipeline\":");
            body.extend_from_slice(&view.json);
            body.push(b'}');
            body_reply(&body.into(), "application/json")
        }
        _ => body_reply(&rendered.json, "application/json"),
    }
}

/// The routes without the playground (`/control`, `/history` answer 404), as the unit
/// tests serve them.
#[cfg(test)]
pub fn routes(
    published: Published,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    playground_routes(published, None)
}

/// Every route; `api` adds the pipeline figures, `/history` and `/control`.
pub fn playground_routes(
    published: Published,
    api: Option<Arc<ControlApi>>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let state = warp::any().map(move || published.clone());
    let api_state = warp::any().map(move || api.clone());
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .and(state.clone())
        .and(api_state.clone())
        .map(
            |accept: Option<String>, published: Published, api: Option<Arc<ControlApi>>| {
                match latest(&published) {
                    None => not_ready(),
                    Some(rendered) if wants_prometheus(accept.as_deref()) => {
                        prometheus_reply(&rendered, api.as_deref())
                    }
                    Some(rendered) => json_reply(&rendered, api.as_deref()),
                }
            },
        );
    let prometheus_path = warp::path!("metrics" / "prometheus")
        .and(warp::get())
        .and(state.clone())
        .and(api_state.clone())
        .map(
            |published: Published, api: Option<Arc<ControlApi>>| match latest(&published) {
                None => not_ready(),
                Some(rendered) => prometheus_reply(&rendered, api.as_deref()),
            },
        );
    let history = warp::path!("history")
        .and(warp::get())
        .and(api_state.clone())
        .map(|api: Option<Arc<ControlApi>>| match api {
            Some(api) => body_reply(&api.view.borrow().history_json, "application/json"),
            None => not_found(),
        });
    let control_read = warp::path!("control")
        .and(warp::get())
        .and(api_state.clone())
        .map(|api: Option<Arc<ControlApi>>| match api {
            Some(api) => api.read(),
            None => not_found(),
        });
    let write_headers = warp::header::optional::<String>("host")
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("content-type"))
        .map(|host, origin, authorization, content_type| WriteHeaders {
            host,
            origin,
            authorization,
            content_type,
        });
    let control_write = warp::path!("control")
        .and(warp::post())
        .and(api_state.clone())
        .and(write_headers)
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .then(
            |api: Option<Arc<ControlApi>>, headers: WriteHeaders, body: bytes::Bytes| async move {
                match api {
                    Some(api) => api.write_settings(headers, body).await,
                    None => not_found(),
                }
            },
        );
    let command_write = warp::path!("control" / "commands")
        .and(warp::post())
        .and(api_state)
        .and(write_headers)
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .then(
            |api: Option<Arc<ControlApi>>, headers: WriteHeaders, body: bytes::Bytes| async move {
                match api {
                    Some(api) => api.write_command(headers, body).await,
                    None => not_found(),
                }
            },
        );
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
        .or(history)
        .unify()
        .or(control_read)
        .unify()
        .or(control_write)
        .unify()
        .or(command_write)
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
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 16 KiB",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (StatusCode::LENGTH_REQUIRED, "writes need a Content-Length")
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
