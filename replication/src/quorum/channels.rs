//! openraft's channel and mutex traits over tokio's `sync` types, which need no tokio
//! runtime: they only wake wakers, and every waker here stays on its shard.

use std::future::Future;
use std::ops::Deref;

use openraft_rt as rt;
use openraft_rt::{OptionalSend, OptionalSync};
use tokio::sync::{mpsc, oneshot, watch};

/// Bounded multi-producer channels.
pub struct Mpsc;
/// A sender of [`Mpsc`].
pub struct MpscSender<T>(mpsc::Sender<T>);
/// The receiver of [`Mpsc`].
pub struct MpscReceiver<T>(mpsc::Receiver<T>);
/// A sender of [`Mpsc`] that does not keep the channel open.
pub struct MpscWeakSender<T>(mpsc::WeakSender<T>);

impl<T> Clone for MpscSender<T> {
    fn clone(&self) -> Self {
        MpscSender(self.0.clone())
    }
}

impl<T> Clone for MpscWeakSender<T> {
    fn clone(&self) -> Self {
        MpscWeakSender(self.0.clone())
    }
}

impl rt::Mpsc for Mpsc {
    type Sender<T: OptionalSend> = MpscSender<T>;
    type Receiver<T: OptionalSend> = MpscReceiver<T>;
    type WeakSender<T: OptionalSend> = MpscWeakSender<T>;
    fn channel<T: OptionalSend>(capacity: usize) -> (MpscSender<T>, MpscReceiver<T>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (MpscSender(sender), MpscReceiver(receiver))
    }
}

impl<T: OptionalSend> rt::MpscSender<Mpsc, T> for MpscSender<T> {
    fn send(&self, message: T) -> impl Future<Output = Result<(), rt::SendError<T>>> {
        let sender = self.0.clone();
        async move { sender.send(message).await.map_err(|e| rt::SendError(e.0)) }
    }
    fn downgrade(&self) -> MpscWeakSender<T> {
        MpscWeakSender(self.0.downgrade())
    }
}

impl<T: OptionalSend> rt::MpscReceiver<T> for MpscReceiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> {
        self.0.recv()
    }
    fn try_recv(&mut self) -> Result<T, rt::TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            mpsc::error::TryRecvError::Empty => rt::TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => rt::TryRecvError::Disconnected,
        })
    }
}

impl<T: OptionalSend> rt::MpscWeakSender<Mpsc, T> for MpscWeakSender<T> {
    fn upgrade(&self) -> Option<MpscSender<T>> {
        self.0.upgrade().map(MpscSender)
    }
}

/// One-value channels.
pub struct Oneshot;
/// The sender of [`Oneshot`].
pub struct OneshotSender<T>(oneshot::Sender<T>);

impl rt::Oneshot for Oneshot {
    type Sender<T: OptionalSend> = OneshotSender<T>;
    type Receiver<T: OptionalSend> = oneshot::Receiver<T>;
    type ReceiverError = oneshot::error::RecvError;
    fn channel<T: OptionalSend>() -> (OneshotSender<T>, oneshot::Receiver<T>) {
        let (sender, receiver) = oneshot::channel();
        (OneshotSender(sender), receiver)
    }
}

impl<T: OptionalSend> rt::OneshotSender<T> for OneshotSender<T> {
    fn send(self, value: T) -> Result<(), T> {
        self.0.send(value)
    }
}

/// Latest-value channels.
pub struct Watch;
/// The sender of [`Watch`].
pub struct WatchSender<T>(watch::Sender<T>);
/// A receiver of [`Watch`].
pub struct WatchReceiver<T>(watch::Receiver<T>);
/// A borrow of a [`Watch`] value.
pub struct WatchRef<'a, T>(watch::Ref<'a, T>);

impl<T> Clone for WatchSender<T> {
    fn clone(&self) -> Self {
        WatchSender(self.0.clone())
    }
}

impl<T> Clone for WatchReceiver<T> {
    fn clone(&self) -> Self {
        WatchReceiver(self.0.clone())
    }
}

impl<T> Deref for WatchRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl rt::Watch for Watch {
    type Sender<T: OptionalSend + OptionalSync> = WatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = WatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = WatchRef<'a, T>;
    fn channel<T: OptionalSend + OptionalSync>(initial: T) -> (WatchSender<T>, WatchReceiver<T>) {
        let (sender, receiver) = watch::channel(initial);
        (WatchSender(sender), WatchReceiver(receiver))
    }
}

impl<T: OptionalSend + OptionalSync> rt::WatchSender<Watch, T> for WatchSender<T> {
    fn send(&self, value: T) -> Result<(), rt::watch::SendError<T>> {
        self.0.send(value).map_err(|e| rt::watch::SendError(e.0))
    }
    fn send_if_modified<F: FnOnce(&mut T) -> bool>(&self, modify: F) -> bool {
        self.0.send_if_modified(modify)
    }
    fn borrow_watched(&self) -> WatchRef<'_, T> {
        WatchRef(self.0.borrow())
    }
    fn subscribe(&self) -> WatchReceiver<T> {
        WatchReceiver(self.0.subscribe())
    }
}

impl<T: OptionalSend + OptionalSync> rt::WatchReceiver<Watch, T> for WatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), rt::RecvError> {
        self.0.changed().await.map_err(|_| rt::RecvError(()))
    }
    fn borrow_watched(&self) -> WatchRef<'_, T> {
        WatchRef(self.0.borrow())
    }
    fn borrow_and_update(&mut self) -> WatchRef<'_, T> {
        WatchRef(self.0.borrow_and_update())
    }
}

/// An async mutex.
pub struct Mutex<T>(tokio::sync::Mutex<T>);

impl<T: OptionalSend + 'static> rt::Mutex<T> for Mutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;
    fn new(value: T) -> Self {
        Mutex(tokio::sync::Mutex::new(value))
    }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> {
        self.0.lock()
    }
}
