//! `connections`: a user's consent to an app, its pending code and its live token family.

use sea_orm::entity::prelude::*;

/// A connection row. Hashes and PKCE data never leave the service layer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// Granted OpenID scopes, space-separated and sorted.
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// `plain` or `S256`.
    pub code_challenge_method: Option<String>,
    /// SHA-256 hex digest of the pending (or last) authorization code.
    pub code_hash: Option<String>,
    pub code_time: Option<i64>,
    pub code_used_at: Option<i64>,
    /// The token family issued from the last redeemed code; `None` once revoked.
    pub grant_id: Option<String>,
    /// SHA-256 hex digest of the current refresh token's secret part.
    pub refresh_hash: Option<String>,
    pub refresh_expires_at: Option<i64>,
    pub auth_time: i64,
    pub access_time: i64,
    pub creation_time: i64,
    /// Every scope the user ever approved for the app, sorted; `None` on rows older than the
    /// column, whose `scope` is then the consent.
    pub consented_scope: Option<String>,
}

impl Model {
    /// The scopes the user has consented to.
    pub fn consented(&self) -> crate::domain::oauth::OidcScopes {
        crate::domain::oauth::OidcScopes::filter(
            self.consented_scope.as_deref().unwrap_or(&self.scope),
        )
    }
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
