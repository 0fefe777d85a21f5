//! Consent: a signed-in user grants an app the OpenID scopes it asked for, and receives an
//! authorization code for it. The code carries 256 random bits, is stored only as a digest,
//! lives [`CODE_TTL_SECS`] and works once.

use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use crate::auth::{Principal, Scope};
use crate::db::entities::connections;
use crate::db::owned::connection_of;
use crate::domain::now_unix;
use crate::domain::oauth::ConsentRequest;
use crate::domain::secret::{digest, random_token};
use crate::error::{AppError, AppResult};
use crate::service::apps;
use crate::state::AppState;

/// How long an authorization code may be redeemed.
pub const CODE_TTL_SECS: i64 = 60;

/// The raw consent input, as both transports receive it.
#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    /// The app.
    pub client_id: String,
    /// Space-separated requested scopes; must contain `openid`.
    pub scope: String,
    /// The relying party's nonce.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// `plain` or `S256`.
    pub code_challenge_method: Option<String>,
}

/// Records the caller's consent to an app and returns a fresh authorization code. Creates the
/// (user, app) connection or updates it; a new code replaces an unredeemed older one. The code
/// grants the scopes asked for now; the consent remembered for the app is the union of all
/// scopes ever approved (the hosted consent page is skipped for any subset of it).
pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    input: ConsentInput,
) -> AppResult<String> {
    let me = principal.require_user(Scope::Authorize)?;
    let request = ConsentRequest::validate(
        input.client_id,
        &input.scope,
        input.nonce,
        input.code_challenge,
        input.code_challenge_method,
        state.config.pkce_allow_plain,
    )?;
    if apps::record(state, &request.client_id).await?.is_none() {
        return Err(AppError::NotFound("app"));
    }
    let code = random_token(32);
    let now = now_unix();
    // Read, then upsert without a transaction: two consents racing for the same app may keep
    // the narrower memory, which only means the consent page is shown once more. (A read-then-
    // write transaction would fail under SQLite's WAL snapshots when another write came between.)
    let earlier = connection_of(&me.user_id, &request.client_id)
        .one(&state.db)
        .await?
        .map(|row| row.consented());
    let consented = match earlier {
        Some(earlier) => earlier.union(&request.scopes),
        None => request.scopes.clone(),
    };
    let (challenge, method) = match &request.pkce {
        Some((challenge, method)) => (Some(challenge.clone()), Some(method.as_str().to_string())),
        None => (None, None),
    };
    let row = connections::ActiveModel {
        user_id: Set(me.user_id.as_str().to_string()),
        client_id: Set(request.client_id.clone()),
        scope: Set(request.scopes.to_string()),
        nonce: Set(request.nonce.clone()),
        code_challenge: Set(challenge),
        code_challenge_method: Set(method),
        code_hash: Set(Some(digest(&code))),
        code_time: Set(Some(now)),
        code_used_at: Set(None),
        grant_id: Set(None),
        refresh_hash: Set(None),
        refresh_expires_at: Set(None),
        auth_time: Set(me.auth_time),
        access_time: Set(now),
        creation_time: Set(now),
        consented_scope: Set(Some(consented.to_string())),
    };
    use connections::Column as C;
    connections::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::UserId, C::ClientId])
                .update_columns([
                    C::Scope,
                    C::Nonce,
                    C::CodeChallenge,
                    C::CodeChallengeMethod,
                    C::CodeHash,
                    C::CodeTime,
                    C::CodeUsedAt,
                    C::AuthTime,
                    C::ConsentedScope,
                ])
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
    tracing::info!(user.id = %me.user_id, client.id = %request.client_id, scope = %request.scopes, "consent recorded");
    Ok(code)
}
