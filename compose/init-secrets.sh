#!/bin/sh
# Appends a random value to .env for every secret it lacks, and never changes one already set
# (the databases keep the passwords they were created with). Run once before the first start:
#   sh init-secrets.sh && docker compose up -d --wait
set -eu
cd "$(dirname "$0")"
touch .env
for var in OPENIM_SECRET OPENIM_TOKEN_KEY MYSQL_PASSWORD MYSQL_ROOT_PASSWORD REDIS_PASSWORD MONGO_PASSWORD; do
  if grep -q "^$var=..*" .env; then
    continue
  fi
  # Drop an empty `VAR=` line, then append 48 hex characters (192 random bits).
  grep -v "^$var=\$" .env > .env.tmp || true
  value=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s=%s\n' "$var" "$value" >> .env.tmp
  mv .env.tmp .env
  echo "init-secrets: generated $var in $(pwd)/.env"
done
chmod 600 .env
