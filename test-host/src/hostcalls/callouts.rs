//! HTTP and gRPC callouts.
//!
//! Calls belong to the VM, with Envoy's token scheme (HTTP 4, 8, ...; gRPC calls 5, 9, ...; gRPC
//! streams 6, 10, ...). They wait until the test answers, fails or times them out, and the
//! reply goes to the root context, as in Envoy. An HTTP call needs `:method`, `:path` and
//! `:authority` (or `host`); a negative timeout or an unknown cluster is `BadArgument`. Pending
//! callouts and their bytes are capped (`Limits`); past a cap the call is `InternalFailure`.

use super::{hostcall, status, Status};
use crate::callouts::{GrpcCall, HttpCall};
use crate::host::lock;
use crate::limits::Cap;
use crate::memory;
use crate::state::{HeaderMap, HostState, MapKind};
use sdk_ext::wire::decode_pairs;
use std::time::Duration;
use wasmtime::{Caller, Linker};

/// The low two bits of a callout token say what it is.
const TOKEN_TYPE_MASK: u32 = 3;
const GRPC_CALL: u32 = 1;
const GRPC_STREAM: u32 = 2;

fn pairs(bytes: &[u8], kind: MapKind) -> HeaderMap {
    HeaderMap::with_kind(kind, &decode_pairs(bytes).unwrap_or_default())
}

fn cluster_known(state: &HostState, cluster: &[u8]) -> bool {
    match &*lock(&state.shared.clusters) {
        None => true,
        // A serialized GrpcService holds its cluster name verbatim.
        Some(known) => known.iter().any(|name| {
            cluster == name.as_bytes()
                || cluster
                    .windows(name.len())
                    .any(|window| window == name.as_bytes())
        }),
    }
}

/// What `proxy_grpc_call` and `proxy_grpc_stream` share: the service, names and initial metadata
/// (each a guest `(ptr, len)`), read into a unary call of the current context with no token,
/// messages or timeout yet. An unknown cluster is `ParseFailure`, as in Envoy.
fn open_grpc(
    caller: &mut Caller<'_, HostState>,
    service: (u32, u32),
    service_name: (u32, u32),
    method: (u32, u32),
    metadata: (u32, u32),
) -> Result<GrpcCall, Status> {
    let service = memory::read(caller, service.0, service.1)?;
    let service_name = memory::read_string(caller, service_name.0, service_name.1)?;
    let method = memory::read_string(caller, method.0, method.1)?;
    let metadata = memory::read(caller, metadata.0, metadata.1)?;
    let state = caller.data();
    if !cluster_known(state, &service) {
        return Err(Status::ParseFailure);
    }
    Ok(GrpcCall {
        token: 0,
        context_id: state.context(),
        service,
        service_name,
        method,
        initial_metadata: pairs(&metadata, MapKind::Plain),
        messages: Vec::new(),
        is_stream: false,
        local_closed: true,
        timeout: None,
        started: state.shared.monotonic(),
    })
}

/// Bytes the pending callouts of this VM hold: headers, bodies, trailers, messages.
fn pending_bytes(state: &HostState) -> usize {
    let http: usize = state
        .http_calls
        .values()
        .map(|call| call.headers.byte_size() + call.body.len() + call.trailers.byte_size())
        .sum();
    let grpc: usize = state
        .grpc_calls
        .values()
        .map(|call| {
            call.service.len()
                + call.initial_metadata.byte_size()
                + call.messages.iter().map(Vec::len).sum::<usize>()
        })
        .sum();
    http + grpc
}

/// Whether a new callout (`calls` is 1) or message (`calls` is 0) of `bytes` stays within the
/// caps; else the status the hostcall returns.
fn within_caps(state: &mut HostState, calls: usize, bytes: usize) -> Result<(), Status> {
    let limits = state.limits();
    let pending = state.http_calls.len() + state.grpc_calls.len();
    if pending + calls > limits.pending_callouts {
        return Err(state.cap_hit(Cap::PendingCallouts));
    }
    if pending_bytes(state) + bytes > limits.callout_bytes {
        return Err(state.cap_hit(Cap::CalloutBytes));
    }
    Ok(())
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut caller: Caller<'_, HostState>,
         cluster_ptr: u32,
         cluster_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         body_ptr: u32,
         body_len: u32,
         trailers_ptr: u32,
         trailers_len: u32,
         timeout_ms: u32,
         token_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_http_call", |caller| {
                Ok(status((|| {
                    let cluster = memory::read(caller, cluster_ptr, cluster_len)?;
                    let headers = memory::read(caller, headers_ptr, headers_len)?;
                    let body = memory::read(caller, body_ptr, body_len)?;
                    let trailers = memory::read(caller, trailers_ptr, trailers_len)?;
                    memory::write_u32(caller, token_ptr, 0)?;
                    if (timeout_ms as i32) < 0 {
                        return Err(Status::BadArgument);
                    }
                    let state = caller.data_mut();
                    if !cluster_known(state, &cluster) {
                        return Err(Status::BadArgument);
                    }
                    let mut headers = pairs(&headers, MapKind::RequestHeaders);
                    if [":path", ":method", ":authority"]
                        .iter()
                        .any(|name| headers.get(name).is_none())
                    {
                        return Err(Status::BadArgument);
                    }
                    if !body.is_empty() {
                        headers.replace(b"content-length", body.len().to_string().as_bytes());
                    }
                    let trailers = pairs(&trailers, MapKind::Plain);
                    let bytes = headers.byte_size() + body.len() + trailers.byte_size();
                    within_caps(state, 1, bytes)?;
                    state.next_http_token += 4;
                    let token = state.next_http_token;
                    let call = HttpCall {
                        token,
                        context_id: state.context(),
                        cluster: String::from_utf8_lossy(&cluster).into_owned(),
                        headers,
                        body,
                        trailers,
                        timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64)),
                        started: state.shared.monotonic(),
                    };
                    state.http_calls.insert(token, call);
                    memory::write_u32(caller, token_ptr, token)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut caller: Caller<'_, HostState>,
         service_ptr: u32,
         service_len: u32,
         service_name_ptr: u32,
         service_name_len: u32,
         method_ptr: u32,
         method_len: u32,
         metadata_ptr: u32,
         metadata_len: u32,
         message_ptr: u32,
         message_len: u32,
         timeout_ms: u32,
         token_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_grpc_call", |caller| {
                Ok(status((|| {
                    let message = memory::read(caller, message_ptr, message_len)?;
                    let opened = open_grpc(
                        caller,
                        (service_ptr, service_len),
                        (service_name_ptr, service_name_len),
                        (method_ptr, method_len),
                        (metadata_ptr, metadata_len),
                    )?;
                    let state = caller.data_mut();
                    let bytes = opened.service.len() + opened.initial_metadata.byte_size();
                    within_caps(state, 1, bytes + message.len())?;
                    state.next_grpc_call_token += 4;
                    let token = state.next_grpc_call_token + GRPC_CALL;
                    let call = GrpcCall {
                        token,
                        messages: vec![message],
                        timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64)),
                        ..opened
                    };
                    state.grpc_calls.insert(token, call);
                    memory::write_u32(caller, token_ptr, token)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut caller: Caller<'_, HostState>,
         service_ptr: u32,
         service_len: u32,
         service_name_ptr: u32,
         service_name_len: u32,
         method_ptr: u32,
         method_len: u32,
         metadata_ptr: u32,
         metadata_len: u32,
         token_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_grpc_stream", |caller| {
                Ok(status((|| {
                    let opened = open_grpc(
                        caller,
                        (service_ptr, service_len),
                        (service_name_ptr, service_name_len),
                        (method_ptr, method_len),
                        (metadata_ptr, metadata_len),
                    )?;
                    let state = caller.data_mut();
                    let bytes = opened.service.len() + opened.initial_metadata.byte_size();
                    within_caps(state, 1, bytes)?;
                    state.next_grpc_stream_token += 4;
                    let token = state.next_grpc_stream_token + GRPC_STREAM;
                    let stream = GrpcCall {
                        token,
                        is_stream: true,
                        local_closed: false,
                        ..opened
                    };
                    state.grpc_calls.insert(token, stream);
                    memory::write_u32(caller, token_ptr, token)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut caller: Caller<'_, HostState>,
         token: u32,
         message_ptr: u32,
         message_len: u32,
         end_stream: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_grpc_send", |caller| {
                Ok(status((|| {
                    let message = memory::read(caller, message_ptr, message_len)?;
                    if token & TOKEN_TYPE_MASK != GRPC_STREAM {
                        return Err(Status::BadArgument);
                    }
                    let state = caller.data_mut();
                    if state.grpc_calls.contains_key(&token) {
                        within_caps(state, 0, message.len())?;
                    }
                    let call = caller
                        .data_mut()
                        .grpc_calls
                        .get_mut(&token)
                        .ok_or(Status::NotFound)?;
                    call.messages.push(message);
                    call.local_closed |= end_stream != 0;
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |mut caller: Caller<'_, HostState>, token: u32| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_grpc_cancel", |caller| {
                Ok(match caller.data_mut().grpc_calls.remove(&token) {
                    Some(_) => Status::Ok as u32,
                    None => Status::NotFound as u32,
                })
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |mut caller: Caller<'_, HostState>, token: u32| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_grpc_close", |caller| {
                let kind = token & TOKEN_TYPE_MASK;
                if kind != GRPC_CALL && kind != GRPC_STREAM {
                    return Ok(Status::BadArgument as u32);
                }
                let calls = &mut caller.data_mut().grpc_calls;
                Ok(match calls.get_mut(&token) {
                    None => Status::NotFound as u32,
                    Some(call) if call.is_stream => {
                        call.local_closed = true;
                        Status::Ok as u32
                    }
                    Some(_) => {
                        calls.remove(&token);
                        Status::Ok as u32
                    }
                })
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut caller: Caller<'_, HostState>,
         code_ptr: u32,
         message_ptr_ptr: u32,
         message_size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_status", |caller| {
                let status = caller.data().call_status.clone();
                if let Err(failure) = memory::write_u32(caller, code_ptr, status.code) {
                    return Ok(failure as u32);
                }
                Ok(
                    memory::return_bytes(
                        caller,
                        &status.message,
                        message_ptr_ptr,
                        message_size_ptr,
                    )? as u32,
                )
            })
        },
    )?;
    Ok(())
}
