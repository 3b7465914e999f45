#!/usr/bin/env bash
# One-shot initialisation of Superset's metadata database: migrations, the
# first admin (user id 1: the gateway's superset.service_user_id) and the
# built-in roles. Safe to run again: create-admin leaves an existing admin.
set -euo pipefail
superset db upgrade
superset fab create-admin \
  --username admin --firstname Superset --lastname Admin \
  --email admin@example.com \
  --password "$(cat /run/secrets/superset_admin_password)"
superset init
