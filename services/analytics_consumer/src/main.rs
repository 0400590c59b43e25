//! `analytics-consumer`: a static group member that keeps rolling metrics over both topics and
//! serves them over HTTP.
//!
//! This file only wires settings, telemetry and shutdown together; the consumer and its HTTP
//! endpoint arrive with their own issue. Until then the service waits for its topics and exits.

mod settings;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use shared::admin::TopicAdmin;
use shared::cli::{ServiceInfo, Startup};

use settings::AnalyticsSettings;

const INFO: ServiceInfo = ServiceInfo {
    binary: "analytics-consumer",
    version: env!("CARGO_PKG_VERSION"),
    about: "Keeps rolling metrics over orders and outcomes and serves them over HTTP.",
    default_env_file: "services/analytics_consumer/analytics.env",
    subcommands: &[],
};

fn main() -> ExitCode {
    let settings = match shared::cli::start(
        &INFO,
        &settings::variables(),
        AnalyticsSettings::from_source,
    ) {
        Startup::Run(settings) | Startup::Subcommand(_, settings) => settings,
        Startup::Exit(code) => return ExitCode::from(code as u8),
    };
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(settings: AnalyticsSettings) -> anyhow::Result<()> {
    let shutdown =
        shared::shutdown::Shutdown::on_signals().context("installing signal handlers")?;
    tracing::info!(
        group = %settings.group_id,
        instance = settings.group_instance_id.as_deref().unwrap_or("(dynamic)"),
        window = ?settings.window,
        "analytics-consumer starting"
    );
    let topics = [
        settings.order_topic.as_str(),
        settings.inventory_topic.as_str(),
    ];
    tokio::select! {
        waited = async {
            let mut admin = TopicAdmin::connect(&settings.connection, Duration::from_secs(30)).await?;
            admin.wait_for_topics(&topics, &settings.topic_wait).await
        } => {
            waited.context("waiting for topics")?;
            tracing::info!("topics exist; analytics are not implemented yet");
        }
        _ = shutdown.cancelled() => tracing::info!("stopped while waiting for topics"),
    }
    Ok(())
}
