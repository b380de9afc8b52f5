//! The process allocator. The image is a static musl binary, and musl's allocator (one global
//! lock, no thread caches) took a third of a reconcile's CPU; mimalloc halves a resync's CPU.
//! Its defaults keep freed memory for a second and commit whole arenas, which raised the peak
//! RSS after a restart with 300 instances from 116 to 164 MiB; [`tune`] trades a little of the
//! gain back for the musl allocator's footprint (measurements in docs/development.md).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (`mi_option_t` in mimalloc.h; stable: retired options keep their
/// place). The Rust bindings do not name these two.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed memory to the system after 100 ms (default 1 s) and commits arena memory as
/// it is used. A `MIMALLOC_*` variable in the environment still wins.
pub fn tune() {
    for (option, env, value) in [
        (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 100),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: sets a plain integer option; mimalloc reads options atomically.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(option: libmimalloc_sys::mi_option_t) -> std::ffi::c_long {
        // SAFETY: reads a plain integer option.
        unsafe { libmimalloc_sys::mi_option_get(option) }
    }

    /// The numbers name the options meant: mimalloc reads `MIMALLOC_<NAME>` into them (checked
    /// in a child process, whose environment is set before mimalloc starts).
    #[test]
    fn the_option_numbers_are_mimallocs_purge_delay_and_arena_eager_commit() {
        if std::env::var_os("WANDB_ALLOCATOR_PROBE").is_some() {
            assert_eq!(get(PURGE_DELAY), 123);
            assert_eq!(get(ARENA_EAGER_COMMIT), 7);
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "allocator::tests::the_option_numbers_are_mimallocs_purge_delay_and_arena_eager_commit"])
            .env("WANDB_ALLOCATOR_PROBE", "1")
            .env("MIMALLOC_PURGE_DELAY", "123")
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "7")
            .status()
            .unwrap();
        assert!(status.success(), "the child saw other values: {status}");
    }

    #[test]
    fn tune_sets_what_the_environment_does_not() {
        tune();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(PURGE_DELAY), 100);
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            assert_eq!(get(ARENA_EAGER_COMMIT), 0);
        }
    }
}
