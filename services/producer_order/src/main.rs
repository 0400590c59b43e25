//! `producer-order`: bursts configurable order events into the order topic.
//!
//! This file only wires settings, telemetry and shutdown together; the generator arrives with
//! its own issue. Until then the service checks that the broker answers and exits.

mod settings;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use shared::cli::{ServiceInfo, Startup};

use settings::ProducerSettings;

const INFO: ServiceInfo = ServiceInfo {
    binary: "producer-order",
    version: env!("CARGO_PKG_VERSION"),
    about: "Bursts configurable order events (JSON) into the order topic.",
    default_env_file: "services/producer_order/producer.env",
    subcommands: &[],
};

fn main() -> ExitCode {
    let settings =
        match shared::cli::start(&INFO, &settings::variables(), ProducerSettings::from_source) {
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
async fn run(settings: ProducerSettings) -> anyhow::Result<()> {
    let shutdown =
        shared::shutdown::Shutdown::on_signals().context("installing signal handlers")?;
    tracing::info!(topic = %settings.order_topic, mode = ?settings.mode, total = settings.total_events, "producer-order starting");
    tokio::select! {
        connected = shared::connect::data_client(&settings.connection, Duration::from_secs(30)) => {
            connected.context("connecting to Kafka")?;
            tracing::info!("broker reachable; order generation is not implemented yet");
        }
        _ = shutdown.cancelled() => tracing::info!("stopped before connecting"),
    }
    Ok(())
}
