//! Revocation (RFC 7009). The client authenticates as at the token endpoint; a token that is
//! unknown, expired, already revoked or issued to another client is answered as a success and
//! changes nothing (§2.2). `token_type_hint` only decides which kind is looked for first.
//!
//! - A refresh token ends its grant: the family's refresh and access tokens stop working at
//!   once (userinfo and introspection check the grant).
//! - An access token of a grant ends that grant too. An access token is a signed JWT read
//!   without asking idgraph, so it cannot be withdrawn alone; the grant it names can, and ending
//!   it is what a client revoking a token wants (the user signed out of the app). RFC 7009 §2.1
//!   allows revoking the related tokens.
//! - An app's token for itself (no grant) is listed in `revoked_tokens` until it would have
//!   expired: introspection answers it inactive. The housekeeping sweep removes the entries
//!   whose token has expired, so the table holds little more than the revoked tokens still
//!   within their lifetime.

use sea_orm::sea_query::OnConflict;
use sea_orm::{DbErr, EntityTrait, Set};

use super::{Client, OAuthError};
use crate::auth::jwt::JwtType;
use crate::db::entities::{grants, revoked_tokens};
use crate::domain::secret::digest_matches;
use crate::service::AppState;
use crate::service::changes::Change;
use crate::service::refresh;

/// Revokes `token` for `client`; every answer but a server fault is a success.
pub async fn revoke(
    state: &AppState,
    client: &Client,
    token: &str,
    hint: Option<&str>,
) -> Result<(), OAuthError> {
    let refresh_first = hint == Some("refresh_token");
    if refresh_first && revoke_refresh(state, client, token).await? {
        return Ok(());
    }
    if revoke_access(state, client, token).await? {
        return Ok(());
    }
    if !refresh_first {
        revoke_refresh(state, client, token).await?;
    }
    Ok(())
}

/// Ends the grant of `client`'s current refresh token `token`; whether it was one.
async fn revoke_refresh(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<bool, OAuthError> {
    let Some((family, secret)) = refresh::split(token) else {
        return Ok(false);
    };
    let Some(grant) = grants::Entity::find_by_id(family).one(&state.db).await? else {
        return Ok(false);
    };
    let current = grant
        .refresh_hash
        .as_deref()
        .is_some_and(|stored| digest_matches(secret, stored));
    if grant.client_id != client.id() || !current {
        return Ok(false);
    }
    super::revoke_grant(state, &grant.id).await?;
    tracing::info!(client.id = %client.id(), "grant revoked by its refresh token");
    Ok(true)
}

/// Ends `client`'s access token `token` (its grant, or the token itself); whether it was one.
async fn revoke_access(state: &AppState, client: &Client, token: &str) -> Result<bool, OAuthError> {
    if JwtType::of(token) != Some(JwtType::AccessToken) {
        return Ok(false);
    }
    let Some(claims) = state
        .keys
        .verify_app_token(token, &state.config.issuer)
        .await?
        .filter(|claims| claims.client_id.as_deref() == Some(client.id()))
    else {
        return Ok(false);
    };
    match &claims.gid {
        // The signed token names both its grant and its app, checked above to be the caller.
        Some(gid) => {
            super::revoke_grant(state, gid).await?;
        }
        None => {
            if list_revoked(state, client, &claims.jti, claims.exp).await? {
                super::live::ended(state, Change::Token(&claims.jti)).await;
            }
        }
    }
    tracing::info!(client.id = %client.id(), "access token revoked");
    Ok(true)
}

/// Lists the app token `jti` as revoked until `expires_at`; whether it was not listed yet.
/// Entries whose token has expired are removed by the housekeeping sweep, a clock leeway later
/// (`service::housekeeping`).
async fn list_revoked(
    state: &AppState,
    client: &Client,
    jti: &str,
    expires_at: i64,
) -> Result<bool, DbErr> {
    let listed = revoked_tokens::Entity::insert(revoked_tokens::ActiveModel {
        jti: Set(jti.to_string()),
        client_id: Set(client.id().to_string()),
        expires_at: Set(expires_at),
    })
    .on_conflict(
        OnConflict::column(revoked_tokens::Column::Jti)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await;
    match listed {
        Ok(rows) => Ok(rows > 0),
        // The app was deleted meanwhile, and every token of it with it: nothing is left to list.
        Err(err) if crate::db::foreign_key_violation(&err) => Ok(false),
        Err(err) => Err(err),
    }
}
