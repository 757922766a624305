//! Resuming a paused stream from another callback (`proxy_set_effective_context` then
//! `proxy_continue_stream`), e.g. after a callout answered.

use crate::abi;
use crate::host::{check, Status};

/// Resumes the request of stream `context_id`. It takes effect when the running callback returns.
pub fn resume_request(context_id: u32) -> Result<(), Status> {
    check(unsafe { abi::proxy_set_effective_context(context_id) })?;
    check(unsafe { abi::proxy_continue_stream(0) })
}

/// Resumes the response of stream `context_id`.
pub fn resume_response(context_id: u32) -> Result<(), Status> {
    check(unsafe { abi::proxy_set_effective_context(context_id) })?;
    check(unsafe { abi::proxy_continue_stream(1) })
}

/// Makes later hostcalls of this callback act for context `context_id` (a stream paused
/// earlier), as `proxy_set_effective_context`. Fails with `BadArgument` once it has ended.
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    check(unsafe { abi::proxy_set_effective_context(context_id) })
}
