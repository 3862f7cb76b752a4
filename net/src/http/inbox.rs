//! A queue from a thread outside glommio (the HTTP thread) to one shard, on which no
//! glommio waker ever leaves its shard (docs/notes/glommio-foreign-waker-drop.md: a
//! shard task's waker woken or dropped on another thread can free the task twice, so a
//! `futures` channel whose receiver is polled on the shard is not safe here).
//!
//! Items go into a shared queue; the sender then rings a doorbell, one byte written to a
//! Unix socket pair. The shard's end of the pair is a glommio socket: its reads complete
//! in the shard's own reactor, which wakes the waiting task at home. A ring is written
//! after its item is queued and the receiver drains the queue after every read, so no
//! item waits for a ring that already came.

use futures_lite::io::AsyncReadExt;
use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// The sending end (any thread); cloneable.
pub struct InboxSender<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
    bell: Arc<UnixStream>,
}

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        InboxSender { queue: self.queue.clone(), bell: self.bell.clone() }
    }
}

/// The receiving end, before it reaches its shard (it is `Send` until then).
pub struct InboxEnd<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
    bell: UnixStream,
}

/// The receiving end on its shard.
pub struct InboxReceiver<T> {
    queue: Arc<Mutex<VecDeque<T>>>,
    bell: glommio::net::UnixStream,
}

/// A connected pair.
pub fn inbox<T>() -> std::io::Result<(InboxSender<T>, InboxEnd<T>)> {
    let (sending, receiving) = UnixStream::pair()?;
    // A full socket buffer means the shard has rings it has not read yet: dropping this
    // one loses nothing, so the sender never blocks.
    sending.set_nonblocking(true)?;
    let queue = Arc::new(Mutex::new(VecDeque::new()));
    Ok((InboxSender { queue: queue.clone(), bell: Arc::new(sending) }, InboxEnd { queue, bell: receiving }))
}

impl<T> InboxSender<T> {
    /// Queues `item` and rings. `Err(item)` when the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.queue.lock().expect("no panics while the queue is held").push_back(item);
        match (&*self.bell).write(&[1]) {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(_) => {
                let mut queue = self.queue.lock().expect("no panics while the queue is held");
                Err(queue.pop_back().expect("the item queued above"))
            }
        }
    }
}

impl<T> InboxEnd<T> {
    /// Makes the receiver; call it on the shard that will read it.
    pub fn into_receiver(self) -> InboxReceiver<T> {
        // SAFETY: the descriptor comes out of an open socket this end owns, and nothing
        // else refers to it once `into_raw_fd` has taken it.
        let bell = unsafe { glommio::net::UnixStream::from_raw_fd(self.bell.into_raw_fd()) };
        InboxReceiver { queue: self.queue, bell }
    }
}

impl<T> InboxReceiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty.
    pub async fn next(&mut self) -> Option<T> {
        let mut rings = [0u8; 64];
        loop {
            if let Some(item) = self.queue.lock().expect("no panics while the queue is held").pop_front() {
                return Some(item);
            }
            match self.bell.read(&mut rings).await {
                Ok(0) | Err(_) => {
                    return self.queue.lock().expect("no panics while the queue is held").pop_front();
                }
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_from_another_thread_arrive_in_order_and_the_end_is_seen() {
        let (sender, end) = inbox::<u32>().unwrap();
        let producer = std::thread::spawn(move || {
            for n in 0..10_000 {
                sender.send(n).unwrap();
                if n % 1000 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        });
        let received =
            glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(512 << 10).make().unwrap().run(
                async move {
                    let mut receiver = end.into_receiver();
                    let mut received = Vec::new();
                    while let Some(n) = receiver.next().await {
                        received.push(n);
                    }
                    received
                },
            );
        producer.join().unwrap();
        assert_eq!(received, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_send_after_the_receiver_is_gone_gives_the_item_back() {
        let (sender, end) = inbox::<&str>().unwrap();
        drop(end);
        assert_eq!(sender.send("late"), Err("late"));
    }
}
