//! Stack for guest calls. wasmtime lets wasm use `MAX_WASM_STACK` below the point where the host
//! enters it, whatever the calling thread has left; hostcalls then run below the wasm frames on
//! the same stack. On a thread with less room than that, a deep recursion runs into the thread's
//! guard page instead of wasmtime's limit, and the process dies with SIGSEGV. So a call from a
//! thread without enough room runs on a helper thread whose stack test-host sizes, and a deep
//! recursion is a clean stack-overflow trap wherever the test calls from.

use std::cell::Cell;

/// Most stack wasm code may use (wasmtime's `max_wasm_stack`), the same as wasmtime's default.
pub(crate) const MAX_WASM_STACK: usize = 1 << 20;

/// Room a guest call needs on its thread: the wasm stack, plus the hostcalls below it and
/// test-host's frames above it. Measured in a debug build: recursion to the limit needs a thread
/// of 1,048 KiB, and 1,080 KiB with a WASI write at the deepest frame (when WASI writes still ran
/// an async executor; they are plain calls now); the 512 KiB margin is ten times what the host
/// used.
const NEEDED: usize = MAX_WASM_STACK + (512 << 10);

/// The helper thread's stack.
const HELPER_STACK: usize = NEEDED + (1 << 20);

/// Runs `call` on this thread if it has the room a guest call needs, else on a helper thread with
/// a stack big enough. `Err` when the helper thread cannot be started.
pub(crate) fn with_room<T: Send>(call: impl FnOnce() -> T + Send) -> Result<T, String> {
    if has_room() {
        return Ok(call());
    }
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("test-host-call".into())
            .stack_size(HELPER_STACK)
            .spawn_scoped(scope, call)
            .map_err(|e| {
                format!("cannot start a thread with a {HELPER_STACK}-byte stack for the call: {e}")
            })?;
        match helper.join() {
            Ok(result) => Ok(result),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Whether the calling thread has `NEEDED` bytes of stack left (assumed where the stack's bounds
/// cannot be read).
fn has_room() -> bool {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    match stack_low() {
        Some(low) => here.saturating_sub(low) >= NEEDED,
        None => true,
    }
}

thread_local! {
    /// The lowest address of this thread's stack, read once per thread.
    static STACK_LOW: Cell<Option<Option<usize>>> = const { Cell::new(None) };
}

fn stack_low() -> Option<usize> {
    STACK_LOW.with(|low| {
        if let Some(known) = low.get() {
            return known;
        }
        let read = read_stack_low();
        low.set(Some(read));
        read
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_stack_low() -> Option<usize> {
    use std::ffi::c_void;

    /// glibc's `pthread_attr_t`: 56 bytes on x86_64, 64 on aarch64; this is larger than both.
    #[repr(C, align(16))]
    struct Attr([u8; 128]);

    extern "C" {
        fn pthread_self() -> usize;
        fn pthread_getattr_np(thread: usize, attr: *mut Attr) -> i32;
        fn pthread_attr_getstack(
            attr: *const Attr,
            address: *mut *mut c_void,
            size: *mut usize,
        ) -> i32;
        fn pthread_attr_destroy(attr: *mut Attr) -> i32;
    }

    let mut attr = Attr([0; 128]);
    let mut address: *mut c_void = std::ptr::null_mut();
    let mut size = 0usize;
    // SAFETY: glibc fills `attr` (large enough and aligned) for the calling thread, reads the
    // stack bounds from it, and frees what it allocated in it; nothing is kept.
    unsafe {
        if pthread_getattr_np(pthread_self(), &mut attr) != 0 {
            return None;
        }
        let read = pthread_attr_getstack(&attr, &mut address, &mut size);
        pthread_attr_destroy(&mut attr);
        (read == 0 && !address.is_null()).then_some(address as usize)
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_stack_low() -> Option<usize> {
    None
}
