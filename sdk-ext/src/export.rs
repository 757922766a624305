//! The module's wasm exports, written once for every module: a module crate (`filters/chain`)
//! names its filters with [`export_standalone!`](crate::export_standalone) or
//! [`export_chain!`](crate::export_chain), and every `proxy_on_*` callback goes to one
//! [`Dispatcher`].

use crate::dispatch::{Dispatcher, Module};
use crate::filter::{Action, Factory};
use crate::host::WasmHost;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    static DISPATCHER: RefCell<Option<Dispatcher>> = const { RefCell::new(None) };
}

/// Sets up the module at VM start (`_initialize`).
pub fn install(module: Module) {
    set(Dispatcher::new(Rc::new(WasmHost), module));
}

/// Sets up a standalone module at VM start; it links no chain config code.
pub fn install_standalone(factory: Factory) {
    set(Dispatcher::standalone(Rc::new(WasmHost), factory));
}

fn set(new: Dispatcher) {
    crate::logging::init(log::LevelFilter::Info);
    DISPATCHER.with(|cell| {
        if let Ok(mut dispatcher) = cell.try_borrow_mut() {
            *dispatcher = Some(new);
        }
    });
}

/// Runs `call` on the dispatcher; `fallback` when there is none or it is busy (a host calling
/// back into the module from inside a hostcall, which Envoy does not do).
pub fn with<T>(fallback: T, call: impl FnOnce(&mut Dispatcher) -> T) -> T {
    DISPATCHER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut dispatcher) => match dispatcher.as_mut() {
            Some(dispatcher) => call(dispatcher),
            None => fallback,
        },
        Err(_) => {
            busy();
            fallback
        }
    })
}

/// Out of line: `with` is inlined into every export, and this is the rare path.
#[inline(never)]
fn busy() {
    log::error!("a host callback arrived while another was running; ignored");
}

/// `proxy_on_memory_allocate`: a buffer the host fills and the module then owns
/// (`crate::host` takes it back as a `Vec` of exactly this capacity).
pub fn allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

/// The proxy-wasm action code of an [`Action`].
pub fn action_code(action: Action) -> u32 {
    action as u32
}

/// Exports a module holding one filter: `sdk_ext::export_standalone!(jwt_auth::JwtAuthRoot);`.
/// The plugin configuration is the filter's own.
#[macro_export]
macro_rules! export_standalone {
    ($root:ty) => {
        $crate::export_module!(
            @install $crate::export::install_standalone($crate::filter::Factory::of::<$root>()),
            $crate::dispatch::Module::Standalone($crate::filter::Factory::of::<$root>())
        );
    };
}

/// Exports a chain module holding these filters:
/// `sdk_ext::export_chain!(jwt_auth::JwtAuthRoot, rate_limit::RateLimitRoot);`. Its configuration
/// is `{"filters": [{"name": "jwt-auth", "config": {...}}, ...]}`.
#[macro_export]
macro_rules! export_chain {
    ($($root:ty),+ $(,)?) => {
        static __SDK_EXT_CHAIN: &[$crate::filter::Factory] =
            &[$($crate::filter::Factory::of::<$root>()),+];
        $crate::export_module!($crate::dispatch::Module::Chain(__SDK_EXT_CHAIN));
    };
}

/// The proxy-wasm ABI 0.2.1 exports of a module; use `export_standalone!` or `export_chain!`.
#[doc(hidden)]
#[macro_export]
macro_rules! export_module {
    // `$install` sets the dispatcher up; `$module` is what it holds.
    (@install $install:expr, $module:expr) => {
        // Off wasm nothing is exported; naming the module still type-checks it (and keeps its
        // filters from reading as dead code in native builds of the module crate).
        #[cfg(not(target_arch = "wasm32"))]
        const _: $crate::dispatch::Module = $module;

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::export::{action_code, allocate, with};

            extern "C" {
                fn __wasm_call_ctors();
            }

            #[no_mangle]
            pub extern "C" fn _initialize() {
                unsafe { __wasm_call_ctors() };
                $install;
            }

            #[no_mangle]
            pub extern "C" fn proxy_abi_version_0_2_1() {}

            #[no_mangle]
            pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
                allocate(size)
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_vm_start(_context_id: u32, _size: usize) -> u32 {
                1
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
                with((), |d| d.on_context_create(context_id, root_context_id))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_configure(context_id: u32, size: usize) -> u32 {
                with(false, |d| d.on_configure(context_id, size)) as u32
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_tick(context_id: u32) {
                with((), |d| d.on_tick(context_id))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_queue_ready(context_id: u32, queue_id: u32) {
                with((), |d| d.on_queue_ready(context_id, queue_id))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_request_headers(
                context_id: u32,
                _n: usize,
                end: u32,
            ) -> u32 {
                action_code(with($crate::Action::Continue, |d| {
                    d.on_request_headers(context_id, end != 0)
                }))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_request_body(context_id: u32, size: usize, end: u32) -> u32 {
                action_code(with($crate::Action::Continue, |d| {
                    d.on_request_body(context_id, size, end != 0)
                }))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_request_trailers(context_id: u32, _n: usize) -> u32 {
                action_code(with($crate::Action::Continue, |d| {
                    d.on_request_trailers(context_id)
                }))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_response_headers(
                context_id: u32,
                _n: usize,
                end: u32,
            ) -> u32 {
                action_code(with($crate::Action::Continue, |d| {
                    d.on_response_headers(context_id, end != 0)
                }))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_response_body(
                context_id: u32,
                size: usize,
                end: u32,
            ) -> u32 {
                action_code(with($crate::Action::Continue, |d| {
                    d.on_response_body(context_id, size, end != 0)
                }))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_response_trailers(context_id: u32, _n: usize) -> u32 {
                action_code(with($crate::Action::Continue, |d| {
                    d.on_response_trailers(context_id)
                }))
            }

            // No `proxy_on_done`: Envoy takes a missing one as "done at once", which is what
            // the dispatcher answers, and skips the call (about a µs per request in V8).
            $crate::__export_on_log!();

            #[no_mangle]
            pub extern "C" fn proxy_on_delete(context_id: u32) {
                with((), |d| d.on_delete(context_id))
            }

            $crate::__export_http_callouts!();
            $crate::__export_grpc_callouts!();
        };
    };
    ($module:expr) => {
        $crate::export_module!(@install $crate::export::install($module), $module);
    };
}

/// `proxy_on_log`, exported only with the `on-log` feature: Envoy calls every exported callback
/// for every stream, and a call into V8 costs about a µs, so modules whose filters have no
/// `on_log` leave it out.
#[cfg(feature = "on-log")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_on_log {
    () => {
        #[no_mangle]
        pub extern "C" fn proxy_on_log(context_id: u32) {
            $crate::export::with((), |d| d.on_log(context_id))
        }
    };
}

#[cfg(not(feature = "on-log"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_on_log {
    () => {};
}

/// The callback that brings HTTP callout answers, exported only with the `http-callouts` feature
/// (which filters that call out over HTTP enable): without it a module links none of their
/// handling.
#[cfg(feature = "http-callouts")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_http_callouts {
    () => {
        #[no_mangle]
        pub extern "C" fn proxy_on_http_call_response(
            _context_id: u32,
            token: u32,
            headers: usize,
            body: usize,
            trailers: usize,
        ) {
            $crate::export::with((), |d| {
                d.on_http_call_response(token, headers, body, trailers)
            })
        }
    };
}

#[cfg(not(feature = "http-callouts"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_http_callouts {
    () => {};
}

/// The callbacks that bring gRPC answers, exported only with the `grpc-callouts` feature.
#[cfg(feature = "grpc-callouts")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_grpc_callouts {
    () => {
        #[no_mangle]
        pub extern "C" fn proxy_on_grpc_receive(_context_id: u32, token: u32, message_size: usize) {
            $crate::export::with((), |d| d.on_grpc_receive(token, message_size))
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_grpc_close(_context_id: u32, token: u32, status: u32) {
            $crate::export::with((), |d| d.on_grpc_close(token, status))
        }
    };
}

#[cfg(not(feature = "grpc-callouts"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_grpc_callouts {
    () => {};
}
