//! Query resolvers: extract, call one service function, convert.

use async_graphql::{Context, Object, Result};

use super::guards::Require;
use super::types::User;
use crate::service::users;

/// The root of every query.
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in user.
    #[graphql(guard = "Require::SignedIn")]
    async fn viewer(&self, ctx: &Context<'_>) -> Result<User> {
        let user = users::viewer(super::state(ctx)?, super::principal(ctx)?).await?;
        Ok(user.into())
    }
}
