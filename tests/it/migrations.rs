//! Migrations run up and down on both stores.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::common::TestApp;

async fn table_names(app: &TestApp) -> Vec<String> {
    let db = &app.state.db;
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
    let up = table_names(&app).await;
    for table in ["users", "sessions", "signing_keys", "seaql_migrations"] {
        assert!(up.iter().any(|t| t == table), "{table} missing from {up:?}");
    }
    let applied = Migrator::get_applied_migrations(&app.state.db)
        .await
        .unwrap()
        .len();
    Migrator::down(&app.state.db, Some(applied as u32))
        .await
        .unwrap();
    assert_eq!(
        table_names(&app).await,
        vec!["seaql_migrations".to_string()]
    );
    assert!(
        Migrator::get_applied_migrations(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(&app.state.db, None).await.unwrap();
    assert_eq!(table_names(&app).await, up);
}

crate::on_every_database!(migrations_go_down_and_up_again);
