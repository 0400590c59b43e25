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
//!   THP: 15.6 and 19.5 MiB. A service's heap is far too small to gain from huge pages.
//!   mimalloc reads `allow_thp` while it initialises, before `main`, so the option alone came
//!   too late for its first arena; the process also opts out of THP (`PR_SET_THP_DISABLE`),
//!   which the kernel checks at every fault, so it holds for memory already reserved.

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
    disable_transparent_huge_pages();
}

#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    /// `PR_SET_THP_DISABLE` from `<linux/prctl.h>`.
    const PR_SET_THP_DISABLE: std::ffi::c_int = 41;
    unsafe extern "C" {
        fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
    }
    // SAFETY: prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) only sets a flag on this process's memory
    // map; a failure (a kernel without it) leaves THP as it was, which costs memory, not
    // correctness, so its result is not acted on.
    let _ = unsafe {
        prctl(
            PR_SET_THP_DISABLE,
            1 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_opts_out_of_transparent_huge_pages() {
        /// `PR_GET_THP_DISABLE` from `<linux/prctl.h>`.
        const PR_GET_THP_DISABLE: std::ffi::c_int = 42;
        unsafe extern "C" {
            fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
        }
        super::release_freed_memory_promptly();
        let zero = 0 as std::ffi::c_ulong;
        // SAFETY: PR_GET_THP_DISABLE only reads the flag.
        let disabled = unsafe { prctl(PR_GET_THP_DISABLE, zero, zero, zero, zero) };
        assert_eq!(disabled, 1);
    }
}
