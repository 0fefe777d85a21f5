#!/usr/bin/env bash
# idgraph benchmark: release builds on fresh SQLite databases, the load generators beside the
# server on the same machine, each measurement for the same duration and concurrency.
#
# Part "apps" (wrk, Debian package `wrk`; 10,000 apps seeded):
#   - GET /healthz                          (a trivial route of the same server: the ceiling)
#   - GET /api/oauth/app/id/{random id}     (public app look-up, served through the app cache)
#   - POST /graphql appsByIds with 100 ids  (bulk look-up)
# Part "oidc" (bench/src/main.rs, once with apps that ask for RS256 ID tokens and once for EdDSA
# ones; access tokens are signed with the server's default, EdDSA):
#   - POST /api/oauth/token authorization_code (a fresh code per request, client_secret_basic,
#     PKCE S256), refresh_token (rotating), GET /api/oauth/userinfo, client_credentials,
#     POST /api/oauth/introspect, POST /api/oauth/revoke, and the signing-only ceiling.
# Usage: bench/run.sh [seconds per measurement, default 10] [connections, default 32] [all|apps|oidc]
# With BENCH_BIN set to a directory holding `idgraph` and `idgraph-bench` (copies of an earlier
# release build), those run and nothing is built: two builds compare side by side in one session.
# With BENCH_POSTGRES set to a PostgreSQL server URL whose user may create databases (e.g.
# postgres://postgres@127.0.0.1:5432/postgres), the oidc part runs on SQLite and then on
# PostgreSQL, in a fresh database per run (the apps part seeds SQLite directly and stays on
# SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
PART="${3:-all}"
PORT="${BENCH_PORT:-18089}"
USERS=20
APPS=500

if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$(cd "$BENCH_BIN" && pwd)"
else
  cargo build --release --quiet -p idgraph -p idgraph-bench
  BIN="$PWD/target/release"
fi
WORK="$(mktemp -d)"
SERVER=""
stop_server() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  SERVER=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT

export IDGRAPH_BIND="127.0.0.1:$PORT"
export IDGRAPH_BOOTSTRAP_ADMIN_PASSWORD="bench-admin-password"
export RUST_LOG=warn
STORE="SQLite"
start_server() { # database name, store (sqlite or postgres); settings come from the environment
  if [ "${2:-sqlite}" = postgres ]; then
    local name
    name="idgraph_bench_$(echo "$1" | tr 'A-Z-' 'a-z_')"
    PGOPTIONS='--client-min-messages=warning' psql "$BENCH_POSTGRES" -q -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
    export IDGRAPH_DATABASE_URL="${BENCH_POSTGRES%/*}/$name"
    STORE="PostgreSQL"
  else
    export IDGRAPH_DATABASE_URL="sqlite://$WORK/$1.db?mode=rwc"
    STORE="SQLite"
  fi
  "$BIN"/idgraph serve > "$WORK/$1.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "bench: the server did not start; see its log:" >&2; cat "$WORK/$1.log" >&2; exit 1
}

bench_apps() {
command -v wrk >/dev/null || { echo "bench: install wrk first (apt-get install wrk)" >&2; exit 1; }
start_server bench

# Seed 10,000 apps straight into the database the server already migrated.
python3 - "$WORK" <<'PY'
import os, random, secrets, sqlite3, sys, time
work = sys.argv[1]
db = sqlite3.connect(os.path.join(work, "bench.db"))
now = int(time.time())
rows = []
for i in range(10_000):
    cid = secrets.token_urlsafe(16)
    rows.append((cid, f"app {i:05d}", "https://example.com", "https://example.com/cb", "", None, now, now))
db.executemany("INSERT INTO apps (client_id, name, url, redirect_uri, logo, creator_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)", rows)
db.commit()
ids = [r[0] for r in rows]
with open(os.path.join(work, "ids.txt"), "w") as f:
    f.write("\n".join(ids))
random.seed(7)
bulk = random.sample(ids, 100)
with open(os.path.join(work, "bulk.json"), "w") as f:
    import json
    f.write(json.dumps({"query": "query AppsByIds($ids: [ID!]!) { appsByIds(clientIds: $ids) { clientId name } }", "variables": {"ids": bulk}}))
PY

cat > "$WORK/app.lua" <<LUA
local ids = {}
for line in io.lines("$WORK/ids.txt") do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "/api/oauth/app/id/" .. ids[math.random(#ids)])
end
LUA
cat > "$WORK/bulk.lua" <<LUA
local f = io.open("$WORK/bulk.json"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"
LUA
cat > "$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA

run() { # name, url, script
  local script="$WORK/run.lua"
  if [ -n "$3" ]; then cat "$3" "$WORK/report.lua" > "$script"; else cp "$WORK/report.lua" "$script"; fi
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$script" "$2" | awk -v name="$1" '/^RESULT/ { printf "%-34s %10s req/s   p50 %7s ms   p99 %8s ms   errors %s\n", name, $2, $3, $4, $5; print name, $2 > "/dev/stderr" }'
}

echo "idgraph bench: $DURATION s per route, $CONNECTIONS connections, 10,000 apps, SQLite, $(nproc) cores"
run "GET /healthz" "http://127.0.0.1:$PORT/healthz" "" 2>"$WORK/healthz.rps"
run "GET /api/oauth/app/id/{id}" "http://127.0.0.1:$PORT/" "$WORK/app.lua" 2>"$WORK/app.rps"
run "POST /graphql appsByIds (100 ids)" "http://127.0.0.1:$PORT/graphql" "$WORK/bulk.lua" 2>"$WORK/bulk.rps"
awk 'FNR==1 && FILENAME ~ /healthz/ { base=$NF } FNR==1 && FILENAME ~ /app.rps/ { printf "app GET / trivial route: %.2fx\n", $NF / base }' "$WORK/healthz.rps" "$WORK/app.rps"
stop_server
}

bench_oidc() { # the apps' ID-token algorithm, the store (access tokens: the server's default, EdDSA)
  start_server "oidc-$1" "$2"
  echo "store: $STORE"
  for i in $(seq 0 $((USERS - 1))); do
    printf 'bench-user-password' | "$BIN"/idgraph user create --username "bench-user-$i" \
      --email "bench-user-$i@example.com" --name "Bench User $i" --password-stdin >/dev/null
  done
  echo
  BENCH_ADMIN_PASSWORD="$IDGRAPH_BOOTSTRAP_ADMIN_PASSWORD" BENCH_USER_PASSWORD="bench-user-password" \
    "$BIN"/idgraph-bench --base "http://127.0.0.1:$PORT" --users "$USERS" --apps "$APPS" \
    --seconds "$DURATION" --connections "$CONNECTIONS" --id-token-alg "$1"
  stop_server
}

bench_oidc_everywhere() {
  for store in sqlite ${BENCH_POSTGRES:+postgres}; do
    bench_oidc RS256 "$store"; bench_oidc EdDSA "$store"
  done
}

case "$PART" in
  all) bench_apps; bench_oidc_everywhere ;;
  apps) bench_apps ;;
  oidc) bench_oidc_everywhere ;;
  *) echo "bench: the part must be all, apps or oidc" >&2; exit 2 ;;
esac
