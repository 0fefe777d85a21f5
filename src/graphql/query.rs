//! Query resolvers: extract, call one service function, convert.

use async_graphql::{Context, Object, Result};

use super::connections::Viewer;
use super::guards::Require;
use crate::service::users;

/// Session queries.
#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The signed-in user.
    #[graphql(guard = "Require::SignedIn")]
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let user = users::viewer(super::state(ctx)?, super::principal(ctx)?).await?;
        Ok(Viewer(user))
    }
}
