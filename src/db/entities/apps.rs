//! `apps`: registered OAuth clients and their client metadata.

use sea_orm::entity::prelude::*;

/// An app row. Its secrets are `app_secrets` rows; they never leave the service layer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub name: String,
    pub url: String,
    /// The first redirect URI (the seed's `redirect_uri`).
    pub redirect_uri: String,
    /// A `data:` URL of a tiny thumbnail, or empty.
    pub logo: String,
    pub creator_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Every redirect URI, a JSON array; `[]` on rows older than the column means
    /// `[redirect_uri]`.
    pub redirect_uris: String,
    /// A JSON array.
    pub post_logout_redirect_uris: String,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
    /// Space-separated grant types.
    pub grant_types: String,
    /// Space-separated scope ceiling; empty means every scope.
    pub scope: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub id_token_signed_response_alg: String,
    /// A JSON array of resource indicators.
    pub resources: String,
    /// Where back-channel logout tokens go; empty when the app registered none.
    pub backchannel_logout_uri: String,
    /// Whether the app needs `sid` in its logout tokens.
    pub backchannel_logout_session_required: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::app_secrets::Entity")]
    Secrets,
}

impl Related<super::app_secrets::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Secrets.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
