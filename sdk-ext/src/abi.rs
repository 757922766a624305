//! The raw proxy-wasm hostcalls that sdk-ext wraps.
//!
//! The `proxy-wasm` crate's own wrappers panic on any status they do not expect, which traps the
//! VM. sdk-ext declares the imports itself so that every status comes back as a value. Off wasm
//! (native unit tests of config and logic) the imports are replaced by stubs that report
//! `InternalFailure`, so filter crates link and their pure code can be tested without a host.

/// A raw proxy-wasm status code as returned by the host.
pub type RawStatus = u32;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
extern "C" {
    pub fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> RawStatus;
    pub fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> RawStatus;
    pub fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> RawStatus;
    pub fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> RawStatus;
    pub fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> RawStatus;
    pub fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> RawStatus;
    pub fn proxy_remove_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
    ) -> RawStatus;
    pub fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> RawStatus;
    pub fn proxy_get_log_level(return_level: *mut u32) -> RawStatus;
    #[allow(clippy::too_many_arguments)]
    pub fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> RawStatus;
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    //! Stubs with the import signatures, for native builds where no host exists.
    #![allow(clippy::missing_safety_doc)]
    use super::RawStatus;

    const INTERNAL_FAILURE: RawStatus = 10;

    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_get_buffer_bytes(
        _: u32,
        _: usize,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_get_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_replace_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_add_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_get_property(
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> RawStatus {
        INTERNAL_FAILURE
    }
    pub unsafe fn proxy_get_log_level(_: *mut u32) -> RawStatus {
        INTERNAL_FAILURE
    }
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> RawStatus {
        INTERNAL_FAILURE
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;
