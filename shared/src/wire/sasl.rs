//! SASL authentication on our own connections (SaslHandshake v1 + SaslAuthenticate).
//!
//! Only PLAIN is implemented here; SCRAM runs on the data path through rskafka, and asking for
//! it on our connection is a clear error rather than a silent downgrade.

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use crate::settings::{SaslCredentials, SaslMechanism};

use super::{BrokerConnection, WireError};

pub async fn authenticate(
    connection: &mut BrokerConnection,
    credentials: &SaslCredentials,
) -> Result<(), WireError> {
    let mechanism = match credentials.mechanism {
        SaslMechanism::Plain => "PLAIN",
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            return Err(WireError::Sasl(
                "SCRAM is not supported on the admin/group connection yet; use SASL_MECHANISM=PLAIN"
                    .into(),
            ));
        }
    };
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    let response = connection.send(1, &handshake).await?;
    if response.error_code != 0 {
        return Err(WireError::Sasl(format!(
            "broker refused mechanism {mechanism} (error code {}, it offers {:?})",
            response.error_code,
            response
                .mechanisms
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
        )));
    }
    // RFC 4616: authzid NUL authcid NUL passwd.
    let mut token = Vec::with_capacity(credentials.username.len() + credentials.password.len() + 2);
    token.push(0);
    token.extend_from_slice(credentials.username.as_bytes());
    token.push(0);
    token.extend_from_slice(credentials.password.as_bytes());
    let version = connection.negotiate::<SaslAuthenticateRequest>(0..=2)?;
    let authenticate = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    let response = connection.send(version, &authenticate).await?;
    if response.error_code != 0 {
        return Err(WireError::Sasl(format!(
            "authentication failed for user {:?}: {}",
            credentials.username,
            response
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_else(|| format!("error code {}", response.error_code))
        )));
    }
    Ok(())
}
