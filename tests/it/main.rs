//! idgraph's integration tests: one binary, the real router in-process, a fresh database per
//! test, every storage test on SQLite and (with `TEST_DATABASE_URL`) on PostgreSQL.

mod common;
mod fixtures;

/// Counts the bytes each thread holds, for the tests that bound a request's memory.
#[global_allocator]
static ALLOCATOR: common::memory::Counting = common::memory::Counting;

mod apps;
mod apps_logos;
mod audit;
mod browser;

mod cli;
mod clients;
mod config;
mod connections;
mod console;
mod console_browser;
mod contracts;
mod fuzz;
mod graphiql;
mod graphql_transport;
mod guards;
mod hardening;
mod health;
mod hosted;
mod housekeeping;
mod keys;
mod layers;
mod lifecycle;
mod live;
mod logout;
mod metrics;
mod migrations;
mod oidc;
mod races;
mod relying_party;
mod resources;
mod sessions;
mod users;
mod writer;
