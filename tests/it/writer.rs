//! SQLite's writer thread (`idgraph::db::writer`): the hot statements it runs give back the
//! rows SeaORM reads through the pool, and it runs them and the consents (the exactly-once
//! races of `races.rs` and `oidc.rs` go through it on SQLite).

use idgraph::db::entities::grants;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::common::TestApp;
use crate::common::rp::{consent, setup};

#[tokio::test]
async fn the_sqlite_writer_reads_rows_back_as_the_pool_does() {
    let app = TestApp::sqlite().await;
    let rp = setup(&app, "ops", "ada").await;
    // A grant from the consent API leaves several columns NULL (redirect URI, PKCE, session);
    // the one inserted here has every column set.
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    let now = app.now();
    grants::Entity::insert(grants::ActiveModel {
        id: Set("every-column-set".into()),
        user_id: Set(rp.user_id.clone()),
        client_id: Set(rp.client_id.clone()),
        scope: Set("openid offline_access".into()),
        nonce: Set(Some("n-0S6".into())),
        redirect_uri: Set(Some("https://rp.example/cb".into())),
        code_hash: Set(Some("c0de".into())),
        code_challenge: Set(Some("challenge".into())),
        code_challenge_method: Set(Some("S256".into())),
        code_expires_at: Set(Some(now + 60)),
        code_used_at: Set(Some(now)),
        refresh_hash: Set(Some("f00d".into())),
        refresh_expires_at: Set(Some(now + 3600)),
        auth_time: Set(now - 5),
        created_at: Set(now - 1),
        sid: Set(Some("session".into())),
        retired_refresh: Set(Some("0123456789abcdef".into())),
        resource: Set(Some("https://api.example/orders".into())),
    })
    .exec_without_returning(&app.state.db)
    .await
    .unwrap();

    let ran = app.state.writer.statements();
    let updated = app
        .state
        .writer
        .update_returning(
            &app.state.db,
            grants::Entity::update_many()
                .col_expr(grants::Column::CreatedAt, Expr::value(now))
                .filter(grants::Column::UserId.eq(&rp.user_id)),
        )
        .await
        .unwrap();
    assert_eq!(app.state.writer.statements(), ran + 1, "the writer ran it");
    let mut read = grants::Entity::find()
        .filter(grants::Column::UserId.eq(&rp.user_id))
        .all(&app.state.db)
        .await
        .unwrap();
    let mut updated = updated;
    updated.sort_by(|a, b| a.id.cmp(&b.id));
    read.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(updated.len(), 2);
    assert!(updated.iter().all(|row| row.created_at == now));
    assert_eq!(updated, read);
}

/// On SQLite a consent's two writes, the connection's upsert and the grant's insert, run on the
/// writer thread, together.
#[tokio::test]
async fn a_consent_on_sqlite_is_written_by_the_writer_thread() {
    let app = TestApp::sqlite().await;
    let rp = setup(&app, "ops", "ada").await;
    let ran = app.state.writer.statements();
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    assert_eq!(app.state.writer.statements(), ran + 2);
}
