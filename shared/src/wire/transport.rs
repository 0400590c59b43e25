//! The byte stream under a [`super::BrokerConnection`]: TCP, or TLS over TCP.
//!
//! TLS roots come from `SSL_CA_LOCATION` when set, else from the system store (the images ship
//! CA certificates), so managed clusters work without extra files.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::security;
use crate::settings::SecuritySettings;

use super::WireError;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub async fn open(
    address: &str,
    security: &SecuritySettings,
) -> Result<Box<dyn Stream>, WireError> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| WireError::Io(format!("connect to {address}: {e}")))?;
    // Kafka requests are small and latency-bound; Nagle only delays them.
    let _ = tcp.set_nodelay(true);
    if !security.protocol.uses_tls() {
        return Ok(Box::new(tcp));
    }
    let tls_config =
        security::tls_client_config(security).map_err(|e| WireError::Tls(e.to_string()))?;
    let host = address
        .rsplit_once(':')
        .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(address);
    let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| WireError::Tls(format!("bad server name {host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(&tls_config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| WireError::Tls(format!("handshake with {address}: {e}")))?;
    Ok(Box::new(stream))
}
