//! Mutation resolvers: extract, call one service function, convert.

use async_graphql::{Context, Object, Result};
use secrecy::SecretString;

use super::guards::Require;
use super::types::{LoginInput, SessionPayload};
use crate::edge::ClientAddr;
use crate::service::sessions;

/// Session mutations.
#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Signs in with a username and password and opens a first-party session. Failed attempts
    /// count toward the sign-in back-off, per username and per client address.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<SessionPayload> {
        let state = super::state(ctx)?;
        let ClientAddr(addr) = ctx.data_opt::<ClientAddr>().copied().unwrap_or_default();
        let tokens = sessions::login(
            state,
            &input.username,
            SecretString::from(input.password),
            input.scope.as_deref(),
            addr,
        )
        .await?;
        Ok(tokens.into())
    }

    /// Exchanges a refresh token for new tokens. The old refresh token stops working; using it
    /// again ends the session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> Result<SessionPayload> {
        let tokens = sessions::refresh(super::state(ctx)?, &refresh_token).await?;
        Ok(tokens.into())
    }

    /// Ends the caller's session; its tokens stop working at once.
    #[graphql(guard = "Require::SignedIn")]
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        sessions::logout(super::state(ctx)?, super::principal(ctx)?).await?;
        Ok(true)
    }
}
