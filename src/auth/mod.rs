//! Authentication vocabulary and token cryptography: who is calling ([`Principal`]) and the
//! one gate every operation passes through, the claims tokens carry, and signing keys. No I/O:
//! storage of keys and sessions lives in `service/`; reading a request lives in `edge/`.

pub mod jwt;
pub mod keys;
pub mod principal;

pub use keys::SigningAlgorithm;
pub use principal::{Principal, SessionRef, UserPrincipal};
