#!/usr/bin/env bash
# Revocation (RFC 7009) beside node-oidc-provider, under ../shared/peer-bench's load generator:
# its wrk (2 threads, 64 connections), its token script with one more mode (a form
# `token=<refresh token>&token_type_hint=refresh_token`, each token revoked once), and its peer
# with the revocation feature turned on. Both sides mint TOKENS refresh tokens first (a code
# and its exchange each), then revoke them: WARMUP seconds, then DURATION measured. idgraph
# runs on a fresh SQLite database with its default settings. Both edits to the harness are made
# in a temporary copy and checked.
#
# usage: BENCH_IDGRAPH=target/release/idgraph bash bench/peer-revoke.sh
# env (defaults): TOKENS=30000 DURATION=6 WARMUP=1 CONNS=64 THREADS=2 USERS=40 APPS=1500
#   (USERS x APPS must cover TOKENS; the peer mints about 450 a second, so 45000 takes 100 s)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shared=${PEER_BENCH:-$here/../../shared/peer-bench}
BIN=$(realpath "${BENCH_IDGRAPH:?set BENCH_IDGRAPH to the idgraph release binary}")
TOKENS=${TOKENS:-30000}; DURATION=${DURATION:-6}; WARMUP=${WARMUP:-1}
CONNS=${CONNS:-64}; THREADS=${THREADS:-2}; USERS=${USERS:-40}; APPS=${APPS:-1500}
export PEER_NODE_DIR=${PEER_NODE_DIR:-${TMPDIR:-/tmp}/peer-bench-node}
[ -f "$PEER_NODE_DIR/node_modules/oidc-provider/package.json" ] ||
  { echo "run ../shared/peer-bench/run.sh once first: it installs oidc-provider" >&2; exit 1; }

copy=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$copy"
}
trap cleanup EXIT
cp -r "$shared"/. "$copy"/
chmod -R u+w "$copy"
sed -i 's/^  features: {$/  features: {\n    revocation: { enabled: true },/' "$copy/oidc-peer.mjs"
sed -i 's/^    if mode == "refresh" then$/    if mode == "revoke" then\n      body = "token=" .. x .. "\&token_type_hint=refresh_token"\n    elseif mode == "refresh" then/' \
  "$copy/wrk/token.lua"
if ! grep -q 'revocation: { enabled: true }' "$copy/oidc-peer.mjs" ||
  ! grep -q 'mode == "revoke"' "$copy/wrk/token.lua"; then
  echo "bench/peer-revoke.sh: the shared harness changed; update the two edits here" >&2
  exit 1
fi

wait_http() { local i; for i in $(seq 1 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
revoke() { # label, URL, file of "refresh_token access_token [client_id secret]" lines
  local out next
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$copy/wrk/token.lua" "$2" -- "$3" 0 "$THREADS" revoke)
  next=$(sed -n 's/^NEXT_OFFSET //p' <<<"$out")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$copy/wrk/token.lua" "$2" -- "$3" "$next" "$THREADS" revoke)
  printf "%-44s %s\n" "$1" "$(grep '^RESULT' <<<"$out")"
  if grep -q '^EXHAUSTED' <<<"$out"; then echo "  WARNING: $(grep '^EXHAUSTED' <<<"$out"): raise TOKENS" >&2; fi
}

# node-oidc-provider, in memory, EdDSA.
PORT=3000 ALG=EdDSA node "$copy/oidc-peer.mjs" > "$copy/peer.log" 2>&1 &
PIDS+=($!)
wait_http http://127.0.0.1:3000/.well-known/openid-configuration
node "$copy/mint-codes.mjs" --base http://127.0.0.1:3000 --n "$TOKENS" --exchange --out "$copy/peer-rt.txt"
revoke "node-oidc-provider POST /token/revocation" http://127.0.0.1:3000/token/revocation "$copy/peer-rt.txt"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()

# idgraph, SQLite, its defaults (EdDSA access tokens).
mkdir -p "$copy/idgraph"
PW=bench-admin-password-0123; UPW=bench-user-password-0123
export IDGRAPH_BIND=127.0.0.1:3100 IDGRAPH_ISSUER=http://127.0.0.1:3100 RUST_LOG=warn \
  IDGRAPH_DATABASE_URL="sqlite://$copy/idgraph/idgraph.db?mode=rwc" IDGRAPH_BOOTSTRAP_ADMIN_PASSWORD=$PW
(cd "$copy/idgraph" && exec "$BIN" serve) > "$copy/idgraph/server.log" 2>&1 &
PIDS+=($!)
wait_http http://127.0.0.1:3100/healthz
for u in $(seq 0 $((USERS - 1))); do
  echo "$UPW" | (cd "$copy/idgraph" && "$BIN" user create --username "bench-user-$u" \
    --email "u$u@bench.example" --password-stdin) > /dev/null
done
node "$copy/idgraph-setup.mjs" --base http://127.0.0.1:3100 --password "$PW" --apps "$APPS" --out "$copy/apps.tsv"
node "$copy/idgraph-mint.mjs" --base http://127.0.0.1:3100 --apps "$copy/apps.tsv" --users "$USERS" \
  --password "$UPW" --n "$TOKENS" --exchange --out "$copy/idgraph-rt.txt"
revoke "idgraph POST /api/oauth/revoke" http://127.0.0.1:3100/api/oauth/revoke "$copy/idgraph-rt.txt"
