//! The O_DIRECT appender against a plain model: whatever mix of write sizes, flushes
//! awaited or not, full chunks and reopenings at an unaligned end, the file holds exactly
//! the bytes written, zero-padded to the page.

mod common;

use common::{run, temp_dir};
use glommio::io::{DmaFile, OpenOptions};
use proptest::prelude::*;
use sluice_engine::appender::{page_down, page_up, Appender, CHUNK_BYTES, CHUNK_HANDOVER_MIN_BYTES};
use std::path::Path;
use std::rc::Rc;

#[derive(Debug, Clone)]
enum Op {
    Write(usize),
    /// A flush; `true` waits for it before the next op.
    Flush(bool),
    /// Flush, wait, and take the file over with a new appender (as a restart does).
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..6000).prop_map(Op::Write),
        2 => (CHUNK_HANDOVER_MIN_BYTES as usize - 100..CHUNK_HANDOVER_MIN_BYTES as usize + 5000).prop_map(Op::Write),
        1 => (CHUNK_BYTES - 3000..CHUNK_BYTES + 9000).prop_map(Op::Write),
        3 => any::<bool>().prop_map(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

/// Byte `i` of the stream: varies with its position, so a page written at the wrong place
/// or an old page landing over a new one shows.
fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1
}

async fn open_appender(path: &Path, end: u64) -> Appender {
    let file = Rc::new(OpenOptions::new().read(true).write(true).dma_open(path).await.expect("open"));
    let on_disk = std::fs::read(path).expect("read back");
    let tail_page = &on_disk[page_down(end) as usize..end as usize];
    Appender::new(file, path, end, tail_page)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]
    #[test]
    fn the_file_holds_exactly_what_was_written(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = temp_dir();
        let path = dir.path().join("segment");
        run(async {
            let file = Rc::new(DmaFile::create(&path).await.expect("create"));
            let mut appender = Appender::new(file, &path, 0, &[]);
            let mut written: Vec<u8> = Vec::new();
            let mut unawaited = Vec::new();
            for op in &ops {
                match op {
                    Op::Write(len) => {
                        let data: Vec<u8> = (written.len()..written.len() + len).map(byte_at).collect();
                        appender.write(&data).expect("write");
                        written.extend_from_slice(&data);
                        assert_eq!(appender.end(), written.len() as u64);
                    }
                    Op::Flush(wait) => {
                        let flush = appender.begin_flush();
                        if *wait {
                            flush.await.expect("flush");
                        } else {
                            unawaited.push(flush);
                        }
                    }
                    Op::Reopen => {
                        appender.begin_flush().await.expect("flush");
                        for flush in unawaited.drain(..) {
                            flush.await.expect("flush");
                        }
                        appender = open_appender(&path, written.len() as u64).await;
                    }
                }
            }
            appender.begin_flush().await.expect("final flush");
            for flush in unawaited {
                flush.await.expect("flush");
            }
        });
        let on_disk = std::fs::read(&path).expect("read back");
        prop_assert_eq!(on_disk.len() as u64, page_up(written_len(&ops)), "file size is the data rounded up to a page");
        let data_len = written_len(&ops) as usize;
        let expected: Vec<u8> = (0..data_len).map(byte_at).collect();
        prop_assert!(on_disk[..data_len] == expected[..], "data differs at byte {:?}",
            on_disk.iter().zip(&expected).position(|(a, b)| a != b));
        prop_assert!(on_disk[data_len..].iter().all(|&b| b == 0), "padding past the end is zero");
    }
}

fn written_len(ops: &[Op]) -> u64 {
    ops.iter().map(|op| if let Op::Write(len) = op { *len as u64 } else { 0 }).sum()
}
