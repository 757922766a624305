//! Stream control: `proxy_continue_stream`, `proxy_close_stream`, `proxy_send_local_response`,
//! `proxy_set_effective_context`, `proxy_done`.
//!
//! As in Envoy, continue, close and local replies take effect after the running callback
//! returns; a local reply forces the callback's result to "stop".

use super::{hostcall, status, Status};
use crate::limits::Cap;
use crate::memory;
use crate::state::{Deferred, HeaderMap, HostState, LocalResponse, MapKind};
use sdk_ext::wire::decode_pairs;
use wasmtime::{Caller, Linker};

const MAX_STREAM_TYPE: u32 = 3;
const UPSTREAM: u32 = 3;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut caller: Caller<'_, HostState>, stream_type: u32| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_continue_stream", |caller| {
                Ok(match stream_type {
                    t if t > MAX_STREAM_TYPE => Status::BadArgument as u32,
                    UPSTREAM => Status::Unimplemented as u32,
                    _ => {
                        let state = caller.data_mut();
                        if state.deferred.len() >= state.limits().pending_stream_actions {
                            return Ok(state.cap_hit(Cap::PendingStreamActions) as u32);
                        }
                        let context_id = state.context();
                        state.deferred.push(Deferred::Continue {
                            context_id,
                            stream_type,
                        });
                        Status::Ok as u32
                    }
                })
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut caller: Caller<'_, HostState>, stream_type: u32| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_close_stream", |caller| {
                if stream_type > MAX_STREAM_TYPE {
                    return Ok(Status::BadArgument as u32);
                }
                let state = caller.data_mut();
                if state.deferred.len() >= state.limits().pending_stream_actions {
                    return Ok(state.cap_hit(Cap::PendingStreamActions) as u32);
                }
                let context_id = state.context();
                state.deferred.push(Deferred::Close {
                    context_id,
                    stream_type,
                });
                Ok(Status::Ok as u32)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, HostState>,
         status_code: u32,
         details_ptr: u32,
         details_len: u32,
         body_ptr: u32,
         body_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         grpc_status: i32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_send_local_response", |caller| {
                Ok(status((|| {
                    let details = memory::read_string(caller, details_ptr, details_len)?;
                    let body = memory::read(caller, body_ptr, body_len)?;
                    let headers = memory::read(caller, headers_ptr, headers_len)?;
                    // Envoy reads malformed pairs as no headers.
                    let headers = decode_pairs(&headers).unwrap_or_default();
                    let state = caller.data_mut();
                    let context_id = state.context();
                    // Only the stream's own callback is forced to stop; a reply sent for a paused
                    // stream from another context (a tick, a callout answer) has no running
                    // callback of that stream to stop.
                    let in_stream_callback = state.current_context == context_id;
                    let Some(stream) = state.streams.get_mut(&context_id) else {
                        // A root context has no stream to answer: Envoy returns Ok and does nothing.
                        return Ok(());
                    };
                    if stream.local_reply_hold {
                        // Envoy answers Ok and keeps the first reply.
                        return Ok(());
                    }
                    stream.local_reply_hold = true;
                    stream.local_reply_in_callback = in_stream_callback;
                    let response = LocalResponse {
                        status: status_code,
                        details: details
                            .chars()
                            .map(|c| if c.is_whitespace() { '_' } else { c })
                            .collect(),
                        body,
                        headers: HeaderMap::with_kind(MapKind::ResponseHeaders, &headers),
                        grpc_status: u32::try_from(grpc_status).ok().filter(|code| *code <= 16),
                    };
                    state.deferred.push(Deferred::LocalResponse {
                        context_id,
                        response,
                    });
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Caller<'_, HostState>, context_id: u32| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_set_effective_context", |caller| {
                let state = caller.data_mut();
                Ok(if context_id == 0 {
                    state.effective_context = None;
                    Status::Ok as u32
                } else if context_id == state.root_context_id
                    || state.streams.contains_key(&context_id)
                {
                    state.effective_context = Some(context_id);
                    Status::Ok as u32
                } else {
                    Status::BadArgument as u32
                })
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_done",
        |mut caller: Caller<'_, HostState>| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_done", |caller| {
                let state = caller.data_mut();
                Ok(if state.shutdown_pending {
                    state.done_called = true;
                    Status::Ok as u32
                } else {
                    Status::NotFound as u32
                })
            })
        },
    )?;
    Ok(())
}
