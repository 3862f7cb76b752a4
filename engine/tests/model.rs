//! Model-based property test: random sequences of append / read / truncate / roll /
//! close-reopen / retention / delete-records / flush against an in-memory model of the
//! log. After every step, everything the log serves equals the model.

mod common;

use bytes::Bytes;
use common::{batch, payload, read_all, run, temp_dir};
use proptest::prelude::*;
use sluice_engine::batch::BatchHeader;
use sluice_engine::{EngineError, FlushPolicy, LogConfig, PartitionLog, ReadLimit};

#[derive(Debug, Clone)]
enum Op {
    Append { records: usize, value_bytes: usize },
    Read { from_permille: u32, max_bytes: usize },
    Truncate { at_permille: u32 },
    Roll,
    Reopen,
    RetainBytes { limit: u64 },
    DeleteRecords { at_permille: u32 },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..6, 0usize..1500).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        3 => (0u32..=1000, 1usize..20_000).prop_map(|(from_permille, max_bytes)| Op::Read { from_permille, max_bytes }),
        1 => (0u32..=1000).prop_map(|at_permille| Op::Truncate { at_permille }),
        1 => Just(Op::Roll),
        1 => Just(Op::Reopen),
        1 => (0u64..40_000).prop_map(|limit| Op::RetainBytes { limit }),
        1 => (0u32..=1000).prop_map(|at_permille| Op::DeleteRecords { at_permille }),
        1 => Just(Op::Flush),
    ]
}

fn flush_policy() -> impl Strategy<Value = FlushPolicy> {
    prop_oneof![
        Just(FlushPolicy::EveryAppend),
        Just(FlushPolicy::Bytes(4096)),
        Just(FlushPolicy::Interval(std::time::Duration::from_millis(1))),
        Just(FlushPolicy::Never),
    ]
}

/// The model: batches as appended (base offset, last offset, bytes) and the log start.
#[derive(Default)]
struct Model {
    batches: Vec<(i64, i64, Bytes)>,
    log_start: i64,
    log_end: i64,
}

impl Model {
    fn visible(&self) -> impl Iterator<Item = &(i64, i64, Bytes)> {
        self.batches.iter().filter(move |(_, last, _)| *last >= self.log_start)
    }
    fn offset_at(&self, permille: u32) -> i64 {
        self.log_start + (self.log_end - self.log_start) * i64::from(permille) / 1000
    }
}

async fn check_everything(log: &PartitionLog, model: &Model) {
    assert_eq!(log.log_end_offset(), model.log_end);
    assert_eq!(log.log_start_offset(), model.log_start);
    let got = read_all(log, model.log_start).await;
    let want: Vec<_> = model.visible().collect();
    assert_eq!(got.len(), want.len(), "batch count");
    for (g, (base, _, bytes)) in got.iter().zip(want) {
        assert_eq!(BatchHeader::parse(g, usize::MAX).unwrap().base_offset(), *base);
        assert_eq!(payload(g), payload(bytes));
    }
}

async fn apply(
    log: &mut PartitionLog,
    model: &mut Model,
    op: &Op,
    path: &std::path::Path,
    config: &LogConfig,
    seed: &mut u64,
) {
    match *op {
        Op::Append { records, value_bytes } => {
            *seed += 1;
            let b = batch(records, value_bytes, *seed);
            let info = log.append(b.clone(), 0).await.unwrap();
            assert_eq!(info.base_offset, model.log_end);
            model.batches.push((info.base_offset, info.last_offset, b));
            model.log_end = info.last_offset + 1;
        }
        Op::Read { from_permille, max_bytes } => {
            let from = model.offset_at(from_permille);
            let read = log.read(from, max_bytes, ReadLimit::LogEnd).await.unwrap();
            let want: Vec<_> = model.visible().filter(|(_, last, _)| *last >= from).collect();
            assert_eq!(read.batches.is_empty(), want.is_empty(), "data available iff the model has some");
            assert!(read.batches.len() == 1 || read.batches.iter().map(Bytes::len).sum::<usize>() <= max_bytes);
            for (g, (base, _, bytes)) in read.batches.iter().zip(want) {
                assert_eq!(BatchHeader::parse(g, usize::MAX).unwrap().base_offset(), *base);
                assert_eq!(payload(g), payload(bytes));
            }
        }
        Op::Truncate { at_permille } => {
            let at = model.offset_at(at_permille);
            log.truncate_to(at).await.unwrap();
            if let Some(i) = model.batches.iter().position(|(_, last, _)| *last >= at) {
                model.log_end = model.batches[i].0;
                model.batches.truncate(i);
            }
            model.log_start = model.log_start.min(model.log_end);
        }
        Op::Roll => log.roll().await.unwrap(),
        Op::Reopen => {
            log.close().await.unwrap();
            let (reopened, report) = PartitionLog::open(path, config.clone()).await.unwrap();
            assert!(report.torn_tail.is_none() && report.corrupt_segments.is_empty(), "{report:?}");
            *log = reopened;
        }
        Op::RetainBytes { limit } => {
            let mut config = log.config();
            config.retention_bytes = Some(limit);
            log.set_config(config).unwrap();
            log.apply_retention(0).await.unwrap();
            let start = log.log_start_offset();
            assert!(start >= model.log_start && start <= model.log_end);
            assert!(
                start == model.log_end
                    || model.batches.iter().any(|(base, _, _)| *base == start)
                    || start == model.log_start,
                "retention moves the log start to a segment boundary"
            );
            model.log_start = start;
        }
        Op::DeleteRecords { at_permille } => {
            let at = model.offset_at(at_permille);
            let hw = log.high_watermark();
            match log.delete_records_before(log.append_ticket(), at).await {
                Ok(start) => {
                    assert!(at <= hw);
                    model.log_start = model.log_start.max(at);
                    assert_eq!(start, model.log_start);
                }
                Err(EngineError::OffsetOutOfRange { .. }) => assert!(at > hw),
                Err(other) => panic!("{other}"),
            }
        }
        Op::Flush => {
            log.flush().await.unwrap();
            assert_eq!(log.high_watermark(), model.log_end);
        }
    }
}

proptest! {
    // PROPTEST_CASES=N runs a longer search; 48 keeps `make test` quick.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]
    #[test]
    fn log_matches_the_model(
        ops in proptest::collection::vec(op(), 1..60),
        segment_bytes in 2048u64..24_000,
        tail_cache_bytes in 0usize..12_000,
        flush in flush_policy(),
    ) {
        let dir = temp_dir();
        let path = dir.path().join("model-0");
        let config = LogConfig { segment_bytes, tail_cache_bytes, flush, index_interval_bytes: 512, retention_ms: None, ..LogConfig::default() };
        run(async {
            let (mut log, _) = PartitionLog::open(&path, config.clone()).await.unwrap();
            let mut model = Model::default();
            let mut seed = 0;
            for op in &ops {
                apply(&mut log, &mut model, op, &path, &config, &mut seed).await;
                check_everything(&log, &model).await;
            }
        });
    }
}
