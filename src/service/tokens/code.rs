//! `grant_type=authorization_code`: redeeming a consent's code for the first tokens of a new
//! family (RFC 6749 §4.1.3, RFC 7636 §4.6).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::{Issue, OAuthError, TokenResponse, issue, revoke_grant};
use crate::db::entities::{apps, connections};
use crate::domain::oauth::{OidcScope, OidcScopes, PkceMethod};
use crate::domain::secret::{digest, random_token};
use crate::domain::{now_unix, secs};
use crate::error::AppError;
use crate::service::consent::CODE_TTL_SECS;
use crate::state::AppState;

const BAD_CODE: &str = "the authorization code is invalid, expired or was already used";

/// `grant_type=authorization_code` for an authenticated `client`.
///
/// A good request is redeemed by one statement: an `UPDATE … RETURNING` whose conditions are
/// every rule (the code's digest, its client, unused, unexpired, the PKCE verifier answering the
/// stored challenge). When it matches nothing, [`redeem_checked`] reads the row to say exactly
/// what was wrong, and to revoke the grant when a used code is replayed.
pub async fn exchange_code(
    state: &AppState,
    client: &apps::Model,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if code.is_empty() || code.len() > 128 {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    let code_hash = digest(code);
    let well_formed = redirect_uri == Some(client.redirect_uri.as_str())
        && code_verifier.is_none_or(crate::domain::oauth::is_pkce_string);
    if well_formed {
        let now = now_unix();
        use connections::Column as C;
        let pkce = match code_verifier {
            None => Condition::all().add(C::CodeChallenge.is_null()),
            Some(verifier) => Condition::any()
                .add(
                    Condition::all()
                        .add(C::CodeChallengeMethod.eq(PkceMethod::S256.as_str()))
                        .add(C::CodeChallenge.eq(PkceMethod::S256.challenge_of(verifier))),
                )
                .add(
                    Condition::all()
                        .add(C::CodeChallengeMethod.eq(PkceMethod::Plain.as_str()))
                        .add(C::CodeChallenge.eq(verifier)),
                ),
        };
        let redemption = Redemption::new(state, now);
        let redeemed = redemption
            .update()
            .filter(C::CodeHash.eq(&code_hash))
            .filter(C::ClientId.eq(&client.client_id))
            .filter(C::CodeUsedAt.is_null())
            .filter(C::CodeTime.gte(now - CODE_TTL_SECS))
            .filter(pkce)
            .exec_with_returning(&state.db)
            .await?;
        if let Some(row) = redeemed.into_iter().next() {
            return redemption.issue(state, row).await;
        }
    }
    redeem_checked(state, client, &code_hash, redirect_uri, code_verifier).await
}

/// The new token family a redemption starts.
struct Redemption {
    now: i64,
    grant_id: String,
    /// The refresh token's secret, when `offline_access` was granted (known after the update).
    refresh_secret: String,
    refresh_expires_at: i64,
}

impl Redemption {
    fn new(state: &AppState, now: i64) -> Self {
        Self {
            now,
            grant_id: random_token(16),
            refresh_secret: random_token(32),
            refresh_expires_at: now + secs(state.config.refresh_token_ttl),
        }
    }

    /// Marks the code used and stores the new family. The refresh digest is stored for every
    /// redemption, so the statement does not depend on the row; the secret itself is handed
    /// out only when the granted scope holds `offline_access`, and the refresh grant refuses
    /// every other grant before looking at the digest.
    fn update(&self) -> sea_orm::UpdateMany<connections::Entity> {
        use connections::Column as C;
        connections::Entity::update_many()
            .col_expr(C::CodeUsedAt, Expr::value(self.now))
            .col_expr(C::GrantId, Expr::value(self.grant_id.clone()))
            .col_expr(C::RefreshHash, Expr::value(digest(&self.refresh_secret)))
            .col_expr(C::RefreshExpiresAt, Expr::value(self.refresh_expires_at))
            .col_expr(C::AccessTime, Expr::value(self.now))
    }

    async fn issue(
        self,
        state: &AppState,
        row: connections::Model,
    ) -> Result<TokenResponse, OAuthError> {
        let offline = OidcScopes::filter(&row.scope).contains(OidcScope::OfflineAccess);
        issue(
            state,
            Issue {
                user_id: &row.user_id,
                client_id: &row.client_id,
                grant_id: &self.grant_id,
                scope: &row.scope,
                auth_time: row.auth_time,
                nonce: row.nonce.clone(),
                refresh_token: offline
                    .then(|| format!("{}.{}", self.grant_id, self.refresh_secret)),
            },
        )
        .await
    }
}

/// The redemption path that reads the row first: precise errors, and replay detection.
async fn redeem_checked(
    state: &AppState,
    client: &apps::Model,
    code_hash: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let Some(row) = connections::Entity::find()
        .filter(connections::Column::CodeHash.eq(code_hash))
        .one(&state.db)
        .await?
    else {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    };
    if row.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    if row.code_used_at.is_some() {
        revoke_grant(state, &row.user_id, &row.client_id).await?;
        tracing::warn!(user.id = %row.user_id, client.id = %row.client_id, "authorization code replayed; tokens revoked");
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    let now = now_unix();
    if row.code_time.is_none_or(|at| at + CODE_TTL_SECS < now) {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    if redirect_uri != Some(client.redirect_uri.as_str()) {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri must equal the registered redirect URI".into(),
        ));
    }
    match (
        &row.code_challenge,
        row.code_challenge_method
            .as_deref()
            .and_then(PkceMethod::parse),
        code_verifier,
    ) {
        (Some(challenge), Some(method), Some(verifier)) => {
            if !crate::domain::oauth::is_pkce_string(verifier)
                || !method.verify(challenge, verifier)
            {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                ));
            }
        }
        (Some(_), _, None) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier is required: a code_challenge was given".into(),
            ));
        }
        (None, _, Some(_)) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier given, but no code_challenge was sent with the authorization request".into(),
            ));
        }
        (Some(_), None, Some(_)) => {
            return Err(OAuthError::Server(AppError::internal(anyhow::anyhow!(
                "stored PKCE method unreadable"
            ))));
        }
        (None, _, None) => {}
    }
    // Every rule holds, yet the one-statement redemption matched nothing: another request
    // redeemed the code in between, and if this update finds it used too, this is a replay.
    let redemption = Redemption::new(state, now);
    let redeemed = redemption
        .update()
        .filter(connections::Column::UserId.eq(&row.user_id))
        .filter(connections::Column::ClientId.eq(&row.client_id))
        .filter(connections::Column::CodeHash.eq(code_hash))
        .filter(connections::Column::CodeUsedAt.is_null())
        .exec_with_returning(&state.db)
        .await?;
    match redeemed.into_iter().next() {
        Some(row) => redemption.issue(state, row).await,
        None => {
            revoke_grant(state, &row.user_id, &row.client_id).await?;
            Err(OAuthError::InvalidGrant(BAD_CODE.into()))
        }
    }
}
