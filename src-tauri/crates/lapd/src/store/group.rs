//! Group commit: the seat writes of requests handled at the same time share one transaction
//! and one flush.
//!
//! Every new seat and most renewals write (profile §9 keeps per seat the last answer's
//! NotAfter, the Generation, the last-seen time), and each write is durable before its answer
//! leaves. Alone, each would wait for its own flush, and a disk that flushes in 2 ms would
//! cap a server at 500 answers a second whatever its cores. Here the first thread to write
//! commits, with its own write, every write queued until then; the writes that arrive while
//! it flushes wait and go together in the next commit, whose committer is one of them. No
//! write waits for a timer: a lone write commits at once, and under load each commit carries
//! what arrived during the one before.
//!
//! A batch is the writes as each would have been alone, in one transaction, ordered by
//! license and machine so that two servers' batches take their locks in the same order. When
//! a batch fails, nothing of it was written. If the failure may be one write's own (a value
//! out of range, a deadlock), each write is done alone, as without batching, so that one
//! write's failure is never another's; if the database as a whole failed (busy, unreachable),
//! every write of the batch fails with it, as each would have alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};

use lap_proto::Uuid;

use super::model::{Limit, MachineHash, SeatStore, StoreError, Take, Taken, Touch, Write, Written};

/// A write as queued: owned, since another thread's commit does it.
#[derive(Debug)]
pub(super) struct Queued {
    license: String,
    machine: MachineHash,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Take {
        license_id: Uuid,
        now: u64,
        limit: Limit,
        client_base_id: Option<Uuid>,
        generation: u32,
        not_after: Option<u64>,
    },
    Touch {
        now: u64,
        not_after: Option<u64>,
        generation: Option<u32>,
        client_base_id: Uuid,
    },
}

impl Queued {
    pub(super) fn take(take: &Take<'_>) -> Self {
        Self {
            license: take.license.to_owned(),
            machine: *take.machine,
            kind: Kind::Take {
                license_id: take.license_id,
                now: take.now,
                limit: take.limit,
                client_base_id: take.client_base_id,
                generation: take.generation,
                not_after: take.not_after,
            },
        }
    }

    pub(super) fn touch(touch: &Touch<'_>) -> Self {
        Self {
            license: touch.license.to_owned(),
            machine: *touch.machine,
            kind: Kind::Touch {
                now: touch.now,
                not_after: touch.not_after,
                generation: touch.generation,
                client_base_id: touch.client_base_id,
            },
        }
    }

    fn write(&self) -> Write<'_> {
        match self.kind {
            Kind::Take {
                license_id,
                now,
                limit,
                client_base_id,
                generation,
                not_after,
            } => Write::Take(Take {
                license: &self.license,
                machine: &self.machine,
                license_id,
                now,
                limit,
                client_base_id,
                generation,
                not_after,
            }),
            Kind::Touch {
                now,
                not_after,
                generation,
                client_base_id,
            } => Write::Touch(Touch {
                license: &self.license,
                machine: &self.machine,
                now,
                not_after,
                generation,
                client_base_id,
            }),
        }
    }

    /// The order locks are taken in: per license its counter row (takes) before its seats
    /// (touches), seats by machine. The same in every server, so that two batches never wait
    /// for each other's locks.
    fn lock_order(&self) -> (&str, u8, &MachineHash) {
        let kind = match self.kind {
            Kind::Take { .. } => 0,
            Kind::Touch { .. } => 1,
        };
        (&self.license, kind, &self.machine)
    }
}

/// How many writes and commits there were (for the server's summary and the bench).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub writes: u64,
    /// Transactions committed for them: fewer than `writes` when commits were shared.
    pub commits: u64,
}

/// What a waiting thread is woken with: its write's result, or its turn to commit.
enum Wake {
    Done(Result<Written, StoreError>),
    Commit,
}

/// A queued write and where its thread waits.
type Waiting = (Queued, mpsc::SyncSender<Wake>);

#[derive(Default)]
struct State {
    queue: Vec<Waiting>,
    /// Whether a thread is committing now; the queue waits for it.
    committing: bool,
}

/// The writes waiting for a commit.
#[derive(Default)]
pub(super) struct GroupCommit {
    state: Mutex<State>,
    writes: AtomicU64,
    commits: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Ends a commit however it ends (a backend's panic included), so that the queue does not
/// wait for a committer that is gone.
struct HandOver<'a>(&'a GroupCommit);

impl Drop for HandOver<'_> {
    fn drop(&mut self) {
        self.0.hand_over();
    }
}

impl GroupCommit {
    /// Does `write` on `backend` in the next commit, and returns once that commit is durable
    /// (or has failed).
    pub(super) fn write(
        &self,
        backend: &dyn SeatStore,
        write: Queued,
    ) -> Result<Written, StoreError> {
        // Each thread is woken once by others: with its result, or to commit. Its own
        // commit's result it finds in the same channel.
        let (wake, woken) = mpsc::sync_channel(1);
        let commit_now = {
            let mut state = self.lock();
            state.queue.push((write, wake));
            !std::mem::replace(&mut state.committing, true)
        };
        if !commit_now {
            match woken.recv() {
                Ok(Wake::Done(result)) => return result,
                Ok(Wake::Commit) => {}
                // The committer panicked with this write in its batch.
                Err(mpsc::RecvError) => return Err(StoreError::CommitAbandoned),
            }
        }
        self.commit_queue(backend);
        match woken.try_recv() {
            Ok(Wake::Done(result)) => result,
            Ok(Wake::Commit) | Err(_) => Err(StoreError::CommitAbandoned),
        }
    }

    /// Commits every queued write, wakes each write's thread with its result, and hands the
    /// next commit to the first thread whose write arrived meanwhile.
    fn commit_queue(&self, backend: &dyn SeatStore) {
        let _hand_over = HandOver(self);
        let (writes, wakes): (Vec<Queued>, Vec<_>) =
            std::mem::take(&mut self.lock().queue).into_iter().unzip();
        let results = self.commit(backend, &writes);
        for (wake, result) in wakes.into_iter().zip(results) {
            // Cannot fail: the channel has room for one and its thread waits on it.
            let _ = wake.send(Wake::Done(result));
        }
    }

    /// After a commit: the first queued write's thread commits next, or none is committing.
    fn hand_over(&self) {
        let mut state = self.lock();
        while let Some((_, wake)) = state.queue.first() {
            // Its write stays queued: it commits it with the others.
            if wake.send(Wake::Commit).is_ok() {
                return;
            }
            state.queue.remove(0);
        }
        state.committing = false;
    }

    /// Writes and commits so far.
    pub(super) fn stats(&self) -> CommitStats {
        CommitStats {
            writes: self.writes.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Does `writes` together, or one by one when that fails; their results in their order.
    fn commit(
        &self,
        backend: &dyn SeatStore,
        writes: &[Queued],
    ) -> Vec<Result<Written, StoreError>> {
        self.writes
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        if writes.len() > 1 {
            let mut order: Vec<usize> = (0..writes.len()).collect();
            order.sort_by(|&a, &b| writes[a].lock_order().cmp(&writes[b].lock_order()));
            let sorted: Vec<Write<'_>> = order.iter().map(|&i| writes[i].write()).collect();
            match backend.write_batch(&sorted) {
                Ok(written) if written.len() == writes.len() => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    let mut results: Vec<Option<Written>> = vec![None; writes.len()];
                    for (&i, written) in order.iter().zip(written) {
                        results[i] = Some(written);
                    }
                    return results
                        .into_iter()
                        .map(|r| r.ok_or(StoreError::CommitAbandoned))
                        .collect();
                }
                Ok(_) => {
                    tracing::error!(
                        "seat database batch answered the wrong number of writes; writing them one by one"
                    );
                }
                Err(error) if !error.may_be_one_writes() => {
                    // Trying each would only fail again (and wait again): the first write
                    // carries the error (the store takes an unreachable database as down from
                    // it), the others that their commit failed.
                    let others = |error: &StoreError| {
                        if error.is_unreachable() {
                            StoreError::Unavailable
                        } else {
                            StoreError::CommitAbandoned
                        }
                    };
                    let mut results: Vec<Result<Written, StoreError>> =
                        writes.iter().skip(1).map(|_| Err(others(&error))).collect();
                    results.insert(0, Err(error));
                    return results;
                }
                Err(error) => {
                    tracing::debug!(%error, writes = writes.len(), "shared commit failed; writing one by one");
                }
            }
        }
        writes
            .iter()
            .map(|queued| {
                self.commits.fetch_add(1, Ordering::Relaxed);
                match queued.write() {
                    Write::Take(take) => backend.take_seat(&take).map(Written::Taken),
                    Write::Touch(touch) => backend.touch(&touch).map(Written::Touched),
                }
            })
            .collect()
    }
}

impl Written {
    /// The take's result; a touch's is a bug in the caller.
    pub(super) fn taken(self) -> Result<Taken, StoreError> {
        match self {
            Self::Taken(taken) => Ok(taken),
            Self::Touched(_) => Err(StoreError::Corrupt("a take answered as a touch")),
        }
    }

    /// The touch's result; a take's is a bug in the caller.
    pub(super) fn touched(self) -> Result<Option<super::model::Assignment>, StoreError> {
        match self {
            Self::Touched(before) => Ok(before),
            Self::Taken(_) => Err(StoreError::Corrupt("a touch answered as a take")),
        }
    }
}
