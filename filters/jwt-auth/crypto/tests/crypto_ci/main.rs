//! The crypto checks CI runs natively and in V8 (`make test` runs this binary under Node on the
//! wasm SIMD path): Wycheproof's vectors, and a bounded differential fuzz of the arithmetic.
//! Everything they need is compiled in, as a wasm test under Node's WASI reads no files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fuzz;
mod wycheproof;
