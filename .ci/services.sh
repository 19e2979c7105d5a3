#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up: MariaDB (127.0.0.1:3306, root without a
# password) and Redis (127.0.0.1:6379). Reuses running ones, starts stopped ones, installs
# missing ones from Debian's packages. Prints one line per server.
set -euo pipefail

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$name did not come up" >&2
  return 1
}

apt_install() {
  echo "installing $*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! mariadb-admin -uroot --protocol=tcp -h127.0.0.1 ping >/dev/null 2>&1; then
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB mariadb-admin -uroot --protocol=tcp -h127.0.0.1 ping
fi
echo "MariaDB $(mariadb -uroot -h127.0.0.1 -N -e 'SELECT VERSION()') on 127.0.0.1:3306"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi
echo "Redis $(redis-cli -h 127.0.0.1 -p 6379 INFO server | sed -n 's/^redis_version:\(.*\)\r$/\1/p') on 127.0.0.1:6379"

# Leftovers of earlier test runs (databases and key prefixes are unique per run).
for db in $(mariadb -uroot -h127.0.0.1 -N -e "SHOW DATABASES LIKE 'openim\_e2e\_%'"); do
  mariadb -uroot -h127.0.0.1 -e "DROP DATABASE \`$db\`"
done
for pattern in 'e2e-*' 'openim-test:*'; do
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$pattern" | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null
done
