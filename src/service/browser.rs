//! Browser sessions of idgraph's own sign-in page, and the CSRF tokens of its forms.
//!
//! A browser carries one cookie, [`COOKIE`], holding 256 random bits. Before sign-in the value
//! has no row: it only anchors the sign-in form's CSRF token. Signing in replaces it with a fresh
//! value whose digest names a `browser_sessions` row, so a value planted before sign-in never
//! becomes a session (no session fixation). Every form carries [`csrf_token`] of the cookie's
//! value; a POST whose token does not match the cookie it came with is refused.

use std::net::IpAddr;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use crate::auth::{Principal, Role, Scope, ScopeSet, UserPrincipal};
use crate::db::entities::{browser_sessions, users};
use crate::domain::ids::{SessionId, UserId};
use crate::domain::secret::{digest, digest_matches, random_token};
use crate::domain::{now_unix, secs};
use crate::error::{AppError, AppResult};
use crate::service::users::authenticate;
use crate::state::AppState;

/// The cookie's name.
pub const COOKIE: &str = "idgraph_session";

/// Whether `value` looks like a cookie value we issued (43 base64url characters).
pub fn is_cookie_value(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh cookie value, for a browser that has none yet.
pub fn new_cookie_value() -> String {
    random_token(32)
}

/// The CSRF token that forms served to the holder of `cookie_value` carry.
pub fn csrf_token(cookie_value: &str) -> String {
    digest(&format!("csrf:{cookie_value}"))
}

/// Whether a submitted CSRF token belongs to `cookie_value` (constant time).
pub fn csrf_matches(cookie_value: &str, submitted: &str) -> bool {
    digest_matches(&format!("csrf:{cookie_value}"), submitted)
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// Digest of the cookie value; the row's key.
    pub id: String,
    /// The person signed in.
    pub user: users::Model,
    /// When they typed their password, Unix seconds.
    pub auth_time: i64,
}

impl BrowserSession {
    /// The caller as the consent service sees it: this user, allowed to authorize apps and
    /// nothing else, with the sign-in's real time.
    pub fn principal(&self) -> AppResult<Principal> {
        Ok(Principal::User(UserPrincipal {
            user_id: UserId::from_trusted(self.user.id.clone()),
            roles: Role::parse_list(&self.user.roles)
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored roles: {e}")))?,
            scopes: ScopeSet::only(Scope::Authorize),
            session_id: SessionId::from_trusted(self.id.clone()),
            auth_time: self.auth_time,
        }))
    }
}

/// The live session named by `cookie_value`, if any.
pub async fn find(state: &AppState, cookie_value: &str) -> AppResult<Option<BrowserSession>> {
    if !is_cookie_value(cookie_value) {
        return Ok(None);
    }
    let Some((row, Some(user))) = browser_sessions::Entity::find_by_id(digest(cookie_value))
        .filter(browser_sessions::Column::ExpiresAt.gt(now_unix()))
        .find_also_related(users::Entity)
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(BrowserSession {
        id: row.id,
        user,
        auth_time: row.auth_time,
    }))
}

/// Checks the password (with the sign-in back-off) and opens a session. Returns the new cookie
/// value; the session that `previous` named, if any, and the user's expired sessions end in the
/// same transaction.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: String,
    addr: Option<IpAddr>,
    previous: Option<&str>,
) -> AppResult<(String, BrowserSession)> {
    let user = authenticate(state, username, password, addr).await?;
    let value = new_cookie_value();
    let now = now_unix();
    let row = browser_sessions::ActiveModel {
        id: Set(digest(&value)),
        user_id: Set(user.id.clone()),
        auth_time: Set(now),
        expires_at: Set(now + secs(state.config.browser_session_ttl)),
    };
    let txn = state.db.begin().await?;
    // The user's expired sessions go now, so rows do not pile up.
    browser_sessions::Entity::delete_many()
        .filter(browser_sessions::Column::UserId.eq(&user.id))
        .filter(browser_sessions::Column::ExpiresAt.lte(now))
        .exec(&txn)
        .await?;
    if let Some(previous) = previous.filter(|v| is_cookie_value(v)) {
        browser_sessions::Entity::delete_by_id(digest(previous))
            .exec(&txn)
            .await?;
    }
    browser_sessions::Entity::insert(row)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    tracing::info!(user.id = %user.id, "browser signed in");
    Ok((
        value.clone(),
        BrowserSession {
            id: digest(&value),
            user,
            auth_time: now,
        },
    ))
}

/// Ends the session named by `cookie_value`, if there is one.
pub async fn sign_out(state: &AppState, cookie_value: &str) -> AppResult<()> {
    if is_cookie_value(cookie_value) {
        let ended = browser_sessions::Entity::delete_many()
            .filter(browser_sessions::Column::Id.eq(digest(cookie_value)))
            .exec(&state.db)
            .await?;
        if ended.rows_affected > 0 {
            tracing::info!("browser signed out");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_one_cookie() {
        let a = new_cookie_value();
        let b = new_cookie_value();
        assert!(is_cookie_value(&a));
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&b, &csrf_token(&a)));
        assert!(!csrf_matches(&a, ""));
    }
}
