//! Topic administration: create topics idempotently (with partition counts, replication
//! factors and configs such as `cleanup.policy=compact`) and wait until topics exist.
//!
//! It speaks CreateTopics and Metadata on our own connection because rskafka's `create_topic`
//! cannot pass topic configs. It must not create topics implicitly: Metadata requests here ask
//! the broker not to auto-create, so a missing topic is reported, never invented with the
//! wrong partition count.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connect::{self, ConnectError};
use crate::settings::{ConnectionSettings, TopicWaitSettings};
use crate::wire::{BrokerConnection, WireError};

/// Kafka error codes this module acts on.
const TOPIC_ALREADY_EXISTS: i16 = 36;
const NOT_CONTROLLER: i16 = 41;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;

/// A topic as it should exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// What `create_topics` did for one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopicOutcome {
    Created,
    /// The topic was there already, with this many partitions (it is left as it is).
    AlreadyExisted {
        partitions: i32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("creating topic {topic}: broker error {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    CreateFailed {
        topic: String,
        code: i16,
        message: Option<String>,
    },
    #[error("metadata request failed with broker error {0}")]
    Metadata(i16),
    #[error("topics {} still missing after waiting {waited:?} (TOPIC_WAIT_TIMEOUT_SEC); create them or set TOPIC_WAIT_SKIP=1", missing.join(", "))]
    TopicsMissing {
        missing: Vec<String>,
        waited: Duration,
    },
}

/// The partition count of each topic that exists (topics that do not are absent).
pub type TopicPartitions = BTreeMap<String, i32>;

/// An admin session on one broker connection.
#[derive(Debug)]
pub struct TopicAdmin {
    settings: ConnectionSettings,
    connect_deadline: Duration,
    connection: Option<BrokerConnection>,
}

impl TopicAdmin {
    pub async fn connect(
        settings: &ConnectionSettings,
        connect_deadline: Duration,
    ) -> Result<Self, AdminError> {
        let connection = connect::broker_connection(settings, connect_deadline).await?;
        Ok(Self {
            settings: settings.clone(),
            connect_deadline,
            connection: Some(connection),
        })
    }

    /// Creates each topic that does not exist yet; existing topics are left alone.
    pub async fn create_topics(
        &mut self,
        specs: &[TopicSpec],
    ) -> Result<Vec<(String, TopicOutcome)>, AdminError> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(specs.iter().map(creatable_topic).collect());
        let mut redirected = false;
        loop {
            let connection = self.connection().await?;
            let version = connection.negotiate::<CreateTopicsRequest>(2..=7)?;
            let response = match connection.send(version, &request).await {
                Ok(response) => response,
                Err(e) => return Err(self.drop_connection(e)),
            };
            let mut outcomes = Vec::with_capacity(specs.len());
            let mut existing = Vec::new();
            for result in &response.topics {
                let name = result.name.0.to_string();
                match result.error_code {
                    0 => outcomes.push((name, TopicOutcome::Created)),
                    TOPIC_ALREADY_EXISTS => existing.push(name),
                    NOT_CONTROLLER if !redirected => {
                        outcomes.clear();
                        break;
                    }
                    code => {
                        return Err(AdminError::CreateFailed {
                            topic: name,
                            code,
                            message: result.error_message.as_ref().map(|m| m.to_string()),
                        });
                    }
                }
            }
            if outcomes.len() + existing.len() < specs.len() && !redirected {
                redirected = true;
                self.reconnect_to_controller().await?;
                continue;
            }
            if !existing.is_empty() {
                let names: Vec<&str> = existing.iter().map(String::as_str).collect();
                let partitions = self.describe_topics(&names).await?;
                for name in existing {
                    let count = partitions.get(&name).copied().unwrap_or(0);
                    outcomes.push((name, TopicOutcome::AlreadyExisted { partitions: count }));
                }
            }
            return Ok(outcomes);
        }
    }

    /// The partition counts of the named topics that exist.
    pub async fn describe_topics(&mut self, names: &[&str]) -> Result<TopicPartitions, AdminError> {
        let connection = self.connection().await?;
        match partition_counts(connection, names).await {
            Err(AdminError::Wire(e)) => Err(self.drop_connection(e)),
            other => other,
        }
    }

    /// Waits until every named topic exists, polling every `wait.interval` up to
    /// `wait.timeout`; returns their partition counts. With `wait.skip` it returns at once
    /// without asking the broker.
    pub async fn wait_for_topics(
        &mut self,
        names: &[&str],
        wait: &TopicWaitSettings,
    ) -> Result<TopicPartitions, AdminError> {
        if wait.skip {
            tracing::info!(topics = ?names, "TOPIC_WAIT_SKIP=1: not waiting for topics");
            return Ok(TopicPartitions::new());
        }
        let started = Instant::now();
        loop {
            let missing = match self.describe_topics(names).await {
                Ok(found) => {
                    let missing: Vec<String> = names
                        .iter()
                        .filter(|n| !found.contains_key(**n))
                        .map(|n| n.to_string())
                        .collect();
                    if missing.is_empty() {
                        return Ok(found);
                    }
                    missing
                }
                // A broker that is restarting is not a reason to stop waiting.
                Err(AdminError::Wire(e)) if e.is_transient() => {
                    tracing::debug!(error = %e, "metadata failed while waiting for topics");
                    names.iter().map(|n| n.to_string()).collect()
                }
                Err(AdminError::Connect(ConnectError::Unreachable { .. })) => {
                    names.iter().map(|n| n.to_string()).collect()
                }
                Err(e) => return Err(e),
            };
            if started.elapsed() + wait.interval > wait.timeout {
                return Err(AdminError::TopicsMissing {
                    missing,
                    waited: started.elapsed(),
                });
            }
            tracing::info!(missing = ?missing, "waiting for topics to exist");
            tokio::time::sleep(wait.interval).await;
        }
    }

    async fn connection(&mut self) -> Result<&mut BrokerConnection, AdminError> {
        if self.connection.is_none() {
            let fresh = connect::broker_connection(&self.settings, self.connect_deadline).await?;
            self.connection = Some(fresh);
        }
        self.connection
            .as_mut()
            .ok_or(AdminError::Connect(ConnectError::Unreachable {
                waited: Duration::ZERO,
                tried: Vec::new(),
            }))
    }

    /// Forgets a connection that failed so the next call reconnects.
    fn drop_connection(&mut self, error: WireError) -> AdminError {
        self.connection = None;
        AdminError::Wire(error)
    }

    /// CreateTopics must go to the controller; find it through Metadata and connect to it.
    async fn reconnect_to_controller(&mut self) -> Result<(), AdminError> {
        let request = metadata_request(Some(&[]));
        let connection = self.connection().await?;
        let version = connection.negotiate::<MetadataRequest>(4..=12)?;
        let response = connection.send(version, &request).await?;
        let controller = response.brokers.iter().find(|b| {
            b.node_id == response.controller_id && response.controller_id != BrokerId(-1)
        });
        if let Some(broker) = controller {
            let address = format!("{}:{}", broker.host, broker.port);
            let mut settings = self.settings.clone();
            settings.bootstrap_servers = vec![address];
            self.connection =
                Some(connect::broker_connection(&settings, self.connect_deadline).await?);
        }
        Ok(())
    }
}

/// The partition counts of the named topics that exist, asked on any broker connection (the
/// group leader uses this on its coordinator connection).
pub async fn partition_counts(
    connection: &mut BrokerConnection,
    names: &[&str],
) -> Result<TopicPartitions, AdminError> {
    let version = connection.negotiate::<MetadataRequest>(4..=12)?;
    let response = connection
        .send(version, &metadata_request(Some(names)))
        .await?;
    let mut found = TopicPartitions::new();
    for topic in response.topics {
        let Some(name) = topic.name else { continue };
        match topic.error_code {
            0 if !topic.partitions.is_empty() => {
                found.insert(name.0.to_string(), topic.partitions.len() as i32);
            }
            0 | UNKNOWN_TOPIC_OR_PARTITION | LEADER_NOT_AVAILABLE => {}
            code => return Err(AdminError::Metadata(code)),
        }
    }
    Ok(found)
}

/// The leader address (`host:port`) of each partition of `topic`, in partition order.
pub async fn partition_leaders(
    connection: &mut BrokerConnection,
    topic: &str,
) -> Result<Vec<String>, AdminError> {
    let version = connection.negotiate::<MetadataRequest>(4..=12)?;
    let response = connection
        .send(version, &metadata_request(Some(&[topic])))
        .await?;
    let addresses: BTreeMap<i32, String> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let Some(described) = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    else {
        return Err(AdminError::Metadata(UNKNOWN_TOPIC_OR_PARTITION));
    };
    if described.error_code != 0 || described.partitions.is_empty() {
        return Err(AdminError::Metadata(if described.error_code != 0 {
            described.error_code
        } else {
            UNKNOWN_TOPIC_OR_PARTITION
        }));
    }
    let mut partitions: Vec<_> = described.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    partitions
        .iter()
        .map(|p| {
            addresses
                .get(&p.leader_id.0)
                .cloned()
                .ok_or(AdminError::Metadata(LEADER_NOT_AVAILABLE))
        })
        .collect()
}

fn creatable_topic(spec: &TopicSpec) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(spec.name.clone())))
        .with_num_partitions(spec.partitions)
        .with_replication_factor(spec.replication_factor)
        .with_configs(
            spec.configs
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(key.clone()))
                        .with_value(Some(StrBytes::from_string(value.clone())))
                })
                .collect(),
        )
}

/// A Metadata request for the named topics (`Some(&[])` = brokers only), never auto-creating.
fn metadata_request(names: Option<&[&str]>) -> MetadataRequest {
    MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(names.map(|names| {
            names
                .iter()
                .map(|name| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string((*name).to_owned()))))
                })
                .collect()
        }))
}
