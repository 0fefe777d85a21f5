//! Back-Channel Logout 1.0: telling apps that a session they took part in has ended.
//!
//! When a browser session ends (signing out on the page, RP-initiated logout, signing in again
//! over it), every app that received an ID token in it and registered a
//! `backchannel_logout_uri` is owed a logout token; so is an app whose connection the user
//! deletes (the user withdrew it: the token names the user, and the session only when the app
//! asked for `sid`). What is owed is written to `logout_deliveries` in the transaction that
//! ends the session, so that a crash loses nothing, and never sent on the user's request.
//!
//! [`deliver_due`] sends what is due: each row is claimed for [`LEASE_SECS`] (on PostgreSQL
//! with `SKIP LOCKED`, so two nodes never send one row at once), its token is signed then (a
//! fresh `iat` on every try, the same `jti`) with the algorithm of the app's ID tokens, and
//! POSTed with a bounded timeout and no redirects. A 2xx answer deletes the row. A connection
//! failure, a timeout, a 5xx, 408 or 429 is tried again after 2, 4, 8, … seconds (at most
//! [`MAX_BACKOFF_SECS`]) until [`GIVE_UP_AFTER_SECS`] after the session ended; any other 4xx
//! means the app refused this token, and sending it again would not change that. Both ways of
//! giving up are logged (warn). [`spawn`] runs it on every node.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Set,
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::db::entities::{
    apps as app_rows, browser_sessions, grants, logout_deliveries, session_apps,
};
use crate::domain::ids::ClientId;
use crate::domain::oauth::{OidcScope, OidcScopes};
use crate::domain::secret::random_token;
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::{apps, keys};

/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is good for once signed.
pub const TOKEN_TTL_SECS: i64 = 120;

/// How long one POST may take, connecting included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a claimed row is left to the node that claimed it.
pub const LEASE_SECS: i64 = 60;

/// The longest wait between two tries.
pub const MAX_BACKOFF_SECS: i64 = 600;

/// How long after the session ended a delivery is still tried.
pub const GIVE_UP_AFTER_SECS: i64 = 24 * 3600;

/// Rows claimed at once.
const BATCH: u64 = 32;

/// How often the worker looks for rows that another node wrote, or that came due.
const POLL: Duration = Duration::from_secs(5);

/// Claims of a logout token (Back-Channel Logout 1.0 §2.4): no `nonce`, ever.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LogoutClaims {
    /// The issuer.
    pub iss: String,
    /// The app.
    pub aud: String,
    /// When signed.
    pub iat: i64,
    /// [`TOKEN_TTL_SECS`] after `iat`.
    pub exp: i64,
    /// The delivery's id: the same on every try.
    pub jti: String,
    /// The user.
    pub sub: String,
    /// The session that ended; absent when every session of the user at the app ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `{LOGOUT_EVENT: {}}`.
    pub events: serde_json::Value,
}

/// A browser session that has just ended, by its public id.
#[derive(Debug, Clone)]
pub(crate) struct EndedSession {
    /// Its public id.
    pub sid: String,
}

/// Wakes this node's worker when a transaction queued deliveries.
#[derive(Debug, Default)]
pub struct Wake(Notify);

impl Wake {
    /// Tells the worker that deliveries were queued.
    pub fn queued(&self) {
        self.0.notify_one();
    }
}

/// In `txn`, which ends `sessions`: ends their grants that do not hold `offline_access` (the
/// app's tokens die with the session) and those whose code is still unredeemed, and queues a
/// logout token for every app that received an ID token in one of them: through a grant of the
/// session, or through one that ended early (remembered in `session_apps`). Returns the ids of
/// the grants ended, for the caller to announce once `txn` has committed.
pub(crate) async fn sessions_ended(
    state: &AppState,
    txn: &DatabaseTransaction,
    sessions: &[EndedSession],
) -> AppResult<Vec<String>> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let sids: Vec<&str> = sessions.iter().map(|s| s.sid.as_str()).collect();
    // Locked on PostgreSQL (SQLite's transaction already holds the write lock): a code being
    // redeemed right now either committed first, and is seen redeemed (its app is owed a
    // logout), or waits and then finds its grant gone.
    let rows = grants::Entity::find()
        .filter(grants::Column::Sid.is_in(sids))
        .lock_exclusive()
        .all(txn)
        .await?;
    // A code not yet redeemed ends too, whatever its scope: redeemed after the sign-out, it
    // would give the app an ID token naming a session that is gone, and no logout token would
    // ever follow it.
    let ending: Vec<String> = rows
        .iter()
        .filter(|row| {
            row.code_used_at.is_none()
                || !OidcScopes::filter(&row.scope).contains(OidcScope::OfflineAccess)
        })
        .map(|row| row.id.clone())
        .collect();
    if !ending.is_empty() {
        grants::Entity::delete_many()
            .filter(grants::Column::Id.is_in(ending.iter().map(String::as_str)))
            .exec(txn)
            .await?;
    }
    // Apps whose grant in these sessions ended early (read after the grants were locked, so
    // that a revocation that held one has committed what it remembered): owed all the same.
    let sids: Vec<&str> = sessions.iter().map(|s| s.sid.as_str()).collect();
    let remembered = session_apps::Entity::delete_many()
        .filter(session_apps::Column::Sid.is_in(sids))
        .exec_with_returning(txn)
        .await?;
    // One token per (app, session) that saw an ID token.
    let mut owed: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|row| row.code_used_at.is_some())
        .filter_map(|row| {
            let sid = row.sid.as_deref()?;
            Some((row.client_id.as_str(), row.user_id.as_str(), sid))
        })
        .chain(remembered.iter().map(|row| {
            (
                row.client_id.as_str(),
                row.user_id.as_str(),
                row.sid.as_str(),
            )
        }))
        .collect();
    owed.sort_unstable();
    owed.dedup();
    let listening = listening(txn, owed.iter().map(|(client_id, _, _)| *client_id)).await?;
    for (client_id, user_id, sid) in owed {
        if listening.contains_key(client_id) {
            queue(state, txn, client_id, user_id, Some(sid)).await?;
        }
    }
    Ok(ending)
}

/// In `txn`, which deletes the user's connection to an app with `grants` under it: queues a
/// logout token when the app received an ID token from any of them, or from a grant that ended
/// early in a session that lasts (`session_apps`, whose rows for the pair it takes, so that
/// ending those sessions later does not tell the app again). It names the user only (every
/// session of theirs at the app ends), or, when the app requires `sid`, each session the grants
/// were given in.
pub(crate) async fn connection_withdrawn(
    state: &AppState,
    txn: &DatabaseTransaction,
    user_id: &str,
    client_id: &str,
    grants: &[grants::Model],
) -> AppResult<()> {
    let remembered = session_apps::Entity::delete_many()
        .filter(session_apps::Column::UserId.eq(user_id))
        .filter(session_apps::Column::ClientId.eq(client_id))
        .exec_with_returning(txn)
        .await?;
    // Only sessions that last: one that simply expired is not announced (its row awaited the
    // sweep).
    let remembered: Vec<String> = if remembered.is_empty() {
        Vec::new()
    } else {
        browser_sessions::Entity::find()
            .select_only()
            .column(browser_sessions::Column::Sid)
            .filter(
                browser_sessions::Column::Sid.is_in(remembered.iter().map(|row| row.sid.as_str())),
            )
            .filter(browser_sessions::Column::ExpiresAt.gt(state.clock.now()))
            .into_tuple::<Option<String>>()
            .all(txn)
            .await?
            .into_iter()
            .flatten()
            .collect()
    };
    let seen: Vec<&grants::Model> = grants.iter().filter(|g| g.code_used_at.is_some()).collect();
    if seen.is_empty() && remembered.is_empty() {
        return Ok(());
    }
    let Some(&session_required) = listening(txn, [client_id]).await?.get(client_id) else {
        return Ok(());
    };
    if !session_required {
        return queue(state, txn, client_id, user_id, None).await;
    }
    let mut sids: Vec<&str> = seen
        .iter()
        .filter_map(|g| g.sid.as_deref())
        .chain(remembered.iter().map(String::as_str))
        .collect();
    sids.sort_unstable();
    sids.dedup();
    for sid in sids {
        queue(state, txn, client_id, user_id, Some(sid)).await?;
    }
    Ok(())
}

/// Which of `client_ids` registered a `backchannel_logout_uri`, each with whether it requires
/// `sid`. Read in `txn`, which may hold the pool's only connection.
async fn listening<'a>(
    txn: &DatabaseTransaction,
    client_ids: impl IntoIterator<Item = &'a str>,
) -> AppResult<HashMap<String, bool>> {
    use app_rows::Column as A;
    let rows: Vec<(String, bool)> = app_rows::Entity::find()
        .select_only()
        .column(A::ClientId)
        .column(A::BackchannelLogoutSessionRequired)
        .filter(A::ClientId.is_in(client_ids))
        .filter(A::BackchannelLogoutUri.ne(""))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Queues one logout token for `client_id` (an app that is [`listening`]).
async fn queue(
    state: &AppState,
    txn: &DatabaseTransaction,
    client_id: &str,
    user_id: &str,
    sid: Option<&str>,
) -> AppResult<()> {
    let now = state.clock.now();
    logout_deliveries::Entity::insert(logout_deliveries::ActiveModel {
        id: Set(random_token(16)),
        client_id: Set(client_id.to_string()),
        user_id: Set(user_id.to_string()),
        sid: Set(sid.map(str::to_string)),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// What one round of [`deliver_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Answered 2xx.
    pub sent: usize,
    /// Failed, to be tried again.
    pub retrying: usize,
    /// Refused by the app, timed out for good, or owed to an app that no longer wants them.
    pub dropped: usize,
}

impl Delivered {
    fn claimed(&self) -> usize {
        self.sent + self.retrying + self.dropped
    }
}

/// How one try went.
enum Try {
    Sent,
    Again(String),
    Drop(String),
}

/// The HTTP client of every delivery: bounded, no redirects (a logout token goes exactly where
/// the app registered, never where a redirect points).
static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("idgraph/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
});

/// Claims the deliveries due now (up to a batch) and sends them, all at once.
pub async fn deliver_due(state: &AppState) -> AppResult<Delivered> {
    let claimed = claim(state).await?;
    let mut sending = JoinSet::new();
    for row in claimed {
        let state = state.clone();
        sending.spawn(async move {
            let outcome = send(&state, &row).await;
            (row, outcome)
        });
    }
    let mut delivered = Delivered::default();
    while let Some(joined) = sending.join_next().await {
        let (row, outcome) = joined.map_err(AppError::internal)?;
        settle(state, &row, outcome, &mut delivered).await?;
    }
    Ok(delivered)
}

/// Takes the due rows for this node: pushes them [`LEASE_SECS`] on in the one statement that
/// chooses them (on PostgreSQL skipping rows another node is claiming at that moment).
async fn claim(state: &AppState) -> AppResult<Vec<logout_deliveries::Model>> {
    use logout_deliveries::Column as D;
    let now = state.clock.now();
    let mut due = logout_deliveries::Entity::find()
        .select_only()
        .column(D::Id)
        .filter(D::NextAttemptAt.lte(now))
        .order_by_asc(D::NextAttemptAt)
        .limit(BATCH);
    if state.db.get_database_backend() == DbBackend::Postgres {
        due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(logout_deliveries::Entity::update_many()
        .col_expr(D::NextAttemptAt, Expr::value(now + LEASE_SECS))
        .filter(D::Id.in_subquery(due.into_query()))
        .exec_with_returning(&state.db)
        .await?)
}

/// Signs and POSTs one logout token.
async fn send(state: &AppState, row: &logout_deliveries::Model) -> Try {
    let app = match apps::record(state, &ClientId::from_trusted(row.client_id.clone())).await {
        Ok(Some(app)) => app,
        Ok(None) => return Try::Drop("the app was deleted".into()),
        Err(err) => return Try::Again(format!("reading the app failed: {err}")),
    };
    let Some(uri) = app.policy().backchannel_logout_uri.clone() else {
        return Try::Drop("the app no longer has a backchannel_logout_uri".into());
    };
    let now = state.clock.now();
    let claims = LogoutClaims {
        iss: state.config.issuer.clone(),
        aud: row.client_id.clone(),
        iat: now,
        exp: now + TOKEN_TTL_SECS,
        jti: row.id.clone(),
        sub: row.user_id.clone(),
        sid: row.sid.clone(),
        events: json!({ LOGOUT_EVENT: {} }),
    };
    let alg = app.policy().id_token_alg;
    let token = match state.keys.ring_signing(alg).await {
        Ok(ring) => match keys::signing(alg, move || ring.sign_logout(alg, &claims)).await {
            Ok(token) => token,
            // The inner error, not the "internal error" a client would be shown.
            Err(err) => return Try::Again(format!("signing failed: {err:?}")),
        },
        Err(err) => return Try::Again(format!("reading the keys failed: {err}")),
    };
    let answer = HTTP
        .post(&uri)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match answer {
        Ok(answer) if answer.status().is_success() => Try::Sent,
        Ok(answer) => {
            let status = answer.status();
            let transient = status.is_server_error()
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            let why = format!("the app answered {status}");
            if transient {
                Try::Again(why)
            } else {
                Try::Drop(why)
            }
        }
        // The error names the URL, which is registered metadata, not a secret.
        Err(err) => Try::Again(format!("the POST failed: {err}")),
    }
}

/// Records how a try went: deletes the row, or schedules the next try.
async fn settle(
    state: &AppState,
    row: &logout_deliveries::Model,
    outcome: Try,
    delivered: &mut Delivered,
) -> AppResult<()> {
    use logout_deliveries::Column as D;
    let now = state.clock.now();
    let attempts = row.attempts.saturating_add(1);
    let outcome = match outcome {
        Try::Again(why) if now >= row.created_at + GIVE_UP_AFTER_SECS => {
            Try::Drop(format!("{why}; given up after {attempts} tries"))
        }
        other => other,
    };
    match outcome {
        Try::Sent => {
            delivered.sent += 1;
            tracing::info!(client.id = %row.client_id, attempts, "back-channel logout delivered");
        }
        Try::Drop(why) => {
            delivered.dropped += 1;
            tracing::warn!(client.id = %row.client_id, attempts, reason = %why, "back-channel logout not delivered");
        }
        Try::Again(why) => {
            delivered.retrying += 1;
            tracing::info!(client.id = %row.client_id, attempts, reason = %why, "back-channel logout failed; will try again");
            logout_deliveries::Entity::update_many()
                .col_expr(D::Attempts, Expr::value(attempts))
                .col_expr(D::NextAttemptAt, Expr::value(now + backoff(attempts)))
                .filter(D::Id.eq(row.id.as_str()))
                .exec(&state.db)
                .await?;
            return Ok(());
        }
    }
    logout_deliveries::Entity::delete_by_id(row.id.as_str())
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Seconds before the try after the `attempts`-th: 2, 4, 8, … up to [`MAX_BACKOFF_SECS`].
pub fn backoff(attempts: i32) -> i64 {
    let exponent = attempts.clamp(1, 20) as u32;
    (1i64 << exponent).min(MAX_BACKOFF_SECS)
}

/// Runs [`deliver_due`] on this node: at once when this node queued something, otherwise every
/// few seconds (rows another node wrote, or that came due again). A failure is logged and tried
/// again at the next round. Abort the handle at shutdown.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    let wake: Arc<Wake> = state.logouts.clone();
    tokio::spawn(async move {
        loop {
            match deliver_due(&state).await {
                // A full batch: more may be due right now.
                Ok(delivered) if delivered.claimed() as u64 == BATCH => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "back-channel logout round failed"),
            }
            let _ = tokio::time::timeout(POLL, wake.0.notified()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff(1), 2);
        assert_eq!(backoff(2), 4);
        assert_eq!(backoff(9), 512);
        assert_eq!(backoff(10), MAX_BACKOFF_SECS);
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF_SECS);
    }
}
