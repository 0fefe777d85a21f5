//! `signing_keys`: the token-signing keys every node shares.

use sea_orm::entity::prelude::*;

/// A signing key row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// PKCS#8 DER private key.
    pub private_key: Vec<u8>,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// `active` (published; signing, or about to, or retiring), `retired` (gone) or `revoked`
    /// (taken out before its time: nothing it signed verifies).
    pub state: String,
    pub created_at: i64,
    /// When a superseded key stops being published.
    pub retires_at: Option<i64>,
    /// When a rotated key starts signing (published before); `None`: from its creation.
    pub activates_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
