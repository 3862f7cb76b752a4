//! `sluice serve` as a real process: recovers the partitions in its data directory on
//! several shards, refuses a second process on the same directory, and shuts down cleanly
//! on SIGTERM leaving trimmed segment files.

use sluice_engine::batch_builder::synthetic_batch;
use sluice_engine::{LogConfig, PartitionLog};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn populate(data_dir: &Path, partitions: &[&str]) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(2 << 20).make().unwrap().run(async {
        for (i, name) in partitions.iter().enumerate() {
            let (log, _) = PartitionLog::open(&data_dir.join(name), LogConfig::default()).await.unwrap();
            for seed in 0..10 {
                log.append(synthetic_batch(5, 100, seed + 100 * i as u64, 1_700_000_000_000), 0).await.unwrap();
            }
            log.close().await.unwrap();
        }
    });
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `sluice serve` in the parent of `data_dir`, naming the data directory by a
/// relative path as `make run` does, and forwards its stderr lines to a channel.
fn serve(data_dir: &Path, cores: usize) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--cores", &cores.to_string(), "--data-dir"])
        .arg(data_dir.file_name().unwrap())
        .current_dir(data_dir.parent().unwrap())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Collects lines until one contains `needle` (or panics after 30 s).
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no {needle:?} in {seen:#?}"));
        let found = line.contains(needle);
        seen.push(line);
        if found {
            return;
        }
    }
}

/// Kills the broker if the test fails half-way, so no process outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_recovers_partitions_on_all_shards_and_shuts_down_cleanly() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    populate(&data, &["orders-0", "orders-1", "clicks-0"]);
    // A crash left a zero-filled tail on one partition: recovery must cut it.
    let torn = data.join("orders-1").join("00000000000000000000.log");
    let logical = std::fs::metadata(&torn).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&torn).unwrap();
    std::io::Write::write_all(&mut file, &[0u8; 8192]).unwrap();

    let (child, rx) = serve(&data, 2);
    let mut child = KillOnDrop(child);
    let mut seen = Vec::new();
    wait_for(&rx, "previous_shutdown=None", &mut seen);
    wait_for(&rx, "shard ready", &mut seen);
    wait_for(&rx, "shard ready", &mut seen);
    let recovered: Vec<&String> = seen.iter().filter(|l| l.contains("recovered") && l.contains("segments=")).collect();
    assert_eq!(recovered.len(), 3, "{seen:#?}");
    assert!(recovered.iter().any(|l| l.contains("shard=0")));
    assert!(recovered.iter().any(|l| l.contains("shard=1")));
    assert!(recovered.iter().any(|l| l.contains("orders-1") && l.contains("torn_tail=true")), "{seen:#?}");
    assert!(recovered.iter().all(|l| l.contains("log_end=50")), "{seen:#?}");

    let (mut second, second_rx) = serve(&data, 1);
    let status = second.wait().unwrap();
    assert!(!status.success(), "a second sluice on the same data dir must refuse to start");
    let message: Vec<String> = second_rx.iter().collect(); // ends when its stderr closes
    assert!(message.iter().any(|l| l.contains("in use by another sluice")), "{message:#?}");

    // SAFETY: sends SIGTERM to our own child process; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM");
    wait_for(&rx, "clean shutdown", &mut seen);
    assert_eq!(std::fs::metadata(&torn).unwrap().len(), logical, "the torn tail is cut and the file trimmed");
    let marker = data.join(".clean-shutdown");
    assert!(marker.exists(), "a clean shutdown leaves its marker");

    // The next start sees the clean shutdown and takes the marker away, so that a crash
    // (SIGKILL) is seen as unclean by the start after it.
    let (child, rx) = serve(&data, 1);
    let mut child = KillOnDrop(child);
    wait_for(&rx, "previous_shutdown=Clean", &mut seen);
    wait_for(&rx, "shard ready", &mut seen);
    assert!(!marker.exists(), "the marker is removed while the broker runs");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(!marker.exists(), "a killed broker leaves no marker");
    let (child, rx) = serve(&data, 1);
    let _child = KillOnDrop(child);
    wait_for(&rx, "previous_shutdown=Unclean", &mut seen);
}
