#!/usr/bin/env bash
# The host side of a deploy (scripts/deploy.sh sends this file over SSH and runs it there with bash -s):
#
#   release.sh --dir DIR --etc ETC --service NAME --timeout S (--commit SHA | --rollback)
#
# 1. fetch; check out SHA (the host checkout must have no local changes);
# 2. the venv from SHA's requirements.lock (scripts/install.sh --venv-only; one venv per lock, switched by rename);
# 3. pre-flight while the old daemon still runs: the config checked as the daemon loads it, the new code
#    imported, the registry's health (integrity + audit, read-only). A failure puts the old commit and venv back
#    and stops here: the service was never touched;
# 4. restart the service; 5. health gate: within S seconds the new process has logged DAEMON_STARTED, is still
#    running, and the registry audit is clean;
# 6. a failed gate: the previous commit and its venv back, restart, gate again. Exit 1 (rolled back) or 3 (the
#    rollback failed too: the service is down).
# --rollback: the same steps towards the commit deployed before the current one (DIR/.deploy-history).
#
# Host settings (optional) in ETC/deploy.env, sourced: SERVICE_CTL (default systemctl), SERVICE_LOG (a command
# printing the service's log since epoch second $1; default journalctl), SVC_USER (trading-bot).
# When systemd is not PID 1 (containers, the end-to-end test) SERVICE_CTL names a stand-in; it is named in the output.
set -euo pipefail

DIR="" ETC="" SERVICE="" TIMEOUT="" COMMIT="" ROLLBACK=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR="$2"; shift ;;
        --etc) ETC="$2"; shift ;;
        --service) SERVICE="$2"; shift ;;
        --timeout) TIMEOUT="$2"; shift ;;
        --commit) COMMIT="$2"; shift ;;
        --rollback) ROLLBACK=1 ;;
        *) echo "release.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "release: $*"; }
die() { echo "release: $*" >&2; exit 1; }

[[ -d "$DIR/.git" ]] || die "$DIR is not a git checkout on this host; do the first install (RUNBOOK.md 'Install')"
# A deploy user other than root needs passwordless sudo for these (docs/deploy.md).
SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo -n"
SERVICE_CTL="${SUDO:+$SUDO }systemctl"
SERVICE_LOG=""
SVC_USER="trading-bot"
if [[ -f "$ETC/deploy.env" ]]; then
    # shellcheck disable=SC1091
    source "$ETC/deploy.env"
fi
read -r -a CTL <<< "$SERVICE_CTL"
if [[ "$SERVICE_CTL" != "systemctl" && "$SERVICE_CTL" != "sudo -n systemctl" ]]; then
    say "service control: $SERVICE_CTL (a stand-in for systemctl, from $ETC/deploy.env)"
fi
service_log() {  # service_log SINCE_EPOCH
    if [[ -n "$SERVICE_LOG" ]]; then
        bash -c "$SERVICE_LOG" service_log "$1"
    else
        $SUDO journalctl -u "$SERVICE" --since "@$1" -o cat --no-pager
    fi
}
as_service() {  # as the service user (when it exists), so file permissions are checked for real
    if ! id -u "$SVC_USER" >/dev/null 2>&1 || [[ "$(id -un)" == "$SVC_USER" ]]; then
        "$@"
    elif [[ "$(id -u)" -eq 0 ]]; then
        runuser -u "$SVC_USER" -- "$@"
    else
        sudo -n -u "$SVC_USER" -- "$@"
    fi
}

cd "$DIR"
HISTORY="$DIR/.deploy-history"
PREV="$(git rev-parse HEAD)"

if [[ $ROLLBACK -eq 1 ]]; then
    [[ -f "$HISTORY" ]] || die "no deploy history in $HISTORY: nothing to roll back to"
    COMMIT="$(awk -v cur="$PREV" '$2 != cur {c = $2} END {print c}' "$HISTORY")"
    [[ -n "$COMMIT" ]] || die "the history in $HISTORY has no commit other than the current one ($PREV)"
    say "rolling back from $PREV to $COMMIT"
fi
[[ -n "$COMMIT" ]] || die "no --commit given"
[[ -z "$(git status --porcelain --untracked-files=no)" ]] \
    || die "the host checkout $DIR has local changes ($(git status --porcelain --untracked-files=no | head -n 3 | paste -sd, -)); commit them upstream or git checkout them away on the host"

git fetch --quiet origin 2>/dev/null || die "git fetch in $DIR failed; check the host checkout's remote (git -C $DIR remote -v)"
git cat-file -e "$COMMIT^{commit}" 2>/dev/null || die "commit $COMMIT is not in $DIR after fetching; was it pushed to the remote the host pulls from?"
if [[ "$COMMIT" == "$PREV" && $ROLLBACK -eq 0 ]]; then
    say "already at $COMMIT; nothing to deploy"
    exit 0
fi

switch_to() {  # switch_to SHA: checkout + its venv (cached after the first time)
    git -c advice.detachedHead=false checkout --quiet --detach "$1"
    TB_PREFIX="$DIR" ./scripts/install.sh --venv-only
}

config_check() {
    (cd / && as_service env TRADER_SECRETS_FILE="$ETC/secrets.toml" "$DIR/.venv/bin/python" -m settings.config \
        --check "$ETC/config.toml")
}

registry_health() {  # tools.check_db_health on the configured registry with its key file; the reason on stdout
    local paths db key out
    paths="$(cd / && as_service env TRADER_SECRETS_FILE="$ETC/secrets.toml" "$DIR/.venv/bin/python" -c '
import sys
from pathlib import Path
from settings.config import load_settings
s = load_settings(Path(sys.argv[1]))
print(s.db_path, getattr(s, "registry_key_file", None) or "-")' "$ETC/config.toml" 2>&1)" || { echo "config: $(echo "$paths" | tail -n 1)"; return 1; }
    read -r db key <<< "$paths"
    [[ -f "$db" ]] || return 0  # no registry yet (the first start creates it)
    local args=(--db "$db")
    [[ "$key" == "-" ]] || args+=(--key-file "$key")
    if ! out="$(cd / && as_service "$DIR/.venv/bin/python" -m tools.check_db_health "${args[@]}" 2>&1)"; then
        echo "$(echo "$out" | grep -v '^[[:space:]]*$' | tail -n 2 | paste -sd';' -)"
        return 1
    fi
}

preflight() {  # prints the failing check on stderr and returns 1
    local out
    if ! out="$(config_check 2>&1)"; then
        echo "pre-flight: config check failed: $(echo "$out" | head -n 3 | paste -sd';' -)" >&2
        return 1
    fi
    if ! out="$(cd / && "$DIR/.venv/bin/python" -c 'import scheduler.__main__, tools.pre_flight_check' 2>&1)"; then
        echo "pre-flight: the new code does not import: $(echo "$out" | tail -n 1)" >&2
        return 1
    fi
    if ! out="$(registry_health)"; then
        echo "pre-flight: registry health failed: $out" >&2
        return 1
    fi
    return 0
}

gate() {  # gate SINCE_EPOCH: 0 when the new process started cleanly and keeps running
    local since="$1" deadline out db
    deadline=$(( $(date +%s) + TIMEOUT ))
    while (( $(date +%s) < deadline )); do
        if service_log "$since" | grep -q "DAEMON_STARTED"; then
            sleep 2  # still up a moment later (not a start-then-crash)
            if ! "${CTL[@]}" is-active --quiet "$SERVICE"; then
                echo "gate: $SERVICE logged DAEMON_STARTED, then stopped" >&2
                return 1
            fi
            if ! out="$(registry_health)"; then
                echo "gate: registry audit not clean after the restart: $out" >&2
                return 1
            fi
            return 0
        fi
        if ! "${CTL[@]}" is-active --quiet "$SERVICE"; then
            echo "gate: $SERVICE is not running; last log lines: $(service_log "$since" | tail -n 2 | paste -sd'|' -)" >&2
            return 1
        fi
        sleep 1
    done
    echo "gate: no DAEMON_STARTED within ${TIMEOUT}s" >&2
    return 1
}

restart_and_gate() {
    local since
    since="$(date +%s)"
    if ! "${CTL[@]}" restart "$SERVICE"; then
        echo "gate: '$SERVICE_CTL restart $SERVICE' failed" >&2
        return 1
    fi
    gate "$since"
}

[[ -s "$HISTORY" ]] || echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $PREV" > "$HISTORY"  # the first install's commit
say "deploying $COMMIT over $PREV"
if ! switch_to "$COMMIT"; then
    switch_to "$PREV" >/dev/null 2>&1 || true
    die "could not prepare $COMMIT (see above); back on $PREV, the service was not restarted"
fi
if ! preflight; then
    switch_to "$PREV" >/dev/null
    die "pre-flight failed for $COMMIT (see above); back on $PREV, the service was not restarted"
fi
say "pre-flight passed"
if restart_and_gate; then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $COMMIT" >> "$HISTORY"
    say "deployed $COMMIT: $SERVICE running, DAEMON_STARTED seen, registry audit clean"
    exit 0
fi
say "health gate failed for $COMMIT: rolling back to $PREV"
switch_to "$PREV" >/dev/null
if restart_and_gate; then
    echo "release: deploy of $COMMIT failed its health gate; rolled back: $SERVICE runs $PREV again" >&2
    exit 1
fi
echo "release: ROLLBACK FAILED: $SERVICE does not start on $PREV either; see the service log (journalctl -u $SERVICE)" >&2
exit 3
