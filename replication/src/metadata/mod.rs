//! The cluster metadata: the records the controller quorum replicates, and the image
//! every controller and broker builds by applying them in log order.

mod image;
mod records;

pub use image::{BrokerState, MetadataImage, PartitionState, SecurityImage, TopicState};
pub use records::{
    AclBindingData, AdvertisedListener, BrokerRegistration, MetadataRecord, PartitionChange, ScramCredentialData,
};
