//! The channels between shards: one bounded channel for every ordered pair of shards.
//!
//! Built whole on the starting thread, before any executor runs, and handed out one
//! [`MeshEnds`] per shard, so nothing of it is shared between threads except glommio's
//! `shared_channel` buffers, which are made for that. This replaces glommio 0.9's
//! `MeshBuilder`: it is `Send + Clone` but shares an `Rc` between the shards that clone
//! and drop it, and racing reference counts freed its block while in use — the heap
//! corruption the broker aborted on (docs/notes/glommio-mesh-builder-rc.md).

use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};

/// One shard's ends of the mesh, not yet connected. `Send`: it moves to its shard's
/// executor thread, which calls [`MeshEnds::connect`].
pub struct MeshEnds<T: Send + 'static> {
    shard: usize,
    /// `to[j]`: the channel this shard sends to shard `j` on (`None` for itself).
    to: Vec<Option<SharedSender<T>>>,
    /// `from[j]`: the channel shard `j` sends to this shard on (`None` for itself).
    from: Vec<Option<SharedReceiver<T>>>,
}

/// Makes the channels of a full mesh of `shards` shards, each holding up to `capacity`
/// messages; element `i` of the result belongs to shard `i`.
pub fn full_mesh<T: Send + 'static>(shards: usize, capacity: usize) -> Vec<MeshEnds<T>> {
    let mut ends: Vec<MeshEnds<T>> = (0..shards)
        .map(|shard| MeshEnds {
            shard,
            to: (0..shards).map(|_| None).collect(),
            from: (0..shards).map(|_| None).collect(),
        })
        .collect();
    for sender in 0..shards {
        for receiver in (0..shards).filter(|r| *r != sender) {
            let (tx, rx) = shared_channel::new_bounded(capacity);
            ends[sender].to[receiver] = Some(tx);
            ends[receiver].from[sender] = Some(rx);
        }
    }
    ends
}

impl<T: Send + 'static> MeshEnds<T> {
    /// The shard these ends belong to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Connects every end on the calling executor. Each channel connects once both of
    /// its shards have called this, so every shard must call it.
    pub async fn connect(self) -> (MeshSenders<T>, MeshReceivers<T>) {
        let senders = futures::future::join_all(self.to.into_iter().map(|end| async move {
            match end {
                Some(end) => Some(end.connect().await),
                None => None,
            }
        }));
        let receivers = futures::future::join_all(self.from.into_iter().map(|end| async move {
            match end {
                Some(end) => Some(end.connect().await),
                None => None,
            }
        }));
        let (to, from) = futures::future::join(senders, receivers).await;
        (MeshSenders { shard: self.shard, to }, MeshReceivers { shard: self.shard, from })
    }
}

/// The connected sending ends of one shard.
pub struct MeshSenders<T: Send + 'static> {
    shard: usize,
    to: Vec<Option<ConnectedSender<T>>>,
}

impl<T: Send + 'static> MeshSenders<T> {
    /// The shard sending.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Sends `message` to shard `target`, waiting while its channel is full. Gives the
    /// message back when that shard has stopped receiving.
    ///
    /// # Panics
    /// If `target` is this shard or not a shard: local work never goes through the mesh.
    pub async fn send_to(&self, target: usize, message: T) -> Result<(), T> {
        let sender = self.to[target].as_ref().expect("a shard sends only to other shards");
        sender.send(message).await.map_err(|error| match error {
            glommio::GlommioError::Closed(glommio::ResourceType::Channel(message))
            | glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(message)) => message,
            other => unreachable!("a channel send fails only as closed or full: {other}"),
        })
    }
}

/// The connected receiving ends of one shard.
pub struct MeshReceivers<T: Send + 'static> {
    shard: usize,
    from: Vec<Option<ConnectedReceiver<T>>>,
}

impl<T: Send + 'static> MeshReceivers<T> {
    /// The shard receiving.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// One stream of messages per other shard, as `(sending shard, stream)`; each ends
    /// when its sender is dropped.
    pub fn into_streams(self) -> Vec<(usize, ConnectedReceiver<T>)> {
        self.from.into_iter().enumerate().filter_map(|(shard, end)| end.map(|end| (shard, end))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use glommio::LocalExecutorBuilder;

    /// Every shard sends `MESSAGES` numbered messages to every other shard; each receiver
    /// sees each sender's messages once and in order. Several rounds of fresh meshes, with
    /// the executors started and stopped each time, as broker restarts do.
    #[test]
    fn every_shard_reaches_every_other_in_order() {
        const SHARDS: usize = 6;
        const MESSAGES: u64 = 2000;
        for _round in 0..5 {
            let handles: Vec<_> = full_mesh::<(usize, u64)>(SHARDS, 16)
                .into_iter()
                .map(|ends| {
                    LocalExecutorBuilder::default()
                        .io_memory(512 << 10)
                        .spawn(move || async move {
                            let me = ends.shard();
                            let (senders, receivers) = ends.connect().await;
                            assert_eq!((senders.shard(), receivers.shard()), (me, me));
                            let sending = async {
                                for n in 0..MESSAGES {
                                    for target in (0..SHARDS).filter(|t| *t != me) {
                                        senders.send_to(target, (me, n)).await.expect("receiver alive");
                                    }
                                }
                                drop(senders);
                            };
                            let receiving = futures::future::join_all(receivers.into_streams().into_iter().map(
                                |(from, mut stream)| async move {
                                    let mut next = 0;
                                    while let Some((sender, n)) = stream.next().await {
                                        assert_eq!((sender, n), (from, next), "in order, from its own channel");
                                        next += 1;
                                    }
                                    next
                                },
                            ));
                            let ((), counts) = futures::future::join(sending, receiving).await;
                            assert_eq!(counts, vec![MESSAGES; SHARDS - 1]);
                        })
                        .expect("executor starts")
                })
                .collect();
            for handle in handles {
                handle.join().expect("shard ran");
            }
        }
    }
}
