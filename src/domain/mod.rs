//! Domain vocabulary: identifier newtypes, validated inputs and pure rules (no I/O).

pub mod apps;
pub mod audit;
pub mod authorize;
pub mod capabilities;
pub mod clients;
pub mod connections;
pub mod ids;
pub mod logout;
pub mod oauth;
pub mod page;
pub mod role;
pub mod scope;
pub mod scopes;
pub mod secret;
pub mod text;
pub mod users;

pub use role::Role;
pub use scope::{Scope, ScopeSet};

/// A duration in whole seconds, as stored times are counted (saturating far in the future).
pub fn secs(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 4)
}
