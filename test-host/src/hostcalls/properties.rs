//! Properties: `proxy_get_property` and `proxy_set_property`.
//!
//! Paths are segments joined by NUL. Values a test or the module set win; otherwise the value is
//! computed as Envoy computes it: `request.*` from the request headers (only while the filter may
//! read them, or in `on_log`), `response.code`, `source`/`destination` address and port,
//! `plugin_name`/`plugin_root_id`/`plugin_vm_id`. Integers are 8-byte little-endian, booleans one
//! byte, header maps the header-pairs format with repeated values joined by `,`. A root context
//! has no stream, so stream properties are `NotFound` there.

use super::{hostcall, status, Status};
use crate::limits::Cap;
use crate::memory;
use crate::state::HostState;
use sdk_ext::wire::encode_pairs;
use wasmtime::{Caller, Linker};

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn port_of(address: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(address).ok()?;
    text.rsplit_once(':')?.1.parse().ok()
}

fn lookup(state: &mut HostState, path: &[u8]) -> Result<Vec<u8>, Status> {
    if path.is_empty() {
        return Err(Status::SerializationFailure);
    }
    let path = path.strip_suffix(b"\0").unwrap_or(path);
    if let Some(value) = state
        .active_stream()
        .and_then(|stream| stream.properties.get(path).cloned())
    {
        return Ok(value);
    }
    if let Some(value) = state.properties.get(path) {
        return Ok(value.clone());
    }
    let segments: Vec<&[u8]> = path.split(|&b| b == 0).collect();
    let text = |bytes: &str| Ok(bytes.as_bytes().to_vec());
    match segments.as_slice() {
        [b"plugin_name"] => return text(&state.plugin_name),
        [b"plugin_root_id"] => return text(&state.root_id),
        [b"plugin_vm_id"] => return text(&state.vm_id),
        _ => {}
    }
    let stream = state.active_stream().ok_or(Status::NotFound)?;
    let header = |name: &str| -> Result<Vec<u8>, Status> {
        let headers = stream.readable_request_headers().ok_or(Status::NotFound)?;
        headers
            .get(name)
            .map(<[u8]>::to_vec)
            .ok_or(Status::NotFound)
    };
    match segments.as_slice() {
        [b"request", b"path"] => header(":path"),
        [b"request", b"url_path"] => header(":path").map(|path| {
            path.split(|&b| b == b'?')
                .next()
                .unwrap_or_default()
                .to_vec()
        }),
        [b"request", b"query"] => {
            header(":path").map(|path| match path.iter().position(|&b| b == b'?') {
                Some(at) => path[at + 1..].to_vec(),
                None => Vec::new(),
            })
        }
        [b"request", b"host"] => header(":authority"),
        [b"request", b"scheme"] => header(":scheme"),
        [b"request", b"method"] => header(":method"),
        [b"request", b"referer"] => header("referer"),
        [b"request", b"useragent"] => header("user-agent"),
        [b"request", b"id"] => header("x-request-id"),
        [b"request", b"headers"] => {
            let headers = stream.readable_request_headers().ok_or(Status::NotFound)?;
            Ok(encode_pairs(&headers.joined()))
        }
        [b"request", b"headers", name] => {
            let headers = stream.readable_request_headers().ok_or(Status::NotFound)?;
            let wanted = name.to_ascii_lowercase();
            headers
                .joined()
                .into_iter()
                .find(|(key, _)| *key == wanted)
                .map(|(_, value)| value)
                .ok_or(Status::NotFound)
        }
        [b"request", b"time"] => Ok(int(stream.started_nanos as i64)),
        [b"response", b"code"] => {
            let status = stream.response_status().ok_or(Status::NotFound)?;
            Ok(int(status))
        }
        [b"response", b"code_details"] => stream
            .response_code_details
            .clone()
            .map(String::into_bytes)
            .ok_or(Status::NotFound),
        [b"response", b"headers"] => {
            let headers = stream.readable_response_headers().ok_or(Status::NotFound)?;
            Ok(encode_pairs(&headers.joined()))
        }
        [b"source" | b"destination", b"port"] => {
            let mut address_path = segments[0].to_vec();
            address_path.extend_from_slice(b"\0address");
            let address = stream
                .properties
                .get(&address_path)
                .ok_or(Status::NotFound)?;
            port_of(address).map(int).ok_or(Status::NotFound)
        }
        [b"connection", b"id"] => Ok(int(stream.connection_id as i64)),
        [b"connection", b"mtls"] => Ok(vec![0]),
        _ => Err(Status::NotFound),
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_len: u32,
         value_ptr_ptr: u32,
         value_size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_property", |caller| {
                let value = memory::read(caller, path_ptr, path_len)
                    .and_then(|path| lookup(caller.data_mut(), &path));
                memory::return_result(caller, value, value_ptr_ptr, value_size_ptr)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_len: u32,
         value_ptr: u32,
         value_len: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_set_property", |caller| {
                Ok(status((|| {
                    let path = memory::read(caller, path_ptr, path_len)?;
                    let value = memory::read(caller, value_ptr, value_len)?;
                    // Envoy keeps these in the stream's filter state; a root context has none.
                    let cap = caller.data().limits().stream_data_bytes;
                    let stream = caller.data_mut().active_stream().ok_or(Status::NotFound)?;
                    let others: usize = stream
                        .properties
                        .iter()
                        .filter(|(key, _)| **key != path)
                        .map(|(key, value)| key.len() + value.len())
                        .sum();
                    if others + path.len() + value.len() > cap {
                        return Err(caller.data_mut().cap_hit(Cap::StreamDataBytes));
                    }
                    stream.properties.insert(path, value);
                    Ok(())
                })()))
            })
        },
    )?;
    Ok(())
}
