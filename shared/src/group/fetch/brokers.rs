//! The two questions a fetcher asks besides Fetch itself: who leads each partition
//! (Metadata) and where a partition's log starts or ends (ListOffsets).
//!
//! Plain request/response functions over one [`BrokerConnection`]; they keep no state and
//! never retry — the fetcher decides when to ask again.

use std::collections::HashMap;

use kafka_protocol::messages::{
    ListOffsetsRequest, MetadataRequest, TopicName,
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::group::OffsetReset;
use crate::wire::{BrokerConnection, WireError};

/// Broker addresses by node id, and each partition's leader.
#[derive(Debug, Default)]
pub struct Leaders {
    pub brokers: HashMap<i32, String>,
    pub leaders: HashMap<TopicPartition, i32>,
}

/// The leaders of every partition of `topics` that the broker knows; partitions without a
/// leader (or topics with an error) are simply absent.
pub async fn leaders(
    connection: &mut BrokerConnection,
    topics: &[String],
) -> Result<Leaders, WireError> {
    let version = connection.negotiate::<MetadataRequest>(4..=12)?;
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(
            topics
                .iter()
                .map(|name| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                })
                .collect(),
        ));
    let response = connection.send(version, &request).await?;
    let mut found = Leaders {
        brokers: response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect(),
        leaders: HashMap::new(),
    };
    for topic in &response.topics {
        let Some(name) = &topic.name else { continue };
        if topic.error_code != 0 {
            continue;
        }
        for partition in &topic.partitions {
            if partition.error_code == 0 && partition.leader_id.0 >= 0 {
                found.leaders.insert(
                    TopicPartition::new(name.0.as_str(), partition.partition_index),
                    partition.leader_id.0,
                );
            }
        }
    }
    Ok(found)
}

/// One partition's answer to ListOffsets.
pub type ListedOffset = (TopicPartition, Result<i64, i16>);

/// The earliest or latest (last stable, as we read committed) offset of each partition, asked
/// of their leader in one request.
pub async fn list_offsets(
    connection: &mut BrokerConnection,
    partitions: &[TopicPartition],
    policy: OffsetReset,
) -> Result<Vec<ListedOffset>, WireError> {
    // -2 asks for the log start, -1 for the end (KIP-79's special timestamps).
    let timestamp = match policy {
        OffsetReset::Latest => -1,
        OffsetReset::Earliest | OffsetReset::None => -2,
    };
    let mut by_topic: HashMap<&str, Vec<ListOffsetsPartition>> = HashMap::new();
    for partition in partitions {
        by_topic.entry(partition.topic.as_str()).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(partition.partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp),
        );
    }
    let version = connection.negotiate::<ListOffsetsRequest>(1..=7)?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = connection.send(version, &request).await?;
    let mut listed = Vec::with_capacity(partitions.len());
    for topic in &response.topics {
        for partition in &topic.partitions {
            let answer = if partition.error_code == 0 {
                Ok(partition.offset)
            } else {
                Err(partition.error_code)
            };
            listed.push((
                TopicPartition::new(topic.name.0.as_str(), partition.partition_index),
                answer,
            ));
        }
    }
    Ok(listed)
}
