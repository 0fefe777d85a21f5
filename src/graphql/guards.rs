//! GraphQL guards: early rejection through the same checks the services make.

use async_graphql::{Context, Guard, Result};

use crate::domain::Scope;

/// Which check a field requires.
pub enum Require {
    /// Any signed-in user, whatever the token's scopes.
    SignedIn,
    /// A signed-in user whose token carries the scope.
    User(Scope),
    /// An oauth admin whose token carries the scope.
    OauthAdmin(Scope),
    /// An administrator (role `admin`) whose token carries the scope.
    Admin(Scope),
}

impl Guard for Require {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let principal = super::principal(ctx)?;
        match self {
            Require::SignedIn => principal.require_signed_in().map(drop)?,
            Require::User(scope) => principal.require_user(*scope).map(drop)?,
            Require::OauthAdmin(scope) => principal.require_oauth_admin(*scope).map(drop)?,
            Require::Admin(scope) => principal.require_admin(*scope).map(drop)?,
        }
        Ok(())
    }
}
