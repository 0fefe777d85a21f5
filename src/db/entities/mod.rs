//! SeaORM entities. These are storage rows: they never reach the GraphQL schema or a REST body.

pub mod app_logos;
pub mod app_origins;
pub mod app_secrets;
pub mod apps;
pub mod audit_events;
pub mod browser_sessions;
pub mod connections;
pub mod grants;
pub mod logout_deliveries;
pub mod revoked_tokens;
pub mod server_secrets;
pub mod session_apps;
pub mod sessions;
pub mod sign_in_attempts;
pub mod signing_keys;
pub mod users;
