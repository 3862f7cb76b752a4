//! Any bytes as an admin socket request line: it must parse or be refused, never panic.
//! (The metrics endpoint's HTTP parsing is hyper's since it moved to the HTTP thread.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_net::admin::protocol::parse_request(data);
});
