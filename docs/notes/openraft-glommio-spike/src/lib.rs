//! Throwaway proof-of-concept: openraft AsyncRuntime over glommio 0.9.
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::timer::Timer;
use openraft_rt::{AsyncRuntime, OptionalSend};

mod prims;

pub struct GlommioRt {
    ex: glommio::LocalExecutor,
}
impl fmt::Debug for GlommioRt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("GlommioRt") }
}

#[derive(Debug)]
pub struct Cancelled;
impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("task cancelled") }
}

/// Detached glommio task; dropping this does NOT cancel the task (tokio semantics).
pub struct Join<T>(glommio::task::JoinHandle<T>);
impl<T> Future for Join<T> {
    type Output = Result<T, Cancelled>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|o| o.ok_or(Cancelled))
    }
}

pub struct Sleep(Timer);
impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

#[derive(Debug)]
pub struct Elapsed;
impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("deadline elapsed") }
}

pin_project_lite::pin_project! {
    pub struct Timeout<F> { #[pin] fut: F, timer: Timer }
}
impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let p = self.project();
        if let Poll::Ready(v) = p.fut.poll(cx) { return Poll::Ready(Ok(v)); }
        match Pin::new(p.timer).poll(cx) { Poll::Ready(_) => Poll::Ready(Err(Elapsed)), Poll::Pending => Poll::Pending }
    }
}

fn until(deadline: Instant) -> Duration { deadline.saturating_duration_since(Instant::now()) }

impl AsyncRuntime for GlommioRt {
    type JoinError = Cancelled;
    type JoinHandle<T: OptionalSend + 'static> = Join<T>;
    type Sleep = Sleep;
    type Instant = Instant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = rand::rngs::ThreadRng;
    type Mpsc = prims::Mpsc;
    type Watch = prims::Watch;
    type Oneshot = prims::Oneshot;
    type Mutex<T: OptionalSend + 'static> = prims::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where T: Future + OptionalSend + 'static, T::Output: OptionalSend + 'static {
        Join(glommio::spawn_local(future).detach())
    }
    fn sleep(d: Duration) -> Sleep { Sleep(Timer::new(d)) }
    fn sleep_until(deadline: Instant) -> Sleep { Sleep(Timer::new(until(deadline))) }
    fn timeout<R, F: Future<Output = R> + OptionalSend>(d: Duration, fut: F) -> Timeout<F> { Timeout { fut, timer: Timer::new(d) } }
    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Instant, fut: F) -> Timeout<F> { Timeout { fut, timer: Timer::new(until(deadline)) } }
    fn is_panic(_: &Cancelled) -> bool { false }
    fn thread_rng() -> Self::ThreadLocalRng { rand::rng() }
    fn new(_threads: usize) -> Self {
        GlommioRt { ex: glommio::LocalExecutorBuilder::default().make().expect("glommio executor") }
    }
    fn block_on<F, T>(&mut self, future: F) -> T where F: Future<Output = T> { self.ex.run(future) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn suite() { openraft_rt::testing::Suite::<super::GlommioRt>::test_all(); }
}
