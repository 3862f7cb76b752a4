//! Any bytes as an admin socket request line and as an HTTP request head for the metrics
//! endpoint: both must answer (a request or an error, a route), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_net::admin::protocol::parse_request(data);
    let _ = sluice_net::admin::http::route(data);
});
