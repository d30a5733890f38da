//! A bump allocator for rules. Each rule execution runs in a fresh instance that is thrown
//! away afterwards, so memory never needs to be given back: allocation is a pointer bump, and
//! the heap starts right after the module's data (`__heap_base`), in pages the host keeps
//! mapped between instances. Freeing or growing the newest allocation happens in place, which
//! covers the common `Vec`/`String` growth while serializing.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

const PAGE: usize = 65536;

/// The allocator. Single-threaded: wasm32 rules have no threads.
pub struct Bump {
    next: UnsafeCell<usize>,
    end: UnsafeCell<usize>,
}

// SAFETY: wasm32-unknown-unknown rules are single-threaded.
unsafe impl Sync for Bump {}

impl Bump {
    /// An allocator that starts at `__heap_base` on first use.
    pub const fn new() -> Self {
        Bump {
            next: UnsafeCell::new(0),
            end: UnsafeCell::new(0),
        }
    }
}

impl Default for Bump {
    fn default() -> Self {
        Self::new()
    }
}

unsafe extern "C" {
    static __heap_base: u8;
}

impl Bump {
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            let next = &mut *self.next.get();
            let end = &mut *self.end.get();
            if *end == 0 {
                *next = &__heap_base as *const u8 as usize;
                *end = core::arch::wasm32::memory_size(0) * PAGE;
            }
            let start = (*next + layout.align() - 1) & !(layout.align() - 1);
            let Some(new_next) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if new_next > *end {
                let pages = (new_next - *end).div_ceil(PAGE);
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
                *end += pages * PAGE;
            }
            *next = new_next;
            start as *mut u8
        }
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; the cells are only touched here and in dealloc/realloc.
        unsafe {
            // The common case in as few instructions as possible (a rule allocates some
            // sixty times per run): `next` and `end` start at zero, so the first call, like
            // any that needs more memory or would overflow, takes the slow path.
            let next = *self.next.get();
            let start = (next + layout.align() - 1) & !(layout.align() - 1);
            let new_next = start.wrapping_add(layout.size());
            if new_next <= *self.end.get() && new_next >= start {
                *self.next.get() = new_next;
                return start as *mut u8;
            }
            self.alloc_slow(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe {
            let next = &mut *self.next.get();
            if ptr as usize + layout.size() == *next {
                *next = ptr as usize;
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above; `ptr` came from this allocator with `layout`.
        unsafe {
            let next = &mut *self.next.get();
            let end = &mut *self.end.get();
            if ptr as usize + layout.size() == *next {
                let new_next = ptr as usize + new_size;
                if new_next <= *end {
                    *next = new_next;
                    return ptr;
                }
                let pages = (new_next - *end).div_ceil(PAGE);
                if core::arch::wasm32::memory_grow(0, pages) != usize::MAX {
                    *end += pages * PAGE;
                    *next = new_next;
                    return ptr;
                }
                return core::ptr::null_mut();
            }
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }
}
