#!/usr/bin/env bash
# OpenAPI conformance of `formwork serve`: schemathesis generates requests from the server's own
# /api/v1/openapi.json (valid and invalid ones) and checks that no answer is a server error and
# that every answer matches the schema the document declares for it.
#
# usage: schemathesis_run.sh URL
#   URL        the server, e.g. http://127.0.0.1:13013
#   env FORMWORK_API_USER / FORMWORK_API_PASSWORD   Basic credentials (kept off the command line:
#              schemathesis reads them from the environment through its config file)
#   env SCHEMATHESIS_MAX_EXAMPLES (default 30), SCHEMATHESIS_SEED (default 20261)
# Run from tests/api_http.rs; needs .tools/venv/bin/schemathesis (scripts/setup installs it).
set -euo pipefail
url=${1:?usage: schemathesis_run.sh URL}
root=$(cd "$(dirname "$0")/../.." && pwd)
st=$root/.tools/venv/bin/schemathesis
if ! "$st" --version >/dev/null 2>&1; then
    echo "schemathesis is missing ($st): run scripts/setup, which installs it into .tools/venv" >&2
    exit 2
fi
: "${FORMWORK_API_USER:?set FORMWORK_API_USER}" "${FORMWORK_API_PASSWORD:?set FORMWORK_API_PASSWORD}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# ${VAR} is resolved by schemathesis, so the file holds no credential.
cat >"$work/schemathesis.toml" <<'TOML'
[auth]
basic = { username = "${FORMWORK_API_USER}", password = "${FORMWORK_API_PASSWORD}" }
TOML
cd "$work"
# The log and event streams never end by themselves: it is checked by api_http's own test instead. One worker:
# hypothesis parses lambdas' source with `ast` from each worker thread, which CPython 3.11.7 does
# not survive ("AST constructor recursion depth mismatch", fixed in 3.11.8).
"$st" --no-color --config-file "$work/schemathesis.toml" run "$url/api/v1/openapi.json" \
    --checks not_a_server_error,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
    --seed "${SCHEMATHESIS_SEED:-20261}" \
    --exclude-path-regex '(logs|events)/stream' \
    --request-timeout 30 \
    --generation-database none \
    --workers 1 \
    --output-truncate false
