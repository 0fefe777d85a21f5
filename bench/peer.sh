#!/usr/bin/env bash
# idgraph's side of ../shared/peer-bench as the README's "Beside node-oidc-provider" figures
# measure it: the server signs access tokens with its default key (EdDSA) and the benchmark's
# apps ask for the row's ID-token algorithm (`id_token_signed_response_alg` = $ALG), as relying
# parties do. The shared `idgraph.sh` instead makes $ALG the server's access-token algorithm and
# leaves every app's ID tokens at RS256 (so its RS256 row signs twice with RSA, its EdDSA row
# once). This makes that variant in a temporary copy of the harness, checks that both edits
# took, and runs it with the caller's environment (ALG, CODES, USERS, DURATION, WARMUP, DB_URL,
# ...).
#
# usage: BENCH_IDGRAPH=target/release/idgraph ALG=EdDSA bash bench/peer.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shared=${PEER_BENCH:-$here/../../shared/peer-bench}
# The harness runs the binary from its own working directories.
BENCH_IDGRAPH=$(realpath "${BENCH_IDGRAPH:?set BENCH_IDGRAPH to the idgraph release binary}")
export BENCH_IDGRAPH
# Whatever the caller's environment says, access tokens keep the server's default algorithm.
unset IDGRAPH_SIGNING_ALGORITHM
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -r "$shared"/. "$copy"/
chmod -R u+w "$copy"
sed -i 's/ IDGRAPH_SIGNING_ALGORITHM=\$ALG$//' "$copy/idgraph.sh"
sed -i 's/redirect_uri: REDIRECT_URI })/redirect_uri: REDIRECT_URI, id_token_signed_response_alg: process.env.ALG })/' \
  "$copy/idgraph-setup.mjs"
if grep -q 'IDGRAPH_SIGNING_ALGORITHM' "$copy/idgraph.sh" ||
  ! grep -q 'id_token_signed_response_alg' "$copy/idgraph-setup.mjs"; then
  echo "bench/peer.sh: the shared harness changed; update the two edits here" >&2
  exit 1
fi
export ALG=${ALG:-RS256}
bash "$copy/idgraph.sh"
