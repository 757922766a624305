//! `proxy_send_local_response`.

use super::{status, Status};
use crate::memory;
use crate::state::{HeaderMap, HostState, LocalResponse};
use sdk_ext::wire::decode_pairs;
use wasmtime::{Caller, Linker};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
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
         -> u32 {
            status((|| {
                let details = memory::read(&mut caller, details_ptr, details_len)?;
                let body = memory::read(&mut caller, body_ptr, body_len)?;
                let headers = memory::read(&mut caller, headers_ptr, headers_len)?;
                let headers = decode_pairs(&headers).ok_or(Status::SerializationFailure)?;
                let stream = caller
                    .data_mut()
                    .active_stream()
                    .ok_or(Status::BadArgument)?;
                stream.local_response = Some(LocalResponse {
                    status: status_code,
                    details: String::from_utf8_lossy(&details).into_owned(),
                    body,
                    headers: HeaderMap::from_pairs(&headers),
                    grpc_status,
                });
                Ok(())
            })())
        },
    )?;
    Ok(())
}
