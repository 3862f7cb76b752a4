//! One consumer group's membership state machine, as Kafka's group coordinator runs it:
//! Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead once deleted.
//!
//! Sans I/O: every call takes the current time and returns what to answer now; answers to
//! requests that must wait (a JoinGroup until the rebalance's join phase ends, a follower's
//! SyncGroup until the leader sends the assignment) come out of [`Group::take_deliveries`]
//! after whichever call or [`Group::tick`] completed them. The async coordinator around it
//! parks those requests, persists what must be durable and runs the timers.
//!
//! Kafka's rules kept here: member ids are handed out by the coordinator and must be
//! echoed back (KIP-394: the first JoinGroup gets MEMBER_ID_REQUIRED with the new id);
//! static members (KIP-345, `group.instance.id`) that rejoin under a new member id take
//! over their old identity and, in a stable group with unchanged protocols, their old
//! assignment without a rebalance; the join phase of a group's first rebalance waits
//! `group.initial.rebalance.delay.ms` for more members, of later ones until every member
//! rejoined or the rebalance timeout passed; the protocol chosen is one every member
//! supports, by the members' votes (each votes for its most preferred candidate).

use super::records::{StoredGroup, StoredMember};
use bytes::Bytes;
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Where a group is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; committed offsets may remain.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted; the coordinator drops it.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Broker settings that bound group membership (Kafka's `group.*` broker configs).
#[derive(Debug, Clone)]
pub struct GroupLimits {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub min_session_timeout: Duration,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout: Duration,
    /// How long the first rebalance of an empty group waits for more members
    /// (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay: Duration,
    /// Members a group may hold (`group.max.size`).
    pub max_size: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::from_secs(3),
            max_size: usize::MAX,
        }
    }
}

/// A JoinGroup request, as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Empty on a member's first join.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Who is asking (DescribeGroups shows it; new member ids start with it).
    pub client_id: String,
    /// The client's address (DescribeGroups).
    pub client_host: String,
    /// Without a heartbeat for this long, the member is removed.
    pub session_timeout: Duration,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout: Duration,
    /// e.g. "consumer".
    pub protocol_type: String,
    /// Supported protocols (assignors) with their metadata, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// Whether the client understands MEMBER_ID_REQUIRED (JoinGroup v4+).
    pub requires_known_member_id: bool,
}

/// A member as JoinGroup shows it to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Its member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// `None` on success.
    pub error: Option<ResponseError>,
    /// The generation the member joined (-1 on errors).
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The protocol chosen.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader_id: String,
    /// The member's id (new or confirmed).
    pub member_id: String,
    /// Every member with its metadata, for the leader only (empty for followers).
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    fn error(error: ResponseError, member_id: &str) -> Self {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup: the member's assignment, or an error.
pub type SyncResult = Result<Bytes, ResponseError>;

/// A parked request's answer, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A JoinGroup answer for the member that asked (by the id it asked with; a new member
    /// that was told MEMBER_ID_REQUIRED asks again with its id).
    Join {
        /// The member id the request was parked under.
        member_id: String,
        /// The answer.
        result: JoinResult,
    },
    /// A SyncGroup answer.
    Sync {
        /// The member.
        member_id: String,
        /// The answer.
        result: SyncResult,
    },
}

/// What a JoinGroup or SyncGroup call leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Answer now.
    Now(T),
    /// Parked under this member id: the answer comes out of [`Group::take_deliveries`]
    /// later (a member joining without an id learns it from that answer).
    Parked(String),
}

#[derive(Debug, Clone)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// Rejoined in the current rebalance (its JoinGroup is parked until the phase ends).
    joined: bool,
    /// Its SyncGroup is parked until the leader's assignment arrives.
    awaiting_sync: bool,
    /// Removed when `now` passes this without a heartbeat or request.
    session_deadline: Instant,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Its member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its address.
    pub client_host: String,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Its current assignment.
    pub assignment: Bytes,
}

/// One consumer group's membership.
#[derive(Debug)]
pub struct Group {
    id: String,
    limits: GroupLimits,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, expected back by this time.
    pending_members: HashMap<String, Instant>,
    /// `group.instance.id` → its current member id.
    static_members: HashMap<String, String>,
    /// When the join phase of the current rebalance ends at the latest.
    join_deadline: Option<Instant>,
    /// The initial delay of an empty group's first rebalance: the join phase does not end
    /// before this, even when every member is in.
    initial_delay_until: Option<Instant>,
    deliveries: Vec<Delivery>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: impl Into<String>, limits: GroupLimits) -> Self {
        Group {
            id: id.into(),
            limits,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            join_deadline: None,
            initial_delay_until: None,
            deliveries: Vec::new(),
        }
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Its state.
    pub fn state(&self) -> GroupState {
        self.state
    }
    /// Its generation.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }
    /// The protocol type members joined with.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    /// The chosen protocol.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }
    /// The leader's member id.
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }
    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// No members, none joining and no member ids handed out: nothing to keep in memory
    /// unless the group has committed offsets.
    pub fn is_unused(&self) -> bool {
        self.state == GroupState::Empty && self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Members with their metadata and assignments (DescribeGroups).
    pub fn describe_members(&self) -> Vec<MemberDescription> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(protocol),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// Answers parked requests that calls since the last take have completed.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    /// When [`Group::tick`] next has something to do (a join phase or a session ending).
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self.members.values().filter(|m| !m.joined && !m.awaiting_sync).map(|m| m.session_deadline);
        let join = self.join_deadline.into_iter().chain(self.initial_delay_until);
        sessions.chain(join).chain(self.pending_members.values().copied()).min()
    }

    /// Handles a JoinGroup.
    pub fn join(&mut self, request: JoinRequest, now: Instant) -> Outcome<JoinResult> {
        let asked_id = request.member_id.clone();
        if let Some(error) = self.check_join(&request) {
            return Outcome::Now(JoinResult::error(error, &asked_id));
        }
        if let Some(instance_id) = request.instance_id.clone() {
            return self.join_static(request, instance_id, now);
        }
        if request.member_id.is_empty() {
            let member_id = self.new_member_id(&request.client_id);
            if request.requires_known_member_id {
                self.pending_members.insert(member_id.clone(), now + request.session_timeout);
                return Outcome::Now(JoinResult::error(ResponseError::MemberIdRequired, &member_id));
            }
            return self.add_member_and_rebalance(member_id, request, now);
        }
        if self.pending_members.remove(&request.member_id).is_some() {
            let member_id = request.member_id.clone();
            return self.add_member_and_rebalance(member_id, request, now);
        }
        if !self.members.contains_key(&request.member_id) {
            return Outcome::Now(JoinResult::error(ResponseError::UnknownMemberId, &asked_id));
        }
        self.rejoin(request, now)
    }

    fn check_join(&self, request: &JoinRequest) -> Option<ResponseError> {
        if self.state == GroupState::Dead {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        if request.session_timeout < self.limits.min_session_timeout
            || request.session_timeout > self.limits.max_session_timeout
        {
            return Some(ResponseError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Some(ResponseError::InconsistentGroupProtocol);
        }
        if self.state != GroupState::Empty || !self.members.is_empty() {
            let same_type = self.protocol_type.as_deref() == Some(request.protocol_type.as_str());
            let shares_protocol = self.candidate_protocols_with(Some(&request.protocols)).next().is_some();
            let replaces_only_member = self.members.len() == 1 && self.members.contains_key(&request.member_id);
            if !same_type || !(shares_protocol || replaces_only_member) {
                return Some(ResponseError::InconsistentGroupProtocol);
            }
        }
        let is_new = request.member_id.is_empty() || !self.members.contains_key(&request.member_id);
        let is_known_static =
            request.instance_id.as_ref().is_some_and(|instance| self.static_members.contains_key(instance));
        if is_new && !is_known_static && self.members.len() >= self.limits.max_size {
            return Some(ResponseError::GroupMaxSizeReached);
        }
        None
    }

    /// Protocols every member (and `extra`, a joining member's list) supports, in the
    /// first member's order.
    fn candidate_protocols_with<'a>(
        &'a self,
        extra: Option<&'a [(String, Bytes)]>,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let first = self.members.values().next().map(|m| &m.protocols[..]).or(extra).unwrap_or(&[]);
        first.iter().map(|(name, _)| name).filter(move |name| {
            self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == *name))
                && extra.is_none_or(|extra| extra.iter().any(|(n, _)| n == *name))
        })
    }

    fn new_member_id(&self, client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    fn join_static(&mut self, request: JoinRequest, instance_id: String, now: Instant) -> Outcome<JoinResult> {
        let Some(old_id) = self.static_members.get(&instance_id).cloned() else {
            // A static member's first join: no MEMBER_ID_REQUIRED round trip (KIP-345).
            let member_id = self.new_member_id(&instance_id);
            self.static_members.insert(instance_id, member_id.clone());
            return self.add_member_and_rebalance(member_id, request, now);
        };
        if !request.member_id.is_empty() && request.member_id != old_id {
            return Outcome::Now(JoinResult::error(ResponseError::FencedInstanceId, &request.member_id));
        }
        if request.member_id == old_id {
            return self.rejoin(request, now);
        }
        // A restarted static member: it takes over the old member's place under a new id.
        let new_id = self.new_member_id(&instance_id);
        let mut member = self.members.remove(&old_id).expect("static members are members");
        let protocols_unchanged = member.protocols == request.protocols;
        if member.joined {
            // The old incarnation's parked join will never be read; answer it fenced.
            self.deliveries.push(Delivery::Join {
                member_id: old_id.clone(),
                result: JoinResult::error(ResponseError::FencedInstanceId, &old_id),
            });
        }
        if member.awaiting_sync {
            self.deliveries
                .push(Delivery::Sync { member_id: old_id.clone(), result: Err(ResponseError::FencedInstanceId) });
            member.awaiting_sync = false;
        }
        member.joined = false;
        self.static_members.insert(instance_id, new_id.clone());
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.session_deadline = now + request.session_timeout;
        self.members.insert(new_id.clone(), member);
        if self.state == GroupState::Stable && protocols_unchanged {
            // Same subscription: it gets its old assignment back through SyncGroup and the
            // others keep theirs; no rebalance.
            let is_leader = self.leader_id.as_deref() == Some(new_id.as_str());
            return Outcome::Now(self.join_result_for(&new_id, is_leader));
        }
        let mut request = request;
        request.member_id = new_id.clone();
        self.rejoin(request, now)
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Instant,
    ) -> Outcome<JoinResult> {
        let member = Member {
            instance_id: request.instance_id.clone(),
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout: request.session_timeout,
            rebalance_timeout: request.rebalance_timeout,
            protocols: request.protocols,
            assignment: Bytes::new(),
            joined: true,
            awaiting_sync: false,
            session_deadline: now + request.session_timeout,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type);
        }
        let was_empty = self.state == GroupState::Empty;
        self.members.insert(member_id.clone(), member);
        if was_empty {
            // The first rebalance of an empty group waits a little for the others, so that
            // a fleet starting together rebalances once (Kafka's initial delayed join).
            let delay = self.limits.initial_rebalance_delay;
            self.initial_delay_until = Some(now + delay);
            self.prepare_rebalance(now);
        } else if let Some(until) = self.initial_delay_until {
            // Each newcomer during the initial delay extends it, up to the join deadline.
            let extended = now + self.limits.initial_rebalance_delay;
            self.initial_delay_until = Some(until.max(extended).min(self.join_deadline.unwrap_or(extended)));
        } else if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.maybe_complete_join(now);
        self.parked_or_delivered(&member_id)
    }

    fn rejoin(&mut self, request: JoinRequest, now: Instant) -> Outcome<JoinResult> {
        let member_id = request.member_id.clone();
        let member = self.members.get_mut(&member_id).expect("caller checked membership");
        let protocols_changed = member.protocols != request.protocols;
        member.protocols = request.protocols;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.session_deadline = now + request.session_timeout;
        if member.joined {
            // A retried JoinGroup while the first is parked: the newer one is answered.
            member.joined = false;
            self.deliveries.push(Delivery::Join {
                member_id: member_id.clone(),
                result: JoinResult::error(ResponseError::RebalanceInProgress, &member_id),
            });
        }
        match self.state {
            GroupState::Stable if !protocols_changed && self.leader_id.as_deref() != Some(member_id.as_str()) => {
                // A follower rejoining with nothing new: nothing to rebalance (Kafka does
                // the same); it learns the current generation.
                return Outcome::Now(self.join_result_for(&member_id, false));
            }
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => self.prepare_rebalance(now),
            GroupState::PreparingRebalance | GroupState::Dead => {}
        }
        let member = self.members.get_mut(&member_id).expect("still a member");
        member.joined = true;
        self.maybe_complete_join(now);
        self.parked_or_delivered(&member_id)
    }

    /// If the member's join was answered by the call that parked it (the phase ended at
    /// once), hands the answer back directly instead of through the deliveries.
    fn parked_or_delivered(&mut self, member_id: &str) -> Outcome<JoinResult> {
        let position =
            self.deliveries.iter().position(|d| matches!(d, Delivery::Join { member_id: id, .. } if id == member_id));
        match position.map(|i| self.deliveries.remove(i)) {
            Some(Delivery::Join { result, .. }) => Outcome::Now(result),
            _ => Outcome::Parked(member_id.to_string()),
        }
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being worked out is stale: parked syncs learn to rejoin.
            self.fail_parked_syncs(ResponseError::RebalanceInProgress);
        }
        self.state = GroupState::PreparingRebalance;
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        let longest = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.join_deadline = Some(now + longest);
    }

    /// Ends the join phase when every member has rejoined (and any initial delay is over).
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let delay_over = self.initial_delay_until.is_none_or(|until| now >= until);
        let all_joined = self.members.values().all(|m| m.joined);
        let timed_out = self.join_deadline.is_some_and(|deadline| now >= deadline);
        if (all_joined && delay_over) || timed_out {
            self.complete_join();
        }
    }

    fn complete_join(&mut self) {
        self.initial_delay_until = None;
        self.join_deadline = None;
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self.members.iter().filter(|(_, m)| !m.joined).map(|(id, _)| id.clone()).collect();
        for id in gone {
            self.forget_member(&id);
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader_id = None;
            return;
        }
        self.protocol_name = Some(self.select_protocol());
        if !self.leader_id.as_ref().is_some_and(|leader| self.members.contains_key(leader)) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader_id.clone().expect("a group with members has a leader");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result_for(&id, id == leader);
            self.members.get_mut(&id).expect("member").joined = false;
            self.deliveries.push(Delivery::Join { member_id: id, result });
        }
    }

    fn select_protocol(&self) -> String {
        let candidates: Vec<&String> = self.candidate_protocols_with(None).collect();
        assert!(!candidates.is_empty(), "joins are refused unless every member shares a protocol");
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for member in self.members.values() {
            let choice = member.protocols.iter().find(|(name, _)| candidates.contains(&name));
            if let Some((name, _)) = choice {
                votes.iter_mut().find(|(_, c)| *c == name).expect("a candidate").0 += 1;
            }
        }
        // Most votes; ties go to the earlier candidate (the first member's preference).
        let best = votes.iter().map(|(n, _)| *n).max().unwrap_or(0);
        votes.iter().find(|(n, _)| *n == best).expect("one candidate at least").1.clone()
    }

    fn join_result_for(&self, member_id: &str, is_leader: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: Some(protocol.clone()),
            leader_id: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .iter()
                    .map(|(id, m)| JoinedMember {
                        member_id: id.clone(),
                        instance_id: m.instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn forget_member(&mut self, member_id: &str) {
        if let Some(member) = self.members.remove(member_id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
            if member.joined {
                self.deliveries.push(Delivery::Join {
                    member_id: member_id.to_string(),
                    result: JoinResult::error(ResponseError::UnknownMemberId, member_id),
                });
            }
            if member.awaiting_sync {
                self.deliveries.push(Delivery::Sync {
                    member_id: member_id.to_string(),
                    result: Err(ResponseError::UnknownMemberId),
                });
            }
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = None;
        }
    }

    fn fail_parked_syncs(&mut self, error: ResponseError) {
        for (id, member) in self.members.iter_mut().filter(|(_, m)| m.awaiting_sync) {
            member.awaiting_sync = false;
            self.deliveries.push(Delivery::Sync { member_id: id.clone(), result: Err(error) });
        }
    }

    /// Checks that a request comes from a current member of the right generation, and
    /// that a static member's instance id still maps to it (OffsetCommit uses it too).
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(current) if current != member_id => return Err(ResponseError::FencedInstanceId),
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles a SyncGroup. The leader's `assignments` (member id → assignment) end the
    /// rebalance; members left out get an empty assignment.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Outcome<SyncResult> {
        if let Err(error) = self.check_member(member_id, instance_id, generation_id) {
            return Outcome::Now(Err(error));
        }
        self.members.get_mut(member_id).expect("checked").session_deadline =
            now + self.members[member_id].session_timeout;
        match self.state {
            GroupState::PreparingRebalance => Outcome::Now(Err(ResponseError::RebalanceInProgress)),
            GroupState::Stable => Outcome::Now(Ok(self.members[member_id].assignment.clone())),
            GroupState::Empty | GroupState::Dead => Outcome::Now(Err(ResponseError::UnknownMemberId)),
            GroupState::CompletingRebalance => {
                self.members.get_mut(member_id).expect("checked").awaiting_sync = true;
                if self.leader_id.as_deref() == Some(member_id) {
                    let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, member) in self.members.iter_mut() {
                        member.assignment = assignments.remove(id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    for (id, member) in self.members.iter_mut().filter(|(_, m)| m.awaiting_sync) {
                        member.awaiting_sync = false;
                        member.session_deadline = now + member.session_timeout;
                        self.deliveries
                            .push(Delivery::Sync { member_id: id.clone(), result: Ok(member.assignment.clone()) });
                    }
                }
                match self.take_sync_delivery(member_id) {
                    Some(result) => Outcome::Now(result),
                    None => Outcome::Parked(member_id.to_string()),
                }
            }
        }
    }

    fn take_sync_delivery(&mut self, member_id: &str) -> Option<SyncResult> {
        let position = self
            .deliveries
            .iter()
            .position(|d| matches!(d, Delivery::Sync { member_id: id, .. } if id == member_id))?;
        match self.deliveries.remove(position) {
            Delivery::Sync { result, .. } => Some(result),
            Delivery::Join { .. } => unreachable!("position matched a sync"),
        }
    }

    /// Handles a Heartbeat: keeps the member's session alive and tells it whether a
    /// rebalance is under way.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        self.check_member(member_id, instance_id, generation_id).or_else(|error| {
            // During a rebalance a member of the previous generation is told to rejoin.
            let rejoin = error == ResponseError::IllegalGeneration && self.state == GroupState::PreparingRebalance;
            if rejoin {
                Ok(())
            } else {
                Err(error)
            }
        })?;
        let member = self.members.get_mut(member_id).expect("checked");
        member.session_deadline = now + member.session_timeout;
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles a LeaveGroup for one member (by member id, or by instance id for static
    /// members that leave without knowing their id).
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Instant) -> Result<(), ResponseError> {
        let member_id = match instance_id {
            Some(instance) => {
                let current = self.static_members.get(instance).cloned().ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && member_id != current {
                    return Err(ResponseError::FencedInstanceId);
                }
                current
            }
            None if self.pending_members.remove(member_id).is_some() => return Ok(()),
            None => member_id.to_string(),
        };
        if !self.members.contains_key(&member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.remove_member_and_rebalance(&member_id, now);
        Ok(())
    }

    fn remove_member_and_rebalance(&mut self, member_id: &str, now: Instant) {
        self.forget_member(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.fail_parked_syncs(ResponseError::RebalanceInProgress);
                    self.state = GroupState::Empty;
                    self.generation_id += 1;
                    self.protocol_name = None;
                    self.leader_id = None;
                } else {
                    self.prepare_rebalance(now);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Runs what time has made due: the end of a join phase, expired sessions and
    /// member ids handed out but never used.
    pub fn tick(&mut self, now: Instant) {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.joined && !m.awaiting_sync && m.session_deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove_member_and_rebalance(&id, now);
        }
        self.maybe_complete_join(now);
    }

    /// Topics the members subscribe to, read from their consumer protocol metadata
    /// (groups of other protocol types subscribe to nothing that offsets name).
    pub fn subscribed_topics(&self) -> std::collections::BTreeSet<String> {
        let mut topics = std::collections::BTreeSet::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        for member in self.members.values() {
            for (_, metadata) in &member.protocols {
                if let Some(subscription) = decode_subscription(metadata) {
                    topics.extend(subscription.topics.iter().map(|t| t.to_string()));
                }
            }
        }
        topics
    }

    /// The membership as stored in `__consumer_offsets`.
    pub fn to_stored(&self, now_ms: i64) -> StoredGroup {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            state_timestamp_ms: now_ms,
            members: self
                .members
                .iter()
                .map(|(id, m)| StoredMember {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: millis(m.rebalance_timeout),
                    session_timeout_ms: millis(m.session_timeout),
                    subscription: m.metadata_for(protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group as it was stored: stable with its members (each gets a fresh session), or
    /// empty. Members that do not come back are expired by their sessions, as in Kafka.
    pub fn restore(id: impl Into<String>, limits: GroupLimits, stored: StoredGroup, now: Instant) -> Self {
        let mut group = Group::new(id, limits);
        group.generation_id = stored.generation_id;
        group.protocol_type = Some(stored.protocol_type).filter(|t| !t.is_empty());
        group.protocol_name = stored.protocol_name.clone();
        let protocol = stored.protocol_name.unwrap_or_default();
        for member in stored.members {
            if let Some(instance) = &member.instance_id {
                group.static_members.insert(instance.clone(), member.member_id.clone());
            }
            let session_timeout = Duration::from_millis(member.session_timeout_ms.max(0) as u64);
            group.members.insert(
                member.member_id,
                Member {
                    instance_id: member.instance_id,
                    client_id: member.client_id,
                    client_host: member.client_host,
                    session_timeout,
                    rebalance_timeout: Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64),
                    protocols: vec![(protocol.clone(), member.subscription)],
                    assignment: member.assignment,
                    joined: false,
                    awaiting_sync: false,
                    session_deadline: now + session_timeout,
                },
            );
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            group.leader_id = stored.leader_id.filter(|leader| group.members.contains_key(leader));
            if group.leader_id.is_none() {
                group.leader_id = group.members.keys().next().cloned();
            }
        }
        group
    }

    /// Marks the group deleted (DeleteGroups): only an empty group can be.
    pub fn delete(&mut self) -> Result<(), ResponseError> {
        match self.state {
            GroupState::Empty => {
                self.state = GroupState::Dead;
                Ok(())
            }
            GroupState::Dead => Err(ResponseError::GroupIdNotFound),
            _ => Err(ResponseError::NonEmptyGroup),
        }
    }
}

/// A consumer's subscription from its JoinGroup metadata: a version, then the schema of
/// that version. `None` when it cannot be read.
fn decode_subscription(metadata: &Bytes) -> Option<kafka_protocol::messages::ConsumerProtocolSubscription> {
    use kafka_protocol::protocol::Decodable;
    if metadata.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]);
    let mut body = metadata.slice(2..);
    let max =
        <kafka_protocol::messages::ConsumerProtocolSubscription as kafka_protocol::protocol::Message>::VERSIONS.max;
    kafka_protocol::messages::ConsumerProtocolSubscription::decode(&mut body, version.clamp(0, max)).ok()
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(10);
    const REBALANCE: Duration = Duration::from_secs(30);
    const DELAY: Duration = Duration::from_secs(3);

    fn limits() -> GroupLimits {
        GroupLimits { initial_rebalance_delay: DELAY, ..GroupLimits::default() }
    }

    fn request(member_id: &str, instance_id: Option<&str>, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            instance_id: instance_id.map(String::from),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: SESSION,
            rebalance_timeout: REBALANCE,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
            requires_known_member_id: true,
        }
    }

    /// The KIP-394 round trip: the first join gets MEMBER_ID_REQUIRED and an id.
    fn first_join(group: &mut Group, now: Instant) -> String {
        match group.join(request("", None, &["range"]), now) {
            Outcome::Now(result) => {
                assert_eq!(result.error, Some(ResponseError::MemberIdRequired));
                result.member_id
            }
            Outcome::Parked(_) => panic!("a first join is answered at once"),
        }
    }

    fn joins(deliveries: &[Delivery]) -> Vec<&JoinResult> {
        deliveries
            .iter()
            .filter_map(|d| if let Delivery::Join { result, .. } = d { Some(result) } else { None })
            .collect()
    }

    /// Three members join an empty group; returns their ids (leader first) at Stable.
    fn stable_group_of_three(group: &mut Group, t0: Instant) -> Vec<String> {
        let ids: Vec<String> = (0..3).map(|_| first_join(group, t0)).collect();
        for id in &ids {
            assert_eq!(group.join(request(id, None, &["range"]), t0), Outcome::Parked(id.clone()));
        }
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        group.tick(t0 + DELAY - Duration::from_millis(1));
        assert!(group.take_deliveries().is_empty(), "the initial delay holds the join phase open");
        group.tick(t0 + DELAY);
        let deliveries = group.take_deliveries();
        let results = joins(&deliveries);
        assert_eq!(results.len(), 3);
        assert_eq!(group.state(), GroupState::CompletingRebalance);
        assert_eq!(group.generation_id(), 1);
        let leader = group.leader_id().unwrap().to_string();
        for result in &results {
            assert_eq!(result.error, None);
            assert_eq!(result.generation_id, 1);
            assert_eq!(result.leader_id, leader);
            assert_eq!(result.protocol_name.as_deref(), Some("range"));
            let expected_members = if result.member_id == leader { 3 } else { 0 };
            assert_eq!(result.members.len(), expected_members, "only the leader sees the members");
        }
        let t1 = t0 + DELAY;
        let followers: Vec<&String> = ids.iter().filter(|id| **id != leader).collect();
        for follower in &followers {
            assert_eq!(group.sync(follower, None, 1, vec![], t1), Outcome::Parked(follower.to_string()));
        }
        let assignments = ids.iter().map(|id| (id.clone(), Bytes::from(format!("parts-of-{id}")))).collect();
        assert_eq!(
            group.sync(&leader, None, 1, assignments, t1),
            Outcome::Now(Ok(Bytes::from(format!("parts-of-{leader}"))))
        );
        let synced = group.take_deliveries();
        assert_eq!(synced.len(), 2);
        for delivery in synced {
            let Delivery::Sync { member_id, result } = delivery else { panic!("sync answers only") };
            assert_eq!(result, Ok(Bytes::from(format!("parts-of-{member_id}"))));
        }
        assert_eq!(group.state(), GroupState::Stable);
        let mut ordered = vec![leader.clone()];
        ordered.extend(ids.into_iter().filter(|id| *id != leader));
        ordered
    }

    #[test]
    fn members_join_sync_and_become_stable() {
        let t0 = Instant::now();
        let mut group = Group::new("g", limits());
        let ids = stable_group_of_three(&mut group, t0);
        for id in &ids {
            assert_eq!(group.heartbeat(id, None, 1, t0 + DELAY), Ok(()));
        }
        assert_eq!(group.member_count(), 3);
        assert_eq!(group.describe_members().iter().filter(|m| m.assignment.is_empty()).count(), 0);

        // Stored and restored (a broker restart): the same generation, leader and
        // assignments, and members carry on heartbeating.
        let restored = Group::restore("g", limits(), group.to_stored(0), t0 + DELAY);
        assert_eq!(restored.state(), GroupState::Stable);
        assert_eq!(restored.generation_id(), 1);
        assert_eq!(restored.leader_id(), group.leader_id());
        assert_eq!(restored.describe_members(), group.describe_members());
        let mut restored = restored;
        assert_eq!(restored.heartbeat(&ids[1], None, 1, t0 + DELAY), Ok(()));
    }

    #[test]
    fn a_newcomer_makes_everyone_rejoin_under_a_new_generation() {
        let t0 = Instant::now();
        let mut group = Group::new("g", limits());
        let ids = stable_group_of_three(&mut group, t0);
        let t1 = t0 + Duration::from_secs(5);
        let newcomer = first_join(&mut group, t1);
        assert_eq!(group.join(request(&newcomer, None, &["range"]), t1), Outcome::Parked(newcomer.clone()));
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(group.heartbeat(&ids[1], None, 1, t1), Err(ResponseError::RebalanceInProgress));
        assert_eq!(group.join(request(&ids[1], None, &["range"]), t1), Outcome::Parked(ids[1].clone()));
        assert_eq!(group.join(request(&ids[2], None, &["range"]), t1), Outcome::Parked(ids[2].clone()));
        // The last one in ends the join phase: its own answer comes back directly.
        let Outcome::Now(result) = group.join(request(&ids[0], None, &["range"]), t1) else { panic!("phase ends") };
        assert_eq!((result.generation_id, result.members.len()), (2, 4), "the leader stays leader");
        assert_eq!(joins(&group.take_deliveries()).len(), 3);
        assert_eq!(group.heartbeat(&ids[1], None, 1, t1), Err(ResponseError::IllegalGeneration));
    }

    #[test]
    fn members_that_miss_the_rebalance_or_their_session_are_removed() {
        let t0 = Instant::now();
        let mut group = Group::new("g", limits());
        let ids = stable_group_of_three(&mut group, t0);
        let t1 = t0 + DELAY;
        // ids[2] stops heartbeating (a killed consumer): its session ends.
        group.heartbeat(&ids[0], None, 1, t1 + SESSION / 2).unwrap();
        group.heartbeat(&ids[1], None, 1, t1 + SESSION / 2).unwrap();
        group.tick(t1 + SESSION);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(group.member_count(), 2);
        // ids[1] does not rejoin within the rebalance timeout either.
        let t2 = t1 + SESSION;
        assert_eq!(group.join(request(&ids[0], None, &["range"]), t2), Outcome::Parked(ids[0].clone()));
        group.tick(t2 + REBALANCE);
        let deliveries = group.take_deliveries();
        let results = joins(&deliveries);
        assert_eq!(results.len(), 1);
        assert_eq!((results[0].member_id.as_str(), results[0].generation_id), (ids[0].as_str(), 2));
        assert_eq!(group.member_count(), 1);
        assert_eq!(group.heartbeat(&ids[2], None, 2, t2), Err(ResponseError::UnknownMemberId));
    }

    #[test]
    fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
        let t0 = Instant::now();
        let mut group = Group::new("g", limits());
        let Outcome::Parked(_) = group.join(request("", Some("worker-a"), &["range"]), t0) else {
            panic!("a static member's first join needs no member id round trip")
        };
        let Outcome::Parked(_) = group.join(request("", Some("worker-b"), &["range"]), t0) else { panic!() };
        group.tick(t0 + DELAY);
        let deliveries = group.take_deliveries();
        let results = joins(&deliveries);
        let leader = group.leader_id().unwrap().to_string();
        let follower = results.iter().find(|r| r.member_id != leader).unwrap().member_id.clone();
        let assignments = vec![(leader.clone(), Bytes::from("p0,p1")), (follower.clone(), Bytes::from("p2,p3"))];
        group.sync(&follower, None, 1, vec![], t0 + DELAY);
        group.sync(&leader, None, 1, assignments, t0 + DELAY);
        group.take_deliveries();
        let follower_instance = group.describe_members().into_iter().find(|m| m.member_id == follower).unwrap();
        let instance = follower_instance.instance_id.unwrap();

        // The follower restarts: it joins with its instance id and no member id.
        let t1 = t0 + DELAY + Duration::from_secs(2);
        let Outcome::Now(rejoined) = group.join(request("", Some(&instance), &["range"]), t1) else {
            panic!("answered at once: no rebalance")
        };
        assert_eq!(rejoined.error, None);
        assert_eq!(rejoined.generation_id, 1);
        assert_ne!(rejoined.member_id, follower);
        assert_eq!(group.state(), GroupState::Stable);
        let new_id = rejoined.member_id;
        assert_eq!(group.sync(&new_id, Some(&instance), 1, vec![], t1), Outcome::Now(Ok(Bytes::from("p2,p3"))));
        assert_eq!(group.heartbeat(&leader, None, 1, t1), Ok(()), "the leader saw no rebalance");
        assert_eq!(group.heartbeat(&follower, Some(&instance), 1, t1), Err(ResponseError::FencedInstanceId));
    }

    #[test]
    fn leaving_rebalances_the_rest_and_the_last_leave_empties_the_group() {
        let t0 = Instant::now();
        let mut group = Group::new("g", limits());
        let ids = stable_group_of_three(&mut group, t0);
        let t1 = t0 + DELAY;
        group.leave(&ids[2], None, t1).unwrap();
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(group.leave(&ids[2], None, t1), Err(ResponseError::UnknownMemberId));
        group.join(request(&ids[0], None, &["range"]), t1);
        group.leave(&ids[1], None, t1).unwrap();
        // Everyone left is in: the phase ends with the leader alone.
        let deliveries = group.take_deliveries();
        assert_eq!(joins(&deliveries).len(), 1);
        assert_eq!(group.state(), GroupState::CompletingRebalance);
        assert_eq!(group.delete(), Err(ResponseError::NonEmptyGroup));
        group.leave(&ids[0], None, t1).unwrap();
        assert_eq!(group.state(), GroupState::Empty);
        assert_eq!(group.delete(), Ok(()));
        assert_eq!(group.state(), GroupState::Dead);
    }

    #[test]
    fn the_protocol_is_chosen_by_vote_among_those_all_support() {
        let t0 = Instant::now();
        let mut group = Group::new("g", GroupLimits { initial_rebalance_delay: Duration::ZERO, ..limits() });
        let mut joined = Vec::new();
        for protocols in [&["range", "roundrobin", "sticky"][..], &["roundrobin", "range"], &["roundrobin", "range"]] {
            let mut first = request("", None, protocols);
            first.requires_known_member_id = false;
            joined.push(group.join(first, t0));
        }
        // The first member alone ended the zero-delay join phase at once; the next two
        // started a second rebalance that waits for the first to rejoin.
        let Outcome::Now(first) = &joined[0] else { panic!("zero delay: the phase ends at once") };
        assert_eq!(first.protocol_name.as_deref(), Some("range"));
        let Outcome::Now(result) = group.join(request(&first.member_id, None, &["range", "roundrobin", "sticky"]), t0)
        else {
            panic!("the last member in ends the phase")
        };
        assert_eq!(result.protocol_name.as_deref(), Some("roundrobin"), "2 votes to 1; sticky is not shared");
        let refused = group.join(request("", None, &["cooperative-sticky"]), t0);
        assert!(matches!(
            refused,
            Outcome::Now(JoinResult { error: Some(ResponseError::InconsistentGroupProtocol), .. })
        ));
    }

    #[test]
    fn bad_requests_get_kafkas_errors() {
        let t0 = Instant::now();
        let mut group = Group::new("g", limits());
        let mut short = request("", None, &["range"]);
        short.session_timeout = Duration::from_millis(100);
        assert!(matches!(
            group.join(short, t0),
            Outcome::Now(JoinResult { error: Some(ResponseError::InvalidSessionTimeout), .. })
        ));
        let unknown = group.join(request("nobody", None, &["range"]), t0);
        assert!(matches!(unknown, Outcome::Now(JoinResult { error: Some(ResponseError::UnknownMemberId), .. })));
        assert_eq!(group.heartbeat("nobody", None, 0, t0), Err(ResponseError::UnknownMemberId));
        let ids = stable_group_of_three(&mut group, t0);
        assert_eq!(group.sync(&ids[0], None, 7, vec![], t0), Outcome::Now(Err(ResponseError::IllegalGeneration)));
        let mut wrong_type = request("", None, &["range"]);
        wrong_type.protocol_type = "connect".into();
        assert!(matches!(
            group.join(wrong_type, t0),
            Outcome::Now(JoinResult { error: Some(ResponseError::InconsistentGroupProtocol), .. })
        ));
    }
}
