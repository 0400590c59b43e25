//! Every Produce and InitProducerId error code the producer handles, classified once into
//! what the producer does next, with the Java client's reaction as the reference.
//!
//! It must not act: the accumulator does what the reaction says. The choice a reader may
//! question: an idempotent producer retries OUT_OF_ORDER_SEQUENCE_NUMBER and
//! UNKNOWN_PRODUCER_ID after bumping its epoch (KIP-360, Java's
//! `TransactionManager.canRetry` for a non-transactional producer) instead of failing the
//! records, and INVALID_PRODUCER_EPOCH / PRODUCER_FENCED after taking a new producer id, as
//! librdkafka's idempotent producer resets its id: only we use our producer id, so a fenced
//! epoch means the broker lost or moved on from our state, not that another producer took over.

/// What to do after one produce attempt's answer for our partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Written at the answered base offset.
    Written,
    /// DUPLICATE_SEQUENCE_NUMBER: an earlier attempt of this batch was written; the broker
    /// does not say where (the SQL engines of Nisshi answer this, Kafka answers the offset).
    AlreadyWritten,
    /// Send again (same sequence), after a backoff; `refresh_leader` looks the leader up first.
    Retry { refresh_leader: bool },
    /// Bump the epoch (or take a new id where the broker cannot bump), reset the sequences and
    /// send again.
    RetryWithBumpedEpoch,
    /// Take a new producer id, reset the sequences and send again.
    RetryWithNewProducerId,
    /// The records fail.
    Fail,
}

pub const NONE: i16 = 0;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const NETWORK_EXCEPTION: i16 = 13;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
pub const CONCURRENT_TRANSACTIONS: i16 = 51;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const PRODUCER_FENCED: i16 = 90;

/// Reaction to a Produce partition error code.
pub fn classify_produce(code: i16, idempotent: bool) -> Reaction {
    match code {
        NONE => Reaction::Written,
        DUPLICATE_SEQUENCE_NUMBER if idempotent => Reaction::AlreadyWritten,
        OUT_OF_ORDER_SEQUENCE_NUMBER | UNKNOWN_PRODUCER_ID if idempotent => {
            Reaction::RetryWithBumpedEpoch
        }
        INVALID_PRODUCER_EPOCH | PRODUCER_FENCED if idempotent => Reaction::RetryWithNewProducerId,
        // Java's InvalidMetadataException family: the leader moved.
        UNKNOWN_TOPIC_OR_PARTITION
        | LEADER_NOT_AVAILABLE
        | NOT_LEADER_OR_FOLLOWER
        | KAFKA_STORAGE_ERROR
        | FENCED_LEADER_EPOCH
        | UNKNOWN_LEADER_EPOCH => Reaction::Retry {
            refresh_leader: true,
        },
        // The rest of Java's RetriableException family for Produce.
        REQUEST_TIMED_OUT
        | NETWORK_EXCEPTION
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND => Reaction::Retry {
            refresh_leader: false,
        },
        _ => Reaction::Fail,
    }
}

/// What to do after an InitProducerId answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitReaction {
    Granted,
    /// Ask again after a backoff (the coordinator is loading or moving).
    RetryLater,
    /// The epoch we asked to bump is not ours any more: ask for a new id instead.
    AskForNewId,
    Fail,
}

pub fn classify_init_producer_id(code: i16) -> InitReaction {
    match code {
        NONE => InitReaction::Granted,
        COORDINATOR_LOAD_IN_PROGRESS
        | COORDINATOR_NOT_AVAILABLE
        | NOT_COORDINATOR
        | CONCURRENT_TRANSACTIONS
        | REQUEST_TIMED_OUT
        | NETWORK_EXCEPTION => InitReaction::RetryLater,
        INVALID_PRODUCER_EPOCH | PRODUCER_FENCED | INVALID_PRODUCER_ID_MAPPING => {
            InitReaction::AskForNewId
        }
        _ => InitReaction::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_sequence_is_success_without_an_offset() {
        // Java's Sender.completeBatch: DUPLICATE_SEQUENCE_NUMBER completes the batch normally.
        assert_eq!(
            classify_produce(DUPLICATE_SEQUENCE_NUMBER, true),
            Reaction::AlreadyWritten
        );
    }

    #[test]
    fn sequence_gaps_and_lost_producer_state_bump_the_epoch() {
        // TransactionManager.canRetry, non-transactional branch: requestEpochBumpForPartition.
        for code in [OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID] {
            assert_eq!(classify_produce(code, true), Reaction::RetryWithBumpedEpoch);
        }
    }

    #[test]
    fn a_fenced_epoch_takes_a_new_producer_id() {
        // librdkafka rd_kafka_idemp_drain_reset for the idempotent (non-transactional) producer.
        for code in [INVALID_PRODUCER_EPOCH, PRODUCER_FENCED] {
            assert_eq!(
                classify_produce(code, true),
                Reaction::RetryWithNewProducerId
            );
        }
    }

    #[test]
    fn without_idempotence_sequence_errors_fail() {
        for code in [
            DUPLICATE_SEQUENCE_NUMBER,
            OUT_OF_ORDER_SEQUENCE_NUMBER,
            INVALID_PRODUCER_EPOCH,
        ] {
            assert_eq!(classify_produce(code, false), Reaction::Fail);
        }
    }

    #[test]
    fn leader_changes_refresh_metadata_and_other_retriables_do_not() {
        // Java: InvalidMetadataException → metadata update; other RetriableException → retry.
        for code in [
            NOT_LEADER_OR_FOLLOWER,
            UNKNOWN_TOPIC_OR_PARTITION,
            LEADER_NOT_AVAILABLE,
        ] {
            assert_eq!(
                classify_produce(code, true),
                Reaction::Retry {
                    refresh_leader: true
                }
            );
        }
        assert_eq!(
            classify_produce(NOT_ENOUGH_REPLICAS, true),
            Reaction::Retry {
                refresh_leader: false
            }
        );
    }

    #[test]
    fn unknown_codes_fail_the_records() {
        // e.g. MESSAGE_TOO_LARGE (10), INVALID_RECORD (87), TOPIC_AUTHORIZATION_FAILED (29)
        for code in [10, 87, 29] {
            assert_eq!(classify_produce(code, true), Reaction::Fail);
        }
    }

    #[test]
    fn init_producer_id_coordinator_trouble_is_retried_and_a_stale_epoch_asks_anew() {
        assert_eq!(classify_init_producer_id(NONE), InitReaction::Granted);
        assert_eq!(
            classify_init_producer_id(COORDINATOR_LOAD_IN_PROGRESS),
            InitReaction::RetryLater
        );
        assert_eq!(
            classify_init_producer_id(PRODUCER_FENCED),
            InitReaction::AskForNewId
        );
        assert_eq!(classify_init_producer_id(35), InitReaction::Fail);
    }
}
