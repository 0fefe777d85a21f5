//! Browser sessions of idgraph's own sign-in page.
//!
//! A browser carries one cookie ([`cookie_name`]), holding 256 random bits. Before sign-in the value
//! has no row: it only anchors the forms' seals (see [`crate::service::seal`]). Signing in
//! replaces it with a fresh value whose digest names a `browser_sessions` row, so a value
//! planted before sign-in never becomes a session (no session fixation).

use std::net::IpAddr;

use sea_orm::sea_query::IntoCondition;
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use secrecy::SecretString;

use crate::auth::{Principal, SessionRef};
use crate::db::entities::{browser_sessions, users};
use crate::domain::ids::BrowserSessionId;
use crate::domain::secret::{digest, random_token};
use crate::domain::{Scope, ScopeSet, secs};
use crate::error::{AppError, AppResult};
use crate::service::backchannel::{self, EndedSession};
use crate::service::{AppState, changes, users as user_service};

/// The cookie's name when the issuer is http (development, tests), where it cannot be `Secure`.
pub const COOKIE: &str = "idgraph_session";

/// The cookie's name when the issuer is https. Browsers take a `__Host-` cookie only when it is
/// `Secure`, set over https by this very host, with `Path=/` and no `Domain`, so no other host
/// (a sibling subdomain, a plain-http page on the same name) can plant or overwrite it
/// (RFC 6265bis §4.1.3.2).
pub const HOST_COOKIE: &str = "__Host-idgraph_session";

/// The cookie's name under `config`: [`HOST_COOKIE`] when cookies are `Secure`, else
/// [`COOKIE`] (a browser refuses a `__Host-` cookie without `Secure`).
pub fn cookie_name(config: &crate::config::Config) -> &'static str {
    if config.secure_cookies() {
        HOST_COOKIE
    } else {
        COOKIE
    }
}

/// Whether `value` looks like a cookie value we issue (43 base64url characters).
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

/// What a request tells about the browser: its cookie (when well-formed) and address.
/// Printing it shows whether a cookie came, never its value (it proves a signed-in session).
#[derive(Clone, Default)]
pub struct BrowserContext {
    /// The cookie's value, when it has the shape of one we issue.
    pub cookie: Option<String>,
    /// The client's address, for the sign-in back-off.
    pub addr: Option<IpAddr>,
}

impl std::fmt::Debug for BrowserContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserContext")
            .field("cookie_sent", &self.cookie.is_some())
            .field("addr", &self.addr)
            .finish()
    }
}

/// Who is signed in, as pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInAs {
    /// The name to greet with: the display name, or the username when there is none.
    pub display_name: String,
    /// The login name.
    pub username: String,
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct BrowserSession {
    /// The person signed in.
    pub user: users::Model,
    /// When they typed their password, Unix seconds.
    pub auth_time: i64,
    /// The session's public id (`sid` in ID and logout tokens).
    pub sid: Option<String>,
}

impl BrowserSession {
    /// The caller as the consent service sees it: this user, allowed to authorize apps and
    /// nothing else, with the sign-in's real time.
    pub fn principal(&self) -> AppResult<Principal> {
        self.principal_with(ScopeSet::only(Scope::Authorize))
    }

    /// The caller acting through this session with `scopes` (the admin console and GraphiQL
    /// act with every scope; see [`crate::service::console`]).
    pub fn principal_with(&self, scopes: ScopeSet) -> AppResult<Principal> {
        user_service::principal_of(
            &self.user,
            scopes,
            SessionRef::Browser(self.sid.clone().map(BrowserSessionId::from_trusted)),
            self.auth_time,
        )
    }

    /// Who is signed in, for a page.
    pub fn signed_in_as(&self) -> SignedInAs {
        let name = self.user.name.trim();
        SignedInAs {
            display_name: if name.is_empty() {
                self.user.username.clone()
            } else {
                name.to_string()
            },
            username: self.user.username.clone(),
        }
    }
}

/// The live session named by `cookie_value`, if any.
pub(crate) async fn find(
    state: &AppState,
    cookie_value: Option<&str>,
) -> AppResult<Option<BrowserSession>> {
    let Some(cookie_value) = cookie_value.filter(|v| is_cookie_value(v)) else {
        return Ok(None);
    };
    let Some((row, Some(user))) = browser_sessions::Entity::find_by_id(digest(cookie_value))
        .filter(browser_sessions::Column::ExpiresAt.gt(state.clock.now()))
        .find_also_related(users::Entity)
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    // A disabled account's sessions were ended; one that slipped past is no session either.
    if user.disabled_at.is_some() {
        return Ok(None);
    }
    Ok(Some(BrowserSession {
        user,
        auth_time: row.auth_time,
        sid: row.sid,
    }))
}

/// Checks the password (with the sign-in back-off) and opens a session. Returns the new cookie
/// value; the session that `previous` named, if any, and the user's expired sessions end in the
/// same transaction.
pub(crate) async fn sign_in(
    state: &AppState,
    username: &str,
    password: SecretString,
    context: &BrowserContext,
) -> AppResult<(String, BrowserSession)> {
    let user = user_service::authenticate(
        state,
        username,
        password,
        context.addr,
        &crate::service::audit::Actor::Anonymous,
    )
    .await?;
    let value = new_cookie_value();
    let now = state.clock.now();
    let id = digest(&value);
    let sid = random_token(16);
    let row = browser_sessions::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user.id.clone()),
        auth_time: Set(now),
        expires_at: Set(now + secs(state.config.browser_session_ttl)),
        sid: Set(Some(sid.clone())),
    };
    let txn = state.db.begin().await?;
    // Disabled since the password was checked: no session (the transaction is dropped). On
    // PostgreSQL the user's row is read first, with a share lock, in the order an
    // administrator's change takes the user's row and then their browser sessions (the other
    // order could wait on each other); SQLite's transaction writes first and checks last.
    let postgres = state.db.get_database_backend() == DbBackend::Postgres;
    if postgres && !user_service::still_enabled(&txn, &user.id).await? {
        return Err(AppError::InvalidCredentials);
    }
    // The user's expired sessions go now, so rows do not pile up.
    browser_sessions::Entity::delete_many()
        .filter(browser_sessions::Column::UserId.eq(&user.id))
        .filter(browser_sessions::Column::ExpiresAt.lte(now))
        .exec(&txn)
        .await?;
    // Signing in over a session ends it, with what ends with a session.
    let replaced = match context.cookie.as_deref().filter(|v| is_cookie_value(v)) {
        Some(previous) => {
            let which = browser_sessions::Column::Id.eq(digest(previous));
            end_in(state, &txn, which.into_condition()).await?
        }
        None => Ended::default(),
    };
    browser_sessions::Entity::insert(row)
        .exec_without_returning(&txn)
        .await?;
    if !postgres && !user_service::still_enabled(&txn, &user.id).await? {
        return Err(AppError::InvalidCredentials);
    }
    txn.commit().await?;
    replaced.announce(state).await;
    tracing::info!(user.id = %user.id, "browser signed in");
    Ok((
        value,
        BrowserSession {
            user,
            auth_time: now,
            sid: Some(sid),
        },
    ))
}

/// Ends the session named by `cookie_value`, if there is one; whether there was.
pub(crate) async fn sign_out(state: &AppState, cookie_value: &str) -> AppResult<bool> {
    if !is_cookie_value(cookie_value) {
        return Ok(false);
    }
    let which = browser_sessions::Column::Id.eq(digest(cookie_value));
    let ended = end(state, which.into_condition()).await?;
    if ended.sessions > 0 {
        tracing::info!("browser signed out");
    }
    Ok(ended.sessions > 0)
}

/// What ending sessions did.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// Sessions ended.
    pub sessions: usize,
    /// Grants that ended with them, to announce.
    pub grants: Vec<String>,
}

impl Ended {
    /// Announces what ended (after the transaction committed) and wakes the logout worker.
    pub(crate) async fn announce(&self, state: &AppState) {
        changes::grants_ended(state, &self.grants).await;
        if self.sessions > 0 {
            state.logouts.queued();
        }
    }
}

/// Ends the browser sessions `which` selects, in one transaction with what ends with them:
/// their grants without `offline_access`, and the back-channel logouts owed to the apps that
/// took part (see [`backchannel`]).
pub(crate) async fn end(state: &AppState, which: Condition) -> AppResult<Ended> {
    let txn = state.db.begin().await?;
    let ended = end_in(state, &txn, which).await?;
    txn.commit().await?;
    ended.announce(state).await;
    Ok(ended)
}

/// [`end`] inside `txn`; the caller commits, then calls [`Ended::announce`].
pub(crate) async fn end_in(
    state: &AppState,
    txn: &DatabaseTransaction,
    which: Condition,
) -> AppResult<Ended> {
    let rows = browser_sessions::Entity::delete_many()
        .filter(which)
        .exec_with_returning(txn)
        .await?;
    let ended = rows.len();
    let sessions: Vec<EndedSession> = rows
        .into_iter()
        .filter_map(|row| row.sid.map(|sid| EndedSession { sid }))
        .collect();
    let grants = backchannel::sessions_ended(state, txn, &sessions).await?;
    Ok(Ended {
        sessions: ended,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_a_browser_context_never_shows_its_cookie() {
        let context = BrowserContext {
            cookie: Some("cookie-value-that-proves-a-session".into()),
            addr: None,
        };
        let printed = format!("{context:?}");
        assert!(!printed.contains("cookie-value"), "{printed}");
        assert!(printed.contains("cookie_sent: true"), "{printed}");
    }
}
