//! Domain vocabulary: identifier newtypes, validated inputs and pure rules (no I/O).

pub mod apps;
pub mod connections;
pub mod ids;
pub mod oauth;
pub mod secret;
pub mod users;

/// Seconds since the Unix epoch, the unit every stored time uses.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
