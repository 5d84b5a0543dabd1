#!/usr/bin/env bash
# Property-based fuzzing of the whole HTTP API from its own OpenAPI document, with
# schemathesis, in each auth mode (token, jwt, session). See README.md beside this file.
#
#   fuzz/schemathesis/run.sh                 all three modes
#   FUZZ_MODES=session fuzz/schemathesis/run.sh
#
# Exits non-zero when any mode has a failure (or its server would not start).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

# ---- knobs -------------------------------------------------------------------------------
SCHEMATHESIS_VERSION="4.32.5"
modes="${FUZZ_MODES:-token jwt session}"
max_examples="${FUZZ_MAX_EXAMPLES:-400}"  # cases per operation in the fuzzing phase; see README
seed="${FUZZ_SEED:-20261122}"
workers="${FUZZ_WORKERS:-1}"              # 1 keeps a seeded run reproducible
rate_limits="${FUZZ_RATE_LIMITS:-false}"  # the server's rate_limits.enabled; see README
log_root="${FUZZ_LOG_DIR:-$root/target/fuzz/schemathesis}"
venv="${FUZZ_VENV:-$root/target/test-tools/schemathesis-venv}"
checks="${FUZZ_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,negative_data_rejection}"
# The password every fuzz account is registered with (long, uncommon, unlike any email).
password="Fuzz-Only-Passphrase-7w9q-Zebra"

step() { printf '\n==> %s\n' "$*"; }

# ---- schemathesis, pinned ----------------------------------------------------------------
st="$venv/bin/st"
if ! [ -x "$st" ] || [ "$("$st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    step "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
py="$venv/bin/python"

# ---- the binary (the debug build CI already has) -----------------------------------------
step "cargo build --bin tessera"
cargo build --quiet --bin tessera
bin="${CARGO_TARGET_DIR:-$root/target}/debug/tessera"

# ---- helpers -----------------------------------------------------------------------------
server_pid=""
tmp=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
    if [ -n "$tmp" ]; then
        if [ -z "${FUZZ_KEEP_TMP:-}" ]; then rm -rf "$tmp"; else echo "  kept $tmp"; fi
    fi
    tmp=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# json_field FIELD < body: prints FIELD of a JSON object, or nothing.
json_field() {
    "$py" -c 'import json, sys
try:
    print(json.load(sys.stdin).get(sys.argv[1]) or "")
except Exception:
    pass' "$1"
}

# cookie_value JAR NAME: the value of cookie NAME in a curl cookie jar.
cookie_value() {
    awk -v name="$2" '!/^#/ || /^#HttpOnly_/ { if ($6 == name) value = $7 } END { print value }' "$1"
}

# start_server MODE LOGFILE: starts `tessera serve` in a fresh temporary directory.
start_server() {
    local mode=$1 log=$2
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/tessera-fuzz-$mode.XXXXXX")"
    port="$(free_port)"
    base="http://127.0.0.1:$port"
    (
        cd "$tmp"
        # Only our settings: nothing from the caller's TESSERA_* or DATABASE_URL.
        for name in $(compgen -e); do
            case "$name" in TESSERA_* | DATABASE_URL) unset "$name" ;; esac
        done
        export DATABASE_URL="sqlite://$tmp/tessera.db?mode=rwc"
        export TESSERA_AUTH__MODE="$mode"
        export TESSERA_BIND="127.0.0.1:$port"
        export TESSERA_PUBLIC_URL="$base"
        export TESSERA_EMAIL__BACKEND=file
        export TESSERA_EMAIL__FILE_DIR="$tmp/mail"
        export TESSERA_PASSWORD_HASHING__MEMORY_KIB=1024
        export TESSERA_PASSWORD_HASHING__ITERATIONS=1
        # The run outlasts the default 5-minute access token on a slow machine.
        export TESSERA_JWT__ACCESS_LIFETIME_SECONDS=3600
        # Hundreds of requests a minute from one address: with allauth's limits on, nearly
        # every login, signup, reset and password change would be a (documented) 429.
        export TESSERA_RATE_LIMITS__ENABLED="$rate_limits"
        exec "$bin" serve
    ) >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null "$base/health/ready" 2>/dev/null; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "server for mode $mode did not become ready; its log: $log" >&2
    return 1
}

# register MODE EMAIL: creates an account and sets `auth_args` to the st options that
# authenticate as it (and `auth_check` to the curl options for a GET user/ with it).
register() {
    local mode=$1 email=$2 body jar csrf session
    local data="{\"email\": \"$email\", \"password1\": \"$password\", \"password2\": \"$password\"}"
    case "$mode" in
        token)
            body="$(curl -fsS "$base/auth/registration/" -H 'Content-Type: application/json' -d "$data")" || return 1
            local key; key="$(json_field key <<<"$body")"
            [ -n "$key" ] || { echo "registration gave no key: $body" >&2; return 1; }
            auth_args=(-H "Authorization: Token $key")
            auth_check=(-H "Authorization: Token $key")
            ;;
        jwt)
            body="$(curl -fsS "$base/auth/registration/" -H 'Content-Type: application/json' -d "$data")" || return 1
            local access; access="$(json_field access <<<"$body")"
            [ -n "$access" ] || { echo "registration gave no access token: $body" >&2; return 1; }
            auth_args=(-H "Authorization: Bearer $access")
            auth_check=(-H "Authorization: Bearer $access")
            ;;
        session)
            jar="$tmp/cookies-$email.txt"
            curl -fsS -o /dev/null -c "$jar" "$base/auth/csrf/" || return 1
            csrf="$(cookie_value "$jar" csrftoken)"
            [ -n "$csrf" ] || { echo "GET csrf/ set no csrftoken cookie" >&2; return 1; }
            curl -fsS -o /dev/null -b "$jar" -c "$jar" "$base/auth/registration/" \
                -H 'Content-Type: application/json' -H "X-CSRFToken: $csrf" -d "$data" || return 1
            # Login (and so registration) rotates the CSRF secret, as Django does.
            session="$(cookie_value "$jar" sessionid)"
            csrf="$(cookie_value "$jar" csrftoken)"
            [ -n "$session" ] || { echo "registration set no sessionid cookie" >&2; return 1; }
            auth_args=(-H "Cookie: sessionid=$session; csrftoken=$csrf" -H "X-CSRFToken: $csrf")
            auth_check=(-H "Cookie: sessionid=$session; csrftoken=$csrf")
            ;;
    esac
}

# still_valid: whether the phase's credential still authenticates (GET user/ answers 200).
still_valid() {
    [ "$(curl -sS -o /dev/null -w '%{http_code}' "${auth_check[@]}" "$base/auth/user/")" = 200 ]
}

# fuzz DIR ST-OPTIONS...: one schemathesis run, logged to DIR/schemathesis.log.
fuzz() {
    local dir=$1; shift
    mkdir -p "$dir"
    # st keeps its example database and crash files in the working directory: run it in
    # the log directory so they stay out of the repository and `st replay` works from there.
    (
        cd "$dir"
        "$st" --config-file "$root/fuzz/schemathesis/schemathesis.toml" run "$base/openapi.json" \
            --checks "$checks" \
            --mode all \
            --max-examples "$max_examples" \
            --seed "$seed" \
            --workers "$workers" \
            --generation-database none \
            --output-sanitize false \
            --output-truncate false \
            --continue-on-failure \
            --no-color \
            --report junit --report-dir "$dir" \
            "${auth_args[@]}" \
            "$@"
    ) >"$dir/schemathesis.log" 2>&1
}

# ---- the runs ----------------------------------------------------------------------------
declare -A verdict seconds
failed=0
for mode in $modes; do
    case "$mode" in token | jwt | session) ;; *)
        echo "unknown mode '$mode' (token, jwt or session)" >&2
        exit 2
        ;;
    esac
    logs="$log_root/$mode"
    rm -rf "$logs"
    mkdir -p "$logs"
    step "mode $mode (logs in $logs)"
    started=$SECONDS
    status=ok
    notes=""
    if start_server "$mode" "$logs/server.log"; then
        # Two users, registered before any fuzzing: one for the "main" phase and one for
        # the "ending" phase (see below).
        main_auth=() main_check=() ending_auth=()
        if register "$mode" "fuzz-main@example.com"; then
            main_auth=("${auth_args[@]}") main_check=("${auth_check[@]}")
        else
            status=FAILED
            notes+=" (could not register the main user)"
        fi
        if register "$mode" "fuzz-ending@example.com"; then
            ending_auth=("${auth_args[@]}")
        else
            status=FAILED
            notes+=" (could not register the second user)"
        fi

        # Phase 1, "anonymous": every operation, with no credential of ours. schemathesis
        # generates the security parameters itself (random `Authorization` values, session
        # cookie, CSRF header), which fuzzes the credential parsers and the 401/403 answers.
        auth_args=()
        if ! fuzz "$logs/anonymous"; then status=FAILED; fi

        # Phase 2, "main": every operation that leaves the credential alive, as one user.
        # `logout/` ends the token or session it is sent with; in session mode `login/` and
        # `registration/` also delete the session presented with them (session-fixation
        # defence, as Django's login). Run with the one credential, they would turn the rest
        # of the run into 401/403 answers. `password/change/` keeps the credential it is
        # called with, and `user/` PUT/PATCH only rename the user, so they stay in (and the
        # credential must still work afterwards).
        # The credential goes in as fixed headers, so schemathesis must not model the
        # security parameters: it would "remove" the session cookie that our Cookie header
        # still sends and report the 200 as a wrongly accepted request.
        # `sessions/` and `DELETE user/` end credentials (or the account) too.
        ending_ops="logout endSession endOtherSessions deleteAccount"
        [ "$mode" = session ] && ending_ops="$ending_ops login register"
        if [ ${#main_auth[@]} -gt 0 ]; then
            auth_args=("${main_auth[@]}") auth_check=("${main_check[@]}")
            op_args=()
            for op in $ending_ops; do op_args+=(--exclude-operation-id "$op"); done
            if ! fuzz "$logs/main" --generation-with-security-parameters false "${op_args[@]}"; then
                status=FAILED
            fi
            if ! still_valid; then
                status=FAILED
                notes+=" (the main user's credential stopped working during the run)"
            fi
        fi

        # Phase 3, "ending": the credential-ending operations, as the second user.
        if [ ${#ending_auth[@]} -gt 0 ]; then
            auth_args=("${ending_auth[@]}")
            op_args=()
            for op in $ending_ops; do op_args+=(--include-operation-id "$op"); done
            if ! fuzz "$logs/ending" --generation-with-security-parameters false "${op_args[@]}"; then
                status=FAILED
            fi
        fi

        if ! kill -0 "$server_pid" 2>/dev/null; then
            status=FAILED
            notes+=" (the server died)"
        fi
        if grep -q ' panicked at ' "$logs/server.log"; then
            status=FAILED
            notes+=" (the server log has a panic)"
        fi
    else
        status="FAILED (server did not start)"
    fi
    cleanup
    seconds[$mode]=$((SECONDS - started))
    verdict[$mode]="$status$notes"
    [ "$status" = ok ] || failed=1
    for phase in anonymous main ending; do
        [ -f "$logs/$phase/schemathesis.log" ] || continue
        printf '  %-11s %s\n' "$phase:" "$(grep -E '^=+ .* in [0-9.]+s =+$' "$logs/$phase/schemathesis.log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
    done
done

step "summary (FUZZ_MAX_EXAMPLES=$max_examples FUZZ_SEED=$seed)"
for mode in $modes; do
    printf '  %-8s %-6s %4ss  logs: %s\n' "$mode" "${verdict[$mode]}" "${seconds[$mode]}" "$log_root/$mode/{anonymous,main,ending}/schemathesis.log, server.log"
done
if [ "$failed" -ne 0 ]; then
    echo "schemathesis found failures: read the FAILURES section of the logs above (each has a curl reproduction)." >&2
    exit 1
fi
