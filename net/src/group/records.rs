//! What the group coordinator stores in `__consumer_offsets`: one record per committed
//! offset and one per group's membership, in Kafka's own key and value layouts (so Kafka
//! tooling that reads the topic understands it), and which partition of the topic a group
//! belongs to. A record with a null value (a tombstone) deletes its key.
//!
//! Layouts (big-endian; strings are an i16 length then UTF-8, -1 for null; bytes an i32
//! length then the bytes):
//! - key v0/v1, a committed offset: `version i16, group string, topic string, partition i32`
//! - key v2, a group: `version i16, group string`
//! - offset value v3: `version i16, offset i64, leader_epoch i32, metadata string,
//!   commit_timestamp i64` (v0–v2 are read too)
//! - group value v3: `version i16, protocol_type string, generation i32, protocol string?,
//!   leader string?, current_state_timestamp i64, members [member_id string,
//!   group_instance_id string?, client_id string, client_host string, rebalance_timeout i32,
//!   session_timeout i32, subscription bytes, assignment bytes]` (v0–v2 are read too)

use crate::internal_codec::{put_bytes, put_nullable_string, put_string, Reader};
use bytes::{BufMut, Bytes, BytesMut};

/// Name of the internal topic.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Its partition count (`offsets.topic.num.partitions`).
pub const CONSUMER_OFFSETS_PARTITIONS: i32 = 50;

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsKey {
    /// The committed offset of one partition for a group.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A group's membership.
    Group {
        /// Group id.
        group: String,
    },
}

/// A committed offset (the value of an offset key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// The leader epoch of the record before it, -1 if unknown.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// One member in a stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Rebalance timeout, ms.
    pub rebalance_timeout_ms: i32,
    /// Session timeout, ms.
    pub session_timeout_ms: i32,
    /// Its metadata for the chosen protocol.
    pub subscription: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// A group's membership as stored (the value of a group key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    /// Protocol type (e.g. "consumer").
    pub protocol_type: String,
    /// Generation.
    pub generation_id: i32,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader_id: Option<String>,
    /// When the group last changed state (ms since the epoch).
    pub state_timestamp_ms: i64,
    /// Members.
    pub members: Vec<StoredMember>,
}

const KEY_OFFSET_V1: i16 = 1;
const KEY_GROUP: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// Encodes a key.
pub fn encode_key(key: &OffsetsKey) -> Bytes {
    let mut out = BytesMut::new();
    match key {
        OffsetsKey::Offset { group, topic, partition } => {
            out.put_i16(KEY_OFFSET_V1);
            put_string(&mut out, group);
            put_string(&mut out, topic);
            out.put_i32(*partition);
        }
        OffsetsKey::Group { group } => {
            out.put_i16(KEY_GROUP);
            put_string(&mut out, group);
        }
    }
    out.freeze()
}

/// Encodes a committed offset.
pub fn encode_offset(value: &CommittedOffset) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(OFFSET_VALUE_VERSION);
    out.put_i64(value.offset);
    out.put_i32(value.leader_epoch);
    put_string(&mut out, &value.metadata);
    out.put_i64(value.commit_timestamp_ms);
    out.freeze()
}

/// Encodes a group's membership.
pub fn encode_group(value: &StoredGroup) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut out, &value.protocol_type);
    out.put_i32(value.generation_id);
    put_nullable_string(&mut out, value.protocol_name.as_deref());
    put_nullable_string(&mut out, value.leader_id.as_deref());
    out.put_i64(value.state_timestamp_ms);
    out.put_i32(i32::try_from(value.members.len()).expect("a group's member count fits i32"));
    for member in &value.members {
        put_string(&mut out, &member.member_id);
        put_nullable_string(&mut out, member.instance_id.as_deref());
        put_string(&mut out, &member.client_id);
        put_string(&mut out, &member.client_host);
        out.put_i32(member.rebalance_timeout_ms);
        out.put_i32(member.session_timeout_ms);
        put_bytes(&mut out, &member.subscription);
        put_bytes(&mut out, &member.assignment);
    }
    out.freeze()
}

/// Decodes a key. Errors name what is wrong; stored records come from disk, where a bad
/// one must be reported, not trusted.
pub fn decode_key(bytes: &Bytes) -> Result<OffsetsKey, String> {
    let mut reader = Reader::new(bytes);
    let key = match reader.i16()? {
        0 | KEY_OFFSET_V1 => {
            OffsetsKey::Offset { group: reader.string()?, topic: reader.string()?, partition: reader.i32()? }
        }
        KEY_GROUP => OffsetsKey::Group { group: reader.string()? },
        version => return Err(format!("unknown key version {version}")),
    };
    reader.finish()?;
    Ok(key)
}

/// Decodes a committed offset (value versions 0–3).
pub fn decode_offset(bytes: &Bytes) -> Result<CommittedOffset, String> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!("unknown offset value version {version}"));
    }
    let offset = reader.i64()?;
    let leader_epoch = if version >= 3 { reader.i32()? } else { -1 };
    let metadata = reader.string()?;
    let commit_timestamp_ms = reader.i64()?;
    if version == 1 {
        reader.i64()?; // expire timestamp: gone in later versions
    }
    reader.finish()?;
    Ok(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms })
}

/// Decodes a group's membership (value versions 0–3).
pub fn decode_group(bytes: &Bytes) -> Result<StoredGroup, String> {
    let mut reader = Reader::new(bytes);
    let version = reader.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!("unknown group value version {version}"));
    }
    let protocol_type = reader.string()?;
    let generation_id = reader.i32()?;
    let protocol_name = reader.nullable_string()?;
    let leader_id = reader.nullable_string()?;
    let state_timestamp_ms = if version >= 2 { reader.i64()? } else { -1 };
    let count = reader.i32()?;
    // Each member takes at least 24 bytes: the count cannot ask for more than remain.
    let count = usize::try_from(count).ok().filter(|n| n * 24 <= reader.remaining()).ok_or("bad member count")?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = reader.string()?;
        let instance_id = if version >= 3 { reader.nullable_string()? } else { None };
        let client_id = reader.string()?;
        let client_host = reader.string()?;
        let rebalance_timeout_ms = if version >= 1 { reader.i32()? } else { -1 };
        let session_timeout_ms = reader.i32()?;
        let rebalance_timeout_ms = if version >= 1 { rebalance_timeout_ms } else { session_timeout_ms };
        let subscription = reader.bytes()?;
        let assignment = reader.bytes()?;
        members.push(StoredMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    reader.finish()?;
    Ok(StoredGroup { protocol_type, generation_id, protocol_name, leader_id, state_timestamp_ms, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let keys = [
            OffsetsKey::Offset { group: "g".into(), topic: "orders".into(), partition: 7 },
            OffsetsKey::Group { group: "g".into() },
        ];
        for key in keys {
            assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
        }
        let offset = CommittedOffset { offset: 42, leader_epoch: 0, metadata: "m".into(), commit_timestamp_ms: 17 };
        assert_eq!(decode_offset(&encode_offset(&offset)).unwrap(), offset);
        let group = StoredGroup {
            protocol_type: "consumer".into(),
            generation_id: 3,
            protocol_name: Some("range".into()),
            leader_id: Some("m-1".into()),
            state_timestamp_ms: 99,
            members: vec![StoredMember {
                member_id: "m-1".into(),
                instance_id: Some("worker-a".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"assign"),
            }],
        };
        assert_eq!(decode_group(&encode_group(&group)).unwrap(), group);
    }

    #[test]
    fn kafkas_older_offset_values_are_read() {
        // Value v1: offset, metadata, commit timestamp, expire timestamp.
        let mut v1 = BytesMut::new();
        v1.put_i16(1);
        v1.put_i64(5);
        put_string(&mut v1, "");
        v1.put_i64(1000);
        v1.put_i64(2000);
        let read = decode_offset(&v1.freeze()).unwrap();
        assert_eq!((read.offset, read.leader_epoch, read.commit_timestamp_ms), (5, -1, 1000));
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let good = encode_group(&StoredGroup {
            protocol_type: "consumer".into(),
            generation_id: 1,
            protocol_name: None,
            leader_id: None,
            state_timestamp_ms: 0,
            members: vec![],
        });
        for cut in 0..good.len() {
            assert!(decode_group(&good.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut huge_count = BytesMut::from(&good[..]);
        let at = huge_count.len() - 4;
        huge_count[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_group(&huge_count.freeze()).is_err());
        assert!(decode_key(&Bytes::from_static(&[0, 9, 0, 0])).is_err());
        let mut trailing = BytesMut::from(&encode_key(&OffsetsKey::Group { group: "g".into() })[..]);
        trailing.put_u8(0);
        assert!(decode_key(&trailing.freeze()).is_err());
    }
}
