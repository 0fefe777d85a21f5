//! GraphQL guards: early rejection through the same checks the services make.

use async_graphql::{Context, Guard, Result};

/// Which check a field requires. Scoped variants join as scoped fields arrive.
pub enum Require {
    /// Any signed-in user, whatever the token's scopes.
    SignedIn,
}

impl Guard for Require {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let principal = super::principal(ctx)?;
        match self {
            Require::SignedIn => principal.require_signed_in().map(drop)?,
        }
        Ok(())
    }
}
