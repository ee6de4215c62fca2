#!/bin/bash
# 30-postgres — psql through the router to a real PostgreSQL server (ssl=on),
# without TLS and with TLS end to end; a route hook that refuses a database
# name makes psql print the router's FATAL ErrorResponse.
. "$(dirname "$0")/lib.sh"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/postgres" ] || ! command -v psql >/dev/null; then
  skip "psql through the router" "PostgreSQL server or psql not installed (Debian: postgresql postgresql-client)"
  exit 0
fi

# The server refuses to run as root: as root run it as the postgres user.
# (setpriv execs: the PID that `start` records is the server's own.)
if [ "$(id -u)" = 0 ]; then
  PGUSER_OS=postgres
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
else
  PGUSER_OS=$(id -un)
  AS_PG=()
fi

PG=$WORK/pg
mkdir -p "$PG/sock"
make_ca || bail "openssl"
make_cert pg localhost localhost || bail "openssl"
cp "$WORK/pki/pg.pem" "$PG/server.crt"
cp "$WORK/pki/pg.key" "$PG/server.key"
chmod 600 "$PG/server.key"
chown -R "$PGUSER_OS" "$PG"

"${AS_PG[@]}" "$PGBIN/initdb" -D "$PG/data" -U postgres --auth=trust -E UTF8 --no-sync \
  > "$WORK/initdb.log" 2>&1 || bail "initdb failed" "$(tail -n 20 "$WORK/initdb.log")"

P_PG=$(free_port); P_R=$(free_port); P_DEAD=$(free_port); P_NO=$(free_port); P_DOWN=$(free_port)
start postgres "${AS_PG[@]}" "$PGBIN/postgres" -D "$PG/data" -k "$PG/sock" -h 127.0.0.1 -p "$P_PG" \
  -c ssl=on -c ssl_cert_file="$PG/server.crt" -c ssl_key_file="$PG/server.key" \
  -c fsync=off -c full_page_writes=off -c synchronous_commit=off
wait_port "$P_PG" 30 || bail "postgres did not listen on $P_PG"
wait_until 30 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$P_PG" || bail "postgres not ready"
psql -X -q "host=127.0.0.1 port=$P_PG user=postgres dbname=postgres sslmode=disable" \
  -c 'create database app' -c 'create database secret' >/dev/null 2>&1 || bail "createdb"

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
tunnel.listen{
  name = "pg",
  addr = "127.0.0.1:$P_R",
  route = function(conn)
    if conn.proto ~= "postgresql" then return nil, "not postgresql" end
    local pg = conn.pg
    tunnel.log("info", "pg_route", { user = pg.user or "", database = pg.database or "",
                                     ssl = pg.ssl, cancel = pg.cancel })
    if pg.database == "secret" then return nil, "database secret is closed" end
    if pg.database == "gone" then return "127.0.0.1:$P_DEAD" end
    return "127.0.0.1:$P_PG"
  end,
}
-- Refuses everything / routes everything to a dead port (the answer must
-- also reach a client that starts with an SSLRequest).
tunnel.listen{ name = "pg-no", addr = "127.0.0.1:$P_NO", route = function() return nil, "closed" end }
tunnel.listen{ name = "pg-down", addr = "127.0.0.1:$P_DOWN", route = function() return "127.0.0.1:$P_DEAD" end }
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log
CONN="host=127.0.0.1 port=$P_R user=postgres connect_timeout=10"

out=$(psql -X -At "$CONN dbname=app sslmode=disable" -c 'select 1' 2>&1)
expect_eq "psql sslmode=disable: select 1 through the router" "1" "$out"
out=$(psql -X -At "$CONN dbname=app sslmode=disable" \
      -c 'select current_database(), ssl from pg_stat_ssl where pid = pg_backend_pid()' 2>&1)
expect_eq "it is the real server, database app, no TLS" "app|f" "$out"
check "the route hook saw conn.pg.user and conn.pg.database" \
  jhas "$LOG" event=pg_route user=postgres database=app ssl=false

out=$(psql -X -At "$CONN dbname=app sslmode=require" -c 'select 1' 2>&1)
expect_eq "psql sslmode=require: select 1 through the router" "1" "$out"
out=$(psql -X -At "$CONN dbname=app sslmode=require" \
      -c 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' 2>&1)
expect_eq "the server itself terminated TLS (pg_stat_ssl.ssl)" "t" "$out"
out=$(psql -X -At "$CONN dbname=app sslmode=verify-ca sslrootcert=$WORK/pki/ca.pem" -c 'select 1' 2>&1)
expect_eq "sslmode=verify-ca: psql verified the server's own certificate" "1" "$out"
check "the route hook saw the SSLRequest (conn.pg.ssl)" jhas "$LOG" event=pg_route ssl=true
out=$(psql -X -At "$CONN dbname=app" -c 'select 1' 2>&1)
expect_eq "psql with the default sslmode (prefer)" "1" "$out"

# Refusal by database name (visible without TLS): psql prints our FATAL.
out=$(psql -X -At "$CONN dbname=secret sslmode=disable" -c 'select 1' 2>&1); rc=$?
expect_match "a refused database makes psql print the router's FATAL message" \
  'FATAL: +tunnel: no route' "$out"
expect_eq "and psql exits with status 2 (connection failed)" 2 "$rc"
check "the reject is logged with the hook's reason" \
  jhas "$LOG" event=reject proto=postgresql "reason~database secret is closed"

# Upstream down: the other ErrorResponse.
out=$(psql -X -At "$CONN dbname=gone sslmode=disable" -c 'select 1' 2>&1)
expect_match "a dead upstream makes psql print 'upstream unavailable'" \
  'FATAL: +tunnel: upstream unavailable' "$out"

# With sslmode=require the router answers the SSLRequest itself with an
# ErrorResponse. libpq >= 15.10 no longer shows a message received before TLS
# (CVE-2024-10977) and says "error response during SSL exchange"; older ones
# print it. Either way: a clean, immediate refusal.
t0=$(now)
out=$(psql -X -At "host=127.0.0.1 port=$P_NO user=postgres dbname=app sslmode=require connect_timeout=10" -c 'select 1' 2>&1)
expect_match "sslmode=require, refused: psql reports the router's ErrorResponse" \
  'FATAL: +tunnel: no route|error response during SSL exchange' "$out"
expect_between "... at once (s)" 0 1 "$(elapsed "$t0")"
out=$(psql -X -At "host=127.0.0.1 port=$P_DOWN user=postgres dbname=app sslmode=require connect_timeout=10" -c 'select 1' 2>&1)
expect_match "sslmode=require, upstream down: psql reports the router's ErrorResponse" \
  'FATAL: +tunnel: upstream unavailable|error response during SSL exchange' "$out"

# Ctrl-C in psql sends a CancelRequest on a new connection, through the router.
start longq psql -X -At "$CONN dbname=app sslmode=require" -c 'select pg_sleep(30)'
sleeping() {
  [ "$(psql -X -At "host=127.0.0.1 port=$P_PG user=postgres dbname=postgres sslmode=disable" \
       -c "select count(*) from pg_stat_activity where query like 'select pg_sleep(30)%'")" -ge 1 ]
}
if wait_until 10 sleeping; then
  signal longq INT
  wait_exit longq 10
  expect_match "a CancelRequest through the router cancels the running query" \
    'canceling statement due to user request' "$(cat "$WORK/longq.log")"
  check "the route hook saw it as conn.pg.cancel" jhas "$LOG" event=pg_route cancel=true
else
  not_ok "the long query did not start" "$(cat "$WORK/longq.log")"
fi

out=$(psql -X -At "$CONN dbname=app sslmode=disable" -c 'select 42' 2>&1)
expect_eq "still serving after the refusals" "42" "$out"

# A larger result through the router (many round trips, TLS on).
out=$(psql -X -At "$CONN dbname=app sslmode=require" \
      -c "select md5(string_agg(md5(i::text), '')) from generate_series(1, 200000) i" 2>&1)
want=$(psql -X -At "host=127.0.0.1 port=$P_PG user=postgres dbname=app sslmode=disable" \
      -c "select md5(string_agg(md5(i::text), '')) from generate_series(1, 200000) i" 2>&1)
expect_eq "a query answered through the router equals the direct answer" "$want" "$out"
out=$(psql -X -At "$CONN dbname=app sslmode=require" -c "select count(*) from (select repeat('x', 1000) from generate_series(1, 20000)) t" \
      -c "select length(string_agg(repeat('y', 100), '')) from generate_series(1, 100000)" 2>&1)
expect_eq "multi-megabyte results come back whole over TLS" "$(printf '20000\n10000000')" "$out"

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop postgres 20
