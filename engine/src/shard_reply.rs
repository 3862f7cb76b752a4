//! A one-answer channel between shards that never drops a waker on a foreign thread.
//!
//! glommio 0.9 frees a task too early when the last waker of it is *dropped* (not woken)
//! on another executor's thread while the task's handle is dropped at home: the foreign
//! drop lowers the count to zero before it re-raises it, and the home thread frees the
//! task in between, then frees it again later (use-after-free, double free;
//! docs/notes/glommio-foreign-waker-drop.md). `futures::channel::oneshot` can leave a
//! waker in its slot when its `try_lock` loses a race, and then drops it with the last
//! reference, on whichever shard that is. Here every waker taken out of the slot is
//! *woken*, never dropped: a wake first takes its own reference, so the count never
//! touches zero, and a spurious wake only costs a poll.
//!
//! The slot is a `Mutex` held for a few instructions by the two ends of one answer,
//! never by anything else.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The asker hung up, or the answering side dropped its end without answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the other shard dropped its end of the reply")]
pub struct Canceled;

struct Slot<T> {
    value: Option<T>,
    sender_gone: bool,
    receiver_gone: bool,
    /// The task awaiting the answer.
    receiver_waker: Option<Waker>,
    /// The task awaiting [`ReplySender::cancellation`].
    sender_waker: Option<Waker>,
}

struct Shared<T>(Mutex<Slot<T>>);

impl<T> Shared<T> {
    fn slot(&self) -> MutexGuard<'_, Slot<T>> {
        // A panic while holding the slot leaves it consistent (every write is one field).
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let slot = self.slot();
        debug_assert!(
            slot.receiver_waker.is_none() && slot.sender_waker.is_none(),
            "each end releases the wakers when it goes, so none is dropped with the slot"
        );
    }
}

/// Stores `waker` in `place`. A waker already there that would wake another task is
/// woken, not dropped (see the module doc).
fn register(place: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match place {
        Some(stored) if stored.will_wake(waker) => None,
        _ => place.replace(waker.clone()),
    }
}

/// Wakes what was taken out of the slot, after the slot is unlocked.
fn release(wakers: impl IntoIterator<Item = Option<Waker>>) {
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}

/// Makes a channel for one answer.
pub fn channel<T>() -> (ReplySender<T>, ReplyReceiver<T>) {
    let shared = Arc::new(Shared(Mutex::new(Slot {
        value: None,
        sender_gone: false,
        receiver_gone: false,
        receiver_waker: None,
        sender_waker: None,
    })));
    (ReplySender { shared: shared.clone() }, ReplyReceiver { shared })
}

/// The answering end; it travels to the shard that answers.
pub struct ReplySender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> ReplySender<T> {
    /// Sends the answer; gives it back if the asker is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut slot = self.shared.slot();
            if slot.receiver_gone {
                return Err(value);
            }
            slot.value = Some(value);
            slot.receiver_waker.take()
        };
        release([waker]);
        Ok(())
    }

    /// Whether the asker has dropped its end.
    pub fn is_canceled(&self) -> bool {
        self.shared.slot().receiver_gone
    }

    /// Completes when the asker drops its end (it no longer wants the answer).
    pub fn cancellation(&self) -> impl Future<Output = ()> + '_ {
        futures::future::poll_fn(move |cx| {
            let replaced = {
                let mut slot = self.shared.slot();
                if slot.receiver_gone {
                    return Poll::Ready(());
                }
                register(&mut slot.sender_waker, cx.waker())
            };
            release([replaced]);
            Poll::Pending
        })
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        let wakers = {
            let mut slot = self.shared.slot();
            slot.sender_gone = true;
            [slot.receiver_waker.take(), slot.sender_waker.take()]
        };
        release(wakers);
    }
}

/// The asking end: a future of the answer.
pub struct ReplyReceiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Future for ReplyReceiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let replaced = {
            let mut slot = self.shared.slot();
            if let Some(value) = slot.value.take() {
                return Poll::Ready(Ok(value));
            }
            if slot.sender_gone {
                return Poll::Ready(Err(Canceled));
            }
            register(&mut slot.receiver_waker, cx.waker())
        };
        release([replaced]);
        Poll::Pending
    }
}

impl<T> Drop for ReplyReceiver<T> {
    fn drop(&mut self) {
        let wakers = {
            let mut slot = self.shared.slot();
            slot.receiver_gone = true;
            [slot.receiver_waker.take(), slot.sender_waker.take()]
        };
        release(wakers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{RawWaker, RawWakerVTable};
    use std::thread::ThreadId;

    /// A waker that counts how it is released and whether on its own thread.
    struct Probe {
        home: ThreadId,
        dropped_abroad: AtomicUsize,
        woken: AtomicUsize,
    }

    static PROBE_VTABLE: RawWakerVTable = RawWakerVTable::new(probe_clone, probe_wake, probe_wake_by_ref, probe_drop);

    fn probe_raw(probe: *const Probe) -> RawWaker {
        RawWaker::new(probe.cast(), &PROBE_VTABLE)
    }
    unsafe fn probe_clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` is an `Arc<Probe>` pointer made by `probe_waker`.
        unsafe { Arc::increment_strong_count(data.cast::<Probe>()) };
        probe_raw(data.cast())
    }
    unsafe fn probe_wake(data: *const ()) {
        // SAFETY: as above; this consumes the waker's reference.
        let probe = unsafe { Arc::from_raw(data.cast::<Probe>()) };
        probe.woken.fetch_add(1, Ordering::SeqCst);
    }
    unsafe fn probe_wake_by_ref(data: *const ()) {
        // SAFETY: as above; the reference stays with the waker.
        unsafe { &*data.cast::<Probe>() }.woken.fetch_add(1, Ordering::SeqCst);
    }
    unsafe fn probe_drop(data: *const ()) {
        // SAFETY: as above; this consumes the waker's reference.
        let probe = unsafe { Arc::from_raw(data.cast::<Probe>()) };
        if std::thread::current().id() != probe.home {
            probe.dropped_abroad.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe_waker() -> (Arc<Probe>, Waker) {
        let probe = Arc::new(Probe {
            home: std::thread::current().id(),
            dropped_abroad: AtomicUsize::new(0),
            woken: AtomicUsize::new(0),
        });
        // SAFETY: the vtable keeps the Arc's count right for every clone and release.
        let waker = unsafe { Waker::from_raw(probe_raw(Arc::into_raw(probe.clone()))) };
        (probe, waker)
    }

    fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(future).poll(&mut Context::from_waker(waker))
    }

    fn on_other_thread<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::spawn(work).join().expect("other thread")
    }

    #[test]
    fn an_answer_from_another_thread_wakes_the_asker_and_drops_no_waker_there() {
        let (probe, waker) = probe_waker();
        let (sender, mut receiver) = channel::<u32>();
        assert!(poll_once(&mut receiver, &waker).is_pending());
        assert!(on_other_thread(move || sender.send(7).is_ok()));
        assert_eq!(probe.woken.load(Ordering::SeqCst), 1);
        assert_eq!(poll_once(&mut receiver, &waker), Poll::Ready(Ok(7)));
        drop((receiver, waker));
        assert_eq!(probe.dropped_abroad.load(Ordering::SeqCst), 0);
        assert_eq!(Arc::strong_count(&probe), 1, "every clone of the waker was released");
    }

    #[test]
    fn an_asker_hanging_up_wakes_the_cancellation_waiter_on_its_own_thread_and_drops_none_abroad() {
        let (sender, receiver) = channel::<u32>();
        let (asked, hang_up) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let answerer = std::thread::spawn(move || {
            let (probe, waker) = probe_waker();
            let mut cancelled = Box::pin(sender.cancellation());
            assert!(cancelled.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
            asked.0.send(()).unwrap();
            hang_up.1.recv().unwrap();
            assert_eq!(probe.woken.load(Ordering::SeqCst), 1, "woken by the asker's drop");
            assert!(cancelled.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
            drop(cancelled);
            assert!(sender.is_canceled());
            assert_eq!(sender.send(1), Err(1), "nobody to answer");
            drop(waker);
            (probe.dropped_abroad.load(Ordering::SeqCst), Arc::strong_count(&probe))
        });
        asked.1.recv().unwrap();
        drop(receiver); // on this thread: the answerer's waker is woken here, not dropped
        hang_up.0.send(()).unwrap();
        assert_eq!(answerer.join().unwrap(), (0, 1));
    }

    #[test]
    fn an_answerer_dropping_its_end_cancels_the_asker_and_the_asker_s_waker_is_woken_not_dropped() {
        let (probe, waker) = probe_waker();
        let (sender, mut receiver) = channel::<u32>();
        assert!(poll_once(&mut receiver, &waker).is_pending());
        // Polled again with a waker of another task: the first is woken, not dropped.
        let (other_probe, other_waker) = probe_waker();
        assert!(poll_once(&mut receiver, &other_waker).is_pending());
        assert_eq!(probe.woken.load(Ordering::SeqCst), 1);
        on_other_thread(move || drop(sender));
        assert_eq!(other_probe.woken.load(Ordering::SeqCst), 1);
        assert_eq!(poll_once(&mut receiver, &waker), Poll::Ready(Err(Canceled)));
        drop((receiver, waker, other_waker));
        assert_eq!(probe.dropped_abroad.load(Ordering::SeqCst) + other_probe.dropped_abroad.load(Ordering::SeqCst), 0);
        assert_eq!((Arc::strong_count(&probe), Arc::strong_count(&other_probe)), (1, 1));
    }

    /// The broker's pattern on real executors: askers on one shard, answerers on another,
    /// askers giving up at random (dropping the task awaiting the answer), answerers
    /// answering, hanging up or waiting for the cancellation. Under glommio 0.9 with
    /// `futures::channel::oneshot` this is the mix that corrupts the heap.
    #[test]
    fn many_answers_and_hang_ups_across_two_executors_finish_cleanly() {
        use glommio::channels::shared_channel;
        use glommio::LocalExecutorBuilder;
        use std::time::Duration;
        const ROUNDS: u32 = 20_000;
        let (to_answerer, from_asker) = shared_channel::new_bounded::<(u32, ReplySender<u32>)>(64);
        let answerer = LocalExecutorBuilder::default()
            .io_memory(512 << 10)
            .spawn(move || async move {
                let requests = from_asker.connect().await;
                let mut served = 0u32;
                while let Some((n, reply)) = requests.recv().await {
                    served += 1;
                    match n % 3 {
                        0 => drop(reply.send(n)),
                        1 => drop(reply),
                        _ => drop(glommio::spawn_local(async move {
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
                        .detach()),
                    }
                }
                served
            })
            .expect("answerer starts");
        let asker = LocalExecutorBuilder::default()
            .io_memory(512 << 10)
            .spawn(move || async move {
                let requests = to_answerer.connect().await;
                let (mut answered, mut canceled) = (0u32, 0u32);
                for n in 0..ROUNDS {
                    let (reply, answer) = channel();
                    if requests.send((n, reply)).await.is_err() {
                        panic!("answerer gone");
                    }
                    let waiting = glommio::spawn_local(answer);
                    if n % 4 == 0 {
                        drop(waiting); // gives up: the task awaiting the answer is dropped
                        continue;
                    }
                    match glommio::timer::timeout(Duration::from_micros(u64::from(n % 40)), async {
                        Ok(waiting.await)
                    })
                    .await
                    {
                        Ok(Ok(_)) => answered += 1,
                        Ok(Err(Canceled)) => canceled += 1,
                        Err(_) => {} // timed out: the awaiting task was dropped
                    }
                }
                (answered, canceled)
            })
            .expect("asker starts");
        let (answered, canceled) = asker.join().expect("asker ran");
        assert_eq!(answerer.join().expect("answerer ran"), ROUNDS);
        assert!(answered > 0 && canceled > 0, "both outcomes seen: {answered} answered, {canceled} canceled");
    }
}
