//! Housekeeping: a sweep, run on every node, that deletes the rows nothing can use any more, so
//! that no table grows for ever.
//!
//! Each table has one rule below saying when a row is dead. A row goes only after the last
//! moment any request could still read it (a token still valid, a replay still to be caught),
//! and [`LEEWAY_SECS`] later still, for a node whose clock lags. A dead row gets every request
//! the same answer a missing row gets, so deleting it changes no answer and needs no
//! announcement to the other nodes' caches.
//!
//! Rows go in batches, by primary key: the keys of at most `batch` dead rows are chosen in a
//! subquery with a `LIMIT`. On PostgreSQL that subquery locks the rows it picks and skips rows
//! already locked (`FOR UPDATE SKIP LOCKED`, like the sign-in back-off's purge in
//! [`crate::service::throttle`]): nodes sweeping at once share the rows out instead of waiting
//! for each other, and a row a request holds waits for the next sweep. On SQLite one writer at a
//! time makes the same statement safe. A table is swept until a batch comes back short, at most
//! [`MAX_BATCHES`] times per sweep. Deletes are idempotent, so two nodes can never delete a row
//! twice or count it twice.
//!
//! Audit events go once they are older than `audit_retention_days`.
//!
//! Tables with no lifetime are never swept: users, apps and their logos, origins, connections
//! (a consent lasts until the user revokes it) and server secrets. Signing keys are left to
//! `idgraph keys rotate`, which retires them.

use std::time::Duration;

use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, DeleteMany, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait,
};
use tokio::task::JoinHandle;

use crate::auth::jwt::LEEWAY_SECS;
use crate::db::entities::{
    app_secrets, audit_events, browser_sessions, grants, revoked_tokens, session_apps, sessions,
    sign_in_attempts,
};
use crate::domain::secs;
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::throttle::FORGET_AFTER;

/// Rows deleted per statement by the background sweep.
pub const BATCH: u64 = 500;

/// Most batches per table in one sweep, so that a sweep never runs long; whatever is left waits
/// for the next one.
pub const MAX_BATCHES: u32 = 20;

/// How often each node sweeps, on average; each wait is drawn within ± a fifth of it, so that
/// nodes started together drift apart.
pub const PERIOD: Duration = Duration::from_secs(5 * 60);

/// How many rows one sweep deleted, per rule (for the logs and the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// `grants` whose authorization code expired unredeemed.
    pub codes: u64,
    /// `grants` of redeemed token families none of whose tokens works any more.
    pub grants: u64,
    /// First-party `sessions`, revoked, or expired along with their last access token.
    pub sessions: u64,
    /// `browser_sessions` past their end.
    pub browser_sessions: u64,
    /// `app_secrets` past their end.
    pub app_secrets: u64,
    /// `revoked_tokens` whose tokens have expired anyway.
    pub revoked_tokens: u64,
    /// `sign_in_attempts` idle for longer than the back-off remembers.
    pub sign_in_attempts: u64,
    /// `audit_events` older than `audit_retention_days`.
    pub audit_events: u64,
    /// `session_apps` whose browser session has gone (nothing is owed any more).
    pub session_apps: u64,
}

impl Swept {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.by_table().iter().map(|(_, rows)| rows).sum()
    }

    /// Each count with its field's name (codes are `grants` rows counted apart), for a metric
    /// labelled by table.
    pub fn by_table(&self) -> [(&'static str, u64); 9] {
        [
            ("codes", self.codes),
            ("grants", self.grants),
            ("sessions", self.sessions),
            ("browser_sessions", self.browser_sessions),
            ("app_secrets", self.app_secrets),
            ("revoked_tokens", self.revoked_tokens),
            ("sign_in_attempts", self.sign_in_attempts),
            ("audit_events", self.audit_events),
            ("session_apps", self.session_apps),
        ]
    }
}

/// The times one sweep compares with, all from one reading of the clock.
struct Cutoffs {
    /// Unix seconds, less the leeway: a deadline before it (or, for a deadline that is itself
    /// the first dead second, at it) has passed on every node.
    passed: i64,
    /// [`Cutoffs::passed`] less the access-token lifetime: a refresh token that expired at or
    /// before it has outlived, everywhere, every access token issued with it.
    tokens: i64,
    /// Unix milliseconds: a sign-in count last touched before it is forgotten.
    attempts: i64,
    /// Unix seconds: an audit event made before it is past its retention.
    audit: i64,
}

impl Cutoffs {
    fn new(now_millis: i64, access_token_ttl: i64, audit_retention: i64) -> Self {
        let now = now_millis.div_euclid(1000);
        let passed = now - LEEWAY_SECS;
        let forget = i64::try_from(FORGET_AFTER.as_millis()).unwrap_or(i64::MAX);
        Self {
            passed,
            tokens: passed - access_token_ttl,
            attempts: now_millis.saturating_sub(forget),
            audit: now.saturating_sub(audit_retention),
        }
    }

    /// Grants whose code was never redeemed and has expired. Redeeming requires
    /// `code_expires_at >= now` (`tokens/code.rs`, `sql_rules` and `row_rules`), and until it is
    /// redeemed the row has issued no token: once the code is dead, so is the row.
    fn expired_codes(&self) -> Condition {
        Condition::all()
            .add(grants::Column::CodeUsedAt.is_null())
            .add(grants::Column::CodeExpiresAt.lt(self.passed))
    }

    /// Redeemed grants (token families) none of whose tokens works any more.
    ///
    /// The current refresh token is refused from `refresh_expires_at` on (`expired` in
    /// `tokens/grant_refresh.rs`). Each access token lives `access_token_ttl` from its issue, the
    /// last one at the last rotation, before `refresh_expires_at`: by `refresh_expires_at +
    /// access_token_ttl` it has expired. Until then the row must stay:
    /// userinfo and introspection check it (`tokens/live.rs`), and replaying a rotated-out
    /// refresh token or the used code must find it to end the family (`refresh::rotate`,
    /// `redeem_checked` in `tokens/code.rs`). After that a replay has nothing left to end, and an
    /// unknown family gets the same `invalid_grant`. Families carried over from the connection
    /// columns (migration 5) may lack `refresh_expires_at`; their last token was issued at
    /// `code_used_at`.
    ///
    /// A dead family given in a browser session that is still there stays even so: ending that
    /// session owes the app a back-channel logout, and `backchannel.rs` finds the apps it owes
    /// by their grants' `sid`, however short the refresh tokens' lifetime is beside the
    /// session's. It goes once the session has gone.
    fn dead_families(&self) -> Condition {
        use grants::Column as G;
        use sea_orm::sea_query::ExprTrait as _;
        // `NOT EXISTS`, an anti-join on the session's `sid` index on both stores (a `NOT IN`
        // over every live session degrades on PostgreSQL once they outgrow `work_mem`).
        let its_session_lasts = Query::select()
            .expr(Expr::cust("1"))
            .from(browser_sessions::Entity)
            .and_where(
                Expr::col((browser_sessions::Entity, browser_sessions::Column::Sid))
                    .equals((grants::Entity, G::Sid)),
            )
            .and_where(browser_sessions::Column::ExpiresAt.gt(self.passed))
            .to_owned();
        Condition::all()
            .add(G::CodeUsedAt.is_not_null())
            .add(
                Condition::any()
                    .add(G::RefreshExpiresAt.lte(self.tokens))
                    .add(
                        Condition::all()
                            .add(G::RefreshExpiresAt.is_null())
                            .add(G::CodeUsedAt.lte(self.tokens)),
                    ),
            )
            .add(Expr::exists(its_session_lasts).not())
    }

    /// First-party sessions no token can use. A revoked one at once: refreshing refuses it
    /// without ending anything, and its access tokens fail on `revoked_at` (`admits` and
    /// `principal_from_bearer` in `sessions.rs`), the answers a missing row gets. An expired one
    /// once its last access token has expired too: `principal_from_bearer` checks `revoked_at`,
    /// not `expires_at`, so the access token issued with the last refresh token works until
    /// its own `exp`, which may fall after `expires_at` when access tokens outlive refresh
    /// tokens.
    fn dead_sessions(&self) -> Condition {
        Condition::any()
            .add(sessions::Column::RevokedAt.is_not_null())
            .add(sessions::Column::ExpiresAt.lte(self.tokens))
    }

    /// Apps remembered for a browser session's back-channel logout once the session is gone
    /// or past its end: no sign-out can end it any more, so nothing is owed (a session that
    /// simply expires is not announced).
    fn sessions_gone(&self) -> Condition {
        use sea_orm::sea_query::ExprTrait as _;
        let its_session_lasts = Query::select()
            .expr(Expr::cust("1"))
            .from(browser_sessions::Entity)
            .and_where(
                Expr::col((browser_sessions::Entity, browser_sessions::Column::Sid))
                    .equals((session_apps::Entity, session_apps::Column::Sid)),
            )
            .and_where(browser_sessions::Column::ExpiresAt.gt(self.passed))
            .to_owned();
        Condition::all().add(Expr::exists(its_session_lasts).not())
    }

    /// Browser sessions past their end: `browser::find` accepts only `expires_at > now` (and
    /// signing in already drops that user's expired ones, `browser::sign_in`).
    fn expired_browser_sessions(&self) -> Condition {
        Condition::all().add(browser_sessions::Column::ExpiresAt.lte(self.passed))
    }

    /// App secrets past their end: only `expires_at > now` authenticates and is listed
    /// (`SecretRecord::is_live`, `list_secrets`); rotating already drops the app's dead ones. A
    /// secret without an end (the newest) is never dead.
    fn expired_app_secrets(&self) -> Condition {
        Condition::all().add(app_secrets::Column::ExpiresAt.lte(self.passed))
    }

    /// Revocations of app tokens that have expired, kept a leeway past expiry: introspection
    /// already refuses the token by its `exp`, so the entry has nothing left to say. Nothing
    /// else removes them (`list_revoked` in `tokens/revoke.rs` only adds).
    fn expired_revocations(&self) -> Condition {
        Condition::all().add(revoked_tokens::Column::ExpiresAt.lte(self.passed))
    }

    /// Sign-in counts idle for [`FORGET_AFTER`]: the back-off ignores them and starts afresh
    /// (`wait_at` and `reserve` in `throttle.rs`), the rule its own `purge_idle` applies after
    /// each reservation. That purge runs only when someone signs in; this one runs when no one
    /// does.
    fn idle_sign_in_counts(&self) -> Condition {
        Condition::all().add(sign_in_attempts::Column::LastAt.lt(self.attempts))
    }

    /// Audit events older than the retention (a setting, not a deadline any request reads).
    fn old_audit_events(&self) -> Condition {
        Condition::all().add(audit_events::Column::At.lt(self.audit))
    }
}

/// Deletes every dead row (up to [`MAX_BATCHES`] batches of `batch` rows per table), as of the
/// state's clock, and says how many went from each table.
pub async fn sweep(state: &AppState, batch: u64) -> AppResult<Swept> {
    let db = &state.db;
    let batch = batch.max(1);
    let cut = Cutoffs::new(
        state.clock.now_millis(),
        secs(state.config.access_token_ttl),
        secs(state.config.audit_retention),
    );
    // Each table's count reaches the metrics as soon as it is drained, so a failure on a later
    // table loses none of them.
    let removed = |table: &'static str, rows: u64| {
        state.metrics.removed(table, rows);
        rows
    };
    let swept = Swept {
        codes: removed(
            "codes",
            drain::<grants::Entity>(db, grants::Column::Id, cut.expired_codes(), batch).await?,
        ),
        grants: removed(
            "grants",
            drain::<grants::Entity>(db, grants::Column::Id, cut.dead_families(), batch).await?,
        ),
        sessions: removed(
            "sessions",
            drain::<sessions::Entity>(db, sessions::Column::Id, cut.dead_sessions(), batch).await?,
        ),
        browser_sessions: removed(
            "browser_sessions",
            drain::<browser_sessions::Entity>(
                db,
                browser_sessions::Column::Id,
                cut.expired_browser_sessions(),
                batch,
            )
            .await?,
        ),
        app_secrets: removed(
            "app_secrets",
            drain::<app_secrets::Entity>(
                db,
                app_secrets::Column::Id,
                cut.expired_app_secrets(),
                batch,
            )
            .await?,
        ),
        revoked_tokens: removed(
            "revoked_tokens",
            drain::<revoked_tokens::Entity>(
                db,
                revoked_tokens::Column::Jti,
                cut.expired_revocations(),
                batch,
            )
            .await?,
        ),
        sign_in_attempts: removed(
            "sign_in_attempts",
            drain::<sign_in_attempts::Entity>(
                db,
                sign_in_attempts::Column::Key,
                cut.idle_sign_in_counts(),
                batch,
            )
            .await?,
        ),
        audit_events: removed(
            "audit_events",
            drain::<audit_events::Entity>(
                db,
                audit_events::Column::Id,
                cut.old_audit_events(),
                batch,
            )
            .await?,
        ),
        session_apps: removed(
            "session_apps",
            drain::<session_apps::Entity>(
                db,
                session_apps::Column::Sid,
                cut.sessions_gone(),
                batch,
            )
            .await?,
        ),
    };
    Ok(swept)
}

/// Deletes the rows of `E` that match `dead`, batch after batch, until a batch comes back short
/// or [`MAX_BATCHES`] have run; returns how many went.
async fn drain<E: EntityTrait>(
    db: &DatabaseConnection,
    key: E::Column,
    dead: Condition,
    batch: u64,
) -> Result<u64, DbErr> {
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        let done = one_batch::<E>(key, dead.clone(), batch)
            .exec(db)
            .await?
            .rows_affected;
        deleted += done;
        if done < batch {
            break;
        }
    }
    Ok(deleted)
}

/// `DELETE FROM e WHERE key IN (SELECT key FROM e WHERE dead LIMIT batch FOR UPDATE SKIP
/// LOCKED)`; SQLite has no row locks, and its query builder leaves the locking clause out.
fn one_batch<E: EntityTrait>(key: E::Column, dead: Condition, batch: u64) -> DeleteMany<E> {
    let chosen = E::find()
        .select_only()
        .column(key)
        .filter(dead)
        .limit(batch)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_query();
    E::delete_many().filter(key.in_subquery(chosen))
}

/// Starts the background sweep of this node: every [`PERIOD`] (± a fifth), [`sweep`] in
/// batches of [`BATCH`]. What it deletes is logged (info), and so is a failure (warn), which
/// the next period simply tries again; the task never ends on its own. Abort the handle at
/// shutdown.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(next_wait()).await;
            match sweep(&state, BATCH).await {
                Ok(swept) => log(&swept),
                Err(err) => tracing::warn!(
                    error = %cause(&err),
                    "housekeeping sweep failed; the next one tries again"
                ),
            }
        }
    })
}

/// A wait drawn uniformly within [`PERIOD`] ± a fifth.
fn next_wait() -> Duration {
    let period = u64::try_from(PERIOD.as_millis()).unwrap_or(u64::MAX / 2);
    let jitter = period / 5;
    Duration::from_millis(rand::random_range(period - jitter..=period + jitter))
}

fn log(swept: &Swept) {
    if swept.total() == 0 {
        tracing::debug!("housekeeping: nothing had expired");
        return;
    }
    tracing::info!(
        swept.codes = swept.codes,
        swept.grants = swept.grants,
        swept.sessions = swept.sessions,
        swept.browser_sessions = swept.browser_sessions,
        swept.app_secrets = swept.app_secrets,
        swept.revoked_tokens = swept.revoked_tokens,
        swept.sign_in_attempts = swept.sign_in_attempts,
        swept.audit_events = swept.audit_events,
        swept.session_apps = swept.session_apps,
        "housekeeping removed expired rows"
    );
}

/// What went wrong, with an internal error's causes (which `AppError`'s display hides).
fn cause(err: &AppError) -> String {
    match err {
        AppError::Internal(cause) => format!("{cause:#}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::*;

    #[test]
    fn each_wait_falls_within_a_fifth_of_the_period() {
        for _ in 0..1000 {
            let wait = next_wait();
            assert!(wait >= PERIOD * 4 / 5 && wait <= PERIOD * 6 / 5, "{wait:?}");
        }
    }

    #[test]
    fn cutoffs_keep_the_leeway_and_the_access_token_lifetime() {
        let cut = Cutoffs::new(1_800_000_000_500, 900, 86_400);
        assert_eq!(cut.passed, 1_800_000_000 - LEEWAY_SECS);
        assert_eq!(cut.tokens, 1_800_000_000 - LEEWAY_SECS - 900);
        assert_eq!(cut.attempts, 1_800_000_000_500 - 15 * 60 * 1000);
        assert_eq!(cut.audit, 1_800_000_000 - 86_400);
    }

    #[test]
    fn a_batch_picks_its_keys_in_a_limited_subquery_locked_on_postgres_only() {
        let cut = Cutoffs::new(1_800_000_000_000, 900, 86_400);
        let statement = |backend: DbBackend| {
            one_batch::<grants::Entity>(grants::Column::Id, cut.expired_codes(), 500)
                .build(backend)
                .to_string()
        };
        let postgres = statement(DbBackend::Postgres);
        assert!(
            postgres.starts_with(r#"DELETE FROM "grants" WHERE"#),
            "{postgres}"
        );
        assert!(postgres.contains("IN (SELECT"), "{postgres}");
        assert!(postgres.contains("LIMIT 500"), "{postgres}");
        assert!(postgres.contains("FOR UPDATE SKIP LOCKED"), "{postgres}");
        let sqlite = statement(DbBackend::Sqlite);
        assert!(sqlite.contains("LIMIT 500"), "{sqlite}");
        assert!(!sqlite.contains("FOR UPDATE"), "{sqlite}");
    }
}
