//! The wire shape of every response we decode ourselves, for the bounds check in
//! [`super::shape`]: which fields each version carries and how each is encoded.
//!
//! It is data, not code: one entry per field in the order of Kafka's message specs
//! (`clients/src/main/resources/common/message/*Response.json`), with the versions it exists
//! in, over the whole version range `kafka-protocol` 0.18 decodes. It was read off that crate's
//! generated decoders, and `shared/tests/fuzz_responses.rs` checks every entry against them (a
//! frame built from a shape must decode and be consumed exactly), so a crate upgrade that
//! changes a layout fails there. It must not grow logic: values are never judged here.

use kafka_protocol::messages::ApiKey;

use super::shape::{Field, Kind, Schema};

const MAX: i16 = i16::MAX;
/// For messages without flexible versions.
const NEVER: i16 = i16::MAX;
const BOOLEAN: Kind = Kind::Fixed(1);
const INT8: Kind = Kind::Fixed(1);
const INT16: Kind = Kind::Fixed(2);
const INT32: Kind = Kind::Fixed(4);
const INT64: Kind = Kind::Fixed(8);
const UUID: Kind = Kind::Fixed(16);
const STRING: Kind = Kind::Str;
const BYTES: Kind = Kind::Bytes;

const fn field(name: &'static str, min: i16, max: i16, kind: Kind) -> Field {
    Field {
        name,
        min,
        max,
        tag: None,
        kind,
    }
}

const fn tagged(name: &'static str, tag: u32, min: i16, max: i16, kind: Kind) -> Field {
    Field {
        name,
        min,
        max,
        tag: Some(tag),
        kind,
    }
}

/// One structure: `STATIC = "WireName", versions, flexible from, [fields]`.
macro_rules! shape {
    ($static:ident = $name:literal, $min:literal..=$max:literal, flexible $flexible:expr, [$($field:expr),* $(,)?]) => {
        static $static: Schema = Schema {
            name: $name,
            min_version: $min,
            max_version: $max,
            flexible_from: $flexible,
            fields: &[$($field),*],
        };
    };
}

/// The shape of the response header (v0: the correlation id; v1 adds tagged fields).
pub(super) fn header() -> &'static Schema {
    &RESPONSE_HEADER
}

/// The shape of `api_key`'s response, if it is one we decode.
pub fn response(api_key: i16) -> Option<&'static Schema> {
    let api = ApiKey::try_from(api_key).ok()?;
    Some(match api {
        ApiKey::Produce => &PRODUCE_RESPONSE,
        ApiKey::Fetch => &FETCH_RESPONSE,
        ApiKey::ListOffsets => &LIST_OFFSETS_RESPONSE,
        ApiKey::Metadata => &METADATA_RESPONSE,
        ApiKey::OffsetCommit => &OFFSET_COMMIT_RESPONSE,
        ApiKey::OffsetFetch => &OFFSET_FETCH_RESPONSE,
        ApiKey::FindCoordinator => &FIND_COORDINATOR_RESPONSE,
        ApiKey::JoinGroup => &JOIN_GROUP_RESPONSE,
        ApiKey::Heartbeat => &HEARTBEAT_RESPONSE,
        ApiKey::LeaveGroup => &LEAVE_GROUP_RESPONSE,
        ApiKey::SyncGroup => &SYNC_GROUP_RESPONSE,
        ApiKey::DescribeGroups => &DESCRIBE_GROUPS_RESPONSE,
        ApiKey::SaslHandshake => &SASL_HANDSHAKE_RESPONSE,
        ApiKey::ApiVersions => &API_VERSIONS_RESPONSE,
        ApiKey::CreateTopics => &CREATE_TOPICS_RESPONSE,
        ApiKey::InitProducerId => &INIT_PRODUCER_ID_RESPONSE,
        ApiKey::SaslAuthenticate => &SASL_AUTHENTICATE_RESPONSE,
        _ => return None,
    })
}

// ResponseHeader
shape! { RESPONSE_HEADER = "ResponseHeader", 0..=1, flexible 1, [
    field("correlation_id", 0, MAX, INT32),
] }

// ApiVersionsResponse
shape! { API_VERSIONS_SUPPORTED_FEATURE_KEY = "SupportedFeatureKey", 0..=4, flexible 3, [
    field("name", 3, MAX, STRING),
    field("min_version", 3, MAX, INT16),
    field("max_version", 3, MAX, INT16),
] }
shape! { API_VERSIONS_FINALIZED_FEATURE_KEY = "FinalizedFeatureKey", 0..=4, flexible 3, [
    field("name", 3, MAX, STRING),
    field("max_version_level", 3, MAX, INT16),
    field("min_version_level", 3, MAX, INT16),
] }
shape! { API_VERSIONS_RESPONSE = "ApiVersionsResponse", 0..=4, flexible 3, [
    field("error_code", 0, MAX, INT16),
    field("api_keys", 0, MAX, Kind::Structs(&API_VERSIONS_API_VERSION)),
    field("throttle_time_ms", 1, MAX, INT32),
    tagged("supported_features", 0, 0, MAX, Kind::Structs(&API_VERSIONS_SUPPORTED_FEATURE_KEY)),
    tagged("finalized_features_epoch", 1, 0, MAX, INT64),
    tagged("finalized_features", 2, 0, MAX, Kind::Structs(&API_VERSIONS_FINALIZED_FEATURE_KEY)),
    tagged("zk_migration_ready", 3, 0, MAX, BOOLEAN),
] }
shape! { API_VERSIONS_API_VERSION = "ApiVersion", 0..=4, flexible 3, [
    field("api_key", 0, MAX, INT16),
    field("min_version", 0, MAX, INT16),
    field("max_version", 0, MAX, INT16),
] }

// SaslHandshakeResponse
shape! { SASL_HANDSHAKE_RESPONSE = "SaslHandshakeResponse", 0..=1, flexible NEVER, [
    field("error_code", 0, MAX, INT16),
    field("mechanisms", 0, MAX, Kind::Array(&STRING)),
] }

// SaslAuthenticateResponse
shape! { SASL_AUTHENTICATE_RESPONSE = "SaslAuthenticateResponse", 0..=2, flexible 2, [
    field("error_code", 0, MAX, INT16),
    field("error_message", 0, MAX, STRING),
    field("auth_bytes", 0, MAX, BYTES),
    field("session_lifetime_ms", 1, MAX, INT64),
] }

// MetadataResponse
shape! { METADATA_RESPONSE_TOPIC = "MetadataResponseTopic", 0..=13, flexible 9, [
    field("error_code", 0, MAX, INT16),
    field("name", 0, MAX, STRING),
    field("topic_id", 10, MAX, UUID),
    field("is_internal", 1, MAX, BOOLEAN),
    field("partitions", 0, MAX, Kind::Structs(&METADATA_RESPONSE_PARTITION)),
    field("topic_authorized_operations", 8, MAX, INT32),
] }
shape! { METADATA_RESPONSE_PARTITION = "MetadataResponsePartition", 0..=13, flexible 9, [
    field("error_code", 0, MAX, INT16),
    field("partition_index", 0, MAX, INT32),
    field("leader_id", 0, MAX, INT32),
    field("leader_epoch", 7, MAX, INT32),
    field("replica_nodes", 0, MAX, Kind::Array(&INT32)),
    field("isr_nodes", 0, MAX, Kind::Array(&INT32)),
    field("offline_replicas", 5, MAX, Kind::Array(&INT32)),
] }
shape! { METADATA_RESPONSE_BROKER = "MetadataResponseBroker", 0..=13, flexible 9, [
    field("node_id", 0, MAX, INT32),
    field("host", 0, MAX, STRING),
    field("port", 0, MAX, INT32),
    field("rack", 1, MAX, STRING),
] }
shape! { METADATA_RESPONSE = "MetadataResponse", 0..=13, flexible 9, [
    field("throttle_time_ms", 3, MAX, INT32),
    field("brokers", 0, MAX, Kind::Structs(&METADATA_RESPONSE_BROKER)),
    field("cluster_id", 2, MAX, STRING),
    field("controller_id", 1, MAX, INT32),
    field("topics", 0, MAX, Kind::Structs(&METADATA_RESPONSE_TOPIC)),
    field("cluster_authorized_operations", 8, 10, INT32),
    field("error_code", 13, MAX, INT16),
] }

// CreateTopicsResponse
shape! { CREATE_TOPICS_RESPONSE = "CreateTopicsResponse", 2..=7, flexible 5, [
    field("throttle_time_ms", 0, MAX, INT32),
    field("topics", 0, MAX, Kind::Structs(&CREATE_TOPICS_CREATABLE_TOPIC_RESULT)),
] }
shape! { CREATE_TOPICS_CREATABLE_TOPIC_RESULT = "CreatableTopicResult", 2..=7, flexible 5, [
    field("name", 0, MAX, STRING),
    field("topic_id", 7, MAX, UUID),
    field("error_code", 0, MAX, INT16),
    field("error_message", 0, MAX, STRING),
    field("num_partitions", 5, MAX, INT32),
    field("replication_factor", 5, MAX, INT16),
    field("configs", 5, MAX, Kind::Structs(&CREATE_TOPICS_CREATABLE_TOPIC_CONFIGS)),
    tagged("topic_config_error_code", 0, 0, MAX, INT16),
] }
shape! { CREATE_TOPICS_CREATABLE_TOPIC_CONFIGS = "CreatableTopicConfigs", 2..=7, flexible 5, [
    field("name", 5, MAX, STRING),
    field("value", 5, MAX, STRING),
    field("read_only", 5, MAX, BOOLEAN),
    field("config_source", 5, MAX, INT8),
    field("is_sensitive", 5, MAX, BOOLEAN),
] }

// ProduceResponse
shape! { PRODUCE_TOPIC_PRODUCE_RESPONSE = "TopicProduceResponse", 3..=13, flexible 9, [
    field("name", 0, 12, STRING),
    field("topic_id", 13, MAX, UUID),
    field("partition_responses", 0, MAX, Kind::Structs(&PRODUCE_PARTITION_PRODUCE_RESPONSE)),
] }
shape! { PRODUCE_RESPONSE = "ProduceResponse", 3..=13, flexible 9, [
    field("responses", 0, MAX, Kind::Structs(&PRODUCE_TOPIC_PRODUCE_RESPONSE)),
    field("throttle_time_ms", 0, MAX, INT32),
    tagged("node_endpoints", 0, 10, MAX, Kind::Structs(&PRODUCE_NODE_ENDPOINT)),
] }
shape! { PRODUCE_PARTITION_PRODUCE_RESPONSE = "PartitionProduceResponse", 3..=13, flexible 9, [
    field("index", 0, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("base_offset", 0, MAX, INT64),
    field("log_append_time_ms", 0, MAX, INT64),
    field("log_start_offset", 5, MAX, INT64),
    field("record_errors", 8, MAX, Kind::Structs(&PRODUCE_BATCH_INDEX_AND_ERROR_MESSAGE)),
    field("error_message", 8, MAX, STRING),
    tagged("current_leader", 0, 10, MAX, Kind::Struct(&PRODUCE_LEADER_ID_AND_EPOCH)),
] }
shape! { PRODUCE_NODE_ENDPOINT = "NodeEndpoint", 3..=13, flexible 9, [
    field("node_id", 10, MAX, INT32),
    field("host", 10, MAX, STRING),
    field("port", 10, MAX, INT32),
    field("rack", 10, MAX, STRING),
] }
shape! { PRODUCE_LEADER_ID_AND_EPOCH = "LeaderIdAndEpoch", 3..=13, flexible 9, [
    field("leader_id", 10, MAX, INT32),
    field("leader_epoch", 10, MAX, INT32),
] }
shape! { PRODUCE_BATCH_INDEX_AND_ERROR_MESSAGE = "BatchIndexAndErrorMessage", 3..=13, flexible 9, [
    field("batch_index", 8, MAX, INT32),
    field("batch_index_error_message", 8, MAX, STRING),
] }

// FetchResponse
shape! { FETCH_SNAPSHOT_ID = "SnapshotId", 4..=18, flexible 12, [
    field("end_offset", 0, MAX, INT64),
    field("epoch", 0, MAX, INT32),
] }
shape! { FETCH_PARTITION_DATA = "PartitionData", 4..=18, flexible 12, [
    field("partition_index", 0, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("high_watermark", 0, MAX, INT64),
    field("last_stable_offset", 0, MAX, INT64),
    field("log_start_offset", 5, MAX, INT64),
    field("aborted_transactions", 0, MAX, Kind::Structs(&FETCH_ABORTED_TRANSACTION)),
    field("preferred_read_replica", 11, MAX, INT32),
    field("records", 0, MAX, BYTES),
    tagged("diverging_epoch", 0, 0, MAX, Kind::Struct(&FETCH_EPOCH_END_OFFSET)),
    tagged("current_leader", 1, 0, MAX, Kind::Struct(&FETCH_LEADER_ID_AND_EPOCH)),
    tagged("snapshot_id", 2, 0, MAX, Kind::Struct(&FETCH_SNAPSHOT_ID)),
] }
shape! { FETCH_NODE_ENDPOINT = "NodeEndpoint", 4..=18, flexible 12, [
    field("node_id", 16, MAX, INT32),
    field("host", 16, MAX, STRING),
    field("port", 16, MAX, INT32),
    field("rack", 16, MAX, STRING),
] }
shape! { FETCH_LEADER_ID_AND_EPOCH = "LeaderIdAndEpoch", 4..=18, flexible 12, [
    field("leader_id", 12, MAX, INT32),
    field("leader_epoch", 12, MAX, INT32),
] }
shape! { FETCH_FETCHABLE_TOPIC_RESPONSE = "FetchableTopicResponse", 4..=18, flexible 12, [
    field("topic", 0, 12, STRING),
    field("topic_id", 13, MAX, UUID),
    field("partitions", 0, MAX, Kind::Structs(&FETCH_PARTITION_DATA)),
] }
shape! { FETCH_RESPONSE = "FetchResponse", 4..=18, flexible 12, [
    field("throttle_time_ms", 0, MAX, INT32),
    field("error_code", 7, MAX, INT16),
    field("session_id", 7, MAX, INT32),
    field("responses", 0, MAX, Kind::Structs(&FETCH_FETCHABLE_TOPIC_RESPONSE)),
    tagged("node_endpoints", 0, 16, MAX, Kind::Structs(&FETCH_NODE_ENDPOINT)),
] }
shape! { FETCH_EPOCH_END_OFFSET = "EpochEndOffset", 4..=18, flexible 12, [
    field("epoch", 12, MAX, INT32),
    field("end_offset", 12, MAX, INT64),
] }
shape! { FETCH_ABORTED_TRANSACTION = "AbortedTransaction", 4..=18, flexible 12, [
    field("producer_id", 0, MAX, INT64),
    field("first_offset", 0, MAX, INT64),
] }

// ListOffsetsResponse
shape! { LIST_OFFSETS_TOPIC_RESPONSE = "ListOffsetsTopicResponse", 1..=10, flexible 6, [
    field("name", 0, MAX, STRING),
    field("partitions", 0, MAX, Kind::Structs(&LIST_OFFSETS_PARTITION_RESPONSE)),
] }
shape! { LIST_OFFSETS_RESPONSE = "ListOffsetsResponse", 1..=10, flexible 6, [
    field("throttle_time_ms", 2, MAX, INT32),
    field("topics", 0, MAX, Kind::Structs(&LIST_OFFSETS_TOPIC_RESPONSE)),
] }
shape! { LIST_OFFSETS_PARTITION_RESPONSE = "ListOffsetsPartitionResponse", 1..=10, flexible 6, [
    field("partition_index", 0, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("timestamp", 0, MAX, INT64),
    field("offset", 0, MAX, INT64),
    field("leader_epoch", 4, MAX, INT32),
] }

// InitProducerIdResponse
shape! { INIT_PRODUCER_ID_RESPONSE = "InitProducerIdResponse", 0..=6, flexible 2, [
    field("throttle_time_ms", 0, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("producer_id", 0, MAX, INT64),
    field("producer_epoch", 0, MAX, INT16),
    field("ongoing_txn_producer_id", 6, MAX, INT64),
    field("ongoing_txn_producer_epoch", 6, MAX, INT16),
] }

// FindCoordinatorResponse
shape! { FIND_COORDINATOR_RESPONSE = "FindCoordinatorResponse", 0..=6, flexible 3, [
    field("throttle_time_ms", 1, MAX, INT32),
    field("error_code", 0, 3, INT16),
    field("error_message", 1, 3, STRING),
    field("node_id", 0, 3, INT32),
    field("host", 0, 3, STRING),
    field("port", 0, 3, INT32),
    field("coordinators", 4, MAX, Kind::Structs(&FIND_COORDINATOR_COORDINATOR)),
] }
shape! { FIND_COORDINATOR_COORDINATOR = "Coordinator", 0..=6, flexible 3, [
    field("key", 4, MAX, STRING),
    field("node_id", 4, MAX, INT32),
    field("host", 4, MAX, STRING),
    field("port", 4, MAX, INT32),
    field("error_code", 4, MAX, INT16),
    field("error_message", 4, MAX, STRING),
] }

// JoinGroupResponse
shape! { JOIN_GROUP_RESPONSE_MEMBER = "JoinGroupResponseMember", 0..=9, flexible 6, [
    field("member_id", 0, MAX, STRING),
    field("group_instance_id", 5, MAX, STRING),
    field("metadata", 0, MAX, BYTES),
] }
shape! { JOIN_GROUP_RESPONSE = "JoinGroupResponse", 0..=9, flexible 6, [
    field("throttle_time_ms", 2, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("generation_id", 0, MAX, INT32),
    field("protocol_type", 7, MAX, STRING),
    field("protocol_name", 0, MAX, STRING),
    field("leader", 0, MAX, STRING),
    field("skip_assignment", 9, MAX, BOOLEAN),
    field("member_id", 0, MAX, STRING),
    field("members", 0, MAX, Kind::Structs(&JOIN_GROUP_RESPONSE_MEMBER)),
] }

// SyncGroupResponse
shape! { SYNC_GROUP_RESPONSE = "SyncGroupResponse", 0..=5, flexible 4, [
    field("throttle_time_ms", 1, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("protocol_type", 5, MAX, STRING),
    field("protocol_name", 5, MAX, STRING),
    field("assignment", 0, MAX, BYTES),
] }

// HeartbeatResponse
shape! { HEARTBEAT_RESPONSE = "HeartbeatResponse", 0..=4, flexible 4, [
    field("throttle_time_ms", 1, MAX, INT32),
    field("error_code", 0, MAX, INT16),
] }

// LeaveGroupResponse
shape! { LEAVE_GROUP_MEMBER_RESPONSE = "MemberResponse", 0..=5, flexible 4, [
    field("member_id", 3, MAX, STRING),
    field("group_instance_id", 3, MAX, STRING),
    field("error_code", 3, MAX, INT16),
] }
shape! { LEAVE_GROUP_RESPONSE = "LeaveGroupResponse", 0..=5, flexible 4, [
    field("throttle_time_ms", 1, MAX, INT32),
    field("error_code", 0, MAX, INT16),
    field("members", 3, MAX, Kind::Structs(&LEAVE_GROUP_MEMBER_RESPONSE)),
] }

// OffsetCommitResponse
shape! { OFFSET_COMMIT_RESPONSE_TOPIC = "OffsetCommitResponseTopic", 2..=10, flexible 8, [
    field("name", 0, 9, STRING),
    field("topic_id", 10, MAX, UUID),
    field("partitions", 0, MAX, Kind::Structs(&OFFSET_COMMIT_RESPONSE_PARTITION)),
] }
shape! { OFFSET_COMMIT_RESPONSE_PARTITION = "OffsetCommitResponsePartition", 2..=10, flexible 8, [
    field("partition_index", 0, MAX, INT32),
    field("error_code", 0, MAX, INT16),
] }
shape! { OFFSET_COMMIT_RESPONSE = "OffsetCommitResponse", 2..=10, flexible 8, [
    field("throttle_time_ms", 3, MAX, INT32),
    field("topics", 0, MAX, Kind::Structs(&OFFSET_COMMIT_RESPONSE_TOPIC)),
] }

// OffsetFetchResponse
shape! { OFFSET_FETCH_RESPONSE_TOPICS = "OffsetFetchResponseTopics", 1..=10, flexible 6, [
    field("name", 8, 9, STRING),
    field("topic_id", 10, MAX, UUID),
    field("partitions", 8, MAX, Kind::Structs(&OFFSET_FETCH_RESPONSE_PARTITIONS)),
] }
shape! { OFFSET_FETCH_RESPONSE_TOPIC = "OffsetFetchResponseTopic", 1..=10, flexible 6, [
    field("name", 0, 7, STRING),
    field("partitions", 0, 7, Kind::Structs(&OFFSET_FETCH_RESPONSE_PARTITION)),
] }
shape! { OFFSET_FETCH_RESPONSE_PARTITIONS = "OffsetFetchResponsePartitions", 1..=10, flexible 6, [
    field("partition_index", 8, MAX, INT32),
    field("committed_offset", 8, MAX, INT64),
    field("committed_leader_epoch", 8, MAX, INT32),
    field("metadata", 8, MAX, STRING),
    field("error_code", 8, MAX, INT16),
] }
shape! { OFFSET_FETCH_RESPONSE_PARTITION = "OffsetFetchResponsePartition", 1..=10, flexible 6, [
    field("partition_index", 0, 7, INT32),
    field("committed_offset", 0, 7, INT64),
    field("committed_leader_epoch", 5, 7, INT32),
    field("metadata", 0, 7, STRING),
    field("error_code", 0, 7, INT16),
] }
shape! { OFFSET_FETCH_RESPONSE_GROUP = "OffsetFetchResponseGroup", 1..=10, flexible 6, [
    field("group_id", 8, MAX, STRING),
    field("topics", 8, MAX, Kind::Structs(&OFFSET_FETCH_RESPONSE_TOPICS)),
    field("error_code", 8, MAX, INT16),
] }
shape! { OFFSET_FETCH_RESPONSE = "OffsetFetchResponse", 1..=10, flexible 6, [
    field("throttle_time_ms", 3, MAX, INT32),
    field("topics", 0, 7, Kind::Structs(&OFFSET_FETCH_RESPONSE_TOPIC)),
    field("error_code", 2, 7, INT16),
    field("groups", 8, MAX, Kind::Structs(&OFFSET_FETCH_RESPONSE_GROUP)),
] }

// DescribeGroupsResponse
shape! { DESCRIBE_GROUPS_DESCRIBED_GROUP_MEMBER = "DescribedGroupMember", 0..=6, flexible 5, [
    field("member_id", 0, MAX, STRING),
    field("group_instance_id", 4, MAX, STRING),
    field("client_id", 0, MAX, STRING),
    field("client_host", 0, MAX, STRING),
    field("member_metadata", 0, MAX, BYTES),
    field("member_assignment", 0, MAX, BYTES),
] }
shape! { DESCRIBE_GROUPS_DESCRIBED_GROUP = "DescribedGroup", 0..=6, flexible 5, [
    field("error_code", 0, MAX, INT16),
    field("error_message", 6, MAX, STRING),
    field("group_id", 0, MAX, STRING),
    field("group_state", 0, MAX, STRING),
    field("protocol_type", 0, MAX, STRING),
    field("protocol_data", 0, MAX, STRING),
    field("members", 0, MAX, Kind::Structs(&DESCRIBE_GROUPS_DESCRIBED_GROUP_MEMBER)),
    field("authorized_operations", 3, MAX, INT32),
] }
shape! { DESCRIBE_GROUPS_RESPONSE = "DescribeGroupsResponse", 0..=6, flexible 5, [
    field("throttle_time_ms", 1, MAX, INT32),
    field("groups", 0, MAX, Kind::Structs(&DESCRIBE_GROUPS_DESCRIBED_GROUP)),
] }
