//! Consumer groups (issue 4, in progress): [`state`] is one group's membership state
//! machine, without I/O; [`records`] is what groups and committed offsets look like in
//! `__consumer_offsets` and which partition of it holds a group. The coordinator that parks requests, persists groups and
//! offsets in `__consumer_offsets` and serves the group APIs builds on it; until it does,
//! the broker does not advertise the group APIs.

pub mod coordinator;
pub mod records;
pub mod route;
pub mod state;
