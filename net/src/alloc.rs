//! A global allocator that keeps malformed requests from aborting the process.
//!
//! `kafka-protocol` 0.18 sizes vectors from counts read off the wire
//! (`Vec::with_capacity(n)`), so a 4-byte body can ask for 150 GB. The system allocator
//! refuses a mapping that large and Rust aborts the whole broker — `catch_unwind` cannot
//! stop an allocation failure. This allocator serves very large requests with an
//! `mmap(MAP_NORESERVE)` reservation instead: it costs address space only, the decoder
//! fails on the first element the (bounded) frame cannot supply, and the vector is freed.
//! Memory actually touched stays bounded by the frame size. See
//! docs/notes/kafka-protocol-decoding.md.
//!
//! Install it in every binary that decodes requests:
//! `#[global_allocator] static ALLOC: sluice_net::alloc::ReservingAllocator = ReservingAllocator;`

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at least this large are reserved with `mmap(MAP_NORESERVE)`.
pub const RESERVE_THRESHOLD_BYTES: usize = 1 << 30;
/// mmap returns page-aligned memory; larger alignments go to the system allocator.
const PAGE_BYTES: usize = 4096;

/// Forwards to [`System`], except that allocations of ≥ 1 GiB are lazy reservations.
pub struct ReservingAllocator;

fn reserves(layout: Layout) -> bool {
    layout.size() >= RESERVE_THRESHOLD_BYTES && layout.align() <= PAGE_BYTES
}

unsafe impl GlobalAlloc for ReservingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserves(layout) {
            // SAFETY: same contract as ours.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: an anonymous private mapping touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            ptr.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if reserves(layout) {
            // SAFETY: fresh anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: same contract as ours.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if reserves(layout) {
            // SAFETY: `ptr` came from our mmap of exactly `layout.size()` bytes.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: `ptr` came from System with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for `new_size`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !reserves(layout) && !reserves(new_layout) {
            // SAFETY: same contract as ours.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: as for alloc/dealloc above; copy the smaller of the two sizes.
        unsafe {
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

/// glibc's malloc serves a block at or above its mmap threshold with a fresh mapping and
/// unmaps it on free. Its adaptive threshold only rises to the size of the last freed
/// block, so the broker's 1 MiB O_DIRECT write chunks (1 MiB + alignment) kept being
/// mapped, faulted in page by page and unmapped: 112 000 page faults per GB ingested.
/// Fixed thresholds keep such blocks in the arena for reuse (8 000 faults per GB), at the
/// cost of up to [`HEAP_TRIM_THRESHOLD_BYTES`] of freed memory kept per arena.
pub fn keep_large_blocks_in_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; called before the shards start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD_BYTES);
    }
}

/// Blocks below this come from the heap (glibc's maximum for the setting is 32 MiB).
pub const HEAP_MMAP_THRESHOLD_BYTES: i32 = 32 << 20;
/// Free memory at an arena's top beyond this is returned to the kernel.
pub const HEAP_TRIM_THRESHOLD_BYTES: i32 = 64 << 20;
