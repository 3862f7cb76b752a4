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

#[test]
fn the_flush_tick_visits_only_logs_with_interval_appends_and_fsyncs_them_when_due() {
    use sluice_engine::sync_stats::shard_sync_latencies;
    use sluice_engine::FlushPolicy;
    use std::time::Duration;
    let dir = temp_dir();
    let data = dir.path().to_path_buf();
    let runtime = RuntimeConfig { shards: 1, ..RuntimeConfig::default() };
    run_shards(&runtime, &data, {
        let data = data.clone();
        move |_| {
            let data = data.clone();
            async move {
                let shard = Shard::new(0, &data);
                let interval =
                    LogConfig { flush: FlushPolicy::Interval(Duration::from_secs(1)), ..LogConfig::default() };
                for p in 0..100 {
                    shard.open_partition(&format!("idle-{p}"), interval.clone()).await?;
                }
                // Opened last, so their interval (counted from opening) is still running below.
                let busy = shard.open_partition("busy-0", interval.clone()).await?.0;
                let other = shard.open_partition("busy-1", interval.clone()).await?.0;
                let every = LogConfig { flush: FlushPolicy::EveryAppend, ..LogConfig::default() };
                let (synced, _) = shard.open_partition("synced-0", every).await?;
                synced.append(batch(1, 100, 0), 0).await?;
                assert_eq!(shard.pending_flush_count(), 0, "no interval appends, nothing to visit");

                busy.append(batch(3, 100, 1), 0).await?;
                busy.append(batch(3, 100, 2), 0).await?;
                other.append(batch(1, 100, 3), 0).await?;
                assert_eq!(shard.pending_flush_count(), 2, "the two logs appended to, once each");
                let fsyncs = shard_sync_latencies().count();
                shard.flush_due().await;
                assert_eq!(shard.pending_flush_count(), 2, "not due yet: visited again next tick");
                assert_eq!(shard_sync_latencies().count(), fsyncs, "no fsync before the interval");
                glommio::timer::sleep(Duration::from_millis(1100)).await;
                shard.flush_due().await;
                assert_eq!(shard.pending_flush_count(), 0, "both fsynced, nothing left to visit");
                assert!(shard_sync_latencies().count() >= fsyncs + 2, "one fsync per log appended to");

                // A runtime switch to an interval policy picks up appends already made.
                let (switched, _) = shard.open_partition("switched-0", LogConfig::default()).await?;
                switched.set_config(LogConfig { flush: FlushPolicy::Bytes(1 << 30), ..LogConfig::default() })?;
                switched.append(batch(1, 100, 4), 0).await?;
                assert_eq!(shard.pending_flush_count(), 0);
                switched.set_config(interval)?;
                assert_eq!(shard.pending_flush_count(), 1, "unflushed appends under the new interval policy");
                shard.close_all().await?;
                Ok(())
            }
        }
    })
    .unwrap();
}

#[test]
fn a_follower_log_restarts_empty_at_its_leaders_log_start_and_stays_there() {
    let dir = temp_dir();
    let data = dir.path().to_path_buf();
    let runtime = RuntimeConfig { shards: 1, ..RuntimeConfig::default() };
    let results = run_shards(&runtime, &data, {
        let data = data.clone();
        move |shard_id| {
            let data = data.clone();
            async move {
                let shard = Shard::new(shard_id, &data);
                let (log, _) = shard.open_partition("t-0", LogConfig::default()).await?;
                log.append(batch(3, 100, 1), 0).await?;
                let (log, _) = shard.restart_partition_at("t-0", LogConfig::default(), 500).await?;
                let empty = (log.log_start_offset(), log.log_end_offset());
                // The leader's records from 500 on append as they came.
                let mut leaders = bytes::BytesMut::from(&batch(2, 100, 2)[..]);
                leaders[0..8].copy_from_slice(&500i64.to_be_bytes());
                log.append_replicated(vec![leaders.freeze()]).await?;
                shard.close_all().await?;
                let reopened = Shard::new(shard_id, &data);
                let (log, _) = reopened.open_partition("t-0", LogConfig::default()).await?;
                let after_restart = (log.log_start_offset(), log.log_end_offset());
                reopened.close_all().await?;
                Ok((empty, after_restart))
            }
        }
    })
    .unwrap();
    assert_eq!(results, vec![((500, 500), (500, 502))]);
}
