//! Signing keys: created on first start, stored in the database so every node shares them,
//! rotated by `idgraph keys rotate`, and cached in each node for a bounded time.
//!
//! A key's life: **next** (published in the JWKS, not signing yet), **active** (signing),
//! **retiring** (superseded, published until every token it signed has expired), **retired**
//! (gone). The states follow from the row's times: `activates_at` (NULL: from creation) and
//! `retires_at`. For each algorithm the newest published key whose activation has come signs.
//! The ring always holds an RS256 key (OpenID Connect requires it), one of the configured
//! algorithm (access and first-party tokens), and one of every algorithm an app asks for its ID
//! tokens.
//!
//! Rotating an algorithm ([`rotate`], by `idgraph keys rotate` or on the `key_rotation_days`
//! schedule, [`rotate_if_due`]) inserts a key that activates [`Rotation::publish_ahead`] later:
//! the JWKS cache lifetime ([`jwks_max_age`]) plus a node's key cache lifetime, so a relying
//! party that caches the JWKS as told, fed by any node, has the key before it meets a token it
//! signed. The previous keys keep signing until then and stay published one token lifetime (plus
//! a minute) longer; after that they are marked `retired` and unpublished.
//! Each node reloads its key ring at most [`KeyStore::REFRESH`] after a change elsewhere, and at
//! once (at most once a second) when it meets a token signed by a key it does not know yet.
//!
//! A key that leaked is **revoked** ([`revoke`], by `idgraph keys revoke` or an administrator):
//! it leaves the JWKS at once and nothing it signed verifies again, and its algorithm gets
//! another signer at once (see [`revoke_in`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::jwt::{
    self, AccessClaims, Expect, IdClaims, JwtType, KeyRing, TokenKind, VerifyError,
};
use crate::auth::keys::{self, SigningAlgorithm, SigningKey, VerifyingKey};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::entities::signing_keys;
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::{secret::random_token, secs};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, Actor, Entry, Recorded};

const ACTIVE: &str = "active";
const RETIRED: &str = "retired";
/// Taken out of service before its time (it leaked): never verifies anything again.
const REVOKED: &str = "revoked";

/// Key of the PostgreSQL advisory lock that creating and rotating keys take turns on.
const KEYS_LOCK: i64 = 7_234_001;

/// Opens a transaction that changes the key set, taking turns with every other one first: on
/// PostgreSQL with an advisory lock; on SQLite by writing before it reads (a statement that
/// changes no row), so that it holds the write lock from the start. A SQLite transaction that
/// read first could not write once another connection (the token path's writer) had committed
/// in between: SQLite refuses it (`SQLITE_BUSY_SNAPSHOT`) rather than wait.
async fn begin_key_change(db: &DatabaseConnection) -> AppResult<sea_orm::DatabaseTransaction> {
    let txn = db.begin().await?;
    let take_turns = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("SELECT pg_advisory_xact_lock({KEYS_LOCK})"),
        _ => "UPDATE signing_keys SET state = state WHERE 0 = 1".to_string(),
    };
    txn.execute_unprepared(&take_turns).await?;
    Ok(txn)
}

/// Creates and stores an active key of `algorithm` when the database has none; says whether
/// it did. Nodes (or commands) started together on one database take turns, so exactly one
/// creates each key and the others find it.
/// A key created is audited as `actor`'s (`signing_key.create`): it changes what the JWKS
/// publishes.
pub async fn ensure_active_key(
    db: &DatabaseConnection,
    algorithm: SigningAlgorithm,
    now: i64,
    actor: &Actor,
) -> AppResult<bool> {
    let txn = begin_key_change(db).await?;
    let created = ensure_in(&txn, algorithm, now, actor).await?;
    txn.commit().await?;
    let made = created.is_some();
    created.into_iter().for_each(Recorded::log);
    Ok(made)
}

async fn ensure_in(
    txn: &impl ConnectionTrait,
    algorithm: SigningAlgorithm,
    now: i64,
    actor: &Actor,
) -> AppResult<Option<Recorded>> {
    let existing = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.is_null())
        .filter(signing_keys::Column::Algorithm.eq(algorithm.as_str()))
        .one(txn)
        .await?;
    if existing.is_some() {
        return Ok(None);
    }
    let kid = insert_new_key(txn, algorithm, now, None).await?;
    let recorded = audit::record(
        txn,
        now,
        actor,
        Entry::new(AuditAction::SigningKeyCreate, AuditTarget::SigningKey, &kid)
            .with("algorithm", algorithm.as_str()),
    )
    .await?;
    Ok(Some(recorded))
}

/// The keys every node needs: RS256 (OpenID Connect requires it, so discovery always lists
/// it), the configured algorithm, and every algorithm an app's ID tokens use. Keys created here
/// are idgraph's own doing (actor `system`).
pub async fn ensure_needed_keys(
    db: &DatabaseConnection,
    configured: SigningAlgorithm,
    now: i64,
) -> AppResult<()> {
    let mut needed = vec![SigningAlgorithm::Rs256, configured];
    let used: Vec<String> = crate::db::entities::apps::Entity::find()
        .select_only()
        .column(crate::db::entities::apps::Column::IdTokenSignedResponseAlg)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    needed.extend(
        used.iter()
            .filter_map(|alg| alg.parse::<SigningAlgorithm>().ok()),
    );
    needed.sort_by_key(|a| a.as_str());
    needed.dedup();
    for algorithm in needed {
        ensure_active_key(db, algorithm, now, &Actor::System).await?;
    }
    Ok(())
}

/// The algorithms of the active, unsuperseded keys (what `keys rotate` renews).
pub async fn active_algorithms(db: &impl ConnectionTrait) -> AppResult<Vec<SigningAlgorithm>> {
    let algorithms: Vec<String> = signing_keys::Entity::find()
        .select_only()
        .column(signing_keys::Column::Algorithm)
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.is_null())
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut parsed: Vec<SigningAlgorithm> =
        algorithms.iter().filter_map(|a| a.parse().ok()).collect();
    parsed.sort_by_key(|a| a.as_str());
    Ok(parsed)
}

/// The timing of a rotation.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// How long the new key is published before it signs.
    pub publish_ahead: Duration,
    /// How long the previous keys stay published after the new one starts signing: the
    /// longest lifetime of a token they signed.
    pub overlap: Duration,
}

impl Rotation {
    /// The rotation `config` asks for: published one JWKS cache lifetime and one node key
    /// cache lifetime ahead. The previous keys are kept one access-token lifetime after the last
    /// moment a node may still sign with them (a node holds its key ring up to
    /// [`KeyStore::REFRESH`] after the new key starts signing), and a minute more for the clocks
    /// of nodes and resource servers (which commonly allow a minute of leeway on `exp`).
    pub fn of(config: &Config) -> Self {
        Self {
            publish_ahead: jwks_max_age(config) + KeyStore::REFRESH,
            overlap: config.access_token_ttl + KeyStore::REFRESH + Duration::from_secs(60),
        }
    }
}

/// How long relying parties may cache the JWKS (`Cache-Control: max-age`): five minutes, or
/// with a rotation schedule a 24th of its period between five minutes and a day. Every rotation
/// publishes its key at least this long before it signs (see [`Rotation::of`]).
pub fn jwks_max_age(config: &Config) -> Duration {
    const MIN: Duration = Duration::from_secs(300);
    const MAX: Duration = Duration::from_secs(24 * 3600);
    match config.key_rotation {
        None => MIN,
        Some(period) => (period / 24).clamp(MIN, MAX),
    }
}

/// Adds a key of `algorithm` that signs from `rotation.publish_ahead` on, and schedules that
/// algorithm's current keys to stop being published `rotation.overlap` after that. Returns the
/// new key's id.
pub async fn rotate(
    db: &DatabaseConnection,
    algorithm: SigningAlgorithm,
    rotation: Rotation,
    now: i64,
) -> AppResult<String> {
    let txn = begin_key_change(db).await?;
    let (kid, recorded) = rotate_in(&txn, algorithm, rotation, now, &Actor::Cli).await?;
    txn.commit().await?;
    recorded.log();
    Ok(kid)
}

/// Rotates inside `txn`, recording the rotation as `actor`'s.
async fn rotate_in(
    txn: &impl ConnectionTrait,
    algorithm: SigningAlgorithm,
    rotation: Rotation,
    now: i64,
    actor: &Actor,
) -> AppResult<(String, Recorded)> {
    let activates_at = now + secs(rotation.publish_ahead);
    let retires_at = activates_at + secs(rotation.overlap);
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::RetiresAt, retires_at.into())
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.is_null())
        .filter(signing_keys::Column::Algorithm.eq(algorithm.as_str()))
        .exec(txn)
        .await?;
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::State, RETIRED.into())
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.lte(now))
        .exec(txn)
        .await?;
    let activates_at = (activates_at > now).then_some(activates_at);
    let kid = insert_new_key(txn, algorithm, now, activates_at).await?;
    tracing::info!(kid = %kid, algorithm = %algorithm, activates_at, "signing key rotated");
    let recorded = audit::record(
        txn,
        now,
        actor,
        Entry::new(AuditAction::SigningKeyRotate, AuditTarget::SigningKey, &kid)
            .with("algorithm", algorithm.as_str()),
    )
    .await?;
    Ok((kid, recorded))
}

/// Where a key is in its life, as of a moment (see the module's introduction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// The key its algorithm signs with.
    Active,
    /// Superseded (or not yet replaced but no longer the newest): published, not signing.
    Retiring,
    /// No longer published.
    Retired,
    /// Taken out of service before its time: unpublished, and nothing it signed verifies.
    Revoked,
}

impl KeyState {
    /// Lowercase name, as the console and the audit trail show it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }

    /// Whether a key in this state is in the JWKS (and so may still be revoked).
    pub fn is_published(self) -> bool {
        matches!(self, KeyState::Next | KeyState::Active | KeyState::Retiring)
    }
}

/// A signing key as administrators see it: never its private part.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The key id (`kid`).
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// Its state now.
    pub state: KeyState,
    /// Unix seconds.
    pub created_at: i64,
    /// When it starts (or started) signing; `None`: from creation.
    pub activates_at: Option<i64>,
    /// When it stops being published; `None`: not superseded.
    pub retires_at: Option<i64>,
}

/// How many keys [`list_keys`] shows, newest first.
pub const LISTED_KEYS: u64 = 100;

/// Administrators (`gov.user.admin.key:read`): the newest [`LISTED_KEYS`] keys, newest first,
/// each with its state as of now in the database. A key is `Active` when a key ring loaded now
/// would sign with it (see [`load_ring`], same order): the newest unsuperseded key of its
/// algorithm once activated, else the newest superseded one still published. A node's cached
/// ring follows within [`KeyStore::REFRESH`].
pub async fn list_keys(
    state: &crate::service::AppState,
    principal: &crate::auth::Principal,
) -> AppResult<Vec<KeyInfo>> {
    principal.require_admin(crate::domain::Scope::KeyRead)?;
    let rows = signing_keys::Entity::find()
        .order_by_desc(signing_keys::Column::CreatedAt)
        .order_by_desc(signing_keys::Column::Kid)
        .limit(LISTED_KEYS)
        .all(&state.db)
        .await?;
    Ok(key_states(&rows, state.clock.now()))
}

/// The order in which keys are considered for signing: newest first, and keys made in the same
/// second by key id, whatever order the database listed them in.
fn newest_first(rows: &[signing_keys::Model]) -> Vec<&signing_keys::Model> {
    let mut sorted: Vec<&signing_keys::Model> = rows.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
    sorted
}

/// Whether `row` is in the JWKS at `now`.
fn published(row: &signing_keys::Model, now: i64) -> bool {
    row.state == ACTIVE && row.retires_at.is_none_or(|at| at > now)
}

/// Whether `row`'s activation has come at `now`.
fn activated(row: &signing_keys::Model, now: i64) -> bool {
    row.activates_at.is_none_or(|at| at <= now)
}

/// The key that signs at `now`, per algorithm: the newest unsuperseded published key once its
/// activation has come; until then the newest superseded one (which retires only after that).
/// Keys made in the same second are taken in one order ([`newest_first`]). The key ring and the
/// administrators' listing both decide by this.
fn signers(
    rows: &[signing_keys::Model],
    now: i64,
) -> HashMap<SigningAlgorithm, &signing_keys::Model> {
    let mut chosen = HashMap::new();
    for superseded in [false, true] {
        for row in newest_first(rows) {
            let Ok(algorithm) = row.algorithm.parse::<SigningAlgorithm>() else {
                continue;
            };
            if published(row, now) && activated(row, now) && row.retires_at.is_some() == superseded
            {
                chosen.entry(algorithm).or_insert(row);
            }
        }
    }
    chosen
}

/// Each row's state as of `now`, in the order of `rows`.
fn key_states(rows: &[signing_keys::Model], now: i64) -> Vec<KeyInfo> {
    let signing = signers(rows, now);
    rows.iter()
        .filter_map(|row| {
            let algorithm = row.algorithm.parse().ok()?;
            let state = if row.state == REVOKED {
                KeyState::Revoked
            } else if !published(row, now) {
                KeyState::Retired
            } else if signing
                .get(&algorithm)
                .is_some_and(|key| key.kid == row.kid)
            {
                KeyState::Active
            } else if activated(row, now) {
                KeyState::Retiring
            } else {
                KeyState::Next
            };
            Some(KeyInfo {
                kid: row.kid.clone(),
                algorithm,
                state,
                created_at: row.created_at,
                activates_at: row.activates_at,
                retires_at: row.retires_at,
            })
        })
        .collect()
}

/// Administrators (`gov.user.admin.key:write`): rotates `algorithm` now, with the configured
/// timing ([`Rotation::of`]), recorded as theirs; every node hears of it. Returns the new key.
pub async fn rotate_by(
    state: &crate::service::AppState,
    principal: &crate::auth::Principal,
    algorithm: SigningAlgorithm,
) -> AppResult<KeyInfo> {
    principal.require_admin(crate::domain::Scope::KeyWrite)?;
    let now = state.clock.now();
    let txn = begin_key_change(&state.db).await?;
    let (kid, recorded) = rotate_in(
        &txn,
        algorithm,
        Rotation::of(&state.config),
        now,
        &Actor::of(principal),
    )
    .await?;
    let row = signing_keys::Entity::find_by_id(kid)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the new key vanished")))?;
    txn.commit().await?;
    recorded.log();
    crate::service::changes::announce(state, crate::service::changes::Change::Keys).await;
    key_states(std::slice::from_ref(&row), now)
        .pop()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the new key has an unknown algorithm")))
}

/// What revoking a key changed.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// The revoked key, as it is now.
    pub key: KeyInfo,
    /// The key that took its place, when it was signing or next to sign: signing at once in
    /// the first case, on the revoked key's schedule in the second.
    pub successor: Option<KeyInfo>,
}

/// The operator (`idgraph keys revoke`): revokes `kid` (see [`revoke_in`]), recorded as the
/// command line's.
pub async fn revoke(db: &DatabaseConnection, kid: &str, now: i64) -> AppResult<Revocation> {
    let txn = begin_key_change(db).await?;
    let (revocation, recorded) = revoke_in(&txn, kid, now, &Actor::Cli).await?;
    txn.commit().await?;
    recorded.log();
    Ok(revocation)
}

/// Administrators (`gov.user.admin.key:write`): revokes `kid` (see [`revoke_in`]), recorded as
/// theirs; this node forgets the key at once, and every other node hears of it.
pub async fn revoke_by(
    state: &crate::service::AppState,
    principal: &crate::auth::Principal,
    kid: &str,
) -> AppResult<Revocation> {
    principal.require_admin(crate::domain::Scope::KeyWrite)?;
    let txn = begin_key_change(&state.db).await?;
    let now = state.clock.now();
    let (revocation, recorded) = revoke_in(&txn, kid, now, &Actor::of(principal)).await?;
    txn.commit().await?;
    recorded.log();
    crate::service::changes::announce(state, crate::service::changes::Change::Keys).await;
    Ok(revocation)
}

/// Takes the published key `kid` out of service at once, for a key that leaked: it leaves the
/// JWKS, and no token it signed verifies again, not even as an expired logout hint (a node
/// forgets it when it reloads its keys: at once where the revocation is announced, else within
/// [`KeyStore::REFRESH`]; a relying party that cached the JWKS keeps it until its copy
/// expires). Its algorithm never goes without a signer:
///
/// - the key was signing: the key published to sign next (a rotation's) signs at once, or, if
///   there is none, a new key does;
/// - the key was still to sign (published ahead by a rotation): a new key takes its place on its
///   schedule, signing when it would have and superseded when it was;
/// - the key was retiring: nothing else changes.
///
/// Whatever the case, the algorithm's remaining keys are checked to leave no moment without a
/// signer ([`always_signed`]); should they, nothing changes. A key already unpublished is a
/// conflict: there is nothing left to revoke.
async fn revoke_in(
    txn: &impl ConnectionTrait,
    kid: &str,
    now: i64,
    actor: &Actor,
) -> AppResult<(Revocation, Recorded)> {
    use signing_keys::Column as K;
    let Some(revoked) = signing_keys::Entity::find_by_id(kid).one(txn).await? else {
        return Err(AppError::NotFound("signing key"));
    };
    if !published(&revoked, now) {
        return Err(AppError::Conflict(format!(
            "kid: the key {kid} is no longer published; there is nothing to revoke"
        )));
    }
    let algorithm: SigningAlgorithm = revoked
        .algorithm
        .parse()
        .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?;
    let rows = signing_keys::Entity::find()
        .filter(K::State.eq(ACTIVE))
        .filter(K::Algorithm.eq(algorithm.as_str()))
        .all(txn)
        .await?;
    let signing = signers(&rows, now)
        .get(&algorithm)
        .is_some_and(|key| key.kid == revoked.kid);
    signing_keys::Entity::update_many()
        .col_expr(K::State, REVOKED.into())
        .col_expr(K::RetiresAt, now.into())
        .filter(K::Kid.eq(kid))
        .exec(txn)
        .await?;
    let successor = if !activated(&revoked, now) {
        // It was to sign later: a new key takes its place on its very schedule (signing from
        // its activation, superseded when it was) and in its very order among the keys (made
        // when it was: `signers` prefers the newest), so the keys before and after it still
        // meet and each signs when it would have.
        let successor = insert_new_key(txn, algorithm, now, revoked.activates_at).await?;
        signing_keys::Entity::update_many()
            .col_expr(K::CreatedAt, revoked.created_at.into())
            .col_expr(K::RetiresAt, revoked.retires_at.into())
            .filter(K::Kid.eq(&successor))
            .exec(txn)
            .await?;
        Some(successor)
    } else if signing {
        // The key a rotation published to sign next (the newest not superseded) signs at once;
        // without one, a new key does.
        let next = newest_first(&rows)
            .into_iter()
            .find(|row| row.kid != revoked.kid && published(row, now) && row.retires_at.is_none())
            .cloned();
        match next {
            Some(next) => {
                if !activated(&next, now) {
                    signing_keys::Entity::update_many()
                        .col_expr(K::ActivatesAt, now.into())
                        .filter(K::Kid.eq(&next.kid))
                        .exec(txn)
                        .await?;
                }
                Some(next.kid)
            }
            None => Some(insert_new_key(txn, algorithm, now, None).await?),
        }
    } else {
        // Retiring (or a twin of the signer): the signer goes on.
        None
    };
    always_signed(txn, algorithm, now).await?;
    tracing::warn!(kid = %kid, algorithm = %algorithm, successor = ?successor, "signing key revoked");
    let mut entry = Entry::new(AuditAction::SigningKeyRevoke, AuditTarget::SigningKey, kid)
        .with("algorithm", algorithm.as_str());
    if let Some(successor) = &successor {
        entry = entry.with("successor", successor.as_str());
    }
    let recorded = audit::record(txn, now, actor, entry).await?;
    let info = |row: signing_keys::Model| {
        key_states(std::slice::from_ref(&row), now)
            .pop()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a key of an unknown algorithm")))
    };
    let reread = |kid: String| async move {
        signing_keys::Entity::find_by_id(kid)
            .one(txn)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a key vanished")))
    };
    let key = info(reread(kid.to_string()).await?)?;
    let successor = match successor {
        Some(kid) => Some(info(reread(kid).await?)?),
        None => None,
    };
    Ok((Revocation { key, successor }, recorded))
}

/// Refuses (as a conflict) a key set in which `algorithm` would have no signer at some moment
/// from `now` on: checked at `now` and at every activation and retirement still to come, the
/// only moments the signer can change.
async fn always_signed(
    txn: &impl ConnectionTrait,
    algorithm: SigningAlgorithm,
    now: i64,
) -> AppResult<()> {
    let rows = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::Algorithm.eq(algorithm.as_str()))
        .all(txn)
        .await?;
    let moments = rows
        .iter()
        .flat_map(|row| [row.activates_at, row.retires_at])
        .flatten()
        .filter(|at| *at > now)
        .chain([now]);
    for at in moments {
        if !signers(&rows, at).contains_key(&algorithm) {
            return Err(AppError::Conflict(format!(
                "kid: this would leave {algorithm} without a signing key at {at}; rotate first"
            )));
        }
    }
    Ok(())
}

/// The scheduled rotation (`key_rotation_days`): rotates every algorithm in use whose newest
/// key is a period old, exactly once whichever nodes call it at the same time (on PostgreSQL
/// they take turns on an advisory lock and the later ones find a fresh key; SQLite runs one
/// writer at a time). Returns the new keys' ids; announces them.
pub async fn rotate_if_due(state: &crate::service::AppState) -> AppResult<Vec<String>> {
    let Some(period) = state.config.key_rotation else {
        return Ok(Vec::new());
    };
    let now = state.clock.now();
    let txn = begin_key_change(&state.db).await?;
    let mut rotated = Vec::new();
    let mut recorded = Vec::new();
    for algorithm in active_algorithms(&txn).await? {
        let newest: Option<i64> = signing_keys::Entity::find()
            .select_only()
            .column_as(signing_keys::Column::CreatedAt.max(), "newest")
            .filter(signing_keys::Column::State.eq(ACTIVE))
            .filter(signing_keys::Column::Algorithm.eq(algorithm.as_str()))
            .into_tuple()
            .one(&txn)
            .await?
            .flatten();
        if newest.is_some_and(|created| created + secs(period) <= now) {
            let rotation = Rotation::of(&state.config);
            let (kid, event) = rotate_in(&txn, algorithm, rotation, now, &Actor::System).await?;
            rotated.push(kid);
            recorded.push(event);
        }
    }
    txn.commit().await?;
    recorded.into_iter().for_each(Recorded::log);
    if !rotated.is_empty() {
        crate::service::changes::announce(state, crate::service::changes::Change::Keys).await;
    }
    Ok(rotated)
}

/// Runs [`rotate_if_due`] about once a minute, when a schedule is set.
pub fn spawn_schedule(state: crate::service::AppState) -> Option<tokio::task::JoinHandle<()>> {
    state.config.key_rotation?;
    Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            if let Err(err) = rotate_if_due(&state).await {
                tracing::warn!(error = %err, "scheduled key rotation failed; the next check tries again");
            }
        }
    }))
}

async fn insert_new_key(
    db: &impl ConnectionTrait,
    algorithm: SigningAlgorithm,
    now: i64,
    activates_at: Option<i64>,
) -> AppResult<String> {
    let kid = random_token(12);
    let generated = tokio::task::spawn_blocking({
        let kid = kid.clone();
        move || keys::generate(algorithm, &kid)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    signing_keys::ActiveModel {
        kid: Set(kid.clone()),
        algorithm: Set(algorithm.as_str().to_string()),
        private_key: Set(generated.pkcs8),
        public_jwk: Set(generated.public_jwk.to_string()),
        state: Set(ACTIVE.to_string()),
        created_at: Set(now),
        retires_at: Set(None),
        activates_at: Set(activates_at),
    }
    .insert(db)
    .await?;
    Ok(kid)
}

/// Runs `sign`, which signs with `algorithm`, off the async workers when that is RSA: an RSA
/// signature takes a good part of a millisecond of one core, and would hold up every request
/// queued behind it on that worker. Ed25519 and P-256 signatures are cheap enough to run inline.
pub async fn signing<T: Send + 'static>(
    algorithm: SigningAlgorithm,
    sign: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> AppResult<T> {
    let signed = if algorithm == SigningAlgorithm::Rs256 {
        tokio::task::spawn_blocking(sign)
            .await
            .map_err(AppError::internal)?
    } else {
        sign()
    };
    signed.map_err(AppError::internal)
}

/// Builds the key ring from the database as of `now`: every published key, and the newest
/// unsuperseded key of each algorithm signing; `default` signs access and first-party tokens.
pub async fn load_ring(
    db: &DatabaseConnection,
    now: i64,
    default: SigningAlgorithm,
) -> AppResult<KeyRing> {
    let rows = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .order_by_desc(signing_keys::Column::CreatedAt)
        .all(db)
        .await?;
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    let mut signing = HashMap::new();
    for row in &rows {
        if !published(row, now) {
            continue;
        }
        let algorithm: SigningAlgorithm = row
            .algorithm
            .parse()
            .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?;
        let jwk: Value = serde_json::from_str(&row.public_jwk).map_err(AppError::internal)?;
        verifying.insert(
            row.kid.clone(),
            VerifyingKey::from_jwk(algorithm, &jwk).map_err(AppError::internal)?,
        );
        jwks.push(jwk);
    }
    for (algorithm, row) in signers(&rows, now) {
        let key = SigningKey::from_pkcs8(row.kid.clone(), algorithm, &row.private_key)
            .map_err(AppError::internal)?;
        signing.insert(algorithm, Arc::new(key));
    }
    if !signing.contains_key(&default) {
        return Err(AppError::internal(anyhow::anyhow!(
            "no active {default} signing key in the database"
        )));
    }
    Ok(KeyRing {
        signers: signing,
        default,
        verifying,
        jwks: json!({ "keys": jwks }),
        verified: Default::default(),
    })
}

struct Cached {
    ring: Arc<KeyRing>,
    /// Unix milliseconds.
    loaded: i64,
}

/// A node's cached view of the signing keys.
pub struct KeyStore {
    db: DatabaseConnection,
    clock: Clock,
    default: SigningAlgorithm,
    cached: RwLock<Cached>,
    reloading: tokio::sync::Mutex<()>,
    /// Counts announced key changes; a reload that raced one does not count as fresh.
    changes: std::sync::atomic::AtomicU64,
}

impl KeyStore {
    /// How long a node trusts its cached key ring before reading the database again.
    pub const REFRESH: Duration = Duration::from_secs(60);
    const MISS_RELOAD: Duration = Duration::from_secs(1);

    /// Loads the key ring once; fails when the database holds no key of `default`.
    pub async fn load(
        db: DatabaseConnection,
        clock: Clock,
        default: SigningAlgorithm,
    ) -> AppResult<Self> {
        let ring = load_ring(&db, clock.now(), default).await?;
        Ok(Self {
            default,
            db,
            cached: RwLock::new(Cached {
                ring: Arc::new(ring),
                loaded: clock.now_millis(),
            }),
            clock,
            reloading: tokio::sync::Mutex::new(()),
            changes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn snapshot(&self) -> (Arc<KeyRing>, i64) {
        match self.cached.read() {
            Ok(cached) => (cached.ring.clone(), cached.loaded),
            Err(poisoned) => {
                let cached = poisoned.into_inner();
                (cached.ring.clone(), cached.loaded)
            }
        }
    }

    /// Reloads from the database when the cache is older than `max_age`. Only one reload runs
    /// at a time; concurrent callers keep using the ring they have.
    async fn refresh_if_older(&self, max_age: Duration) -> AppResult<Arc<KeyRing>> {
        let (ring, loaded) = self.snapshot();
        let max_age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        if self.clock.now_millis() - loaded < max_age {
            return Ok(ring);
        }
        let Ok(_guard) = self.reloading.try_lock() else {
            return Ok(ring);
        };
        let changes = self.changes.load(std::sync::atomic::Ordering::SeqCst);
        let fresh = Arc::new(load_ring(&self.db, self.clock.now(), self.default).await?);
        if let Ok(mut cached) = self.cached.write() {
            // A change announced while this read ran may be missing from it: keep it stale.
            let raced = self.changes.load(std::sync::atomic::Ordering::SeqCst) != changes;
            *cached = Cached {
                ring: fresh.clone(),
                loaded: if raced {
                    i64::MIN / 2
                } else {
                    self.clock.now_millis()
                },
            };
        }
        Ok(fresh)
    }

    /// The keys changed elsewhere (an announcement): the next use reads them again.
    pub fn changed(&self) {
        if let Ok(mut cached) = self.cached.write() {
            self.changes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            cached.loaded = i64::MIN / 2;
        }
    }

    /// The current key ring, reloaded when older than [`KeyStore::REFRESH`].
    pub async fn ring(&self) -> AppResult<Arc<KeyRing>> {
        self.refresh_if_older(Self::REFRESH).await
    }

    /// Reads the keys from the database now (after `rotate` in this process, for instance).
    pub async fn reload(&self) -> AppResult<()> {
        self.refresh_if_older(Duration::ZERO).await.map(drop)
    }

    /// The current key ring, reloaded first (at most once a second) when it lacks a signer for
    /// `algorithm`, which another node may have just created.
    pub async fn ring_signing(&self, algorithm: SigningAlgorithm) -> AppResult<Arc<KeyRing>> {
        let ring = self.ring().await?;
        if ring.signer(algorithm).is_some() {
            return Ok(ring);
        }
        self.refresh_if_older(Self::MISS_RELOAD).await
    }

    /// Signs `claims` with the default algorithm's key (off the async workers when that is
    /// RSA, see [`signing`]).
    pub async fn sign<T: Serialize>(&self, claims: &T) -> AppResult<String> {
        let ring = self.ring().await?;
        let claims = serde_json::to_value(claims).map_err(AppError::internal)?;
        signing(ring.default, move || ring.sign(&claims)).await
    }

    /// Verifies a token; a `kid` not yet known triggers one reload (at most once a second).
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        expect: Expect<'_>,
    ) -> AppResult<Option<T>> {
        let ring = self.ring().await?;
        Ok(self.verify_in(ring, token, expect).await?.1)
    }

    /// Verifies a token with `ring`, or with a reloaded ring when `ring` does not know its `kid`;
    /// returns the ring that answered.
    async fn verify_in<T: DeserializeOwned>(
        &self,
        ring: Arc<KeyRing>,
        token: &str,
        expect: Expect<'_>,
    ) -> AppResult<(Arc<KeyRing>, Option<T>)> {
        let now = self.clock.now();
        match jwt::verify(&ring, token, expect, now) {
            Ok(claims) => Ok((ring, Some(claims))),
            Err(VerifyError::Invalid) => Ok((ring, None)),
            Err(VerifyError::UnknownKey) => {
                let ring = self.refresh_if_older(Self::MISS_RELOAD).await?;
                let claims = jwt::verify(&ring, token, expect, now).ok();
                Ok((ring, claims))
            }
        }
    }

    /// Verifies a first-party token (`typ` `JWT`, the issuer its own audience).
    pub async fn verify_session_token(
        &self,
        token: &str,
        issuer: &str,
    ) -> AppResult<Option<AccessClaims>> {
        let expect = Expect {
            issuer,
            audience: Some(issuer),
            typ: JwtType::Jwt,
            expired_ok: false,
        };
        Ok(self
            .verify::<AccessClaims>(token, expect)
            .await?
            .filter(|claims| claims.kind == TokenKind::Session))
    }

    /// Verifies an app's access token (`typ` `at+jwt`, any audience: callers decide what they
    /// may see). A token the current ring verified before is not verified again
    /// ([`jwt::VerifiedTokens`]).
    pub async fn verify_app_token(
        &self,
        token: &str,
        issuer: &str,
    ) -> AppResult<Option<AccessClaims>> {
        let ring = self.ring().await?;
        if let Some(claims) = ring.verified.get(token, self.clock.now()) {
            return Ok(Some(claims).filter(|claims| claims.iss == issuer));
        }
        let expect = Expect {
            issuer,
            audience: None,
            typ: JwtType::AccessToken,
            expired_ok: false,
        };
        let (ring, claims) = self.verify_in::<AccessClaims>(ring, token, expect).await?;
        let claims =
            claims.filter(|claims| claims.kind == TokenKind::Oauth && claims.client_id.is_some());
        if let Some(claims) = &claims {
            ring.verified.put(token, claims);
        }
        Ok(claims)
    }

    /// Verifies an ID token of ours given back as an `id_token_hint`: signature, issuer and
    /// `typ`, expired or not, and an app as its audience (the caller matches it to the app). A
    /// first-party session token is signed with the same keys and `typ`, but its audience is the
    /// issuer itself: never an ID token.
    ///
    /// A relying party logs out with the ID token of the sign-in, which may be older than the
    /// last rotation: a key no longer published still verifies a hint when it was retired
    /// after `retired_since` (the caller passes the start of the oldest browser session that
    /// may still be live), read from the database on this rare path only.
    pub async fn verify_id_token_hint(
        &self,
        token: &str,
        issuer: &str,
        retired_since: i64,
    ) -> AppResult<Option<IdClaims>> {
        let expect = Expect {
            issuer,
            audience: None,
            typ: JwtType::Jwt,
            expired_ok: true,
        };
        let claims = match self.verify::<IdClaims>(token, expect).await? {
            Some(claims) => Some(claims),
            None => {
                self.verify_with_retired(token, expect, retired_since)
                    .await?
            }
        };
        Ok(claims.filter(|claims| claims.aud != issuer))
    }

    /// Verifies `token` with the key its header names, if that key was retired after
    /// `retired_since` (a published key has had its chance in the ring).
    async fn verify_with_retired<T: DeserializeOwned>(
        &self,
        token: &str,
        expect: Expect<'_>,
        retired_since: i64,
    ) -> AppResult<Option<T>> {
        let Some(kid) = jwt::header_kid(token) else {
            return Ok(None);
        };
        let Some(row) = signing_keys::Entity::find_by_id(kid)
            .filter(signing_keys::Column::RetiresAt.gt(retired_since))
            .filter(signing_keys::Column::State.ne(REVOKED))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let algorithm: SigningAlgorithm = row
            .algorithm
            .parse()
            .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?;
        let jwk: Value = serde_json::from_str(&row.public_jwk).map_err(AppError::internal)?;
        let key = VerifyingKey::from_jwk(algorithm, &jwk).map_err(AppError::internal)?;
        Ok(jwt::verify_with(&key, token, expect, self.clock.now()).ok())
    }

    /// The public JSON Web Key Set.
    pub async fn jwks(&self) -> AppResult<Value> {
        Ok(self.ring().await?.jwks.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        kid: &str,
        created_at: i64,
        activates_at: Option<i64>,
        retires_at: Option<i64>,
    ) -> signing_keys::Model {
        signing_keys::Model {
            kid: kid.into(),
            algorithm: "RS256".into(),
            private_key: Vec::new(),
            public_jwk: String::new(),
            state: ACTIVE.into(),
            created_at,
            retires_at,
            activates_at,
        }
    }

    fn states(rows: &[signing_keys::Model], now: i64) -> Vec<(String, KeyState)> {
        key_states(rows, now)
            .into_iter()
            .map(|info| (info.kid, info.state))
            .collect()
    }

    #[test]
    fn a_rotation_moves_keys_from_next_to_active_to_retiring_to_retired() {
        // Rotated at 100: the new key signs from 400; the old one is published until 1000.
        let rows = [
            key("new", 100, Some(400), None),
            key("old", 0, None, Some(1000)),
        ];
        let at = |now| states(&rows, now);
        assert_eq!(
            at(200),
            [
                ("new".into(), KeyState::Next),
                ("old".into(), KeyState::Active)
            ]
        );
        assert_eq!(
            at(500),
            [
                ("new".into(), KeyState::Active),
                ("old".into(), KeyState::Retiring)
            ]
        );
        assert_eq!(
            at(1000),
            [
                ("new".into(), KeyState::Active),
                ("old".into(), KeyState::Retired)
            ]
        );
        // Two keys made in the same second, listed either way: the same one signs.
        let twins = [key("a", 100, None, None), key("b", 100, None, None)];
        let flipped = [twins[1].clone(), twins[0].clone()];
        for listed in [&twins[..], &flipped[..]] {
            let signing: Vec<String> = key_states(listed, 200)
                .into_iter()
                .filter(|info| info.state == KeyState::Active)
                .map(|info| info.kid)
                .collect();
            assert_eq!(signing, ["b"]);
        }
        let mut marked = rows[1].clone();
        marked.state = RETIRED.into();
        assert_eq!(
            states(&[rows[0].clone(), marked], 500)[1].1,
            KeyState::Retired
        );
    }
}
