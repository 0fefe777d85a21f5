//! The `idgraph` binary itself: `schema`, `user create`, `migrate status`, `keys rotate`,
//! `keys revoke`, configuration errors, Kubernetes' service-link variables, the metrics
//! listener, and a graceful stop on SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::process::Lines;

fn idgraph(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idgraph"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("IDGRAPH_PASSWORD_HASH_CONCURRENCY", "1")
        .env("RUST_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("IDGRAPH_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn schema_prints_the_committed_sdl() {
    let dir = tempfile::tempdir().unwrap();
    let output = idgraph(dir.path()).arg("schema").output().unwrap();
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}

#[test]
fn an_invalid_configuration_exits_2_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = idgraph(dir.path())
        .arg("schema")
        .env("IDGRAPH_BIND", "nowhere")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bind"), "{stderr}");
}

#[test]
fn user_create_reads_the_password_from_stdin_and_migrate_status_lists_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = idgraph(dir.path())
        .args([
            "user",
            "create",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
            "--role",
            "oauth",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("created user ops"));
    assert!(
        dir.path().join("idgraph.db").exists(),
        "the default SQLite file is created"
    );

    let again = idgraph(dir.path())
        .args([
            "user",
            "create",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!again.status.success());

    let status = idgraph(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&status.stdout);
    assert!(
        listing.contains("m20261126_000001_platform") && listing.contains("Applied"),
        "{listing}"
    );

    let rotate = idgraph(dir.path())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    let rotated = String::from_utf8_lossy(&rotate.stdout).into_owned();
    assert!(rotated.contains("new signing key"));

    // The key just published to sign next leaked: revoked, another takes its place; once
    // revoked there is nothing left to revoke.
    let kid = rotated
        .split_whitespace()
        .skip_while(|word| *word != "key")
        .nth(1)
        .expect("the new key's id")
        .to_string();
    let revoke = || {
        idgraph(dir.path())
            .args(["keys", "revoke", &kid])
            .output()
            .unwrap()
    };
    let revoked = revoke();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let said = String::from_utf8_lossy(&revoked.stdout);
    assert!(
        said.contains(&format!("signing key {kid}")) && said.contains("revoked"),
        "{said}"
    );
    assert!(said.contains("takes its place (next)"), "{said}");
    let again = revoke();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no longer published"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET path` over HTTP/1.0 on a loopback port: the whole answer, or `None` when nothing
/// listens there yet.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    Some(response)
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

#[test]
fn a_misspelt_key_in_the_settings_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("idgraph.toml"),
        "bind_adress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    // `serve` with the service links Kubernetes injects, which the environment tolerates, and
    // a database it could not open, so that a file read leniently would end in another way
    // instead of serving on.
    let output = idgraph(dir.path())
        .args(["--config", "idgraph.toml", "serve"])
        .env("IDGRAPH_PORT", "tcp://10.0.0.1:8080")
        .env("IDGRAPH_SERVICE_HOST", "10.0.0.1")
        .env("DATABASE_URL", "sqlite:///nonexistent/dir/idgraph.db")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bind_adress"), "{stderr}");
}

/// Serves with the service links Kubernetes injects (ignored, with one warning) and with the
/// metrics listener on its own port; the public port has no `/metrics`.
#[test]
fn serve_ignores_service_links_serves_metrics_apart_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = idgraph(dir.path())
        .arg("serve")
        .env("IDGRAPH_BIND", format!("127.0.0.1:{port}"))
        .env("IDGRAPH_METRICS_BIND", format!("127.0.0.1:{metrics_port}"))
        .env("IDGRAPH_PORT", "tcp://10.0.0.1:8080")
        .env("IDGRAPH_SERVICE_HOST", "10.0.0.1")
        .env("IDGRAPH_LOG_FORMAT", "json")
        // `idgraph::cli=info` for the "metrics listening" line: both listeners are bound.
        .env("RUST_LOG", "warn,audit=info,idgraph::cli=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A silent server fails the test at a deadline instead of hanging it.
    let mut output = Lines::read(child.stdout.take().unwrap());
    let password_line = output.wait_for("Password (shown once)", Duration::from_secs(30));
    assert!(password_line.split_whitespace().last().unwrap().len() >= 20);
    // The first user's creation went to the JSON log as an audit line, its target kept (so
    // that audit lines can be told apart), and the password never did.
    let logged = &output.seen;
    let audit_line = logged
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["target"] == "audit" && line["action"] == "user.create")
        .unwrap_or_else(|| panic!("no audit line for the first user: {logged:?}"));
    let password = password_line.split_whitespace().last().unwrap();
    assert!(!audit_line.to_string().contains(password));

    // Logged once both listeners are bound: from then on a connection waits to be accepted.
    output.wait_for("metrics listening", Duration::from_secs(30));
    let health = http_get(port, "/healthz").expect("the server answers");
    assert!(status_line(&health).contains(" 200 "), "{health}");
    let public = http_get(port, "/metrics").unwrap();
    assert!(status_line(&public).contains(" 404 "), "{public}");
    let metrics = http_get(metrics_port, "/metrics").expect("the metrics listener answers");
    assert!(status_line(&metrics).contains(" 200 "), "{metrics}");
    assert!(
        metrics.contains(
            r#"idgraph_http_requests_total{route="/healthz",method="GET",status="200"} 1"#
        ),
        "{metrics}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || exit_tx.send(child.wait()));
    let status = exit_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut stderr_pipe, &mut stderr).unwrap();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("not settings"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("IDGRAPH_PORT") && warnings[0].contains("IDGRAPH_SERVICE_HOST"),
        "{stderr}"
    );
}

/// Runs `idgraph` with `args` in `dir`, writing `stdin` to it.
fn run_with_stdin(mut command: Command, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `user set-password` and `user set-roles` against the database at `url`, from `dir`.
async fn user_set_password_and_set_roles_are_audited_and_keep_an_administrator(url: &str) {
    use idgraph::db::entities::{audit_events, users};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

    let dir = tempfile::tempdir().unwrap();
    let cli = || {
        let mut command = idgraph(dir.path());
        command.env("DATABASE_URL", url);
        command
    };
    let create = |name: &str, role: &str| {
        let output = run_with_stdin(
            cli(),
            &[
                "user",
                "create",
                "--username",
                name,
                "--email",
                &format!("{name}@example.com"),
                "--role",
                role,
                "--password-stdin",
            ],
            "a long enough password\n",
        );
        assert!(output.status.success(), "{output:?}");
    };
    create("root", "admin");
    create("ops", "oauth");
    // The last administrator keeps the role, even at the command line.
    let refused = cli()
        .args(["user", "set-roles", "--username", "root", "--role", "oauth"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no enabled administrator"),
        "{refused:?}"
    );
    let promoted = cli()
        .args([
            "user",
            "set-roles",
            "--username",
            "ops",
            "--role",
            "admin",
            "--role",
            "oauth",
        ])
        .output()
        .unwrap();
    assert!(promoted.status.success(), "{promoted:?}");
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("ops now holds: admin oauth"));
    let db = idgraph::db::connect(url, 1).await.unwrap();
    let hash_of = |db: sea_orm::DatabaseConnection| async move {
        users::Entity::find()
            .filter(users::Column::Username.eq("ops"))
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .password_hash
    };
    let before = hash_of(db.clone()).await;
    let set = run_with_stdin(
        cli(),
        &[
            "user",
            "set-password",
            "--username",
            "ops",
            "--password-stdin",
        ],
        "a different long password\n",
    );
    assert!(set.status.success(), "{set:?}");
    assert_ne!(hash_of(db.clone()).await, before);
    let short = run_with_stdin(
        cli(),
        &[
            "user",
            "set-password",
            "--username",
            "ops",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!short.status.success());
    let events: Vec<(String, String)> = audit_events::Entity::find()
        .filter(audit_events::Column::ActorKind.eq("cli"))
        .order_by_asc(audit_events::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.detail))
        .collect();
    let actions: Vec<&str> = events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.create",
            "user.roles.change",
            "user.password.set"
        ]
    );
    assert!(events[2].1.contains("admin oauth"), "{:?}", events[2]);
}

#[tokio::test]
async fn user_set_password_and_set_roles_are_audited_and_keep_an_administrator_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/idgraph.db?mode=rwc", dir.path().display());
    user_set_password_and_set_roles_are_audited_and_keep_an_administrator(&url).await;
}

#[tokio::test]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn user_set_password_and_set_roles_are_audited_and_keep_an_administrator_on_postgres() {
    let empty = crate::common::EmptyPostgres::create()
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    user_set_password_and_set_roles_are_audited_and_keep_an_administrator(&empty.url).await;
}
