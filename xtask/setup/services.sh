#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up: MariaDB (127.0.0.1:3306, root without a
# password) and Redis (127.0.0.1:6379). Reuses running ones (a local service, or a CI service
# container), starts stopped local ones, installs missing ones from Debian's packages. Prints one
# line per server.
set -euo pipefail

listening() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name, port
  for _ in $(seq 1 120); do
    if listening "$2"; then return 0; fi
    sleep 0.5
  done
  echo "$1 did not come up on port $2" >&2
  return 1
}

apt_install() {
  echo "installing $*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! listening 3306; then
  [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB 3306
fi
if command -v mariadb >/dev/null 2>&1; then
  echo "MariaDB $(mariadb -uroot -h127.0.0.1 -N -e 'SELECT VERSION()') on 127.0.0.1:3306"
else
  echo "MySQL/MariaDB listening on 127.0.0.1:3306"
fi

if ! listening 6379; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379
fi
if command -v redis-cli >/dev/null 2>&1; then
  echo "Redis $(redis-cli -h 127.0.0.1 -p 6379 INFO server | sed -n 's/^redis_version:\(.*\)\r$/\1/p') on 127.0.0.1:6379"
  # Leftover keys of earlier test runs (prefixes are unique per run).
  for pattern in 'e2e-*' 'openim-test:*' 'bench-*'; do
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$pattern" | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null
  done
else
  echo "Redis listening on 127.0.0.1:6379"
fi

# Leftover databases of earlier test runs (names are unique per run).
if command -v mariadb >/dev/null 2>&1; then
  for db in $(mariadb -uroot -h127.0.0.1 -N -e "SHOW DATABASES LIKE 'openim\_e2e\_%'"); do
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE \`$db\`"
  done
fi
