#!/usr/bin/env bash
# Starts the distributed deployment for benchmarking: every service as its own process of the
# release binary, two gateways (ws://127.0.0.1:10001 and :10003, REST on :10002), on the local
# MariaDB and Redis and a tansu broker (Kafka protocol) started here. Messages go to MySQL unless
# OPENIM_TEST_MONGO_URL names a MongoDB. Stops everything on Ctrl-C.
#
#   cargo build --release -p openim -p openim-bench
#   export OPENIM_SHARE__SECRET=$(openssl rand -hex 32)   # production refuses the default
#   crates/openim-bench/run-distributed.sh &
#   target/release/openim-bench --ws ws://127.0.0.1:10001,ws://127.0.0.1:10003 -n 1000 --rate 10000
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${CARGO_TARGET_DIR:-target}/release/openim"
tansu="${OPENIM_TANSU:-$HOME/.cache/tools/tansu/bin/tansu}"
[ -x "$bin" ] || { echo "build first: cargo build --release -p openim ($bin missing)" >&2; exit 1; }
[ -x "$tansu" ] || { echo "tansu not found at $tansu (bash .ci/run installs it)" >&2; exit 1; }
[ -n "${OPENIM_SHARE__SECRET:-}" ] || {
  echo "set OPENIM_SHARE__SECRET first (a production deployment refuses the default), e.g." >&2
  echo "  export OPENIM_SHARE__SECRET=\$(openssl rand -hex 32)   # openim-bench reads it too" >&2
  exit 1
}
# The services' token-signing key: theirs alone, so a fresh one each run.
export OPENIM_SHARE__TOKEN_KEY="${OPENIM_SHARE__TOKEN_KEY:-$(openssl rand -hex 32)}"
bash xtask/setup/services.sh

run=$(date +%s)
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

(cd "$work" && exec "$tansu" broker --listener-url tcp://127.0.0.1:19092 \
  --advertised-listener-url tcp://127.0.0.1:19092 --storage-engine sqlite://tansu.db) >"$work/tansu.log" 2>&1 &
pids+=($!)

export OPENIM_STORAGE__BACKEND=production
if [ -n "${OPENIM_TEST_MONGO_URL:-}" ]; then
  export OPENIM_STORAGE__MESSAGE_STORE=mongodb OPENIM_MONGODB__URI="$OPENIM_TEST_MONGO_URL"
else
  export OPENIM_STORAGE__MESSAGE_STORE=mysql
fi
export OPENIM_MYSQL__ADDRESS='[127.0.0.1:3306]' OPENIM_MYSQL__USERNAME="${OPENIM_MYSQL__USERNAME:-root}" OPENIM_MYSQL__PASSWORD='' OPENIM_MYSQL__DATABASE="openim_bench_$run"
export OPENIM_MONGODB__DATABASE="openim_bench_$run"
export OPENIM_REDIS__ADDRESS='[127.0.0.1:6379]' OPENIM_REDIS__PASSWORD='' OPENIM_REDIS__KEY_PREFIX="bench-$run:"
export OPENIM_KAFKA__ADDRESS='[127.0.0.1:19092]' OPENIM_KAFKA__PARTITIONS="${OPENIM_KAFKA__PARTITIONS:-2}" OPENIM_KAFKA__LINGER_MS="${OPENIM_KAFKA__LINGER_MS:-10}"
export OPENIM_LOG__LEVEL="${OPENIM_LOG__LEVEL:-warn}"
export OPENIM_API__LISTEN=127.0.0.1:10002 OPENIM_API__ADMIN_LISTEN=127.0.0.1:12002
export OPENIM_SHARE__RPC__MSGGATEWAY='["http://127.0.0.1:10140", "http://127.0.0.1:10141"]'
for svc in AUTH:10200 USER:10110 FRIEND:10120 GROUP:10150 CONVERSATION:10180 MSG:10130; do
  name=${svc%%:*} port=${svc##*:}
  export "OPENIM_RPC_${name}__LISTEN=127.0.0.1:$port" "OPENIM_SHARE__RPC__${name}=http://127.0.0.1:$port"
done
export OPENIM_RPC_MSG__ADMIN_LISTEN=127.0.0.1:12130

start() { "$bin" --config config "$@" & pids+=($!); }
for svc in rpc-auth rpc-user rpc-friend rpc-group rpc-conversation rpc-msg msgtransfer push crontask api; do
  start "$svc"
done
OPENIM_MSGGATEWAY__LISTEN=127.0.0.1:10001 OPENIM_MSGGATEWAY__ADMIN_LISTEN=127.0.0.1:12140 OPENIM_MSGGATEWAY__RPC_LISTEN=127.0.0.1:10140 \
  OPENIM_MSGGATEWAY__ADVERTISE=http://127.0.0.1:10140 start msggateway
OPENIM_MSGGATEWAY__LISTEN=127.0.0.1:10003 OPENIM_MSGGATEWAY__ADMIN_LISTEN=127.0.0.1:12141 OPENIM_MSGGATEWAY__RPC_LISTEN=127.0.0.1:10141 \
  OPENIM_MSGGATEWAY__ADVERTISE=http://127.0.0.1:10141 start msggateway

for url in http://127.0.0.1:12020/readyz http://127.0.0.1:12130/readyz http://127.0.0.1:12140/readyz http://127.0.0.1:12141/readyz http://127.0.0.1:12002/readyz; do
  until curl -sf "$url" >/dev/null; do sleep 0.2; done
done
echo "distributed deployment ready: REST http://127.0.0.1:10002, gateways ws://127.0.0.1:10001 ws://127.0.0.1:10003"
wait
