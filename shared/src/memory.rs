//! How the services' allocator gives memory back. The services run on mimalloc (declared in
//! each `main.rs`: a library must not choose the allocator of every binary that links it);
//! this module only tunes it and must not allocate on its behalf.
//!
//! Two settings, both measured on this project's machine (inventory and analytics at 10k
//! orders/s, `scripts/bench-memory.sh`):
//! - mimalloc keeps freed pages for 10 ms before returning them to the OS, so a burst of
//!   records freed within a few milliseconds kept its pages resident: purging at once costs a
//!   few madvise calls and kept peak RSS near what is live (inventory 48 → 29 MiB, the
//!   producer's burst 113 → 58 MiB).
//! - mimalloc asks for transparent huge pages on its arenas. Where THP is `madvise` (Debian's
//!   default) every touched 2 MiB region becomes resident whole and a 64 KiB purge inside it
//!   returns nothing: heaptrack put the live heap at 10 MiB (inventory) and 9 MiB (analytics)
//!   while their RSS peaked at 34 and 69 MiB, 10 and 18 MiB of it `AnonHugePages`. Without
//!   THP: 15.5 and 19.5 MiB. A service's heap is far too small to gain from huge pages.

/// mimalloc v3's `mi_option_purge_delay` (`libmimalloc-sys` names no constant).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// mimalloc v3's `mi_option_allow_thp` (v2 numbers it 37; `libmimalloc-sys` 0.1 builds v3).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Makes mimalloc return freed memory to the OS at once, in small pages. Call first thing in
/// `main`.
pub fn release_freed_memory_promptly() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; it is called
    // before any other thread exists, as mimalloc asks of option changes.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
}
