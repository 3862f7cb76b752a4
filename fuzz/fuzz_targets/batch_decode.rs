//! Any bytes through the batch decoder: header parse, CRC check, record iteration, and
//! offset assignment on batches that validate. Must never panic; assignment must keep a
//! valid batch valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::batch::{assign_offsets, BatchHeader};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = BatchHeader::parse(data, 1 << 20) else { return };
    if let Some(records) = header.records() {
        for record in records {
            let _ = record;
        }
    }
    if header.verify_crc().is_ok() {
        let mut copy = header.bytes().to_vec();
        assign_offsets(&mut copy, 12_345, 7, None);
        let again = BatchHeader::parse_verified(&copy, 1 << 20).expect("offset assignment keeps the CRC valid");
        assert_eq!(again.base_offset(), 12_345);
        assign_offsets(&mut copy, 1, 7, Some(1_700_000_000_000));
        BatchHeader::parse_verified(&copy, 1 << 20).expect("LogAppendTime recomputes the CRC");
    }
});
