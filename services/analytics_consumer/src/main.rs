//! `analytics-consumer`: a static group member that keeps rolling metrics over both topics and
//! serves them over HTTP (`GET /metrics`, Prometheus, health, and a live dashboard).
//!
//! This file wires settings, telemetry, shutdown, the HTTP server and the consume loop
//! together, and answers the `healthcheck` subcommand for images without curl.

mod consume;
mod control_api;
mod dedup;
mod http;
mod metrics;
mod pipeline;
mod prometheus;
mod settings;
mod window;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use shared::cli::{ServiceInfo, Startup};

use settings::AnalyticsSettings;

const INFO: ServiceInfo = ServiceInfo {
    binary: "analytics-consumer",
    version: env!("CARGO_PKG_VERSION"),
    about: "Keeps rolling metrics over orders and outcomes and serves them over HTTP.",
    default_env_file: "services/analytics_consumer/analytics.env",
    subcommands: &[(
        "healthcheck",
        "ask the running service's /healthz; exit 0 if healthy, 1 if not",
    )],
};

/// glibc's malloc took about a third of the CPU time in profiles of the producer and the
/// inventory consumer (many small, short-lived allocations per record); mimalloc is built for
/// exactly that pattern.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    shared::memory::release_freed_memory_promptly();
    match shared::cli::start(
        &INFO,
        &settings::variables(),
        AnalyticsSettings::from_source,
    ) {
        Startup::Run(settings) => match run(settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Startup::Subcommand(_, settings) => healthcheck(&settings),
        Startup::Exit(code) => ExitCode::from(code as u8),
    }
}

#[tokio::main]
async fn run(settings: AnalyticsSettings) -> anyhow::Result<()> {
    let shutdown =
        shared::shutdown::Shutdown::on_signals().context("installing signal handlers")?;
    let address = SocketAddr::new(settings.http_host, settings.http_port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} (HTTP_HOST, HTTP_PORT)"))?;
    tracing::info!(%address, "serving /metrics, /metrics/prometheus, /healthz, /readyz and the dashboard at /");
    let (published_tx, published_rx) = tokio::sync::watch::channel(None);
    let (view, writer) = pipeline::start(
        settings.connection.clone(),
        settings.pipeline.clone(),
        settings.order_topic.clone(),
        published_rx.clone(),
        shutdown.clone(),
    );
    let api = std::sync::Arc::new(control_api::ControlApi::new(
        view,
        writer,
        &settings.pipeline,
    ));
    let stop_serving = shutdown.clone();
    let server = tokio::spawn(
        warp::serve(http::playground_routes(published_rx, Some(api)))
            .incoming(listener)
            .graceful(async move { stop_serving.cancelled().await })
            .run(),
    );
    let outcome = consume::run(settings, published_tx, shutdown.clone()).await;
    shutdown.trigger();
    let _ = server.await;
    outcome
}

/// GET /healthz on the local port with a plain HTTP/1.0 request (the scratch image has no
/// curl); exit 0 only on a 200.
fn healthcheck(settings: &AnalyticsSettings) -> ExitCode {
    let host = if settings.http_host.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        settings.http_host
    };
    let address = SocketAddr::new(host, settings.http_port);
    let answer = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })();
    match answer {
        Ok(response)
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") =>
        {
            println!("healthy: {address}");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!(
                "unhealthy: {address} answered {:?}",
                response.lines().next().unwrap_or("")
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {address}: {e}");
            ExitCode::FAILURE
        }
    }
}
