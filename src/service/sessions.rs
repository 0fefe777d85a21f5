//! First-party sessions: `login`, `refreshSession`, `logout`, and turning a bearer token into a
//! [`Principal`].
//!
//! A session is one refresh-token family (see [`crate::service::refresh`]): a token works once,
//! and presenting a rotated-out one revokes the whole session, and with it every access token
//! that names it in `sid`. Each refresh token lives `refresh_token_ttl` from its issue (a
//! sliding session).

use std::net::IpAddr;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, NotSet, QueryFilter,
    Set, TransactionTrait,
};
use secrecy::SecretString;

use crate::auth::jwt::{AccessClaims, JwtType};
use crate::auth::{Principal, SessionRef};
use crate::db::entities::{sessions, users};
use crate::domain::ids::SessionId;
use crate::domain::{ScopeSet, secs};
use crate::error::{AppError, AppResult};
use crate::metrics::SecurityEvent;
use crate::service::audit::Actor;
use crate::service::refresh::{self, Families, Rotation};
use crate::service::{AppState, users as user_service};

/// What `login` and `refreshSession` return.
pub struct SessionTokens {
    /// A first-party access JWT (kind `session`).
    pub access_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The new refresh token; the previous one no longer works.
    pub refresh_token: SecretString,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Signs a first-party access token for `session` and packs it with the refresh token.
async fn tokens(
    state: &AppState,
    session: &sessions::Model,
    refresh_token: String,
) -> AppResult<SessionTokens> {
    let now = state.clock.now();
    let ttl = secs(state.config.access_token_ttl);
    let claims = AccessClaims::session(
        &state.config.issuer,
        &session.user_id,
        &session.id,
        &session.scope,
        now,
        ttl,
    );
    Ok(SessionTokens {
        access_token: SecretString::from(state.keys.sign(&claims).await?),
        expires_in: ttl,
        refresh_token: SecretString::from(refresh_token),
        scope: session.scope.clone(),
    })
}

/// Checks the password and opens a session with `scope` (a space-separated subset of the
/// management scopes, or `all`; `None` means `all`). `addr` is the client's address, for the
/// sign-in back-off.
pub async fn login(
    state: &AppState,
    username: &str,
    password: SecretString,
    scope: Option<&str>,
    addr: Option<IpAddr>,
) -> AppResult<SessionTokens> {
    let scopes = match scope {
        None => ScopeSet::all(),
        Some(text) => ScopeSet::parse(text)?,
    };
    let user =
        user_service::authenticate(state, username, password, addr, &Actor::Anonymous).await?;
    let now = state.clock.now();
    let session_id = SessionId::generate();
    let (refresh_token, stored) = refresh::mint(session_id.as_str());
    let txn = state.db.begin().await?;
    let session = sessions::ActiveModel {
        id: Set(session_id.as_str().to_string()),
        user_id: Set(user.id.clone()),
        scope: Set(scopes.to_string()),
        refresh_hash: Set(stored),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now + secs(state.config.refresh_token_ttl)),
        revoked_at: Set(None),
        retired_refresh: NotSet,
    }
    .insert(&txn)
    .await?;
    // Disabled since the password was checked: no session (the transaction is dropped).
    if !user_service::still_enabled(&txn, &user.id).await? {
        return Err(AppError::InvalidCredentials);
    }
    txn.commit().await?;
    tracing::info!(user.id = %user.id, session.id = %session.id, "signed in");
    tokens(state, &session, refresh_token).await
}

/// The `sessions` table as refresh-token families.
struct SessionFamilies<'a> {
    db: &'a DatabaseConnection,
    ttl: i64,
}

impl Families for SessionFamilies<'_> {
    type Row = sessions::Model;

    async fn find(&self, id: &str) -> Result<Option<Self::Row>, DbErr> {
        sessions::Entity::find_by_id(id).one(self.db).await
    }

    fn admits(&self, row: &Self::Row) -> bool {
        row.revoked_at.is_none()
    }

    fn stored_digest<'r>(&self, row: &'r Self::Row) -> Option<&'r str> {
        Some(&row.refresh_hash)
    }

    fn retired<'r>(&self, row: &'r Self::Row) -> Option<&'r str> {
        row.retired_refresh.as_deref()
    }

    fn expired(&self, row: &Self::Row, now: i64) -> bool {
        row.expires_at <= now
    }

    async fn swap(&self, row: &Self::Row, from: &str, to: &str, now: i64) -> Result<bool, DbErr> {
        let swapped = sessions::Entity::update_many()
            .col_expr(sessions::Column::RefreshHash, to.into())
            .col_expr(
                sessions::Column::RetiredRefresh,
                refresh::retire(sessions::Column::RetiredRefresh, from),
            )
            .col_expr(sessions::Column::LastUsedAt, now.into())
            .col_expr(sessions::Column::ExpiresAt, (now + self.ttl).into())
            .filter(sessions::Column::Id.eq(&row.id))
            .filter(sessions::Column::RefreshHash.eq(from))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(self.db)
            .await?;
        Ok(swapped.rows_affected == 1)
    }

    /// Every request checks its session (`sid`): a revoked one ends its tokens on every node.
    async fn revoke(&self, row: &Self::Row, now: i64) -> Result<(), DbErr> {
        revoke(self.db, &row.id, now).await
    }
}

/// Marks a session revoked (its access tokens fail at once: every request checks `sid`).
async fn revoke(db: &DatabaseConnection, session_id: &str, at: i64) -> Result<(), DbErr> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, at.into())
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Exchanges a refresh token for a new access token and a new refresh token.
pub async fn refresh(state: &AppState, refresh_token: &str) -> AppResult<SessionTokens> {
    let families = SessionFamilies {
        db: &state.db,
        ttl: secs(state.config.refresh_token_ttl),
    };
    let now = state.clock.now();
    let rotation = refresh::rotate(&families, refresh_token, now, |_| {
        Ok::<(), std::convert::Infallible>(())
    })
    .await?;
    match rotation.unwrap_or_else(|never| match never {}) {
        Rotation::Rotated { row, token, .. } => tokens(state, &row, token).await,
        Rotation::Refused => Err(AppError::InvalidRefreshToken),
        Rotation::Reused => {
            tracing::warn!("refresh token reused; session revoked");
            state.metrics.security(SecurityEvent::RefreshReuse);
            Err(AppError::InvalidRefreshToken)
        }
    }
}

/// Ends the caller's session: its refresh token and its access tokens stop working.
pub async fn logout(state: &AppState, principal: &Principal) -> AppResult<()> {
    let me = principal.require_signed_in()?;
    let SessionRef::Api(session_id) = &me.session else {
        return Err(AppError::forbidden(
            "logout ends a session opened by login; sign out of the hosted pages there",
        ));
    };
    revoke(&state.db, session_id.as_str(), state.clock.now()).await?;
    tracing::info!(user.id = %me.user_id, session.id = %session_id, "signed out");
    Ok(())
}

/// Turns an `Authorization: Bearer` token into a [`Principal`]. A first-party token is only
/// good while its session is live; the user's roles are read fresh from the database, with the
/// session, in one query.
pub async fn principal_from_bearer(state: &AppState, token: &str) -> AppResult<Principal> {
    let issuer = &state.config.issuer;
    // An app's access token is a valid token, but never a management caller.
    if JwtType::of(token) == Some(JwtType::AccessToken) {
        return Ok(match state.keys.verify_app_token(token, issuer).await? {
            Some(_) => Principal::ThirdParty,
            None => Principal::InvalidToken,
        });
    }
    let Some(claims) = state.keys.verify_session_token(token, issuer).await? else {
        return Ok(Principal::InvalidToken);
    };
    let Some(sid) = claims.sid else {
        return Ok(Principal::InvalidToken);
    };
    let Ok(scopes) = ScopeSet::parse(&claims.scope) else {
        return Ok(Principal::InvalidToken);
    };
    let live = sessions::Entity::find_by_id(sid.as_str())
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::UserId.eq(claims.sub.as_str()))
        .find_also_related(users::Entity)
        .one(&state.db)
        .await?;
    let Some((session, Some(user))) = live else {
        return Ok(Principal::InvalidToken);
    };
    user_service::principal_of(
        &user,
        scopes,
        SessionRef::Api(SessionId::from_trusted(session.id)),
        session.created_at,
    )
}
