//! Throwaway e2e: 3 openraft nodes on one glommio LocalExecutor, in-memory storage, in-process "network".
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, TryStreamExt};
use openraft::alias::*;
use openraft::entry::RaftEntry;
use openraft::errors::{RPCError, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::*;
use openraft::storage::{EntryResponder, IOFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, Config, EntryPayload, OptionalSend, RaftLogReader, RaftSnapshotBuilder};
use openraft::errors::ReplicationClosed;

openraft::declare_raft_types!(pub TC: D = u64, R = u64, AsyncRuntime = grt::GlommioRt);

#[derive(Default)]
struct LogInner { vote: Option<VoteOf<TC>>, log: BTreeMap<u64, EntryOf<TC>>, purged: Option<LogIdOf<TC>>, committed: Option<LogIdOf<TC>> }
#[derive(Clone, Default)]
struct Log(Rc<RefCell<LogInner>>);

impl RaftLogReader<TC> for Log {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(&mut self, r: RB) -> io::Result<Vec<EntryOf<TC>>> {
        Ok(self.0.borrow().log.range(r).map(|(_, e)| e.clone()).collect())
    }
    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<TC>>> { Ok(self.0.borrow().vote.clone()) }
}
impl RaftLogStorage<TC> for Log {
    type LogReader = Log;
    async fn get_log_state(&mut self) -> io::Result<LogState<TC>> {
        let s = self.0.borrow();
        let last = s.log.values().next_back().map(|e| e.log_id()).or(s.purged.clone());
        Ok(LogState { last_purged_log_id: s.purged.clone(), last_log_id: last })
    }
    async fn get_log_reader(&mut self) -> Log { self.clone() }
    async fn save_vote(&mut self, v: &VoteOf<TC>) -> io::Result<()> { self.0.borrow_mut().vote = Some(v.clone()); Ok(()) }
    async fn save_committed(&mut self, c: Option<LogIdOf<TC>>) -> io::Result<()> { self.0.borrow_mut().committed = c; Ok(()) }
    async fn read_committed(&mut self) -> io::Result<Option<LogIdOf<TC>>> { Ok(self.0.borrow().committed.clone()) }
    async fn append<I>(&mut self, entries: I, cb: IOFlushed<TC>) -> io::Result<()>
    where I: IntoIterator<Item = EntryOf<TC>> + OptionalSend, I::IntoIter: OptionalSend {
        { let mut s = self.0.borrow_mut(); for e in entries { s.log.insert(e.log_id().index, e); } }
        cb.io_completed(Ok(()));
        Ok(())
    }
    async fn truncate_after(&mut self, last: Option<LogIdOf<TC>>) -> io::Result<()> {
        let from = last.map(|l| l.index + 1).unwrap_or(0);
        self.0.borrow_mut().log.split_off(&from);
        Ok(())
    }
    async fn purge(&mut self, id: LogIdOf<TC>) -> io::Result<()> {
        let mut s = self.0.borrow_mut();
        s.log = s.log.split_off(&(id.index + 1));
        s.purged = Some(id);
        Ok(())
    }
}

#[derive(Default)]
struct SmInner { applied: Option<LogIdOf<TC>>, membership: StoredMembershipOf<TC>, sum: u64, snap: Option<SnapshotOf<TC, Vec<u8>>> }
#[derive(Clone, Default)]
struct Sm(Rc<RefCell<SmInner>>);

impl RaftSnapshotBuilder<TC> for Sm {
    type SnapshotData = Vec<u8>;
    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<TC, Vec<u8>>> {
        let mut s = self.0.borrow_mut();
        let meta = SnapshotMetaOf::<TC> { last_log_id: s.applied.clone(), last_membership: s.membership.clone() };
        let snap = SnapshotOf::<TC, Vec<u8>> { meta, snapshot: s.sum.to_le_bytes().to_vec() };
        s.snap = Some(snap.clone());
        Ok(snap)
    }
}
impl RaftStateMachine<TC> for Sm {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Sm;
    async fn applied_state(&mut self) -> io::Result<(Option<LogIdOf<TC>>, StoredMembershipOf<TC>)> {
        let s = self.0.borrow(); Ok((s.applied.clone(), s.membership.clone()))
    }
    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where S: Stream<Item = io::Result<EntryResponder<TC>>> + Unpin + OptionalSend {
        while let Some((e, resp)) = entries.try_next().await? {
            let out = {
                let mut s = self.0.borrow_mut();
                s.applied = Some(e.log_id());
                match &e.payload {
                    EntryPayload::Normal(x) => s.sum += *x,
                    EntryPayload::Membership(m) => s.membership = StoredMembershipOf::<TC>::new(Some(e.log_id()), m.clone()),
                    EntryPayload::Blank => {}
                }
                s.sum
            };
            if let Some(r) = resp { r.send(out); }
        }
        Ok(())
    }
    async fn get_snapshot_builder(&mut self) -> Sm { self.clone() }
    async fn install_snapshot(&mut self, meta: &SnapshotMetaOf<TC>, data: Vec<u8>) -> io::Result<()> {
        let mut s = self.0.borrow_mut();
        s.sum = u64::from_le_bytes(data[..8].try_into().unwrap());
        s.applied = meta.last_log_id.clone();
        s.membership = meta.last_membership.clone();
        s.snap = Some(SnapshotOf::<TC, Vec<u8>> { meta: meta.clone(), snapshot: data });
        Ok(())
    }
    async fn get_current_snapshot(&mut self) -> io::Result<Option<SnapshotOf<TC, Vec<u8>>>> { Ok(self.0.borrow().snap.clone()) }
}

type R = openraft::Raft<TC, Sm>;
type Router = Rc<RefCell<BTreeMap<u64, R>>>;

struct Factory(Router);
struct Conn { to: u64, router: Router }
impl Conn {
    fn peer(&self) -> Result<R, Unreachable<TC>> {
        self.router.borrow().get(&self.to).cloned().ok_or_else(|| Unreachable::from_string("no such node"))
    }
}
impl RaftNetworkFactory<TC> for Factory {
    type Network = Conn;
    async fn new_client(&mut self, to: u64, _n: &BasicNode) -> Conn { Conn { to, router: self.0.clone() } }
}
impl RaftNetworkV2<TC> for Conn {
    type SnapshotData = Vec<u8>;
    async fn append_entries(&mut self, rpc: AppendEntriesRequest<TC>, _o: RPCOption) -> Result<AppendEntriesResponse<TC>, RPCError<TC>> {
        self.peer()?.append_entries(rpc).await.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }
    async fn vote(&mut self, rpc: VoteRequest<TC>, _o: RPCOption) -> Result<VoteResponse<TC>, RPCError<TC>> {
        self.peer()?.vote(rpc).await.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }
    async fn full_snapshot(&mut self, vote: VoteOf<TC>, snap: SnapshotOf<TC, Vec<u8>>, _c: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static, _o: RPCOption)
        -> Result<SnapshotResponse<TC>, StreamingError<TC>> {
        self.peer()?.install_full_snapshot(vote, snap).await.map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
    }
}

#[test]
fn three_nodes_on_glommio() {
    let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
    ex.run(async {
        let cfg = Arc::new(Config { heartbeat_interval: 50, election_timeout_min: 150, election_timeout_max: 300,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(20), max_in_snapshot_log_to_keep: 0, ..Default::default() }.validate().unwrap());
        let router: Router = Default::default();
        let mut sms = BTreeMap::new();
        for id in 1..=3u64 {
            let sm = Sm::default();
            sms.insert(id, sm.clone());
            let r = R::new(id, cfg.clone(), Factory(router.clone()), Log::default(), sm).await.unwrap();
            router.borrow_mut().insert(id, r);
        }
        let n1 = router.borrow()[&1].clone();
        n1.initialize(BTreeMap::from([(1u64, BasicNode::default()), (2, BasicNode::default()), (3, BasicNode::default())])).await.unwrap();
        // wait for a leader
        let mut leader = None;
        for _ in 0..100 {
            if let Some(l) = n1.current_leader().await { leader = Some(l); break; }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let leader = leader.expect("no leader elected");
        let lr = router.borrow()[&leader].clone();
        for i in 1..=50u64 { lr.client_write(i).await.unwrap(); }
        lr.ensure_linearizable(openraft::raft::ReadPolicy::ReadIndex).await.unwrap();
        // kill leader, expect a new one among the rest and more writes to succeed
        lr.shutdown().await.unwrap();
        router.borrow_mut().remove(&leader);
        let other = *router.borrow().keys().next().unwrap();
        let o = router.borrow()[&other].clone();
        let mut new_leader = None;
        for _ in 0..200 {
            if let Some(l) = o.current_leader().await { if l != leader { new_leader = Some(l); break; } }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let nl = router.borrow()[&new_leader.expect("no failover")].clone();
        let resp = nl.client_write(100).await.unwrap();
        assert_eq!(resp.response(), &(1275 + 100));
        glommio::timer::sleep(Duration::from_millis(300)).await;
        for (id, sm) in &sms { if *id != leader { assert_eq!(sm.0.borrow().sum, 1375, "node {id}"); } }
        // late learner: logs were purged after snapshot, so it must be fed by full_snapshot
        for i in 0..30u64 { nl.client_write(i % 2).await.unwrap(); }
        let sm4 = Sm::default();
        let r4 = R::new(4, cfg.clone(), Factory(router.clone()), Log::default(), sm4.clone()).await.unwrap();
        router.borrow_mut().insert(4, r4);
        nl.add_learner(4, BasicNode::default(), true).await.unwrap();
        glommio::timer::sleep(Duration::from_millis(300)).await;
        let s4 = sm4.0.borrow().sum; let snap4 = sm4.0.borrow().snap.as_ref().map(|x| x.meta.last_log_id.clone());
        println!("learner sum {s4} snapshot {snap4:?}");
        assert_eq!(s4, 1375 + 15);
        assert!(snap4.is_some(), "learner should have installed a snapshot");
        println!("leader {leader} -> {:?}; snapshots: {:?}", new_leader, sms.values().map(|s| s.0.borrow().snap.as_ref().map(|x| x.meta.last_log_id.clone())).collect::<Vec<_>>());
        for r in router.borrow().values() { r.shutdown().await.unwrap(); }
    });
}
