//! `grant_type=refresh_token`: an app's refresh token rotates (see
//! [`crate::service::refresh`]); a scope may only narrow what was granted.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::{Client, Issue, OAuthError, TokenResponse, end_grant, issue, live, touch_connection};
use crate::db::entities::grants;
use crate::domain::oauth::OidcScope;
use crate::domain::scopes::Scopes;
use crate::domain::secs;
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::changes::Change;
use crate::service::refresh::{self, Families, Rotation};

const BAD_REFRESH: &str = "the refresh token is invalid, expired or was already used";

/// The `grants` table as refresh-token families of one client.
struct GrantFamilies<'a> {
    client_id: &'a str,
    ttl: i64,
}

impl Families for GrantFamilies<'_> {
    type Row = grants::Model;

    async fn find(&self, db: &DatabaseConnection, id: &str) -> Result<Option<Self::Row>, DbErr> {
        grants::Entity::find_by_id(id).one(db).await
    }

    /// Only the client it was issued to may refresh a grant, and only a grant that was
    /// redeemed with `offline_access` ever handed out a refresh token.
    fn admits(&self, row: &Self::Row) -> bool {
        row.client_id == self.client_id
            && row.code_used_at.is_some()
            && Scopes::filter(&row.scope)
                .oidc
                .contains(OidcScope::OfflineAccess)
    }

    fn stored_digest<'r>(&self, row: &'r Self::Row) -> Option<&'r str> {
        row.refresh_hash.as_deref()
    }

    fn expired(&self, row: &Self::Row, now: i64) -> bool {
        row.refresh_expires_at.is_none_or(|at| at <= now)
    }

    async fn swap(
        &self,
        db: &DatabaseConnection,
        row: &Self::Row,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<bool, DbErr> {
        let rotated = grants::Entity::update_many()
            .col_expr(grants::Column::RefreshHash, Expr::value(to))
            .col_expr(
                grants::Column::RefreshExpiresAt,
                Expr::value(now + self.ttl),
            )
            .filter(grants::Column::Id.eq(&row.id))
            .filter(grants::Column::RefreshHash.eq(from))
            .exec(db)
            .await?;
        Ok(rotated.rows_affected == 1)
    }

    async fn revoke(
        &self,
        db: &DatabaseConnection,
        row: &Self::Row,
        _now: i64,
    ) -> Result<(), DbErr> {
        end_grant(db, &row.id).await.map(drop)
    }
}

/// The scope of a refreshed token: the granted scope, or a narrower one asked for. A word that
/// is not a known scope, or a scope beyond the grant, is `invalid_scope`.
fn narrowed(granted: &Scopes, asked: Option<&str>) -> Result<Scopes, OAuthError> {
    let Some(asked) = asked.filter(|s| !s.trim().is_empty()) else {
        return Ok(granted.clone());
    };
    match Scopes::parse(asked) {
        Ok(narrowed) if narrowed.is_subset_of(granted) => Ok(narrowed),
        _ => Err(OAuthError::InvalidScope(format!(
            "scope may only narrow the granted scope ({granted})"
        ))),
    }
}

/// `grant_type=refresh_token` for an authenticated `client`; rotates the refresh token.
pub async fn refresh(
    state: &AppState,
    client: &Client,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let families = GrantFamilies {
        client_id: client.id(),
        ttl: secs(state.config.refresh_token_ttl),
    };
    let now = state.clock.now();
    let rotation = refresh::rotate(&state.db, &families, refresh_token, now, |grant| {
        narrowed(&Scopes::filter(&grant.scope), scope)
    })
    .await??;
    let (grant, token, scope) = match rotation {
        Rotation::Rotated {
            row,
            token,
            checked,
        } => (row, token, checked),
        Rotation::Refused => return Err(OAuthError::InvalidGrant(BAD_REFRESH.into())),
        Rotation::Reused => {
            // The family that was ended is the one the token named.
            let change = refresh::split(refresh_token)
                .map_or(Change::Tokens, |(family, _)| Change::Grant(family));
            live::ended(state, change).await;
            tracing::warn!(client.id = %client.id(), "refresh token reused; grant revoked");
            state.metrics.security(SecurityEvent::RefreshReuse);
            return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
        }
    };
    touch_connection(state, &grant, now).await;
    issue(
        state,
        Issue {
            client,
            grant: &grant,
            scope: &scope.to_string(),
            nonce: None,
            refresh_token: Some(token),
        },
    )
    .await
}
