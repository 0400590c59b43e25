//! `GET /control` (desired and effective live settings, open to read) and `POST /control`,
//! `POST /control/commands` (writes that change the pipeline, guarded).
//!
//! A write is checked whole before anything is written: every value against the rule its
//! service published (the env file's own validator and message), so one bad value means
//! nothing is written. The guards answer the browser threats a control endpoint on a laptop
//! faces: `Host` must be on `HTTP_ALLOWED_HOSTS` (DNS rebinding), an `Origin`, when sent, must
//! be the page's own (cross-site forms and fetches), the body must be JSON (a form post cannot
//! send that without a CORS preflight we never answer), and `CONTROL_TOKEN`, when set, must be
//! sent as a bearer token.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shared::control::{Command, ControlRecord};
use warp::http::StatusCode;
use warp::reply::Reply;

use crate::pipeline::writer::ControlWriter;
use crate::pipeline::{PipelineSettings, PipelineWatch};

/// Largest accepted body: a full set of knobs for every service is well under 2 KB.
pub const MAX_BODY_BYTES: u64 = 16 * 1024;

/// The headers a write is judged by.
#[derive(Debug, Default, Clone)]
pub struct WriteHeaders {
    pub host: Option<String>,
    pub origin: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
}

pub struct ControlApi {
    pub view: PipelineWatch,
    pub writer: ControlWriter,
    token: Option<String>,
    allowed_hosts: Vec<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> warp::reply::Response {
    let message = message.into();
    warp::reply::with_status(
        warp::reply::json(&json!({"error": message, "status": status.as_u16()})),
        status,
    )
    .into_response()
}

/// The host part of a `Host` header (`name`, `name:port`, `[v6]:port`), lower-cased.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how much of a guessed token was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A JSON value as the env file would spell it; `None` for a reset (null).
fn as_setting_value(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(flag) => Ok(Some(if *flag { "1" } else { "0" }.to_owned())),
        _ => Err(
            "a string, a number, true/false, or null to return to the start-up value".to_owned(),
        ),
    }
}

impl ControlApi {
    pub fn new(view: PipelineWatch, writer: ControlWriter, settings: &PipelineSettings) -> Self {
        Self {
            view,
            writer,
            token: settings.control_token.clone(),
            allowed_hosts: settings.allowed_hosts.clone(),
        }
    }

    /// GET /control.
    pub fn read(&self) -> warp::reply::Response {
        let view = self.view.borrow().clone();
        let knobs: BTreeMap<&String, Value> = view
            .catalogues
            .iter()
            .map(|(service, c)| (service, json!({"knobs": c.knobs, "commands": c.commands})))
            .collect();
        warp::reply::json(&json!({
            "desired": view.desired,
            "effective": view.figures.settings,
            "live": knobs,
            "services": view.figures.services,
            "token_required": self.token.is_some(),
        }))
        .into_response()
    }

    /// The guards every write passes before its body is looked at.
    fn guard(&self, headers: &WriteHeaders) -> Result<(), Box<warp::reply::Response>> {
        let host = headers.host.as_deref().unwrap_or_default();
        if !self.allowed_hosts.contains(&host_name(host)) {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not in HTTP_ALLOWED_HOSTS ({})",
                    self.allowed_hosts.join(", ")
                ),
            )));
        }
        if let Some(origin) = &headers.origin {
            let own = [format!("http://{host}"), format!("https://{host}")];
            if !own.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Err(Box::new(error(
                    StatusCode::FORBIDDEN,
                    format!("Origin {origin:?} is not this page's own (http://{host})"),
                )));
            }
        }
        if let Some(token) = &self.token {
            let sent = headers
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !same_secret(sent.trim(), token) {
                return Err(Box::new(error(
                    StatusCode::UNAUTHORIZED,
                    "writes need Authorization: Bearer <CONTROL_TOKEN>",
                )));
            }
        }
        let json_body = headers
            .content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
        if !json_body {
            return Err(Box::new(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "writes need Content-Type: application/json",
            )));
        }
        Ok(())
    }

    /// POST /control: `{"service": {"SETTING": value | null, ...}, ...}`.
    pub async fn write_settings(
        &self,
        headers: WriteHeaders,
        body: bytes::Bytes,
    ) -> warp::reply::Response {
        if let Err(refused) = self.guard(&headers) {
            return *refused;
        }
        let parsed: Value = match serde_json::from_slice(&body) {
            Ok(parsed) => parsed,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not JSON: {e}"),
                );
            }
        };
        let records = match self.validate_settings(&parsed) {
            Ok(records) if records.is_empty() => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "nothing to change: name a service and a setting",
                );
            }
            Ok(records) => records,
            Err(errors) => {
                let first = errors
                    .first()
                    .and_then(|e| e.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or("invalid control input")
                    .to_owned();
                return warp::reply::with_status(
                    warp::reply::json(&json!({"error": first, "errors": errors, "status": 400})),
                    StatusCode::BAD_REQUEST,
                )
                .into_response();
            }
        };
        let mut accepted: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for record in &records {
            if let ControlRecord::Setting {
                service,
                setting,
                value,
            } = record
            {
                accepted.entry(service.clone()).or_default().insert(
                    setting.clone(),
                    value.clone().map_or(Value::Null, Value::String),
                );
            }
        }
        self.write(&records, json!({"accepted": accepted})).await
    }

    fn validate_settings(&self, body: &Value) -> Result<Vec<ControlRecord>, Vec<Value>> {
        let Some(services) = body.as_object() else {
            return Err(vec![
                json!({"error": "the body must be a JSON object: {\"service\": {\"SETTING\": value}}"}),
            ]);
        };
        let view = self.view.borrow().clone();
        let mut errors = Vec::new();
        let mut records = Vec::new();
        for (service, settings) in services {
            let Some(catalogue) = view.catalogues.get(service) else {
                let known: Vec<&String> = view.catalogues.keys().collect();
                errors.push(json!({
                    "service": service,
                    "error": format!("unknown service {service:?} (known: {})", known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                }));
                continue;
            };
            let Some(settings) = settings.as_object() else {
                errors.push(json!({"service": service, "error": format!("{service}: expected an object of SETTING: value")}));
                continue;
            };
            for (setting, value) in settings {
                let fail = |message: String| json!({"service": service, "setting": setting, "value": value, "error": format!("{service}: {message}")});
                let Some(rule) = catalogue.knobs.get(setting) else {
                    let live: Vec<&str> = catalogue.knobs.keys().map(String::as_str).collect();
                    errors.push(fail(format!(
                        "{setting} is not a live setting (live: {})",
                        live.join(", ")
                    )));
                    continue;
                };
                let text = match as_setting_value(value) {
                    Ok(text) => text,
                    Err(accepted) => {
                        errors.push(fail(format!(
                            "invalid value for {setting}: {value} (accepted: {accepted})"
                        )));
                        continue;
                    }
                };
                if let Some(text) = &text
                    && let Err(e) = rule.check(setting, text)
                {
                    errors.push(fail(e.to_string()));
                    continue;
                }
                records.push(ControlRecord::Setting {
                    service: service.clone(),
                    setting: setting.clone(),
                    value: text,
                });
            }
        }
        if errors.is_empty() {
            Ok(records)
        } else {
            Err(errors)
        }
    }

    /// POST /control/commands: `{"service": "...", "command": "burst", "count": 5000}`.
    pub async fn write_command(
        &self,
        headers: WriteHeaders,
        body: bytes::Bytes,
    ) -> warp::reply::Response {
        if let Err(refused) = self.guard(&headers) {
            return *refused;
        }
        let parsed: Value = match serde_json::from_slice(&body) {
            Ok(parsed) => parsed,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not JSON: {e}"),
                );
            }
        };
        let service = parsed
            .get("service")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let command = parsed
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let count = parsed.get("count");
        let view = self.view.borrow().clone();
        let Some(catalogue) = view.catalogues.get(service) else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown service {service:?}"),
            );
        };
        if !catalogue.commands.iter().any(|c| c == command) {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{service}: unknown command {command:?} (accepted: {})",
                    catalogue.commands.join(", ")
                ),
            );
        }
        let count = match count {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64().filter(|n| (1..=10_000_000).contains(n)) {
                Some(n) => Some(n),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "{service}: invalid count {value} (accepted: a whole number from 1 to 10000000)"
                        ),
                    );
                }
            },
        };
        let command = Command {
            id: uuid::Uuid::new_v4().to_string(),
            command: command.to_owned(),
            count,
        };
        let accepted = json!({"accepted": {"service": service, "command": command}});
        self.write(
            &[ControlRecord::Command {
                service: service.to_owned(),
                command,
            }],
            accepted,
        )
        .await
    }

    async fn write(&self, records: &[ControlRecord], mut answer: Value) -> warp::reply::Response {
        match self.writer.write(records).await {
            Ok(offsets) => {
                answer["topic"] = Value::from(self.writer.topic());
                answer["offsets"] = json!(offsets);
                warp::reply::json(&answer).into_response()
            }
            Err(e) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("could not write the control records: {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("Example.COM"), "example.com");
    }

    #[test]
    fn values_are_spelt_as_in_the_env_file() {
        assert_eq!(as_setting_value(&json!(3000)), Ok(Some("3000".into())));
        assert_eq!(as_setting_value(&json!(0.2)), Ok(Some("0.2".into())));
        assert_eq!(
            as_setting_value(&json!("steady")),
            Ok(Some("steady".into()))
        );
        assert_eq!(as_setting_value(&Value::Null), Ok(None));
        assert!(as_setting_value(&json!([1])).is_err());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
