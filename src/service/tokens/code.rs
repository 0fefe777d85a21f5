//! `grant_type=authorization_code`: redeeming a consent's code for the first tokens of its
//! family (RFC 6749 §4.1.3, RFC 7636 §4.6).
//!
//! Each rule a redemption must meet is written twice: as a condition of the one `UPDATE …
//! RETURNING` that redeems a good code (the fast path, one statement), and as a check on the
//! row that says exactly what was wrong when that statement matched nothing (and revokes the
//! family when a used code is replayed). The integration test `every_redemption_rule_*` breaks
//! each rule alone and pins both halves to the same answer.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, UpdateMany};

use super::{Client, Issue, OAuthError, TokenResponse, issue, revoke_grant};
use crate::db::entities::grants;
use crate::domain::oauth::{OidcScope, OidcScopes, PkceMethod, is_pkce_string};
use crate::domain::secret::digest;
use crate::domain::secs;
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::refresh;

const BAD_CODE: &str = "the authorization code is invalid, expired or was already used";

/// What the client sent with the code.
struct Presented<'a> {
    code_hash: String,
    redirect_uri: Option<&'a str>,
    verifier: Option<&'a str>,
    /// The token request's `resource` (RFC 8707), which may only repeat the granted one.
    resource: Option<&'a str>,
}

/// The rules as SQL conditions on `grants`, for the fast path.
fn sql_rules(client: &Client, presented: &Presented<'_>, now: i64) -> Condition {
    use grants::Column as G;
    let redirect = presented.redirect_uri.unwrap_or_default();
    let pkce = match presented.verifier {
        None => Condition::all().add(G::CodeChallenge.is_null()),
        Some(verifier) => Condition::any()
            .add(
                Condition::all()
                    .add(G::CodeChallengeMethod.eq(PkceMethod::S256.as_str()))
                    .add(G::CodeChallenge.eq(PkceMethod::S256.challenge_of(verifier))),
            )
            .add(
                Condition::all()
                    .add(G::CodeChallengeMethod.eq(PkceMethod::Plain.as_str()))
                    .add(G::CodeChallenge.eq(verifier)),
            ),
    };
    // The granted resource: none, or one the app may still name, and the one the request
    // repeats if it names one (`exchange_code` sends only a resource the app may name here).
    let resource = match presented.resource {
        Some(asked) => Condition::all().add(G::Resource.eq(asked)),
        None => Condition::any()
            .add(G::Resource.is_null())
            .add(G::Resource.is_in(client.policy().resources.iter().map(String::as_str))),
    };
    Condition::all()
        .add(G::CodeHash.eq(presented.code_hash.as_str()))
        .add(G::ClientId.eq(client.id()))
        .add(G::CodeUsedAt.is_null())
        .add(G::CodeExpiresAt.gte(now))
        .add(
            Condition::any()
                .add(G::RedirectUri.is_null())
                .add(G::RedirectUri.eq(redirect)),
        )
        .add(pkce)
        .add(resource)
}

/// The same rules as checks on the row, in the order their errors are reported.
fn row_rules(
    client: &Client,
    presented: &Presented<'_>,
    row: &grants::Model,
    now: i64,
) -> Result<(), OAuthError> {
    if row.client_id != client.id() {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    if row.code_expires_at.is_none_or(|at| at < now) {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    let redirect_ok = match (&row.redirect_uri, presented.redirect_uri) {
        (_, None) => false,
        (Some(asked), Some(given)) => asked == given && client.registered(given),
        (None, Some(given)) => client.registered(given),
    };
    if !redirect_ok {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri must be the one the authorization request named (a registered one)"
                .into(),
        ));
    }
    let method = row
        .code_challenge_method
        .as_deref()
        .and_then(PkceMethod::parse);
    match (&row.code_challenge, method, presented.verifier) {
        (Some(challenge), Some(method), Some(verifier)) => {
            if !is_pkce_string(verifier) || !method.verify(challenge, verifier) {
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
            return Err(OAuthError::Server(crate::error::AppError::internal(
                anyhow::anyhow!("stored PKCE method unreadable"),
            )));
        }
        (None, _, None) => {}
    }
    client
        .policy()
        .user_token_audience(row.resource.as_deref(), presented.resource)
        .map_err(|why| OAuthError::InvalidTarget(why.into()))?;
    Ok(())
}

/// `grant_type=authorization_code` for an authenticated `client`. `resource`, when sent, must
/// be the one the authorization request named.
pub async fn exchange_code(
    state: &AppState,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    resource: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if code.is_empty() || code.len() > 128 {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    // A public client proves itself with PKCE alone. Its consents always carry an S256
    // challenge; a code without one was issued while the app was still confidential, and does
    // not redeem without its secret.
    if client.policy().is_public() && code_verifier.is_none() {
        return Err(OAuthError::InvalidGrant(
            "code_verifier is required: a public client proves itself with PKCE".into(),
        ));
    }
    let presented = Presented {
        code_hash: digest(code),
        redirect_uri,
        verifier: code_verifier,
        resource,
    };
    let now = state.clock.now();
    // A redirect URI that is not registered, a verifier that cannot be one, or a resource the
    // app may not name can never redeem: the fast path would only match nothing.
    let well_formed = redirect_uri.is_some_and(|uri| client.registered(uri))
        && code_verifier.is_none_or(is_pkce_string)
        && resource.is_none_or(|asked| client.policy().may_name(asked));
    if well_formed {
        let redemption = Redemption::new(state, now);
        let update = redemption
            .update()
            .filter(sql_rules(client, &presented, now));
        let redeemed = state.writer.update_returning(&state.db, update).await?;
        if let Some(row) = redeemed.into_iter().next() {
            return redemption.issue(state, client, row).await;
        }
    }
    redeem_checked(state, client, &presented, now).await
}

/// The refresh token a redemption starts its family with. Its secret is drawn before the
/// update; the token names the grant, which the update's returned row tells.
struct Redemption {
    now: i64,
    refresh_secret: String,
    refresh_digest: String,
    refresh_expires_at: i64,
}

impl Redemption {
    fn new(state: &AppState, now: i64) -> Self {
        let (refresh_secret, refresh_digest) = refresh::new_secret();
        Self {
            now,
            refresh_secret,
            refresh_digest,
            refresh_expires_at: now + secs(state.config.refresh_token_ttl),
        }
    }

    /// Marks the code used and stores the family's first refresh digest. The digest is stored
    /// for every redemption, so the statement does not depend on the row; the token itself is
    /// handed out only when the granted scope holds `offline_access`, and the refresh grant
    /// refuses every other grant before looking at the digest.
    fn update(&self) -> UpdateMany<grants::Entity> {
        use grants::Column as G;
        grants::Entity::update_many()
            .col_expr(G::CodeUsedAt, Expr::value(self.now))
            .col_expr(G::RefreshHash, Expr::value(self.refresh_digest.clone()))
            .col_expr(G::RefreshExpiresAt, Expr::value(self.refresh_expires_at))
    }

    async fn issue(
        self,
        state: &AppState,
        client: &Client,
        row: grants::Model,
    ) -> Result<TokenResponse, OAuthError> {
        let offline = OidcScopes::filter(&row.scope).contains(OidcScope::OfflineAccess);
        // The consent that made this code marked the connection used, under a minute ago.
        issue(
            state,
            Issue {
                client,
                grant: &row,
                scope: &row.scope,
                nonce: row.nonce.clone(),
                refresh_token: offline.then(|| refresh::join(&row.id, &self.refresh_secret)),
            },
        )
        .await
    }
}

/// The redemption path that reads the row first: precise errors, and replay detection.
async fn redeem_checked(
    state: &AppState,
    client: &Client,
    presented: &Presented<'_>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let Some(row) = grants::Entity::find()
        .filter(grants::Column::CodeHash.eq(presented.code_hash.as_str()))
        .one(&state.db)
        .await?
    else {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    };
    if row.code_used_at.is_some() && row.client_id == client.id() {
        revoke_grant(state, &row.id).await?;
        tracing::warn!(client.id = %client.id(), "authorization code replayed; its tokens revoked");
        state.metrics.security(SecurityEvent::CodeReplay);
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    row_rules(client, presented, &row, now)?;
    // Every rule holds, yet the one-statement redemption matched nothing: another request
    // redeemed the code in between, and if this update finds it used too, this is a replay.
    let redemption = Redemption::new(state, now);
    let update = redemption
        .update()
        .filter(grants::Column::Id.eq(&row.id))
        .filter(grants::Column::CodeUsedAt.is_null());
    let redeemed = state.writer.update_returning(&state.db, update).await?;
    match redeemed.into_iter().next() {
        Some(row) => redemption.issue(state, client, row).await,
        None => {
            revoke_grant(state, &row.id).await?;
            state.metrics.security(SecurityEvent::CodeReplay);
            Err(OAuthError::InvalidGrant(BAD_CODE.into()))
        }
    }
}
