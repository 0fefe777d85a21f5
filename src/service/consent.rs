//! Consent: a signed-in user grants an app the OpenID scopes it asked for, and receives an
//! authorization code for it. The code carries 256 random bits, is stored only as a digest,
//! lives [`CODE_TTL_SECS`] and works once. Each consent is a `grants` row of its own, so a user
//! may hold several outstanding codes for one app (two tabs, two devices).
//!
//! The REST and GraphQL consent calls and the hosted pages' approve all reach [`record`] with a
//! request their transport has already validated.

use sea_orm::sea_query::{Expr, InsertStatement, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DbBackend, DbErr, EntityTrait, Insert, Iterable,
    QueryFilter, QuerySelect, QueryTrait, Set, TransactionTrait,
};

use crate::auth::{Principal, SessionRef};
use crate::db::entities::{browser_sessions, connections, grants, users};
use crate::db::owned::connection_of;
use crate::domain::Scope;
use crate::domain::capabilities::GrantType;
use crate::domain::ids::{GrantId, UserId};
use crate::domain::oauth::{ConsentRequest, PkceMethod, PkcePolicy};
use crate::domain::scopes::Scopes;
use crate::domain::secret::{digest, random_token};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::apps;

/// `INSERT INTO grants (…) SELECT <the grant's values> WHERE EXISTS (<its user, enabled>)`:
/// the grant is written only while its user is enabled, in one statement.
fn insert_if_enabled(
    grant: &grants::ActiveModel,
    user_id: &str,
    sid: Option<&str>,
) -> AppResult<InsertStatement> {
    let mut columns = Vec::new();
    let mut values = Query::select();
    for column in grants::Column::iter() {
        if let ActiveValue::Set(value) = grant.get(column) {
            columns.push(column);
            values.expr(Expr::val(value));
        }
    }
    values.and_where(Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(users::Entity)
            .and_where(users::Column::Id.eq(user_id))
            .and_where(users::Column::DisabledAt.is_null())
            .to_owned(),
    ));
    // A consent given in a browser session needs that session still there: one signed out
    // meanwhile must not leave a code whose ID token would name it.
    if let Some(sid) = sid {
        values.and_where(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(browser_sessions::Entity)
                .and_where(browser_sessions::Column::Sid.eq(sid))
                .to_owned(),
        ));
    }
    let mut insert = Query::insert();
    insert.into_table(grants::Entity).columns(columns);
    insert.select_from(values).map_err(AppError::internal)?;
    Ok(insert)
}

/// How long an authorization code may be redeemed.
pub const CODE_TTL_SECS: i64 = 60;

/// The PKCE policy of this server (from `pkce_allow_plain`).
pub fn pkce_policy(state: &AppState) -> PkcePolicy {
    PkcePolicy {
        allow_plain: state.config.pkce_allow_plain,
    }
}

/// The scopes the user has consented to for a connection.
pub(crate) fn consented(row: &connections::Model) -> Scopes {
    Scopes::filter(row.consented_scope.as_deref().unwrap_or(&row.scope))
}

/// Records the caller's consent to an app and returns a fresh authorization code. Creates the
/// (user, app) connection or updates it, and adds a grant holding the code. The code grants the
/// scopes asked for now; the consent remembered for the app is the union of all scopes ever
/// approved (the hosted consent page is skipped for any subset of it). `redirect_uri` is the
/// one the hosted flow's request named (the code must be redeemed with it); the consent API
/// names none.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    request: &ConsentRequest,
    redirect_uri: Option<&str>,
) -> AppResult<String> {
    let me = principal.require_user(Scope::Authorize)?;
    let Some(app) = apps::record(state, &request.client_id).await? else {
        return Err(AppError::NotFound("app"));
    };
    let policy = app.policy();
    if !policy.allows_grant(GrantType::AuthorizationCode) {
        return Err(AppError::invalid(
            "client_id: the app may not use the authorization code grant (unauthorized_client)",
        ));
    }
    if policy.is_public()
        && request
            .pkce
            .as_ref()
            .is_none_or(|pkce| pkce.method != PkceMethod::S256)
    {
        return Err(AppError::invalid(
            "code_challenge: a public client must send one, with code_challenge_method S256",
        ));
    }
    if let Some(resource) = &request.resource
        && !policy.may_name(resource)
    {
        return Err(AppError::invalid(
            "resource: not one of the resource servers registered for the app (invalid_target)",
        ));
    }
    // Within the app's ceiling: narrowed, never refused for it.
    let scopes = policy.narrow(&request.scopes);
    let code = random_token(32);
    let now = state.clock.now();
    // Read, then upsert: two consents racing for the same app may keep the narrower memory,
    // which only means the consent page is shown once more.
    let earlier = connection_of(&me.user_id, &request.client_id)
        .one(&state.db)
        .await?
        .map(|row| consented(&row));
    let remembered = match earlier {
        Some(earlier) => earlier.union(&scopes),
        None => scopes.clone(),
    };
    let scope = scopes.to_string();
    let connection = connections::ActiveModel {
        user_id: Set(me.user_id.to_string()),
        client_id: Set(request.client_id.to_string()),
        scope: Set(scope.clone()),
        auth_time: Set(me.auth_time),
        access_time: Set(now),
        creation_time: Set(now),
        consented_scope: Set(Some(remembered.to_string())),
    };
    let sid = match &me.session {
        SessionRef::Browser(sid) => sid.as_ref().map(ToString::to_string),
        SessionRef::Api(_) => None,
    };
    let grant = grants::ActiveModel {
        id: Set(GrantId::generate().to_string()),
        user_id: Set(me.user_id.to_string()),
        client_id: Set(request.client_id.to_string()),
        scope: Set(scope),
        nonce: Set(request.nonce.clone()),
        redirect_uri: Set(redirect_uri.map(str::to_string)),
        code_hash: Set(Some(digest(&code))),
        code_challenge: Set(request.pkce.as_ref().map(|p| p.challenge.clone())),
        code_challenge_method: Set(request.pkce.as_ref().map(|p| p.method.as_str().into())),
        code_expires_at: Set(Some(now + CODE_TTL_SECS)),
        code_used_at: Set(None),
        refresh_hash: Set(None),
        refresh_expires_at: Set(None),
        auth_time: Set(me.auth_time),
        created_at: Set(now),
        sid: Set(sid.clone()),
        retired_refresh: ActiveValue::NotSet,
        resource: Set(request.resource.clone()),
    };
    use connections::Column as C;
    let upsert = connections::Entity::insert(connection).on_conflict(
        OnConflict::columns([C::UserId, C::ClientId])
            .update_columns([C::Scope, C::AuthTime, C::AccessTime, C::ConsentedScope])
            .to_owned(),
    );
    // A user disabled meanwhile, or a browser session ended meanwhile, gets neither a grant
    // nor a changed connection.
    let recorded = if state.db.get_database_backend() == DbBackend::Postgres {
        record_on_postgres(state, me.user_id.as_str(), sid.as_deref(), upsert, grant).await?
    } else {
        // SQLite checks in the grant's insert itself; the writer runs it right after the upsert,
        // inside its write transaction, so nothing comes between them, and undoes the upsert
        // when the insert adds nothing.
        let statements = vec![
            upsert.build(DbBackend::Sqlite),
            DbBackend::Sqlite.build(&insert_if_enabled(
                &grant,
                me.user_id.as_str(),
                sid.as_deref(),
            )?),
        ];
        match state.writer.all_or_nothing(&state.db, statements).await {
            Ok(recorded) => recorded,
            Err(err) => return Err(lost_reference(state, &me.user_id, err).await),
        }
    };
    if !recorded {
        return Err(AppError::InvalidToken);
    }
    // The connection was just marked used: the refreshes of the next minute need not mark it.
    state
        .touches
        .marked(me.user_id.as_str(), request.client_id.as_str(), now);
    tracing::info!(user.id = %me.user_id, client.id = %request.client_id, scope = %scopes, "consent recorded");
    Ok(code)
}

/// Writes a consent on PostgreSQL, in one transaction; whether its user was still enabled (and
/// its browser session, named by `sid`, still there). The checks come first
/// (`users::still_enabled`, then the session), taking the user row's share lock, then the
/// browser session's, before the connection's: the order deleting a user takes them, and a
/// sign-out that ends the session waits for this consent and then ends its code too.
async fn record_on_postgres(
    state: &AppState,
    user_id: &str,
    sid: Option<&str>,
    upsert: Insert<connections::ActiveModel>,
    grant: grants::ActiveModel,
) -> AppResult<bool> {
    let txn = state.db.begin().await?;
    if !crate::service::users::still_enabled(&txn, user_id).await? {
        return Ok(false);
    }
    if let Some(sid) = sid {
        let session = browser_sessions::Entity::find()
            .filter(browser_sessions::Column::Sid.eq(sid))
            .lock_shared()
            .one(&txn)
            .await?;
        if session.is_none() {
            return Ok(false);
        }
    }
    // The user row is locked: only the app can have gone.
    upsert
        .exec_without_returning(&txn)
        .await
        .map_err(apps::app_gone)?;
    grants::Entity::insert(grant)
        .exec_without_returning(&txn)
        .await
        .map_err(apps::app_gone)?;
    txn.commit().await?;
    Ok(true)
}

/// What a consent that failed on SQLite means. A foreign key that failed names no table, so one
/// read tells which row went meanwhile: the user (their token no longer names anyone, as when
/// they are disabled) or else the app (404).
async fn lost_reference(state: &AppState, user_id: &UserId, err: DbErr) -> AppError {
    if !crate::db::foreign_key_violation(&err) {
        return err.into();
    }
    match crate::service::users::find_user(state, user_id.as_str()).await {
        Ok(None) => AppError::InvalidToken,
        Ok(Some(_)) => AppError::NotFound("app"),
        Err(err) => err,
    }
}
