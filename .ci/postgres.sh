#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the storage tests (Debian's `postgresql` package).
#   .ci/postgres.sh start DIR   initialise DIR, start the server on a free port, print its URL
#                               (DIR's parent folders must be searchable by the postgres user)
#   .ci/postgres.sh stop DIR    stop it
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user on a data dir it
# owns. The URL carries a random password (the tests check that it never reaches any output).
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?data folder}
bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "postgres.sh: no PostgreSQL under /usr/lib/postgresql (apt-get install -y postgresql)" >&2
  exit 1
fi
as_server() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $cmd in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir" && chmod 700 "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  (umask 077; echo "$password" > "$dir/pwfile")
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
  as_server "$bin/initdb" -D "$dir/data" -U bench -A scram-sha-256 --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1
  rm -f "$dir/pwfile"
  as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200" \
    start >/dev/null
  PGPASSWORD=$password "$bin/createdb" -h 127.0.0.1 -p "$port" -U bench studies
  echo "postgresql://bench:$password@127.0.0.1:$port/studies"
  ;;
stop)
  as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
esac
