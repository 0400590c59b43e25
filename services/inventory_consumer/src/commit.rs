//! One commit queue per group member: every worker hands it each batch's delivery tickets and
//! next offset, and it commits, in one OffsetCommit for all partitions, each partition's
//! offset up to the last batch whose outputs are all acknowledged.
//!
//! It owns only the order of commits: a partition's offset never moves past a batch with an
//! unacknowledged outcome, even when a later batch of that partition is acknowledged first.
//! It must not decide anything about orders. The choice a reader may question: commits are
//! coalesced — while one OffsetCommit is on its way, whatever becomes ready waits and goes in
//! the next one — instead of one request per batch per partition. Nisshi answers one request
//! at a time per connection, and at 10k orders/s over 6 partitions the per-batch commits were
//! some 600 round trips a second on the coordinator connection, which held every worker at
//! its limit of batches ahead; at 384 partitions they were most of the per-partition cost.

use std::collections::{HashMap, VecDeque};

use shared::group::{CommitOutcome, Committer, GroupError, TopicPartition};
use shared::producer::DeliveryTicket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Why a batch's commit did not happen; the worker stops with it (a restart replays the tail).
pub type CommitFailure = String;

/// What a worker waits on: its batch committed, or why not.
pub type Committed = oneshot::Receiver<Result<(), CommitFailure>>;

/// A batch whose outputs are on their way, handed to the queue.
struct Handed {
    partition: TopicPartition,
    tickets: Vec<DeliveryTicket>,
    next_offset: i64,
    done: oneshot::Sender<Result<(), CommitFailure>>,
}

/// The handle workers share (one queue per member).
#[derive(Debug, Clone)]
pub struct CommitQueue {
    batches: mpsc::Sender<Handed>,
}

impl CommitQueue {
    /// Starts the queue's task; it ends when every handle is dropped and every batch handed
    /// to it has been committed or failed.
    pub fn start(committer: Committer) -> Self {
        // Workers bound their own batches ahead, so this only smooths the hand-over.
        let (batches, receiver) = mpsc::channel(256);
        tokio::spawn(run(committer, receiver));
        Self { batches }
    }

    /// Hands over a batch; the receiver resolves once its offset is committed (or failed).
    pub async fn hand_over(
        &self,
        partition: TopicPartition,
        tickets: Vec<DeliveryTicket>,
        next_offset: i64,
    ) -> Result<Committed, CommitFailure> {
        let (done, committed) = oneshot::channel();
        self.batches
            .send(Handed {
                partition,
                tickets,
                next_offset,
                done,
            })
            .await
            .map_err(|_| "the commit queue stopped".to_owned())?;
        Ok(committed)
    }
}

/// A batch waiting for its acknowledgements or for its commit.
struct Waiting {
    id: u64,
    next_offset: i64,
    acknowledged: bool,
    done: oneshot::Sender<Result<(), CommitFailure>>,
}

type CommitAnswer = (Vec<Ready>, Result<Vec<CommitOutcome>, GroupError>);

/// A batch that is acknowledged, with the batches of its partition it commits along.
struct Ready {
    partition: TopicPartition,
    next_offset: i64,
    done: Vec<oneshot::Sender<Result<(), CommitFailure>>>,
}

async fn run(committer: Committer, mut batches: mpsc::Receiver<Handed>) {
    let mut next_id = 0u64;
    let mut waiting: HashMap<TopicPartition, VecDeque<Waiting>> = HashMap::new();
    // One small task per batch awaits its tickets, so batches are acknowledged in any order.
    let mut acknowledgements = JoinSet::new();
    let mut ready: Vec<Ready> = Vec::new();
    let mut commit: Option<JoinHandle<CommitAnswer>> = None;
    let mut open = true;
    loop {
        if commit.is_none() && !ready.is_empty() {
            let offsets = ready
                .iter()
                .map(|r| (r.partition.clone(), r.next_offset))
                .collect();
            let taken = std::mem::take(&mut ready);
            let committer = committer.clone();
            commit = Some(tokio::spawn(async move {
                let answer = committer.commit(offsets).await;
                (taken, answer)
            }));
        }
        if !open && acknowledgements.is_empty() && commit.is_none() && ready.is_empty() {
            return;
        }
        tokio::select! {
            handed = batches.recv(), if open => match handed {
                Some(batch) => {
                    let id = next_id;
                    next_id += 1;
                    let partition = batch.partition.clone();
                    let tickets = batch.tickets;
                    acknowledgements.spawn(async move {
                        let mut acknowledged = Ok(());
                        for ticket in tickets {
                            if let Err(e) = ticket.delivered().await {
                                acknowledged = Err(format!("an outcome was not acknowledged; not committing: {e}"));
                                break;
                            }
                        }
                        (partition, id, acknowledged)
                    });
                    waiting.entry(batch.partition).or_default().push_back(Waiting {
                        id,
                        next_offset: batch.next_offset,
                        acknowledged: false,
                        done: batch.done,
                    });
                }
                None => open = false,
            },
            Some(joined) = acknowledgements.join_next(), if !acknowledgements.is_empty() => {
                // A panicked wait leaves its batch unacknowledged: the worker waits on it and
                // sees the queue stop when the member closes.
                if let Ok((partition, id, acknowledged)) = joined {
                    on_acknowledged(&mut waiting, &mut ready, partition, id, acknowledged);
                }
            }
            joined = answer_of(&mut commit), if commit.is_some() => {
                commit = None;
                if let Ok((committed, answer)) = joined {
                    report(committed, answer);
                }
            }
        }
    }
}

async fn answer_of(
    commit: &mut Option<JoinHandle<CommitAnswer>>,
) -> Result<CommitAnswer, tokio::task::JoinError> {
    match commit {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Marks a batch acknowledged and moves its partition's acknowledged prefix to `ready`; a
/// failed batch fails, with every later batch of its partition, at once.
fn on_acknowledged(
    waiting: &mut HashMap<TopicPartition, VecDeque<Waiting>>,
    ready: &mut Vec<Ready>,
    partition: TopicPartition,
    id: u64,
    acknowledged: Result<(), CommitFailure>,
) {
    let Some(queue) = waiting.get_mut(&partition) else {
        return;
    };
    if let Err(reason) = acknowledged {
        for batch in queue.drain(..) {
            let _ = batch.done.send(Err(reason.clone()));
        }
        return;
    }
    if let Some(batch) = queue.iter_mut().find(|b| b.id == id) {
        batch.acknowledged = true;
    }
    let mut done = Vec::new();
    let mut next_offset = None;
    while queue.front().is_some_and(|b| b.acknowledged) {
        if let Some(batch) = queue.pop_front() {
            next_offset = Some(batch.next_offset);
            done.push(batch.done);
        }
    }
    if queue.is_empty() {
        waiting.remove(&partition);
    }
    let Some(next_offset) = next_offset else {
        return;
    };
    // A partition already waiting for the next commit moves its offset on.
    match ready.iter_mut().find(|r| r.partition == partition) {
        Some(entry) => {
            entry.next_offset = next_offset;
            entry.done.extend(done);
        }
        None => ready.push(Ready {
            partition,
            next_offset,
            done,
        }),
    }
}

/// Tells each batch how its commit went. A partition the coordinator refused is only
/// warned about (the tail is replayed after a rebalance, as before); a failed request fails
/// every batch in it.
fn report(committed: Vec<Ready>, answer: Result<Vec<CommitOutcome>, GroupError>) {
    match answer {
        Ok(outcomes) => {
            for failed in outcomes.iter().filter(|o| !o.is_committed()) {
                tracing::warn!(partition = %failed.partition, error = ?failed.error_code, "commit refused; the tail will be replayed");
            }
            for entry in committed {
                for done in entry.done {
                    let _ = done.send(Ok(()));
                }
            }
        }
        Err(e) => {
            let reason = format!("committing: {e}");
            for entry in committed {
                for done in entry.done {
                    let _ = done.send(Err(reason.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `partition` waiting in the queue, and the receiver its worker awaits.
    fn wait(
        waiting: &mut HashMap<TopicPartition, VecDeque<Waiting>>,
        partition: &TopicPartition,
        id: u64,
        next_offset: i64,
    ) -> Committed {
        let (done, committed) = oneshot::channel();
        waiting
            .entry(partition.clone())
            .or_default()
            .push_back(Waiting {
                id,
                next_offset,
                acknowledged: false,
                done,
            });
        committed
    }

    fn offsets(ready: &[Ready]) -> Vec<(TopicPartition, i64)> {
        ready
            .iter()
            .map(|r| (r.partition.clone(), r.next_offset))
            .collect()
    }

    #[test]
    fn a_later_batch_acknowledged_first_waits_for_the_one_before_it() {
        let p0 = TopicPartition::new("orders", 0);
        let (mut waiting, mut ready) = (HashMap::new(), Vec::new());
        let _first = wait(&mut waiting, &p0, 0, 10);
        let _second = wait(&mut waiting, &p0, 1, 20);
        on_acknowledged(&mut waiting, &mut ready, p0.clone(), 1, Ok(()));
        assert!(
            ready.is_empty(),
            "offset 20 would skip batch 0's unacknowledged outcomes"
        );
        on_acknowledged(&mut waiting, &mut ready, p0.clone(), 0, Ok(()));
        assert_eq!(offsets(&ready), [(p0.clone(), 20)]);
        assert_eq!(
            ready[0].done.len(),
            2,
            "both batches are answered by that commit"
        );
        assert!(!waiting.contains_key(&p0));
    }

    #[test]
    fn partitions_move_independently_and_a_waiting_entry_moves_on() {
        let (p0, p1) = (
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1),
        );
        let (mut waiting, mut ready) = (HashMap::new(), Vec::new());
        let _a = wait(&mut waiting, &p0, 0, 10);
        let _b = wait(&mut waiting, &p1, 1, 7);
        let _c = wait(&mut waiting, &p0, 2, 30);
        on_acknowledged(&mut waiting, &mut ready, p1.clone(), 1, Ok(()));
        on_acknowledged(&mut waiting, &mut ready, p0.clone(), 0, Ok(()));
        on_acknowledged(&mut waiting, &mut ready, p0.clone(), 2, Ok(()));
        // p0's entry, not yet sent, was moved from 10 to 30 instead of queueing two commits.
        assert_eq!(offsets(&ready), [(p1, 7), (p0, 30)]);
    }

    #[test]
    fn an_unacknowledged_outcome_fails_its_batch_and_every_later_one_of_the_partition() {
        let (p0, p1) = (
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1),
        );
        let (mut waiting, mut ready) = (HashMap::new(), Vec::new());
        let mut first = wait(&mut waiting, &p0, 0, 10);
        let mut second = wait(&mut waiting, &p0, 1, 20);
        let mut other = wait(&mut waiting, &p1, 2, 5);
        on_acknowledged(
            &mut waiting,
            &mut ready,
            p0.clone(),
            0,
            Err("broker down".into()),
        );
        assert!(ready.is_empty(), "nothing of the partition is committed");
        assert_eq!(first.try_recv(), Ok(Err("broker down".to_owned())));
        assert_eq!(second.try_recv(), Ok(Err("broker down".to_owned())));
        assert!(
            other.try_recv().is_err(),
            "another partition's batch still waits"
        );
    }
}
