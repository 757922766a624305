//! The host a filter runs on, as one trait: [`WasmHost`] sits on the proxy-wasm hostcalls, and
//! the fake host (feature `fake-host`) keeps everything in memory for native unit tests.
//!
//! Filters never see this trait: they act through the context object they are handed
//! ([`HttpCx`](crate::HttpCx), [`RootCx`](crate::RootCx)), which adds the chain's bookkeeping.

use crate::abi::{self, RawStatus};
pub use crate::types::{BufferType, MapType, MetricType, Status, StreamType};

/// Every hostcall sdk-ext uses, with failures as values. Header lists are in the proxy-wasm
/// header-map wire format ([`crate::wire`]).
#[allow(missing_docs)]
pub trait Host {
    fn log(&self, level: u32, message: &str);
    fn log_level(&self) -> Result<u32, Status>;
    fn now_nanos(&self) -> Result<u64, Status>;
    fn set_tick_period(&self, millis: u32) -> Result<(), Status>;
    fn header(&self, map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status>;
    fn header_pairs(&self, map: MapType) -> Result<Vec<u8>, Status>;
    fn replace_header(&self, map: MapType, name: &str, value: &[u8]) -> Result<(), Status>;
    fn add_header(&self, map: MapType, name: &str, value: &[u8]) -> Result<(), Status>;
    fn remove_header(&self, map: MapType, name: &str) -> Result<(), Status>;
    fn buffer(&self, buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, Status>;
    fn set_buffer(
        &self,
        buffer: BufferType,
        start: usize,
        size: usize,
        data: &[u8],
    ) -> Result<(), Status>;
    fn property(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Status>;
    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[u8],
    ) -> Result<(), Status>;
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[u8],
        body: &[u8],
        timeout_millis: u32,
    ) -> Result<u32, Status>;
    /// A unary gRPC call of `service`/`method` on `cluster`; `metadata` in the header-map wire
    /// format.
    fn grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        metadata: &[u8],
        message: &[u8],
        timeout_millis: u32,
    ) -> Result<u32, Status>;
    /// The status code and message of the callout whose answer is being delivered
    /// (`proxy_get_status`).
    fn call_status(&self) -> Result<(u32, Vec<u8>), Status>;
    fn continue_stream(&self, stream: StreamType) -> Result<(), Status>;
    fn set_effective_context(&self, context_id: u32) -> Result<(), Status>;
    fn shared_data(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status>;
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status>;
    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, Status>;
    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), Status>;
    fn record_metric(&self, id: u32, value: u64) -> Result<(), Status>;
    fn metric(&self, id: u32) -> Result<u64, Status>;
    fn register_shared_queue(&self, name: &str) -> Result<u32, Status>;
    fn resolve_shared_queue(&self, vm_id: &str, name: &str) -> Result<Option<u32>, Status>;
    fn enqueue_shared_queue(&self, queue_id: u32, value: &[u8]) -> Result<(), Status>;
    fn dequeue_shared_queue(&self, queue_id: u32) -> Result<Option<Vec<u8>>, Status>;
}

/// Maps a raw status to `Ok(())` or the matching [`Status`]; unknown codes become `InternalFailure`.
pub fn check(raw: RawStatus) -> Result<(), Status> {
    match raw {
        0 => Ok(()),
        1 => Err(Status::NotFound),
        2 => Err(Status::BadArgument),
        3 => Err(Status::SerializationFailure),
        4 => Err(Status::ParseFailure),
        7 => Err(Status::Empty),
        8 => Err(Status::CasMismatch),
        _ => Err(Status::InternalFailure),
    }
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate`.
///
/// # Safety
/// `data` must be null or a pointer returned by the module's allocator for exactly `size` bytes.
unsafe fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: `crate::export::allocate` hands out `Vec::with_capacity(size)` and forgets it.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Calls a hostcall that returns one buffer, and maps NotFound to `None`.
fn get_bytes(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> RawStatus,
) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    match check(call(&mut data, &mut size)) {
        // SAFETY: on Ok the host has written a buffer it allocated in this module, or null.
        Ok(()) => Ok(Some(unsafe { take_host_buffer(data, size) })),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}

/// The proxy-wasm host of a wasm module (Envoy, test-host). Off wasm every call fails with
/// `InternalFailure`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn log(&self, level: u32, message: &str) {
        let _ = unsafe { abi::proxy_log(level, message.as_ptr(), message.len()) };
    }

    fn log_level(&self) -> Result<u32, Status> {
        let mut level = 0;
        check(unsafe { abi::proxy_get_log_level(&mut level) })?;
        Ok(level)
    }

    fn now_nanos(&self) -> Result<u64, Status> {
        let mut nanos = 0;
        check(unsafe { abi::proxy_get_current_time_nanoseconds(&mut nanos) })?;
        Ok(nanos)
    }

    fn set_tick_period(&self, millis: u32) -> Result<(), Status> {
        check(unsafe { abi::proxy_set_tick_period_milliseconds(millis) })
    }

    fn header(&self, map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
        get_bytes(|data, size| unsafe {
            abi::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size)
        })
    }

    fn header_pairs(&self, map: MapType) -> Result<Vec<u8>, Status> {
        get_bytes(|data, size| unsafe { abi::proxy_get_header_map_pairs(map as u32, data, size) })
            .map(Option::unwrap_or_default)
    }

    fn replace_header(&self, map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn add_header(&self, map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_add_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn remove_header(&self, map: MapType, name: &str) -> Result<(), Status> {
        check(unsafe { abi::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
    }

    fn buffer(&self, buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
        get_bytes(|data, size| unsafe {
            abi::proxy_get_buffer_bytes(buffer as u32, start, max_size, data, size)
        })
        .map(Option::unwrap_or_default)
    }

    fn set_buffer(
        &self,
        buffer: BufferType,
        start: usize,
        size: usize,
        data: &[u8],
    ) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_set_buffer_bytes(buffer as u32, start, size, data.as_ptr(), data.len())
        })
    }

    fn property(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        get_bytes(|data, size| unsafe {
            abi::proxy_get_property(path.as_ptr(), path.len(), data, size)
        })
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[u8],
    ) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_send_local_response(
                status,
                details.as_ptr(),
                details.len(),
                body.as_ptr(),
                body.len(),
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[u8],
        body: &[u8],
        timeout_millis: u32,
    ) -> Result<u32, Status> {
        let mut token = 0;
        let trailers = crate::wire::encode_pairs::<&[u8], &[u8]>(&[]);
        check(unsafe {
            abi::proxy_http_call(
                cluster.as_ptr(),
                cluster.len(),
                headers.as_ptr(),
                headers.len(),
                body.as_ptr(),
                body.len(),
                trailers.as_ptr(),
                trailers.len(),
                timeout_millis,
                &mut token,
            )
        })?;
        Ok(token)
    }

    fn grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        metadata: &[u8],
        message: &[u8],
        timeout_millis: u32,
    ) -> Result<u32, Status> {
        let mut token = 0;
        // Envoy reads `upstream` as a serialized GrpcService, or else as a cluster name.
        check(unsafe {
            abi::proxy_grpc_call(
                cluster.as_ptr(),
                cluster.len(),
                service.as_ptr(),
                service.len(),
                method.as_ptr(),
                method.len(),
                metadata.as_ptr(),
                metadata.len(),
                message.as_ptr(),
                message.len(),
                timeout_millis,
                &mut token,
            )
        })?;
        Ok(token)
    }

    fn call_status(&self) -> Result<(u32, Vec<u8>), Status> {
        let mut code = 0;
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        check(unsafe { abi::proxy_get_status(&mut code, &mut data, &mut size) })?;
        // SAFETY: on Ok the host wrote a buffer it allocated in this module, or null.
        Ok((code, unsafe { take_host_buffer(data, size) }))
    }

    fn continue_stream(&self, stream: StreamType) -> Result<(), Status> {
        check(unsafe { abi::proxy_continue_stream(stream as u32) })
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), Status> {
        check(unsafe { abi::proxy_set_effective_context(context_id) })
    }

    fn shared_data(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        let mut cas: u32 = 0;
        match check(unsafe {
            abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
        }) {
            // SAFETY: on Ok the host wrote a buffer it allocated in this module, or null.
            Ok(()) => Ok(Some((unsafe { take_host_buffer(data, size) }, cas))),
            Err(Status::NotFound) => Ok(None),
            Err(status) => Err(status),
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
        })
    }

    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, Status> {
        let mut id = 0;
        check(unsafe {
            abi::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id)
        })?;
        Ok(id)
    }

    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), Status> {
        check(unsafe { abi::proxy_increment_metric(id, delta) })
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), Status> {
        check(unsafe { abi::proxy_record_metric(id, value) })
    }

    fn metric(&self, id: u32) -> Result<u64, Status> {
        let mut value = 0;
        check(unsafe { abi::proxy_get_metric(id, &mut value) })?;
        Ok(value)
    }

    fn register_shared_queue(&self, name: &str) -> Result<u32, Status> {
        let mut id = 0;
        check(unsafe { abi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
        Ok(id)
    }

    fn resolve_shared_queue(&self, vm_id: &str, name: &str) -> Result<Option<u32>, Status> {
        let mut id = 0;
        match check(unsafe {
            abi::proxy_resolve_shared_queue(
                vm_id.as_ptr(),
                vm_id.len(),
                name.as_ptr(),
                name.len(),
                &mut id,
            )
        }) {
            Ok(()) => Ok(Some(id)),
            Err(Status::NotFound) => Ok(None),
            Err(status) => Err(status),
        }
    }

    fn enqueue_shared_queue(&self, queue_id: u32, value: &[u8]) -> Result<(), Status> {
        check(unsafe { abi::proxy_enqueue_shared_queue(queue_id, value.as_ptr(), value.len()) })
    }

    fn dequeue_shared_queue(&self, queue_id: u32) -> Result<Option<Vec<u8>>, Status> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        match check(unsafe { abi::proxy_dequeue_shared_queue(queue_id, &mut data, &mut size) }) {
            // SAFETY: on Ok the host wrote a buffer it allocated in this module, or null.
            Ok(()) => Ok(Some(unsafe { take_host_buffer(data, size) })),
            Err(Status::Empty) => Ok(None),
            Err(status) => Err(status),
        }
    }
}
