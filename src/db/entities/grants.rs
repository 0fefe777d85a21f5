//! `grants`: one consent's authorization code and, once it is redeemed, the token family it
//! started. A (user, app) connection may hold several at once (two tabs, two devices).

use sea_orm::entity::prelude::*;

/// A grant row. Hashes and PKCE data never leave the service layer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "grants")]
pub struct Model {
    /// The grant id: the `gid` of every access token of the family and the first part of its
    /// refresh tokens.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    /// Granted scopes, space-separated and sorted.
    pub scope: String,
    pub nonce: Option<String>,
    /// The redirect URI the authorization request named (hosted flow); `None` when the code
    /// came from the consent API, which names none.
    pub redirect_uri: Option<String>,
    /// SHA-256 hex digest of the authorization code.
    pub code_hash: Option<String>,
    pub code_challenge: Option<String>,
    /// `plain` or `S256`.
    pub code_challenge_method: Option<String>,
    pub code_expires_at: Option<i64>,
    /// When the code was redeemed; the family exists from then on.
    pub code_used_at: Option<i64>,
    /// SHA-256 hex digest of the current refresh token's secret part.
    pub refresh_hash: Option<String>,
    pub refresh_expires_at: Option<i64>,
    /// When the user signed in for the consent, Unix seconds.
    pub auth_time: i64,
    pub created_at: i64,
    /// The browser session (its public `sid`) the consent was given in; `None` for the
    /// consent API. Ending that session ends the grant unless it holds `offline_access`.
    pub sid: Option<String>,
    /// What the family's last rotated-out secrets were (`service::refresh::Retired`), so that
    /// one coming back is told from a secret never handed out.
    pub retired_refresh: Option<String>,
    /// The resource server (RFC 8707) the authorization request named, one of the app's
    /// `resources`: the audience of every access token of the family. `None`: the issuer.
    pub resource: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
