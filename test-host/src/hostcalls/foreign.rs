//! `proxy_call_foreign_function` with the functions Envoy registers that make sense without
//! Envoy internals: `compress`/`uncompress` (zlib) and `clear_route_cache`. Any other name is
//! `NotFound`, as an unregistered function is in Envoy.

use super::{hostcall, Status};
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

fn call(name: &[u8], args: &[u8]) -> Result<Vec<u8>, Status> {
    match name {
        b"compress" => Ok(miniz_oxide::deflate::compress_to_vec_zlib(args, 6)),
        b"uncompress" => miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(args, 64 << 20)
            .map_err(|_| Status::SerializationFailure),
        b"clear_route_cache" => Ok(Vec::new()),
        _ => Err(Status::NotFound),
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut caller: Caller<'_, HostState>,
         name_ptr: u32,
         name_len: u32,
         args_ptr: u32,
         args_len: u32,
         results_ptr_ptr: u32,
         results_size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_call_foreign_function", |caller| {
                let result = memory::read(caller, name_ptr, name_len)
                    .and_then(|name| Ok((name, memory::read(caller, args_ptr, args_len)?)))
                    .and_then(|(name, args)| call(&name, &args));
                memory::return_result(caller, result, results_ptr_ptr, results_size_ptr)
            })
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn compress_round_trips_and_unknown_names_are_not_found() {
        let packed = super::call(b"compress", b"hello hello hello").unwrap();
        assert_eq!(
            super::call(b"uncompress", &packed).unwrap(),
            b"hello hello hello"
        );
        assert_eq!(
            super::call(b"uncompress", b"junk"),
            Err(super::Status::SerializationFailure)
        );
        assert_eq!(super::call(b"nope", b""), Err(super::Status::NotFound));
    }
}
