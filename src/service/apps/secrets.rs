//! An app's client secrets: 256 random bits each, shown once, stored only as SHA-256 digests,
//! compared in constant time. Up to [`MAX_LIVE`] are live at once, so that a rotation overlaps:
//! the new secret works at once and the previous ones until the grace period given with the
//! rotation ends. Revoking one ends it at once.
//!
//! Rotations of one app are serialised by taking the app row's write lock first, so that of
//! concurrent rotations each one either hands out a secret that works (and the ones before it
//! keep working through their grace) or is told there is no room (409). A rotation with no
//! grace ends every other secret at once, so it is refused (409) within
//! [`FRESH_ROTATION_SECS`] of another rotation, whose new secret it would end.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use secrecy::SecretString;
use subtle::ConstantTimeEq;

use super::{AppRecord, AppWithSecret, audit, record};
use crate::auth::Principal;
use crate::db::entities::{app_secrets, apps, audit_events};
use crate::domain::Scope;
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::capabilities::ClientAuthMethod;
use crate::domain::ids::ClientId;
use crate::domain::secret::{digest, random_token};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::changes::{self, Change};

/// Most secrets live at once.
pub const MAX_LIVE: usize = 3;
/// How long the previous secrets keep working after a rotation, unless told otherwise.
pub const DEFAULT_GRACE_SECS: i64 = 24 * 3600;
/// The longest grace period.
pub const MAX_GRACE_SECS: i64 = 30 * 24 * 3600;
/// `last_used_at` is written at most this often per secret.
const LAST_USED_EVERY_SECS: i64 = 60;

/// A secret as the cache holds it.
pub(crate) struct SecretRecord {
    id: String,
    digest: String,
    expires_at: Option<i64>,
    /// When this node last wrote `last_used_at` (or what the row said when loaded).
    last_used_at: AtomicI64,
}

impl From<app_secrets::Model> for SecretRecord {
    fn from(row: app_secrets::Model) -> Self {
        Self {
            id: row.id,
            digest: row.secret_hash,
            expires_at: row.expires_at,
            last_used_at: AtomicI64::new(row.last_used_at.unwrap_or(i64::MIN)),
        }
    }
}

impl SecretRecord {
    fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// A secret as administrators see it: never the secret or its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// The secret's id.
    pub id: String,
    /// When it was made, Unix seconds.
    pub created_at: i64,
    /// When it stops working; `None` while it is the newest.
    pub expires_at: Option<i64>,
    /// When the token endpoint last accepted it, to the minute.
    pub last_used_at: Option<i64>,
}

/// How long a rotated-in secret is protected from a rotation with no grace.
pub const FRESH_ROTATION_SECS: i64 = 10;

/// Seconds since this app's last rotation, if it was less than [`FRESH_ROTATION_SECS`] ago
/// (read from the audit trail, which every rotation writes in its own transaction).
async fn last_rotation_age(
    db: &impl ConnectionTrait,
    client_id: &ClientId,
    now: i64,
) -> AppResult<Option<i64>> {
    use sea_orm::QueryOrder;
    let last = audit_events::Entity::find()
        .filter(audit_events::Column::TargetType.eq(AuditTarget::App.as_str()))
        .filter(audit_events::Column::TargetId.eq(client_id.as_str()))
        .filter(audit_events::Column::Action.eq(AuditAction::AppSecretRotate.as_str()))
        .filter(audit_events::Column::At.gt(now - FRESH_ROTATION_SECS))
        .order_by_desc(audit_events::Column::Id)
        .one(db)
        .await?;
    Ok(last.map(|row| (now - row.at).max(0)))
}

/// Draws a new secret for `client_id`, stores its digest, and returns it in clear.
pub(super) async fn insert_secret(
    db: &impl ConnectionTrait,
    client_id: &ClientId,
    now: i64,
) -> AppResult<SecretString> {
    let secret = random_token(32);
    app_secrets::Entity::insert(app_secrets::ActiveModel {
        id: Set(random_token(16)),
        client_id: Set(client_id.to_string()),
        secret_hash: Set(digest(&secret)),
        created_at: Set(now),
        expires_at: Set(None),
        last_used_at: Set(None),
    })
    .exec_without_returning(db)
    .await
    .map_err(super::app_gone)?;
    Ok(SecretString::from(secret))
}

/// Oauth admins: adds a new secret, shown once. The app's other live secrets keep working for
/// `grace_secs` (default [`DEFAULT_GRACE_SECS`]; 0 ends them now, at most [`MAX_GRACE_SECS`]).
pub async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
    grace_secs: Option<i64>,
) -> AppResult<AppWithSecret> {
    principal.require_oauth_admin(Scope::AppWrite)?;
    let grace = grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(AppError::invalid(format!(
            "grace_seconds: must be between 0 and {MAX_GRACE_SECS}"
        )));
    }
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    // The app row's write lock first: concurrent rotations of this app queue here.
    let touched = apps::Entity::update_many()
        .col_expr(apps::Column::UpdatedAt, Expr::value(now))
        .filter(apps::Column::ClientId.eq(client_id.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let row = touched
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("app"))?;
    if ClientAuthMethod::parse(&row.token_endpoint_auth_method) == Some(ClientAuthMethod::None) {
        return Err(AppError::invalid(
            "the app is a public client (token_endpoint_auth_method none): it has no secret",
        ));
    }
    // Dead secrets go; the live ones end with the grace period (or earlier, as they were).
    let of_app = app_secrets::Column::ClientId.eq(client_id.as_str());
    app_secrets::Entity::delete_many()
        .filter(of_app.clone())
        .filter(app_secrets::Column::ExpiresAt.lte(now))
        .exec(&txn)
        .await?;
    if grace == 0 {
        // Every live secret ends now, so there is always room; but one handed out by another
        // rotation a moment ago (a double click, a retry, a second administrator) would die
        // the instant its caller was told "here is your new secret". The rotation before this
        // one committed first (the app row's lock), so its audit row is there to be seen.
        if let Some(age) = last_rotation_age(&txn, client_id, now).await? {
            return Err(AppError::Conflict(format!(
                "the app's secret was rotated {age} seconds ago, and a rotation with no grace \
                 would end that new secret at once: revoke it by its id if that is meant, or \
                 rotate again after {FRESH_ROTATION_SECS} seconds"
            )));
        }
    } else {
        // The live secrets all stay live through the grace, next to the new one.
        let live = app_secrets::Entity::find()
            .filter(of_app.clone())
            .all(&txn)
            .await?;
        if live.len() >= MAX_LIVE {
            return Err(AppError::Conflict(format!(
                "the app already holds {MAX_LIVE} live secrets: revoke one, rotate with \
                 grace_seconds 0, or rotate after the oldest has expired"
            )));
        }
    }
    let ends = now + grace;
    app_secrets::Entity::update_many()
        .col_expr(app_secrets::Column::ExpiresAt, Expr::value(ends))
        .filter(of_app)
        .filter(
            Condition::any()
                .add(app_secrets::Column::ExpiresAt.is_null())
                .add(app_secrets::Column::ExpiresAt.gt(ends)),
        )
        .exec(&txn)
        .await?;
    let client_secret = insert_secret(&txn, client_id, now).await?;
    let recorded = audit(
        &txn,
        now,
        principal,
        AuditAction::AppSecretRotate,
        client_id,
    )
    .await?;
    txn.commit().await?;
    recorded.log();
    changes::announce(state, Change::App(client_id)).await;
    Ok(AppWithSecret {
        app: super::app_of(&row),
        client_secret: Some(client_secret),
    })
}

/// Oauth admins: the app's live secrets, newest first (never a secret or a digest).
pub async fn list_secrets(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
) -> AppResult<Vec<SecretInfo>> {
    principal.require_oauth_admin(Scope::AppRead)?;
    if record(state, client_id).await?.is_none() {
        return Err(AppError::NotFound("app"));
    }
    let now = state.clock.now();
    let rows = app_secrets::Entity::find()
        .filter(app_secrets::Column::ClientId.eq(client_id.as_str()))
        .filter(
            Condition::any()
                .add(app_secrets::Column::ExpiresAt.is_null())
                .add(app_secrets::Column::ExpiresAt.gt(now)),
        )
        .all(&state.db)
        .await?;
    let mut rows = rows;
    // Newest first; of secrets made the same second, the one without an end is the newest.
    rows.sort_by_key(|row| {
        (
            std::cmp::Reverse(row.created_at),
            std::cmp::Reverse(row.expires_at.unwrap_or(i64::MAX)),
        )
    });
    Ok(rows
        .into_iter()
        .map(|row| SecretInfo {
            id: row.id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
        .collect())
}

/// Oauth admins: ends one secret now.
pub async fn revoke_secret(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
    secret_id: &str,
) -> AppResult<()> {
    principal.require_oauth_admin(Scope::AppWrite)?;
    let txn = state.db.begin().await?;
    let deleted = app_secrets::Entity::delete_many()
        .filter(app_secrets::Column::ClientId.eq(client_id.as_str()))
        .filter(app_secrets::Column::Id.eq(secret_id))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::NotFound("secret"));
    }
    let now = state.clock.now();
    let recorded = audit(
        &txn,
        now,
        principal,
        AuditAction::AppSecretRevoke,
        client_id,
    )
    .await?;
    txn.commit().await?;
    recorded.log();
    changes::announce(state, Change::App(client_id)).await;
    Ok(())
}

/// The app `client_id` when it authenticates with `method` and, for a confidential app, one of
/// its live secrets (compared in constant time). An unknown client, a method other than the
/// app's, and a wrong secret are indistinguishable to the caller.
pub(crate) async fn authenticate_client(
    state: &AppState,
    client_id: &ClientId,
    method: ClientAuthMethod,
    secret: Option<&str>,
) -> AppResult<Option<Arc<AppRecord>>> {
    let Some(app) = record(state, client_id).await? else {
        return Ok(None);
    };
    if app.policy().auth_method != method {
        return Ok(None);
    }
    let Some(secret) = secret else {
        return Ok(method.is_public().then_some(app));
    };
    if method.is_public() {
        return Ok(None);
    }
    let now = state.clock.now();
    let presented = digest(secret);
    let mut matched = None;
    for stored in app
        .secrets(&state.db)
        .await?
        .iter()
        .filter(|s| s.is_live(now))
    {
        if bool::from(presented.as_bytes().ct_eq(stored.digest.as_bytes())) {
            matched = Some(stored);
        }
    }
    let Some(stored) = matched else {
        return Ok(None);
    };
    let last = stored.last_used_at.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= LAST_USED_EVERY_SECS
        && stored
            .last_used_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        app_secrets::Entity::update_many()
            .col_expr(app_secrets::Column::LastUsedAt, Expr::value(now))
            .filter(app_secrets::Column::Id.eq(stored.id.as_str()))
            .filter(
                Condition::any()
                    .add(app_secrets::Column::LastUsedAt.is_null())
                    .add(app_secrets::Column::LastUsedAt.lt(now - LAST_USED_EVERY_SECS)),
            )
            .exec(&state.db)
            .await?;
    }
    Ok(Some(app))
}
