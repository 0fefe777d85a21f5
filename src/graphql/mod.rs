//! The GraphQL transport: schema construction (pure), guards, types, thin resolvers and the
//! hardened HTTP endpoint.

mod app_types;
mod apps;
mod audit;
mod connections;
mod graphiql;
mod guards;
pub mod http;
mod keys;
mod limits;
mod loaders;
mod mutation;
mod query;
mod types;
mod users;

use async_graphql::{Context, EmptySubscription, MergedObject, Schema};

use crate::auth::Principal;
use crate::error::AppError;
use crate::service::AppState;

/// The root of every query.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    query::SessionQuery,
    apps::AppQuery,
    users::UserQuery,
    audit::AuditQuery,
    keys::KeyQuery,
);

/// The root of every mutation.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::SessionMutation,
    apps::AppMutation,
    connections::ConnectionMutation,
    users::UserMutation,
    keys::KeyMutation,
);

/// The idgraph schema type.
pub type IdgraphSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Limits applied to every query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest complexity (one point per field by default).
    pub max_complexity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 500,
        }
    }
}

/// Builds the schema. Pure: no I/O, no state; request data (state, principal) is attached per
/// request by the HTTP endpoint. `idgraph schema` and the snapshot test call this too.
pub fn build_schema(limits: Limits) -> IdgraphSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(16)
    .finish()
}

/// Depth limit of operations that select only introspection fields. The standard introspection
/// query (GraphiQL's, graphql-js's, schemathesis') nests type references about fifteen deep,
/// deeper than any operation on idgraph's own fields needs. Its answer still grows with depth
/// (`__Type.fields.type` cycles), so the limit is a little above what those tools use, and the
/// selection bound of [`limits`] applies before it runs.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// The two schemas a request may run against: the same types, with [`INTROSPECTION_MAX_DEPTH`]
/// for operations that only introspect (see [`http`]).
#[derive(Clone)]
pub struct Schemas {
    /// Every operation that selects one of idgraph's own fields.
    pub regular: IdgraphSchema,
    /// Operations whose root fields are all `__schema`, `__type` or `__typename`.
    pub introspection: IdgraphSchema,
}

impl Schemas {
    /// Builds both under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            regular: build_schema(limits),
            introspection: build_schema(Limits {
                max_depth: limits.max_depth.max(INTROSPECTION_MAX_DEPTH),
                ..limits
            }),
        }
    }
}

/// The state attached to the request.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> Result<&'a AppState, AppError> {
    ctx.data::<AppState>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("AppState missing from GraphQL context")))
}

/// The caller attached to the request.
pub(crate) fn principal<'a>(ctx: &Context<'a>) -> Result<&'a Principal, AppError> {
    ctx.data::<Principal>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("Principal missing from GraphQL context")))
}
