#!/usr/bin/env bash
# Runs a command on Node 24 LTS (scripts/node24.sh): `npm start` and `npm test` go through it, so
# a machine whose `node` is older runs them as CI does, with no step of its own first.
source "$(dirname "$0")/node24.sh" >/dev/null
exec "$@"
