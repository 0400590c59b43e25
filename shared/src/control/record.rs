//! The control topic's records: what a key and a value mean, and how to write one.
//!
//! A desired setting is keyed `service/SETTING` with the raw value as UTF-8 (as it would be
//! written in the env file); a tombstone (no value) returns that setting to its start-up
//! value. One-off commands are keyed `service/!command` with a JSON value carrying an id, so
//! compaction keeps only each service's latest command. Keying per setting, not per service,
//! is the choice that matters: two writes to different settings never overwrite each other.

use serde::{Deserialize, Serialize};

/// The key suffix of commands; `!` cannot start a setting name.
const COMMAND_SUFFIX: &str = "!command";

/// A one-off instruction: acted on once, acknowledged in the service's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub id: String,
    /// What to do (`burst`, `pause`, `resume`): the service decides what it understands.
    pub command: String,
    /// How many, for commands that take a count (a burst of N orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// One control record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRecord {
    /// `value: None` is a tombstone: back to the start-up value.
    Setting {
        service: String,
        setting: String,
        value: Option<String>,
    },
    Command {
        service: String,
        command: Command,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlRecordError {
    #[error("control record without a key")]
    NoKey,
    #[error("control key {0:?} is not service/SETTING")]
    BadKey(String),
    #[error("control value of {key:?} is not UTF-8")]
    NotText { key: String },
    #[error("command {key:?} does not decode: {reason}")]
    BadCommand { key: String, reason: String },
}

impl ControlRecord {
    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Self, ControlRecordError> {
        let key = key.ok_or(ControlRecordError::NoKey)?;
        let key = std::str::from_utf8(key)
            .map_err(|_| ControlRecordError::BadKey(String::from_utf8_lossy(key).into_owned()))?;
        let (service, setting) = key
            .split_once('/')
            .filter(|(service, setting)| !service.is_empty() && !setting.is_empty())
            .ok_or_else(|| ControlRecordError::BadKey(key.to_owned()))?;
        if setting == COMMAND_SUFFIX {
            let value = value.unwrap_or_default();
            let command =
                serde_json::from_slice(value).map_err(|e| ControlRecordError::BadCommand {
                    key: key.to_owned(),
                    reason: e.to_string(),
                })?;
            return Ok(Self::Command {
                service: service.to_owned(),
                command,
            });
        }
        let value = value
            .map(|v| {
                std::str::from_utf8(v)
                    .map(str::to_owned)
                    .map_err(|_| ControlRecordError::NotText {
                        key: key.to_owned(),
                    })
            })
            .transpose()?;
        Ok(Self::Setting {
            service: service.to_owned(),
            setting: setting.to_owned(),
            value,
        })
    }

    /// The key and value to write to the control topic (`None`: a tombstone).
    pub fn to_key_value(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), serde_json::Error> {
        Ok(match self {
            Self::Setting {
                service,
                setting,
                value,
            } => (
                format!("{service}/{setting}").into_bytes(),
                value.as_ref().map(|v| v.clone().into_bytes()),
            ),
            Self::Command { service, command } => (
                format!("{service}/{COMMAND_SUFFIX}").into_bytes(),
                Some(serde_json::to_vec(command)?),
            ),
        })
    }

    /// As an rskafka record: the control topic is written through rskafka's partition client,
    /// whose records can carry a null value (a real tombstone, which compaction understands).
    pub fn to_record(&self) -> Result<rskafka::record::Record, serde_json::Error> {
        let (key, value) = self.to_key_value()?;
        Ok(rskafka::record::Record {
            key: Some(key),
            value,
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_commands_round_trip() {
        let set = ControlRecord::Setting {
            service: "producer-order".into(),
            setting: "RATE_PER_SEC".into(),
            value: Some("3000".into()),
        };
        let record = set.to_record().expect("encodes");
        assert_eq!(
            record.key.as_deref(),
            Some(&b"producer-order/RATE_PER_SEC"[..])
        );
        assert_eq!(
            ControlRecord::decode(record.key.as_deref(), record.value.as_deref()),
            Ok(set)
        );
        let burst = ControlRecord::Command {
            service: "producer-order".into(),
            command: Command {
                id: "c1".into(),
                command: "burst".into(),
                count: Some(500),
            },
        };
        let record = burst.to_record().expect("encodes");
        assert_eq!(
            ControlRecord::decode(record.key.as_deref(), record.value.as_deref()),
            Ok(burst)
        );
    }

    #[test]
    fn bad_keys_and_values_are_errors_not_panics() {
        assert_eq!(
            ControlRecord::decode(None, None),
            Err(ControlRecordError::NoKey)
        );
        assert!(ControlRecord::decode(Some(b"no-slash"), Some(b"1")).is_err());
        assert!(ControlRecord::decode(Some(b"/X"), Some(b"1")).is_err());
        assert!(ControlRecord::decode(Some(b"svc/X"), Some(&[0xff, 0xfe])).is_err());
        assert!(ControlRecord::decode(Some(b"svc/!command"), Some(b"{")).is_err());
        assert_eq!(
            ControlRecord::decode(Some(b"svc/X"), None),
            Ok(ControlRecord::Setting {
                service: "svc".into(),
                setting: "X".into(),
                value: None
            })
        );
    }
}
