//! One request/response connection to one broker.
//!
//! Framing is Kafka's: a big-endian i32 length, the request header, the body. Bodies and headers
//! are the `kafka-protocol` structs; this file only chooses versions and moves bytes. Every
//! response passes [`super::frame`] (a bounded length prefix) and [`super::shape`] (every count
//! backed by bytes) before it is decoded. A request that times out, or an answer that is
//! refused, poisons the connection (a late answer would be read as the next one's, and a peer
//! that sent garbage once is not trusted again), so the caller must reconnect.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Message, Request, StrBytes};
use tokio::io::AsyncWriteExt;

use crate::settings::SecuritySettings;

use super::frame::{self, FrameError};
use super::shape::{self, FrameFault, ResponseError};
use super::transport::{self, Stream};

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("SASL: {0}")]
    Sasl(String),
    #[error("{api:?} timed out after {after:?} on {address}")]
    Timeout {
        api: ApiKey,
        address: String,
        after: Duration,
    },
    #[error("encoding {api:?} v{version}: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("decoding {api:?} v{version} from {address}: {reason}")]
    Decode {
        api: ApiKey,
        version: i16,
        address: String,
        reason: String,
    },
    #[error("{address} sent {reason}; the connection is closed")]
    FrameRefused {
        address: String,
        #[source]
        reason: FrameError,
    },
    #[error("{api:?} v{version} from {address}: {fault}; the connection is closed")]
    Malformed {
        api: ApiKey,
        version: i16,
        address: String,
        #[source]
        fault: FrameFault,
    },
    #[error("{address} answered correlation id {got} to request {expected}")]
    CorrelationMismatch {
        address: String,
        expected: i32,
        got: i32,
    },
    #[error(
        "{address} supports no version of {api:?} in {wanted_min}..={wanted_max} (it offers {offered})"
    )]
    NoCommonVersion {
        api: ApiKey,
        address: String,
        wanted_min: i16,
        wanted_max: i16,
        offered: String,
    },
    #[error("the connection to {0} is unusable after an earlier failure; reconnect")]
    Poisoned(String),
}

impl WireError {
    /// Failures of the transport itself (as opposed to a version or protocol mismatch), after
    /// which a new connection may succeed. A refused frame counts: it is what a broken proxy,
    /// a half-written answer or a hostile peer sends, and the next connection may reach a
    /// broker that answers properly (librdkafka likewise drops the connection and reconnects
    /// when a response exceeds `receive.message.max.bytes`).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Io(_)
                | Self::Timeout { .. }
                | Self::Poisoned(_)
                | Self::CorrelationMismatch { .. }
                | Self::FrameRefused { .. }
                | Self::Malformed { .. }
        )
    }
}

/// The versions of one API a broker supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    pub min: i16,
    pub max: i16,
}

pub struct BrokerConnection {
    address: String,
    stream: Box<dyn Stream>,
    client_id: StrBytes,
    next_correlation_id: i32,
    request_timeout: Duration,
    supported: HashMap<i16, ApiVersionRange>,
    poisoned: bool,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("address", &self.address)
            .field("client_id", &self.client_id)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl BrokerConnection {
    /// Opens a connection, asks the broker which API versions it supports and authenticates
    /// if the settings ask for SASL.
    pub async fn connect(
        address: &str,
        security: &SecuritySettings,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Self, WireError> {
        let stream = tokio::time::timeout(request_timeout, transport::open(address, security))
            .await
            .map_err(|_| {
                WireError::Io(format!(
                    "connect to {address}: timed out after {request_timeout:?}"
                ))
            })??;
        let mut connection = Self {
            address: address.to_owned(),
            stream,
            client_id: StrBytes::from_string(client_id.to_owned()),
            next_correlation_id: 0,
            request_timeout,
            supported: HashMap::new(),
            poisoned: false,
        };
        connection.supported = connection.fetch_api_versions().await?;
        if let Some(credentials) = &security.sasl {
            super::sasl::authenticate(&mut connection, credentials).await?;
        }
        Ok(connection)
    }

    /// The authenticated socket and its next correlation id, for the producer, which pipelines.
    pub(crate) fn into_stream(self) -> (Box<dyn Stream>, i32) {
        (self.stream, self.next_correlation_id)
    }

    /// Changes the time allowed for each later request (JoinGroup needs longer than most).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The broker's version range for an API, if it supports it at all.
    pub fn supported_range(&self, api: ApiKey) -> Option<ApiVersionRange> {
        self.supported.get(&(api as i16)).copied()
    }

    /// The highest version of `R` that we want, the crate can encode and the broker accepts.
    pub fn negotiate<R: Request>(&self, wanted: RangeInclusive<i16>) -> Result<i16, WireError> {
        let api = api_key::<R>();
        let crate_range = R::VERSIONS;
        let broker = self.supported_range(api);
        let high = (*wanted.end())
            .min(crate_range.max)
            .min(broker.map_or(i16::MIN, |b| b.max));
        let low = (*wanted.start())
            .max(crate_range.min)
            .max(broker.map_or(i16::MAX, |b| b.min));
        if broker.is_none() || low > high {
            return Err(WireError::NoCommonVersion {
                api,
                address: self.address.clone(),
                wanted_min: *wanted.start(),
                wanted_max: *wanted.end(),
                offered: broker
                    .map_or_else(|| "none".to_owned(), |b| format!("{}..={}", b.min, b.max)),
            });
        }
        Ok(high)
    }

    /// Sends one request at the given version and waits for its response.
    pub async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let api = api_key::<R>();
        let frame = self
            .exchange(api, version, R::header_version(version), request)
            .await?;
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        shape::decode_response(api, version, header_version, frame)
            .map_err(|e| self.refuse(api, version, e))
    }

    /// ApiVersions is special: a broker that does not know our version answers in v0 layout.
    async fn fetch_api_versions(&mut self) -> Result<HashMap<i16, ApiVersionRange>, WireError> {
        let version = ApiVersionsRequest::VERSIONS.max.min(3);
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("streaming-kafka"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let api = ApiKey::ApiVersions;
        let frame = self
            .exchange(
                api,
                version,
                ApiVersionsRequest::header_version(version),
                &request,
            )
            .await?;
        // The response header of ApiVersions is always v0, whatever the request version.
        let asked = shape::decode_response::<ApiVersionsResponse>(api, version, 0, frame.clone());
        let response = match asked {
            Ok(response) if response.error_code == 0 => response,
            asked => match shape::decode_response::<ApiVersionsResponse>(api, 0, 0, frame) {
                Ok(response) => response,
                // Neither layout fits: the failure at the version we asked names the problem.
                Err(v0_error) => {
                    return Err(match asked {
                        Err(error) => self.refuse(api, version, error),
                        Ok(_) => self.refuse(api, 0, v0_error),
                    });
                }
            },
        };
        Ok(response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    ApiVersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect())
    }

    /// Writes one framed request and reads one framed response, returning its bytes.
    async fn exchange<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        header_version: i16,
        request: &R,
    ) -> Result<Bytes, WireError> {
        if self.poisoned {
            return Err(WireError::Poisoned(self.address.clone()));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = self.frame(api, version, header_version, correlation_id, request)?;
        let timeout = self.request_timeout;
        let outcome = tokio::time::timeout(timeout, self.round_trip(&frame)).await;
        let body = match outcome {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                self.poisoned = true;
                return Err(e);
            }
            Err(_) => {
                self.poisoned = true;
                return Err(WireError::Timeout {
                    api,
                    address: self.address.clone(),
                    after: timeout,
                });
            }
        };
        if body.len() < 4 {
            self.poisoned = true;
            return Err(self.decode_error(api, version, "response shorter than its header"));
        }
        let got = body.clone().get_i32();
        if got != correlation_id {
            self.poisoned = true;
            return Err(WireError::CorrelationMismatch {
                address: self.address.clone(),
                expected: correlation_id,
                got,
            });
        }
        Ok(body)
    }

    fn frame<R: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        header_version: i16,
        correlation_id: i32,
        request: &R,
    ) -> Result<BytesMut, WireError> {
        let encode_error = |reason: String| WireError::Encode {
            api,
            version,
            reason,
        };
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0); // length, patched below
        header
            .encode(&mut frame, header_version)
            .map_err(|e| encode_error(e.to_string()))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| encode_error(e.to_string()))?;
        let length = i32::try_from(frame.len() - 4)
            .map_err(|_| encode_error("request larger than 2 GiB".into()))?;
        frame[..4].copy_from_slice(&length.to_be_bytes());
        Ok(frame)
    }

    async fn round_trip(&mut self, frame: &[u8]) -> Result<Bytes, WireError> {
        let io =
            |what: &str, e: std::io::Error| WireError::Io(format!("{what} {}: {e}", self.address));
        self.stream
            .write_all(frame)
            .await
            .map_err(|e| io("write to", e))?;
        self.stream.flush().await.map_err(|e| io("write to", e))?;
        frame::read_frame(&mut self.stream)
            .await
            .map_err(|reason| match reason {
                FrameError::Io(e) => io("read from", e),
                reason => {
                    let error = WireError::FrameRefused {
                        address: self.address.clone(),
                        reason,
                    };
                    // Rare and telling (a corrupt or hostile peer), so said once per frame
                    // whatever the caller does with the error.
                    tracing::warn!(%error, "refused a response frame");
                    error
                }
            })
    }

    /// A response that does not decode: the connection is not used again.
    fn refuse(&mut self, api: ApiKey, version: i16, error: ResponseError) -> WireError {
        self.poisoned = true;
        match error {
            ResponseError::Malformed(fault) => {
                let error = WireError::Malformed {
                    api,
                    version,
                    address: self.address.clone(),
                    fault,
                };
                tracing::warn!(%error, "refused a malformed response");
                error
            }
            ResponseError::Decode(reason) => self.decode_error(api, version, reason),
        }
    }

    fn decode_error(&self, api: ApiKey, version: i16, reason: impl std::fmt::Display) -> WireError {
        WireError::Decode {
            api,
            version,
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }
}

fn api_key<R: Request>() -> ApiKey {
    // `R::KEY` comes from the crate's generated table, so the conversion cannot fail for a
    // request type it defines; fall back to ApiVersions only to keep this total.
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}
