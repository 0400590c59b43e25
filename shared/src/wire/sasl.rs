//! SASL authentication on our own connections (SaslHandshake v1 + SaslAuthenticate).
//!
//! PLAIN sends the credentials in one message; SCRAM-SHA-256/512 runs the three-message
//! exchange of `scram` and checks the server's signature. The same settings as the data path
//! (rskafka), so admin, group and produce connections authenticate like fetches do.

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use crate::settings::{SaslCredentials, SaslMechanism};

use super::scram::{ScramClient, ScramHash};

use super::{BrokerConnection, WireError};

pub async fn authenticate(
    connection: &mut BrokerConnection,
    credentials: &SaslCredentials,
) -> Result<(), WireError> {
    let scram = match credentials.mechanism {
        SaslMechanism::Plain => None,
        SaslMechanism::ScramSha256 => Some(ScramHash::Sha256),
        SaslMechanism::ScramSha512 => Some(ScramHash::Sha512),
    };
    let mechanism = scram.map_or("PLAIN", ScramHash::mechanism);
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
    let version = connection.negotiate::<SaslAuthenticateRequest>(0..=2)?;
    if let Some(hash) = scram {
        return authenticate_scram(connection, version, hash, credentials).await;
    }
    // RFC 4616: authzid NUL authcid NUL passwd.
    let mut token = Vec::with_capacity(credentials.username.len() + credentials.password.len() + 2);
    token.push(0);
    token.extend_from_slice(credentials.username.as_bytes());
    token.push(0);
    token.extend_from_slice(credentials.password.as_bytes());
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

/// One SaslAuthenticate round trip; returns the server's bytes.
async fn round_trip(
    connection: &mut BrokerConnection,
    version: i16,
    message: String,
    username: &str,
) -> Result<String, WireError> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(message.into_bytes().into());
    let response = connection.send(version, &request).await?;
    if response.error_code != 0 {
        return Err(WireError::Sasl(format!(
            "authentication failed for user {username:?}: {}",
            response
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_else(|| format!("error code {}", response.error_code))
        )));
    }
    Ok(String::from_utf8_lossy(&response.auth_bytes).into_owned())
}

async fn authenticate_scram(
    connection: &mut BrokerConnection,
    version: i16,
    hash: ScramHash,
    credentials: &SaslCredentials,
) -> Result<(), WireError> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut client = ScramClient::new(hash, &credentials.username, &credentials.password, &nonce);
    let user = credentials.username.as_str();
    let server_first = round_trip(connection, version, client.client_first(), user).await?;
    let client_final = client
        .client_final(&server_first)
        .map_err(|e| WireError::Sasl(format!("{}: {e}", hash.mechanism())))?;
    let server_final = round_trip(connection, version, client_final, user).await?;
    client
        .verify_server_final(&server_final)
        .map_err(|e| WireError::Sasl(format!("{}: {e}", hash.mechanism())))
}
