//! Logging for every service: `tracing` with a `RUST_LOG` filter, as human-readable text or as
//! one JSON object per line (`LOG_FORMAT=json`) for log shippers.
//!
//! It only installs the subscriber; what to log is each module's business. The filter comes
//! from settings (not read from the environment here) so an env file can set it too.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "invalid value for RUST_LOG: {value:?} (accepted: a tracing filter such as info or shared=debug,info): {reason}"
    )]
    BadFilter { value: String, reason: String },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. Logs go to stderr so stdout stays free for summaries.
pub fn init(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|e| TelemetryError::BadFilter {
        value: filter.to_owned(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.with_target(true).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}
