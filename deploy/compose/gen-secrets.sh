#!/usr/bin/env bash
# Writes the secrets compose.yaml reads into ./secrets/, once: an existing
# file is never replaced (a new Superset SECRET_KEY would make every stored
# database password unreadable; new cookie keys sign everybody out). Needs
# only coreutils.
#
# The directory is 0700; the files are 0644 because docker compose
# bind-mounts file secrets with their host permissions and the containers
# run as other users (the gateway as 65532, Superset as "superset").
set -euo pipefail
cd "$(dirname "$0")"
umask 022
mkdir -p secrets
chmod 700 secrets

rand() { head -c "$1" /dev/urandom | base64 -w0; }

put() { # put NAME VALUE: write secrets/NAME unless it exists
  if [ -e "secrets/$1" ]; then
    echo "secrets/$1 exists, kept"
  else
    printf '%s\n' "$2" >"secrets/$1"
    echo "secrets/$1 written"
  fi
}

# Shared by Superset (SECRET_KEY) and the gateway (superset.secret_key_file).
put superset_secret_key "$(rand 48)"
put superset_guest_token_secret "$(rand 48)"
put superset_admin_password "$(rand 18)"
put postgres_password "$(rand 24)"
# "<hash key> <encryption key>": 64 and 32 random bytes; one file for both
# replicas, so a session made on one is read by the other.
put gateway_cookie_keys "$(rand 64) $(rand 32)"
put gateway_access_token_pepper "$(rand 48)"
put grafana_admin_password "$(rand 18)"

if [ ! -e secrets/gateway_admin_tokens ]; then
  token=$(head -c 32 /dev/urandom | base64 -w0 | tr -d '+/=')
  put gateway_admin_tokens "ops $(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
  echo "admin API token (shown once; the file holds only its hash): $token"
fi
