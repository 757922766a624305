//! `proxy_get_current_time_nanoseconds` (the host's wall clock) and
//! `proxy_set_tick_period_milliseconds` (one timer per root context).

use super::{hostcall, status};
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_, HostState>, time_ptr: u32| -> wasmtime::Result<u32> {
            hostcall(
                &mut caller,
                "proxy_get_current_time_nanoseconds",
                |caller| {
                    let now = caller.data().shared.now_nanos();
                    Ok(status(memory::write_u64(caller, time_ptr, now)))
                },
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Caller<'_, HostState>, period: u32| -> wasmtime::Result<u32> {
            hostcall(
                &mut caller,
                "proxy_set_tick_period_milliseconds",
                |caller| {
                    let state = caller.data_mut();
                    state.tick_period_ms = period;
                    state.next_tick = (period > 0).then(|| {
                        state.shared.monotonic() + std::time::Duration::from_millis(period as u64)
                    });
                    Ok(0)
                },
            )
        },
    )?;
    linker.func_wrap("env", "pthread_equal", |a: u32, b: u32| -> u32 {
        (a == b) as u32
    })?;
    linker.func_wrap(
        "env",
        "emscripten_notify_memory_growth",
        |_memory_index: u32| {},
    )?;
    Ok(())
}
