//! The service layer: every business rule and every authorization decision. Each entry point
//! takes the caller's [`crate::auth::Principal`]; the transports only convert.

pub mod apps;
pub mod audit;
pub mod authorize;
pub mod backchannel;
pub mod browser;
pub mod cache;
pub mod changes;
pub mod connections;
pub mod consent;
pub mod console;
pub mod housekeeping;
pub mod keys;
pub mod logos;
pub mod passwords;
pub mod refresh;
pub mod seal;
pub mod sessions;
pub mod state;
pub mod throttle;
pub mod tokens;
pub mod touches;
pub mod users;

pub use state::AppState;
