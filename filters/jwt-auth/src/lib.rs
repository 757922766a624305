//! JWT authentication filter; for now the fast RSA signature verifier it will use.
#![warn(missing_docs)]

pub mod crypto;
