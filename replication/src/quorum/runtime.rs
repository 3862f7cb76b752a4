//! openraft's `AsyncRuntime` on glommio: Raft's tasks run on the shard that made the
//! Raft, timers are glommio timers, channels are tokio's runtime-free `sync` types (see
//! `channels.rs`).
//!
//! openraft drops some join handles on purpose and expects the task to go on (tokio's
//! semantics); a glommio task is cancelled when its handle drops. So every task is
//! detached at spawn and the handle only watches it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::timer::Timer;
use openraft_rt::{AsyncRuntime, OptionalSend};

use super::channels;

/// The runtime type for `declare_raft_types!`.
pub struct GlommioRuntime {
    executor: glommio::LocalExecutor,
}

impl fmt::Debug for GlommioRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GlommioRuntime")
    }
}

/// A task ended without an output: glommio cancelled it (its executor stopped).
#[derive(Debug)]
pub struct TaskCancelled;

impl fmt::Display for TaskCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task cancelled")
    }
}

/// Watches a detached task; dropping it leaves the task running.
pub struct DetachedJoin<T>(glommio::task::JoinHandle<T>);

impl<T> Future for DetachedJoin<T> {
    type Output = Result<T, TaskCancelled>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|output| output.ok_or(TaskCancelled))
    }
}

/// A glommio timer whose output is `()`.
pub struct Sleep(Timer);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// The deadline of a [`Timeout`] passed first.
#[derive(Debug)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

pin_project_lite::pin_project! {
    /// A future with a deadline (glommio's own timeout wants futures of glommio results).
    pub struct Timeout<F> {
        #[pin]
        future: F,
        timer: Timer,
    }
}

impl<F: Future> Timeout<F> {
    /// `future`, given `duration` to finish.
    pub fn new(future: F, duration: Duration) -> Self {
        Timeout { future, timer: Timer::new(duration) }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(this.timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl AsyncRuntime for GlommioRuntime {
    type JoinError = TaskCancelled;
    type JoinHandle<T: OptionalSend + 'static> = DetachedJoin<T>;
    type Sleep = Sleep;
    type Instant = Instant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = rand::rngs::ThreadRng;
    type Mpsc = channels::Mpsc;
    type Watch = channels::Watch;
    type Oneshot = channels::Oneshot;
    type Mutex<T: OptionalSend + 'static> = channels::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        DetachedJoin(glommio::spawn_local(future).detach())
    }

    fn sleep(duration: Duration) -> Sleep {
        Sleep(Timer::new(duration))
    }

    fn sleep_until(deadline: Instant) -> Sleep {
        Sleep(Timer::new(until(deadline)))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Timeout<F> {
        Timeout { future, timer: Timer::new(duration) }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Instant, future: F) -> Timeout<F> {
        Timeout { future, timer: Timer::new(until(deadline)) }
    }

    fn is_panic(_: &TaskCancelled) -> bool {
        false
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        rand::rng()
    }

    fn new(_threads: usize) -> Self {
        GlommioRuntime { executor: glommio::LocalExecutorBuilder::default().make().expect("a glommio executor") }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.executor.run(future)
    }
}

#[cfg(test)]
mod tests {
    /// openraft's conformance suite for runtime adapters (spawn, sleep, timeouts,
    /// channels, mutex).
    #[test]
    fn passes_openraft_runtime_suite() {
        openraft_rt::testing::Suite::<super::GlommioRuntime>::test_all();
    }

    /// The property openraft relies on and glommio does not give by default.
    #[test]
    fn a_dropped_join_handle_leaves_the_task_running() {
        use openraft_rt::AsyncRuntime;
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async {
            let (sender, receiver) = futures::channel::oneshot::channel();
            drop(super::GlommioRuntime::spawn(async move {
                glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                sender.send(7).unwrap();
            }));
            assert_eq!(receiver.await, Ok(7));
        });
    }
}
