//! Any bytes as a request frame through the broker's real decode path (header checks,
//! version table, `kafka-protocol` body decoding) under the same reserving allocator the
//! broker runs with: it must return Ok or Err, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: sluice_net::alloc::ReservingAllocator = sluice_net::alloc::ReservingAllocator;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_net::server::decode_request(bytes::Bytes::copy_from_slice(data));
});
