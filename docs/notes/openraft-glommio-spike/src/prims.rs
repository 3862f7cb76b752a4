//! Channel/mutex adapters backed by tokio::sync (runtime-agnostic; "sync" feature only).
use std::future::Future;
use std::ops::Deref;
use openraft_rt as rt;
use openraft_rt::{OptionalSend, OptionalSync};
use tokio::sync::{mpsc as tm, oneshot as to, watch as tw};

pub struct Mpsc;
pub struct Tx<T>(tm::Sender<T>);
pub struct Rx<T>(tm::Receiver<T>);
pub struct WeakTx<T>(tm::WeakSender<T>);
impl<T> Clone for Tx<T> { fn clone(&self) -> Self { Tx(self.0.clone()) } }
impl<T> Clone for WeakTx<T> { fn clone(&self) -> Self { WeakTx(self.0.clone()) } }
impl rt::Mpsc for Mpsc {
    type Sender<T: OptionalSend> = Tx<T>;
    type Receiver<T: OptionalSend> = Rx<T>;
    type WeakSender<T: OptionalSend> = WeakTx<T>;
    fn channel<T: OptionalSend>(n: usize) -> (Tx<T>, Rx<T>) { let (a, b) = tm::channel(n); (Tx(a), Rx(b)) }
}
impl<T: OptionalSend> rt::MpscSender<Mpsc, T> for Tx<T> {
    fn send(&self, msg: T) -> impl Future<Output = Result<(), rt::SendError<T>>> {
        let tx = self.0.clone();
        async move { tx.send(msg).await.map_err(|e| rt::SendError(e.0)) }
    }
    fn downgrade(&self) -> WeakTx<T> { WeakTx(self.0.downgrade()) }
}
impl<T: OptionalSend> rt::MpscReceiver<T> for Rx<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> { self.0.recv() }
    fn try_recv(&mut self) -> Result<T, rt::TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            tm::error::TryRecvError::Empty => rt::TryRecvError::Empty,
            tm::error::TryRecvError::Disconnected => rt::TryRecvError::Disconnected,
        })
    }
}
impl<T: OptionalSend> rt::MpscWeakSender<Mpsc, T> for WeakTx<T> {
    fn upgrade(&self) -> Option<Tx<T>> { self.0.upgrade().map(Tx) }
}

pub struct Oneshot;
pub struct OTx<T>(to::Sender<T>);
impl rt::Oneshot for Oneshot {
    type Sender<T: OptionalSend> = OTx<T>;
    type Receiver<T: OptionalSend> = to::Receiver<T>;
    type ReceiverError = to::error::RecvError;
    fn channel<T: OptionalSend>() -> (OTx<T>, to::Receiver<T>) { let (a, b) = to::channel(); (OTx(a), b) }
}
impl<T: OptionalSend> rt::OneshotSender<T> for OTx<T> { fn send(self, t: T) -> Result<(), T> { self.0.send(t) } }

pub struct Watch;
pub struct WTx<T>(tw::Sender<T>);
pub struct WRx<T>(tw::Receiver<T>);
pub struct WRef<'a, T>(tw::Ref<'a, T>);
impl<T> Clone for WTx<T> { fn clone(&self) -> Self { WTx(self.0.clone()) } }
impl<T> Clone for WRx<T> { fn clone(&self) -> Self { WRx(self.0.clone()) } }
impl<'a, T> Deref for WRef<'a, T> { type Target = T; fn deref(&self) -> &T { &self.0 } }
impl rt::Watch for Watch {
    type Sender<T: OptionalSend + OptionalSync> = WTx<T>;
    type Receiver<T: OptionalSend + OptionalSync> = WRx<T>;
    type Ref<'a, T: OptionalSend + 'a> = WRef<'a, T>;
    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (WTx<T>, WRx<T>) { let (a, b) = tw::channel(init); (WTx(a), WRx(b)) }
}
impl<T: OptionalSend + OptionalSync> rt::WatchSender<Watch, T> for WTx<T> {
    fn send(&self, v: T) -> Result<(), rt::watch::SendError<T>> { self.0.send(v).map_err(|e| rt::watch::SendError(e.0)) }
    fn send_if_modified<F: FnOnce(&mut T) -> bool>(&self, f: F) -> bool { self.0.send_if_modified(f) }
    fn borrow_watched(&self) -> WRef<'_, T> { WRef(self.0.borrow()) }
    fn subscribe(&self) -> WRx<T> { WRx(self.0.subscribe()) }
}
impl<T: OptionalSend + OptionalSync> rt::WatchReceiver<Watch, T> for WRx<T> {
    async fn changed(&mut self) -> Result<(), rt::RecvError> { self.0.changed().await.map_err(|_| rt::RecvError(())) }
    fn borrow_watched(&self) -> WRef<'_, T> { WRef(self.0.borrow()) }
    fn borrow_and_update(&mut self) -> WRef<'_, T> { WRef(self.0.borrow_and_update()) }
}

pub struct Mutex<T>(tokio::sync::Mutex<T>);
impl<T: OptionalSend + 'static> rt::Mutex<T> for Mutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;
    fn new(v: T) -> Self { Mutex(tokio::sync::Mutex::new(v)) }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> { self.0.lock() }
}
