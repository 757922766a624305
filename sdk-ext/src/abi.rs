//! The raw proxy-wasm hostcalls that sdk-ext wraps.
//!
//! The `proxy-wasm` crate's own wrappers panic on any status they do not expect, which traps the
//! VM. sdk-ext declares the imports itself so that every status comes back as a value. Off wasm
//! each import is a stub that reports `InternalFailure`, so every crate links natively; native
//! tests run on the fake host instead.

/// A raw proxy-wasm status code as returned by the host.
pub type RawStatus = u32;

macro_rules! hostcalls {
    ($( $(#[$meta:meta])* fn $name:ident( $($arg:ident : $ty:ty),* $(,)? ); )*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "env")]
        extern "C" {
            $( $(#[$meta])* pub fn $name($($arg: $ty),*) -> RawStatus; )*
        }

        #[cfg(not(target_arch = "wasm32"))]
        mod native {
            //! Stubs with the import signatures, for native builds where no host exists.
            use super::RawStatus;
            $(
                /// Native stub: there is no host, so every call fails.
                ///
                /// # Safety
                /// Never dereferences its arguments.
                #[allow(unused_variables, clippy::too_many_arguments)]
                pub unsafe fn $name($($arg: $ty),*) -> RawStatus {
                    10
                }
            )*
        }

        #[cfg(not(target_arch = "wasm32"))]
        pub use native::*;
    };
}

hostcalls! {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize);
    fn proxy_get_log_level(return_level: *mut u32);
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64);
    fn proxy_set_tick_period_milliseconds(period: u32);
    fn proxy_get_buffer_bytes(buffer_type: u32, start: usize, max_size: usize, return_data: *mut *mut u8, return_size: *mut usize);
    fn proxy_set_buffer_bytes(buffer_type: u32, start: usize, size: usize, data: *const u8, data_size: usize);
    fn proxy_get_header_map_pairs(map_type: u32, return_data: *mut *mut u8, return_size: *mut usize);
    fn proxy_get_header_map_value(map_type: u32, key_data: *const u8, key_size: usize, return_data: *mut *mut u8, return_size: *mut usize);
    fn proxy_replace_header_map_value(map_type: u32, key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize);
    fn proxy_add_header_map_value(map_type: u32, key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize);
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize);
    fn proxy_get_property(path_data: *const u8, path_size: usize, return_data: *mut *mut u8, return_size: *mut usize);
    fn proxy_get_shared_data(key_data: *const u8, key_size: usize, return_data: *mut *mut u8, return_size: *mut usize, return_cas: *mut u32);
    fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32);
    fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32);
    fn proxy_resolve_shared_queue(vm_id_data: *const u8, vm_id_size: usize, name_data: *const u8, name_size: usize, return_id: *mut u32);
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize);
    fn proxy_dequeue_shared_queue(queue_id: u32, return_data: *mut *mut u8, return_size: *mut usize);
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32);
    fn proxy_increment_metric(metric_id: u32, offset: i64);
    fn proxy_record_metric(metric_id: u32, value: u64);
    fn proxy_get_metric(metric_id: u32, return_value: *mut u64);
    fn proxy_continue_stream(stream_type: u32);
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    );
    #[allow(clippy::too_many_arguments)]
    fn proxy_grpc_call(
        upstream_data: *const u8,
        upstream_size: usize,
        service_name_data: *const u8,
        service_name_size: usize,
        method_name_data: *const u8,
        method_name_size: usize,
        initial_metadata_data: *const u8,
        initial_metadata_size: usize,
        request_data: *const u8,
        request_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    );
    fn proxy_get_status(return_code: *mut u32, return_message_data: *mut *mut u8, return_message_size: *mut usize);
    fn proxy_set_effective_context(context_id: u32);
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    );
}
