//! A one-answer channel between shards on which no waker ever leaves its shard.
//!
//! glommio 0.9 frees a task too early when a waker of it is released (dropped, or woken,
//! which drops it too) on another executor's thread at the moment the task's handle is
//! dropped at home: the foreign release lowers the count to zero before it re-raises it,
//! and the home thread frees the task in between, then frees it again later
//! (use-after-free, double free: docs/notes/glommio-foreign-waker-drop.md).
//! `futures::channel::oneshot` between shards releases wakers on the other shard all the
//! time. So here a waker stays on its own shard: the answer (or the hang-up) is put in a
//! shared slot and the waiting shard is told over its *doorbell*, a glommio
//! `shared_channel` of slot ids (glommio wakes the receiving task from its own reactor);
//! the doorbell loop of that shard wakes the task that waits for that id, locally.
//!
//! Each shard installs its doorbell ends once ([`install`]) before it sends or awaits
//! replies. The slot is a `Mutex` held for a few instructions by the two ends of one
//! answer, never by anything else.

use crate::mesh::{MeshReceivers, MeshSenders};
use futures::StreamExt;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The asker hung up, or the answering side dropped its end without answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the other shard dropped its end of the reply")]
pub struct Canceled;

/// A shard and a waiter id on it: where a doorbell ring goes.
type Bell = (usize, u64);

/// One shard's doorbell: the ends to ring the others, and the local tasks waiting.
struct Doorbell {
    shard: usize,
    ring: MeshSenders<u64>,
    /// Shared with the loops that serve the rings, which must not hold `ring` (the other
    /// shards' loops end when these senders go).
    waiting: Rc<RefCell<HashMap<u64, Waker>>>,
    next_id: Cell<u64>,
}

thread_local! {
    static DOORBELL: RefCell<Option<Rc<Doorbell>>> = const { RefCell::new(None) };
}

fn doorbell() -> Rc<Doorbell> {
    installed_doorbell().expect("shard_reply::install ran on this shard")
}

/// None on a thread without a doorbell (not a shard, or one shutting down): ends dropped
/// there ring nobody, as nobody there can wait.
fn installed_doorbell() -> Option<Rc<Doorbell>> {
    DOORBELL.with(|bell| bell.borrow().clone())
}

/// Installs this shard's doorbell ends (a mesh of `u64`, made with
/// [`crate::mesh::full_mesh`] beside the shard's message mesh) and starts the loop that
/// wakes local waiters when another shard rings. Call once per shard, on its executor.
pub fn install(ring: MeshSenders<u64>, rung: MeshReceivers<u64>) {
    let shard = ring.shard();
    let waiting = Rc::new(RefCell::new(HashMap::<u64, Waker>::new()));
    let bell = Rc::new(Doorbell { shard, ring, waiting: waiting.clone(), next_id: Cell::new(0) });
    DOORBELL.with(|slot| {
        let previous = slot.borrow_mut().replace(bell.clone());
        assert!(previous.is_none(), "one doorbell per shard");
    });
    for (_, mut stream) in rung.into_streams() {
        let waiting = waiting.clone();
        glommio::spawn_local(async move {
            while let Some(id) = stream.next().await {
                // Gone already when the waiter stopped waiting: nothing to wake.
                let waker = waiting.borrow_mut().remove(&id);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        })
        .detach();
    }
}

/// Drops this shard's doorbell (at shard shutdown, so the other shards' loops end).
pub fn uninstall() {
    DOORBELL.with(|slot| slot.borrow_mut().take());
}

impl Doorbell {
    fn new_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Records `waker` as the local waiter for `id` (replacing an older one of it).
    fn wait(&self, id: u64, waker: &Waker) {
        let mut waiting = self.waiting.borrow_mut();
        match waiting.get(&id) {
            Some(stored) if stored.will_wake(waker) => {}
            _ => {
                waiting.insert(id, waker.clone());
            }
        }
    }

    fn stop_waiting(&self, id: u64) {
        self.waiting.borrow_mut().remove(&id);
    }

    /// Tells the waiter `(shard, id)` to look at its slot again.
    fn ring(self: &Rc<Self>, (shard, id): Bell) {
        if shard == self.shard {
            let waker = self.waiting.borrow_mut().remove(&id);
            if let Some(waker) = waker {
                waker.wake();
            }
            return;
        }
        // Full doorbell: ring from a task rather than block the caller (often a Drop).
        let this = self.clone();
        glommio::spawn_local(async move {
            // A shard that stopped listening is shutting down: nobody waits there.
            let _ = this.ring.send_to(shard, id).await;
        })
        .detach();
    }
}

struct Slot<T> {
    value: Option<T>,
    sender_gone: bool,
    receiver_gone: bool,
    /// Where the asker waits for the answer.
    asker: Bell,
    /// Where the answerer waits for the hang-up ([`ReplySender::cancellation`]).
    answerer: Option<Bell>,
}

struct Shared<T>(Mutex<Slot<T>>);

impl<T> Shared<T> {
    fn slot(&self) -> MutexGuard<'_, Slot<T>> {
        // A panic while holding the slot leaves it consistent (every write is one field).
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes a channel for one answer; the receiver must stay on the calling shard.
pub fn channel<T>() -> (ReplySender<T>, ReplyReceiver<T>) {
    let bell = doorbell();
    let asker = (bell.shard, bell.new_id());
    let shared = Arc::new(Shared(Mutex::new(Slot {
        value: None,
        sender_gone: false,
        receiver_gone: false,
        asker,
        answerer: None,
    })));
    (ReplySender { shared: shared.clone(), waiting_id: None }, ReplyReceiver { shared, bell, id: asker.1 })
}

/// The answering end; it travels to the shard that answers.
pub struct ReplySender<T> {
    shared: Arc<Shared<T>>,
    /// Its id on the answering shard's doorbell, once it waits for the hang-up.
    waiting_id: Option<u64>,
}

impl<T> ReplySender<T> {
    /// Sends the answer; gives it back if the asker is gone.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let asker = {
            let mut slot = self.shared.slot();
            if slot.receiver_gone {
                return Err(value);
            }
            slot.value = Some(value);
            slot.sender_gone = true;
            slot.asker
        };
        self.stop_waiting();
        if let Some(bell) = installed_doorbell() {
            bell.ring(asker);
        }
        // Drop finds `sender_gone` set and rings nothing more.
        Ok(())
    }

    /// Whether the asker has dropped its end.
    pub fn is_canceled(&self) -> bool {
        self.shared.slot().receiver_gone
    }

    /// Completes when the asker drops its end (it no longer wants the answer).
    pub fn cancellation(&mut self) -> impl Future<Output = ()> + '_ {
        futures::future::poll_fn(move |cx| {
            let bell = doorbell();
            let id = *self.waiting_id.get_or_insert_with(|| bell.new_id());
            // Registered before the asker can learn where to ring, so no ring is missed.
            bell.wait(id, cx.waker());
            let mut slot = self.shared.slot();
            if slot.receiver_gone {
                return Poll::Ready(());
            }
            slot.answerer = Some((bell.shard, id));
            Poll::Pending
        })
    }

    fn stop_waiting(&mut self) {
        if let (Some(id), Some(bell)) = (self.waiting_id.take(), installed_doorbell()) {
            bell.stop_waiting(id);
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        self.stop_waiting();
        let asker = {
            let mut slot = self.shared.slot();
            if slot.sender_gone {
                return; // answered
            }
            slot.sender_gone = true;
            (!slot.receiver_gone).then_some(slot.asker)
        };
        if let (Some(asker), Some(bell)) = (asker, installed_doorbell()) {
            bell.ring(asker);
        }
    }
}

/// The asking end: a future of the answer. Stays on the shard that made it.
pub struct ReplyReceiver<T> {
    shared: Arc<Shared<T>>,
    bell: Rc<Doorbell>,
    id: u64,
}

impl<T> Future for ReplyReceiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Registered before looking, so a ring that comes in between is not missed.
        self.bell.wait(self.id, cx.waker());
        let mut slot = self.shared.slot();
        let ready = match slot.value.take() {
            Some(value) => Some(Ok(value)),
            None if slot.sender_gone => Some(Err(Canceled)),
            None => None,
        };
        drop(slot);
        match ready {
            Some(result) => {
                self.bell.stop_waiting(self.id);
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for ReplyReceiver<T> {
    fn drop(&mut self) {
        self.bell.stop_waiting(self.id);
        let answerer = {
            let mut slot = self.shared.slot();
            slot.receiver_gone = true;
            if slot.sender_gone {
                None
            } else {
                slot.answerer
            }
        };
        if let Some(answerer) = answerer {
            self.bell.ring(answerer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::full_mesh;
    use glommio::channels::shared_channel;
    use glommio::LocalExecutorBuilder;
    use std::time::Duration;

    /// Two executors with doorbells: `asker` makes channels and sends the senders to
    /// `answerer` over a glommio channel.
    fn two_shards<A, B, FA, FB, RA, RB>(asker: A, answerer: B) -> (RA, RB)
    where
        A: FnOnce(shared_channel::ConnectedSender<(u32, ReplySender<u32>)>) -> FA + Send + 'static,
        B: FnOnce(shared_channel::ConnectedReceiver<(u32, ReplySender<u32>)>) -> FB + Send + 'static,
        FA: Future<Output = RA> + 'static,
        FB: Future<Output = RB> + 'static,
        RA: Send + 'static,
        RB: Send + 'static,
    {
        let mut bells = full_mesh::<u64>(2, 64).into_iter();
        let (bell_a, bell_b) = (bells.next().expect("shard 0"), bells.next().expect("shard 1"));
        let (to_answerer, from_asker) = shared_channel::new_bounded(64);
        let answering = LocalExecutorBuilder::default()
            .io_memory(512 << 10)
            .spawn(move || async move {
                let (ring, rung) = bell_b.connect().await;
                install(ring, rung);
                let result = answerer(from_asker.connect().await).await;
                uninstall();
                result
            })
            .expect("answerer starts");
        let asking = LocalExecutorBuilder::default()
            .io_memory(512 << 10)
            .spawn(move || async move {
                let (ring, rung) = bell_a.connect().await;
                install(ring, rung);
                let result = asker(to_answerer.connect().await).await;
                uninstall();
                result
            })
            .expect("asker starts");
        (asking.join().expect("asker ran"), answering.join().expect("answerer ran"))
    }

    #[test]
    fn an_answer_a_hang_up_and_a_cancellation_each_reach_the_other_shard() {
        let (asked, served) = two_shards(
            |requests| async move {
                let (reply, answer) = channel();
                requests.send((1, reply)).await.expect("answerer alive");
                let first = answer.await;
                let (reply, answer) = channel();
                requests.send((2, reply)).await.expect("answerer alive");
                let second = answer.await;
                let (reply, answer) = channel();
                requests.send((3, reply)).await.expect("answerer alive");
                glommio::timer::sleep(Duration::from_millis(20)).await;
                drop(answer); // the answerer waits for this hang-up
                (first, second)
            },
            |requests| async move {
                let mut log = Vec::new();
                while let Some((n, mut reply)) = requests.recv().await {
                    match n {
                        1 => log.push(reply.send(10).is_ok()),
                        2 => drop(reply),
                        _ => {
                            reply.cancellation().await;
                            log.push(reply.is_canceled());
                            log.push(reply.send(30) == Err(30));
                        }
                    }
                }
                log
            },
        );
        assert_eq!(asked, (Ok(10), Err(Canceled)));
        assert_eq!(served, vec![true, true, true]);
    }

    /// The broker's pattern on real executors: askers giving up at random (dropping the
    /// task awaiting the answer, or timing out), answerers answering, hanging up or
    /// waiting for the cancellation. With `futures::channel::oneshot` in its place this
    /// mix ends in glommio's "Waker invariant broken" or a heap-corruption abort.
    #[test]
    fn many_answers_and_hang_ups_across_two_executors_finish_cleanly() {
        const ROUNDS: u32 = 20_000;
        let ((answered, canceled), served) = two_shards(
            |requests| async move {
                let (mut answered, mut canceled) = (0u32, 0u32);
                for n in 0..ROUNDS {
                    let (reply, answer) = channel();
                    requests.send((n, reply)).await.expect("answerer alive");
                    let waiting = glommio::spawn_local(answer);
                    if n % 4 == 0 {
                        drop(waiting); // gives up: the task awaiting the answer is dropped
                        continue;
                    }
                    let limit = Duration::from_micros(u64::from(n % 40));
                    match glommio::timer::timeout(limit, async { Ok(waiting.await) }).await {
                        Ok(Ok(_)) => answered += 1,
                        Ok(Err(Canceled)) => canceled += 1,
                        Err(_) => {} // timed out: the awaiting task was dropped
                    }
                }
                (answered, canceled)
            },
            |requests| async move {
                let mut served = 0u32;
                while let Some((n, mut reply)) = requests.recv().await {
                    served += 1;
                    match n % 3 {
                        0 => drop(reply.send(n)),
                        1 => drop(reply),
                        _ => drop(
                            glommio::spawn_local(async move {
                                let answer = glommio::timer::sleep(Duration::from_micros(u64::from(n % 50)));
                                let cancellation = Box::pin(reply.cancellation());
                                let answered = matches!(
                                    futures::future::select(cancellation, Box::pin(answer)).await,
                                    futures::future::Either::Right(_)
                                );
                                if answered {
                                    let _ = reply.send(n);
                                }
                            })
                            .detach(),
                        ),
                    }
                }
                served
            },
        );
        assert_eq!(served, ROUNDS);
        assert!(answered > 0 && canceled > 0, "both outcomes seen: {answered} answered, {canceled} canceled");
    }
}
