//! The runtime's memory allocator: two dlmalloc heaps, one before the snapshot and one after.
//!
//! Every page an instance writes beyond what the host keeps resident costs it a copy-on-write
//! page fault, and the host keeps resident only the pages of a few dozen contiguous regions
//! (wasmtime's `PAGEMAP_SCAN` reset). Building the runtime (QuickJS, the prelude, the bundled
//! modules) leaves free blocks spread over megabytes; an execution allocating into them
//! writes to pages all over the snapshot. So once the runtime is built ([`seal`]), every
//! allocation — QuickJS's (through rquickjs's `rust-alloc`) and Rust's — comes from a second
//! heap that grows from the top of memory, where an execution's writes stay together. Blocks
//! from the first heap are freed into it and moved out of it when they grow.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

use dlmalloc::Dlmalloc;

/// Where the heap after the snapshot takes memory from: a region reserved at the start of
/// initialization, just above the data (so an execution's writes sit next to its stack and the
/// host's scan meets them first), then fresh pages at the top.
struct Region {
    next: UnsafeCell<usize>,
    end: UnsafeCell<usize>,
}

// SAFETY: one thread.
unsafe impl Send for Region {}

const WASM_PAGE: usize = 65536;

unsafe impl dlmalloc::Allocator for Region {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: one thread; the allocator is not re-entered.
        unsafe {
            let (next, end) = (*self.next.get(), *self.end.get());
            if next != 0 && size <= end - next {
                *self.next.get() = next + size;
                return (next as *mut u8, size, 0);
            }
        }
        let pages = size.div_ceil(WASM_PAGE);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return (core::ptr::null_mut(), 0, 0);
        }
        ((previous * WASM_PAGE) as *mut u8, pages * WASM_PAGE, 0)
    }

    fn remap(&self, _: *mut u8, _: usize, _: usize, _: bool) -> *mut u8 {
        core::ptr::null_mut()
    }

    fn free_part(&self, _: *mut u8, _: usize, _: usize) -> bool {
        false
    }

    fn free(&self, _: *mut u8, _: usize) -> bool {
        false
    }

    fn can_release_part(&self, _: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        false
    }

    fn page_size(&self) -> usize {
        WASM_PAGE
    }
}

struct Heaps {
    before: Dlmalloc,
    after: Dlmalloc<Region>,
    /// Addresses from here up belong to `after`; `usize::MAX` until sealed.
    boundary: usize,
    /// The reserved region (start, end), which `after` owns too.
    region: (usize, usize),
}

struct TwoHeaps(UnsafeCell<Heaps>);

// SAFETY: wasm32-unknown-unknown without threads: there is one thread.
unsafe impl Sync for TwoHeaps {}

#[global_allocator]
static HEAPS: TwoHeaps = TwoHeaps(UnsafeCell::new(Heaps {
    before: Dlmalloc::new(),
    after: Dlmalloc::new_with_allocator(Region {
        next: UnsafeCell::new(0),
        end: UnsafeCell::new(0),
    }),
    boundary: usize::MAX,
    region: (0, 0),
}));

impl TwoHeaps {
    #[allow(clippy::mut_from_ref)]
    unsafe fn heaps(&self) -> &mut Heaps {
        // SAFETY: one thread, and no allocator call re-enters another.
        unsafe { &mut *self.0.get() }
    }
}

impl Heaps {
    fn sealed(&self) -> bool {
        self.boundary != usize::MAX
    }

    /// Whether `ptr` came from the heap after the snapshot.
    fn is_after(&self, ptr: *mut u8) -> bool {
        let at = ptr as usize;
        self.sealed() && (at >= self.boundary || (at >= self.region.0 && at < self.region.1))
    }
}

unsafe impl GlobalAlloc for TwoHeaps {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let heaps = unsafe { self.heaps() };
        unsafe {
            if heaps.sealed() {
                heaps.after.malloc(layout.size(), layout.align())
            } else {
                heaps.before.malloc(layout.size(), layout.align())
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let heaps = unsafe { self.heaps() };
        unsafe {
            if heaps.sealed() {
                heaps.after.calloc(layout.size(), layout.align())
            } else {
                heaps.before.calloc(layout.size(), layout.align())
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let heaps = unsafe { self.heaps() };
        unsafe {
            if heaps.is_after(ptr) {
                heaps.after.free(ptr, layout.size(), layout.align())
            } else {
                heaps.before.free(ptr, layout.size(), layout.align())
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let heaps = unsafe { self.heaps() };
        if heaps.sealed() && !heaps.is_after(ptr) {
            // A block from before the snapshot grows into the new heap.
            let moved = unsafe { heaps.after.malloc(new_size, layout.align()) };
            if !moved.is_null() {
                unsafe {
                    core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    heaps.before.free(ptr, layout.size(), layout.align());
                }
            }
            return moved;
        }
        unsafe {
            if heaps.is_after(ptr) {
                heaps
                    .after
                    .realloc(ptr, layout.size(), layout.align(), new_size)
            } else {
                heaps
                    .before
                    .realloc(ptr, layout.size(), layout.align(), new_size)
            }
        }
    }
}

/// Reserves `bytes` just above what is allocated so far for the heap after the snapshot.
/// Call first thing, before anything else allocates.
pub fn reserve(bytes: usize) {
    let layout = Layout::from_size_align(bytes, WASM_PAGE).expect("a valid layout");
    // SAFETY: one thread; the block is never freed (the region owns it).
    unsafe {
        let heaps = HEAPS.heaps();
        let start = heaps.before.malloc(layout.size(), layout.align()) as usize;
        if start == 0 {
            return;
        }
        *heaps.after_region().next.get() = start;
        *heaps.after_region().end.get() = start + bytes;
        heaps.region = (start, start + bytes);
    }
}

impl Heaps {
    fn after_region(&mut self) -> &Region {
        self.after.allocator()
    }
}

/// From now on allocations come from the heap that starts at the top of memory.
pub fn seal() {
    let top = core::arch::wasm32::memory_size(0) * 65536;
    // SAFETY: one thread; no allocation is in progress.
    unsafe { HEAPS.heaps().boundary = top };
}
