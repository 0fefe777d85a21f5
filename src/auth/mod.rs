//! Authentication and authorization: who is calling (`Principal`), what they may do (`Scope`,
//! `Role`), and the tokens that carry it.

pub mod extract;
pub mod jwt;
pub mod keys;
pub mod principal;
pub mod role;
pub mod scope;

pub use keys::SigningAlgorithm;
pub use principal::{Principal, UserPrincipal};
pub use role::Role;
pub use scope::{Scope, ScopeSet};
