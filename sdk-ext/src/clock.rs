//! The host clock (`proxy_get_current_time_nanoseconds`): wall time as Envoy sees it.

use crate::abi;
use crate::host::{check, Status};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, from the host.
pub fn now_nanos() -> Result<u64, Status> {
    let mut nanos: u64 = 0;
    check(unsafe { abi::proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Seconds since the Unix epoch, from the host.
pub fn now_seconds() -> Result<u64, Status> {
    now_nanos().map(|nanos| nanos / 1_000_000_000)
}

/// The host's wall time.
pub fn now() -> Result<SystemTime, Status> {
    now_nanos().map(|nanos| UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Asks for `proxy_on_tick` every `period` (`proxy_set_tick_period_milliseconds`); zero stops it.
pub fn set_tick_period(period: Duration) -> Result<(), Status> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    check(unsafe { abi::proxy_set_tick_period_milliseconds(millis) })
}
