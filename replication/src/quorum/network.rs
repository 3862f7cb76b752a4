//! Raft's client side between controllers: one [`ControllerConnection`] per peer (and
//! another for heartbeats, which openraft asks for separately).

use openraft::alias::{SnapshotOf, VoteOf};
use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::OptionalSend;

use super::types::{ControllerNode, MetadataRaft};
use super::wire::{ControllerConnection, Request, Response};

/// Makes a [`PeerClient`] per controller peer.
pub struct PeerNetwork;

impl RaftNetworkFactory<MetadataRaft> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, _target: u64, node: &ControllerNode) -> PeerClient {
        PeerClient(ControllerConnection::new(node.address.clone()))
    }
}

/// Raft RPCs to one peer.
pub struct PeerClient(ControllerConnection);

fn unreachable(what: impl ToString) -> Unreachable<MetadataRaft> {
    Unreachable::from_string(what)
}

impl PeerClient {
    async fn call(&mut self, request: Request, option: &RPCOption) -> Result<Response, Unreachable<MetadataRaft>> {
        self.0.call(&request, option.hard_ttl()).await.map_err(|e| Unreachable::new(&e))
    }
}

impl RaftNetworkV2<MetadataRaft> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<MetadataRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<MetadataRaft>, RPCError<MetadataRaft>> {
        match self.call(Request::AppendEntries(request), &option).await? {
            Response::AppendEntries(Ok(response)) => Ok(response),
            Response::AppendEntries(Err(message)) => Err(RPCError::Unreachable(unreachable(message))),
            other => Err(RPCError::Unreachable(unreachable(format!("unexpected answer {other:?}")))),
        }
    }

    async fn vote(
        &mut self,
        request: VoteRequest<MetadataRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<MetadataRaft>, RPCError<MetadataRaft>> {
        match self.call(Request::Vote(request), &option).await? {
            Response::Vote(Ok(response)) => Ok(response),
            Response::Vote(Err(message)) => Err(RPCError::Unreachable(unreachable(message))),
            other => Err(RPCError::Unreachable(unreachable(format!("unexpected answer {other:?}")))),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<MetadataRaft>,
        snapshot: SnapshotOf<MetadataRaft, Vec<u8>>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<MetadataRaft>, StreamingError<MetadataRaft>> {
        // One frame, bounded by the call's deadline; a cancelled replication just sees
        // the call finish or time out.
        let request = Request::InstallSnapshot { vote, meta: snapshot.meta, data: snapshot.snapshot };
        match self.call(request, &option).await? {
            Response::InstallSnapshot(Ok(response)) => Ok(response),
            Response::InstallSnapshot(Err(message)) => Err(StreamingError::Unreachable(unreachable(message))),
            other => Err(StreamingError::Unreachable(unreachable(format!("unexpected answer {other:?}")))),
        }
    }
}
