//! Migrations run up and down on both stores.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::common::TestApp;

async fn table_names(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect()
}

async fn migrations_go_down_and_up_again(app: TestApp) {
    // One connection of its own: a pooled SQLite connection that has not read the schema since
    // another one dropped a table may still see it at prepare time, and refuse to create it
    // again ("already exists"), depending on which connection each statement lands on.
    let db = idgraph::db::connect(&app.state.config.database_url, 1)
        .await
        .unwrap();
    let db = &db;
    let up = table_names(db).await;
    for table in ["users", "sessions", "signing_keys", "seaql_migrations"] {
        assert!(up.iter().any(|t| t == table), "{table} missing from {up:?}");
    }
    let applied = Migrator::get_applied_migrations(db).await.unwrap().len();
    Migrator::down(db, Some(applied as u32)).await.unwrap();
    assert_eq!(table_names(db).await, vec!["seaql_migrations".to_string()]);
    assert!(
        Migrator::get_applied_migrations(db)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(db, None).await.unwrap();
    assert_eq!(table_names(db).await, up);
}

crate::on_every_database!(migrations_go_down_and_up_again);

/// Every migration file with the SHA-256 it had when it landed. A landed migration is history:
/// a database migrated from an earlier main never runs it again, so an edit would never reach
/// it. Change nothing here but to add the line of a new migration.
const LANDED: [(&str, &str); 16] = [
    (
        "m20261126_000001_platform.rs",
        "9b3e42da41db84aca0fa7c167e354b82705d10edd443091dd0d7bf7a3aaf4d87",
    ),
    (
        "m20261126_000002_apps.rs",
        "7db81063514135b17f80da9b4680f742ff8edba1b6ebd638ab7d5e2cd305941c",
    ),
    (
        "m20261126_000003_connections.rs",
        "b1b32cb2d46877ce36cb3a318093acfe8c85a10b6334031aecb4e24da23c7a2f",
    ),
    (
        "m20261127_000004_hosted_sign_in.rs",
        "813af574e3e42d313f83b3e00291e3231844187382561f8f4ab2a84596115ccd",
    ),
    (
        "m20261129_000005_grants.rs",
        "39b998430821221800528f74d99b150b074fab09b4f9d90b7315ca737b94f890",
    ),
    (
        "m20261129_000006_client_model.rs",
        "f0b8e7af577396e9f0e1d0d0b07ef081884748963c826ced445afb5e8fe4918c",
    ),
    (
        "m20261129_000007_token_lifecycle.rs",
        "8c308bde012da66aefdafca31227413dd142cc8e2704df459c6ab5e90c411941",
    ),
    (
        "m20261129_000008_revoked_tokens_expiry.rs",
        "29666cff0df0cad871659530f6f57aca10ba11927bdd36177e19fd8ade3d927a",
    ),
    (
        "m20261129_000009_sign_in_attempts.rs",
        "e3bd8c3e6483ecaa55be534a46bc37c947ab7d8402968c57fdb05f40a0db8604",
    ),
    (
        "m20261129_000010_key_activation.rs",
        "987ff8e48cb5c117e93e971a1c9bbac9498da5ec2ac468b9a0691ff24610ce38",
    ),
    (
        "m20261129_000011_logout.rs",
        "cbdd1023103fa16284551630e82a455b34d41177bf0c899f8a26cfde30444948",
    ),
    (
        "m20261129_000012_users_audit.rs",
        "d30a66ff6c1412cbae9f360963393ce3abbba3209ec74b5437c106403559e2fc",
    ),
    (
        "m20261130_000013_retired_refresh.rs",
        "81db251ccedef5d349d3d6e37c3812ac15b9b09129d612d87207714eb87b6790",
    ),
    (
        "m20261201_000014_unbounded_scopes.rs",
        "37348cda5f1df2c200abee66702d3e1fd1c0a950773437c123e5b096ce7ae6cf",
    ),
    (
        "m20261201_000015_grant_resource.rs",
        "27b894d36c686d7150d575a4a52dff9e5fcc2d6503ca90054dcb9c2733085add",
    ),
    (
        "m20261201_000016_session_apps.rs",
        "c69a574ca18c4904c5157dce671c2f9221d1cfbcab2d7f8829bbc6081859c3e9",
    ),
];

#[test]
fn landed_migrations_never_change() {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/src");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('m') && name != "main.rs")
        .collect();
    files.sort();
    let pinned: Vec<&str> = LANDED.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        files, pinned,
        "every migration file is pinned here with its SHA-256 (a new migration adds its line)"
    );
    for (name, expected) in LANDED {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            actual, expected,
            "{name} changed after it landed: revert it and add a new migration instead"
        );
    }
}

/// Nodes started together against an empty database migrate it once between them: each takes
/// the migration lock in turn, and the ones after the first find nothing pending. (Without the
/// lock, concurrent runs of the first migration collide on creating the same tables.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn nodes_started_together_migrate_once() {
    let empty = crate::common::EmptyPostgres::create()
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(idgraph::db::connect(&empty.url, 2).await.unwrap());
    }
    let results =
        futures_util::future::join_all(nodes.iter().map(|db| idgraph::db::migrate(db, &empty.url)))
            .await;
    for result in results {
        result.expect("every node starts");
    }
    let applied = nodes[0]
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(applied as usize, Migrator::migrations().len());
    for db in nodes {
        db.close().await.unwrap();
    }
}
