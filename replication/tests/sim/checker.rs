//! The invariants, checked as the run goes:
//! 1. one leader per (partition, leader epoch): the controller never gives an epoch to two
//!    brokers, and no broker leads in an epoch the controller did not give it;
//! 2. committed records never change: below any replica's high watermark, every replica
//!    has the same records (kept as a ledger of what has ever been under a high watermark);
//! 3. an acknowledged record is committed, at the offset it was acknowledged with;
//! 4. every member of the controller's ISR has the whole ledger in its fsynced log (so
//!    whichever of them is elected next has every acknowledged record).
//!
//! A violation panics with the seed's run; the seed replays it.

use std::collections::BTreeMap;

use sluice_replication::metadata::MetadataImage;
use sluice_replication::{BrokerId, PartitionKey};

use super::log::{SimLog, SimRecord};

#[derive(Default)]
pub struct Checker {
    /// Per partition, the committed records by offset.
    pub ledger: BTreeMap<PartitionKey, Vec<SimRecord>>,
    /// Per (partition, leader epoch), the leader the controller gave it to.
    epoch_leaders: BTreeMap<(PartitionKey, i32), BrokerId>,
    /// Per (broker, partition), how far its log has been compared with the ledger.
    checked_upto: BTreeMap<(BrokerId, PartitionKey), i64>,
    /// Every acknowledged record: partition, offset, value.
    pub acked: Vec<(PartitionKey, i64, u64)>,
}

impl Checker {
    /// Invariant 1, controller side: called with every image the controller reaches.
    pub fn on_controller_image(&mut self, image: &MetadataImage) {
        for (key, state) in &image.partitions {
            let leader = *self.epoch_leaders.entry((*key, state.leader_epoch)).or_insert(state.leader);
            assert_eq!(
                leader, state.leader,
                "{key:?} epoch {} given to {leader} and {}",
                state.leader_epoch, state.leader
            );
        }
    }

    /// Invariant 1, broker side: `broker` acts as leader of `key` in `epoch`.
    pub fn on_leading(&self, broker: BrokerId, key: PartitionKey, epoch: i32) {
        let given = self.epoch_leaders.get(&(key, epoch));
        assert_eq!(
            given,
            Some(&broker),
            "broker {broker} leads {key:?} in epoch {epoch}, which the controller gave to {given:?}"
        );
    }

    /// Invariant 2: `broker`'s high watermark for `key` is `high_watermark`.
    pub fn on_high_watermark(&mut self, broker: BrokerId, key: PartitionKey, log: &SimLog, high_watermark: i64) {
        assert!(high_watermark <= log.records.len() as i64, "high watermark past the log end");
        let checked = self.checked_upto.entry((broker, key)).or_insert(0);
        let ledger = self.ledger.entry(key).or_default();
        for offset in *checked..high_watermark {
            let record = log.records[offset as usize];
            match ledger.get(offset as usize) {
                Some(committed) => assert_eq!(
                    *committed, record,
                    "broker {broker} has {record:?} at committed offset {offset} of {key:?}, the ledger {committed:?}"
                ),
                None => {
                    assert_eq!(ledger.len() as i64, offset, "the ledger grows without gaps");
                    ledger.push(record);
                }
            }
        }
        *checked = (*checked).max(high_watermark);
    }

    /// `broker`'s log of `key` lost records from `end` on (truncation or crash).
    pub fn on_log_cut(&mut self, broker: BrokerId, key: PartitionKey, end: i64) {
        if let Some(checked) = self.checked_upto.get_mut(&(broker, key)) {
            *checked = (*checked).min(end);
        }
    }

    /// Invariant 3.
    pub fn on_acked(&mut self, key: PartitionKey, offset: i64, value: u64) {
        let committed = self.ledger.get(&key).and_then(|l| l.get(offset as usize));
        assert_eq!(
            committed.map(|r| r.value),
            Some(value),
            "value {value} acknowledged at offset {offset} of {key:?} is not the committed record there"
        );
        self.acked.push((key, offset, value));
    }

    /// Invariant 4. `full` compares whole logs; otherwise the length and the last record
    /// (enough between full checks: logs that agree on a record agree before it, which
    /// invariant 2 and the full checks keep honest).
    pub fn check_isr_durability<'a>(
        &self,
        image: &MetadataImage,
        logs: impl Fn(BrokerId, PartitionKey) -> Option<&'a SimLog>,
        full: bool,
    ) {
        for (key, state) in &image.partitions {
            let Some(ledger) = self.ledger.get(key) else { continue };
            if ledger.is_empty() {
                continue;
            }
            for member in &state.isr {
                let log = logs(*member, *key);
                let durable = log.map_or(0, |l| l.durable);
                assert!(
                    durable >= ledger.len(),
                    "ISR member {member} of {key:?} has {durable} fsynced records, {} are committed",
                    ledger.len()
                );
                let log = log.unwrap();
                let range = if full { 0..ledger.len() } else { ledger.len() - 1..ledger.len() };
                for offset in range {
                    assert_eq!(
                        log.records[offset], ledger[offset],
                        "ISR member {member} of {key:?} differs at committed offset {offset}"
                    );
                }
            }
        }
    }
}
