//! Recovery of a damaged active segment: three valid batches followed by arbitrary bytes
//! (and with arbitrary bytes spliced over them). Opening must never panic; it must keep
//! every valid batch before the damage and leave a log that reads back whole batches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::batch::{assign_offsets, BatchHeader};
use sluice_engine::batch_builder::synthetic_batch;
use sluice_engine::{LogConfig, PartitionLog, ReadLimit};

thread_local! {
    static EXECUTOR: glommio::LocalExecutor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(2 << 20)
        .make()
        .expect("executor");
    static DIR: tempfile::TempDir = tempfile::tempdir_in("target").expect("scratch directory under fuzz/target");
}

fuzz_target!(|data: &[u8]| {
    // First byte: where the fuzz bytes go (0 = after the valid batches, else overwrite).
    let Some((&mode, tail)) = data.split_first() else { return };
    let mut file = Vec::new();
    let mut next_offset = 0;
    for seed in 0..3u64 {
        let mut batch = synthetic_batch(2, 50, seed, 1_700_000_000_000).to_vec();
        assign_offsets(&mut batch, next_offset, 0, None);
        next_offset += 2;
        file.extend_from_slice(&batch);
    }
    let valid_len = file.len();
    if mode == 0 {
        file.extend_from_slice(tail);
    } else {
        let at = usize::from(mode) % valid_len;
        let end = (at + tail.len()).min(file.len());
        file[at..end].copy_from_slice(&tail[..end - at]);
    }
    DIR.with(|dir| {
        let partition = dir.path().join("fuzz-0");
        let _ = std::fs::remove_dir_all(&partition);
        std::fs::create_dir_all(&partition).unwrap();
        std::fs::write(partition.join("00000000000000000000.log"), &file).unwrap();
        EXECUTOR.with(|executor| {
            executor.run(async {
                let (log, _) = PartitionLog::open(&partition, LogConfig::default()).await.expect("recovery never fails on a damaged tail");
                if mode == 0 {
                    assert!(log.log_end_offset() >= 6, "valid batches before the damage survive");
                }
                let mut offset = 0;
                while offset < log.log_end_offset() {
                    let read = log.read(offset, 1 << 20, ReadLimit::LogEnd).await.expect("recovered data reads back");
                    for batch in &read.batches {
                        let header = BatchHeader::parse_verified(batch, usize::MAX).expect("only whole, valid batches");
                        offset = header.last_offset() + 1;
                    }
                    assert!(!read.batches.is_empty());
                }
                log.close().await.unwrap();
            })
        });
    });
});
