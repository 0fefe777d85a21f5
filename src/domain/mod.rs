//! Domain vocabulary: identifier newtypes, validated inputs and pure rules (no I/O).

pub mod apps;
pub mod authorize;
pub mod connections;
pub mod ids;
pub mod oauth;
pub mod secret;
pub mod users;

/// A duration in whole seconds, as stored times are counted (saturating far in the future).
pub fn secs(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Checks a page size (`amount` or `first`) against 1..=[`apps::MAX_PAGE`].
pub fn check_page_size(field: &str, size: u64) -> Result<u64, crate::error::AppError> {
    if (1..=apps::MAX_PAGE).contains(&size) {
        Ok(size)
    } else {
        Err(crate::error::AppError::invalid(format!(
            "{field}: must be between 1 and {}",
            apps::MAX_PAGE
        )))
    }
}

/// Seconds since the Unix epoch, the unit every stored time uses.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
