//! Security on the broker's side: listeners and their settings ([`config`]), who a
//! connection is ([`session`]) and how it authenticates ([`connection_auth`]), the stored
//! credentials and ACLs ([`store`]), and the checks handlers make ([`authorize`]). The
//! mechanisms and rules themselves are `sluice-security`'s.

pub mod authorize;
pub mod config;
pub mod connection_auth;
pub mod session;
pub mod store;
