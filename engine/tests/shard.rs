//! The shard runtime: partitions spread over pinned executors, and partition deletion.

mod common;

use common::{batch, temp_dir};
use sluice_engine::shard::{remove_deleted_partitions, run_shards, RuntimeConfig, Shard};
use sluice_engine::LogConfig;

#[test]
fn shards_own_their_partitions_and_delete_them_durably() {
    let dir = temp_dir();
    let data = dir.path().to_path_buf();
    let runtime = RuntimeConfig { shards: 2, ..RuntimeConfig::default() };
    let ends = run_shards(&runtime, &data, {
        let data = data.clone();
        move |shard_id| {
            let data = data.clone();
            async move {
                let shard = Shard::new(shard_id, &data);
                for p in 0..3 {
                    let (log, _) = shard.open_partition(&format!("s{shard_id}-{p}"), LogConfig::default()).await?;
                    log.append(batch(2, 100, p), 0).await?;
                }
                assert!(shard.delete_partition(&format!("s{shard_id}-1")).await?);
                assert!(!shard.delete_partition("not-mine-0").await?);
                let ends: Vec<i64> = shard.partitions().iter().map(|log| log.log_end_offset()).collect();
                shard.close_all().await?;
                Ok(ends)
            }
        }
    })
    .unwrap();
    assert_eq!(ends, vec![vec![2, 2], vec![2, 2]]);
    let mut names: Vec<String> =
        std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec![".probe", "s0-0", "s0-2", "s1-0", "s1-2"]);

    // A deletion interrupted by a crash leaves `<name>.deleted`; startup removes it.
    std::fs::create_dir(data.join("s9-0.deleted")).unwrap();
    std::fs::write(data.join("s9-0.deleted").join("00000000000000000000.log"), b"x").unwrap();
    assert_eq!(remove_deleted_partitions(&data).unwrap(), 1);
    assert!(!data.join("s9-0.deleted").exists());
}
