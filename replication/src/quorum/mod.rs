//! The metadata quorum: the controllers' Raft (openraft 0.10 on glommio) replicating
//! batches of [`crate::metadata::MetadataRecord`]s, and the state machine that applies
//! them to a [`crate::metadata::MetadataImage`].

mod channels;
mod files;
pub mod log_store;
pub mod network;
pub mod runtime;
pub mod service;
pub mod state_machine;
pub mod types;
pub mod wire;
