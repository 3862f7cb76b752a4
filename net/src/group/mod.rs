//! Consumer groups (issue 4, in progress): [`state`] is one group's membership state
//! machine, without I/O. The coordinator that parks requests, persists groups and
//! offsets in `__consumer_offsets` and serves the group APIs builds on it; until it does,
//! the broker does not advertise the group APIs.

pub mod state;
