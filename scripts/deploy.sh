#!/usr/bin/env bash
# Deploy the current commit to the host, or roll the host back to the commit deployed before the current one.
#
#   DEPLOY_HOST=user@droplet ./scripts/deploy.sh [--dry-run]
#   DEPLOY_HOST=user@droplet ./scripts/deploy.sh --rollback
#
# It deploys commits, never a working tree: uncommitted changes and untracked files are refused (it never runs
# `git add`; put files that must stay local in .gitignore). Then: push the branch, and on the host (the steps of
# scripts/release.sh, sent over the same SSH connection): fetch, check out the commit, the venv from its
# requirements.lock, pre-flight (config check as the daemon loads it, imports, registry health) while the old
# daemon keeps running, restart, health gate (the new process logs DAEMON_STARTED and the registry audit is
# clean within DEPLOY_HEALTH_TIMEOUT s), and on a failed gate the previous commit restarted and checked again.
#
# Environment: DEPLOY_HOST (required), DEPLOY_DIR (/opt/trading-bot), DEPLOY_BRANCH (current branch),
# DEPLOY_REMOTE (origin; its URL as the host sees it is the host checkout's own remote), DEPLOY_SERVICE
# (trading-bot), DEPLOY_ETC (/etc/trading-bot), DEPLOY_HEALTH_TIMEOUT (120), DEPLOY_SSH (the ssh command,
# default `ssh -o BatchMode=yes -o ConnectTimeout=10`). Exit: 0 deployed, 1 refused or failed (the previous
# release keeps running), 2 usage, 3 the rollback failed too (the service is down: see journalctl).
set -euo pipefail

DRY_RUN=0
ROLLBACK=0

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --rollback) ROLLBACK=1 ;;
        -h|--help) usage; exit 0 ;;
        --allow-dirty|-m)
            echo "deploy.sh: $1 is gone: commit what you mean to deploy yourself (git add PATHS && git commit), then deploy" >&2
            exit 2 ;;
        *) echo "deploy.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/.."

HOST="${DEPLOY_HOST:-}"
DIR="${DEPLOY_DIR:-/opt/trading-bot}"
REMOTE="${DEPLOY_REMOTE:-origin}"
SERVICE="${DEPLOY_SERVICE:-trading-bot}"
ETC="${DEPLOY_ETC:-/etc/trading-bot}"
TIMEOUT="${DEPLOY_HEALTH_TIMEOUT:-120}"
read -r -a SSH <<< "${DEPLOY_SSH:-ssh -o BatchMode=yes -o ConnectTimeout=10}"

die() { echo "deploy.sh: $*" >&2; exit 1; }
last_line() { printf '%s\n' "$1" | tr -d '\r' | grep -v '^[[:space:]]*$' | tail -n 1; }

if [[ -z "$HOST" ]]; then
    echo "deploy.sh: DEPLOY_HOST is not set; export DEPLOY_HOST=user@host (the droplet running $SERVICE)" >&2
    exit 2
fi
if ! [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || (( TIMEOUT < 5 || TIMEOUT > 3600 )); then
    echo "deploy.sh: DEPLOY_HEALTH_TIMEOUT must be whole seconds in 5..3600" >&2
    exit 2
fi

remote_release() {  # remote_release ARGS...: scripts/release.sh of THIS checkout, run on the host
    local quoted=""
    for a in "$@"; do quoted+=" $(printf '%q' "$a")"; done
    "${SSH[@]}" "$HOST" "bash -s --$quoted" < scripts/release.sh
}

reach_host() {
    local err
    if ! err="$("${SSH[@]}" "$HOST" true 2>&1)"; then
        die "cannot reach $HOST over SSH ($(last_line "$err")); check DEPLOY_HOST, your key and the host's sshd. Nothing was changed"
    fi
}

if [[ $ROLLBACK -eq 1 ]]; then
    if [[ $DRY_RUN -eq 1 ]]; then
        echo "+ ssh $HOST: scripts/release.sh --rollback (restart on the previously deployed commit)"
        exit 0
    fi
    reach_host
    remote_release --dir "$DIR" --etc "$ETC" --service "$SERVICE" --timeout "$TIMEOUT" --rollback
    exit $?
fi

# ------------------------------------------------------------------ local pre-flight: refuse before touching anything
untracked="$(git ls-files --others --exclude-standard)"
if [[ -n "$untracked" ]]; then
    die "refused: untracked files ($(echo "$untracked" | head -n 5 | paste -sd, -)); commit them, add them to .gitignore, or move them away (deploy never runs git add)"
fi
if ! git diff --quiet HEAD --; then
    die "refused: uncommitted changes in $(git diff --name-only HEAD -- | head -n 5 | paste -sd, -); commit them or git stash them, then deploy"
fi
python3 scripts/lock_input.py --check requirements.lock >/dev/null 2>&1 \
    || die "refused: requirements.lock does not match pyproject.toml; run make lock and commit it"
BRANCH="${DEPLOY_BRANCH:-$(git rev-parse --abbrev-ref HEAD)}"
[[ "$BRANCH" != "HEAD" ]] || die "refused: detached HEAD; check out the branch to deploy, or set DEPLOY_BRANCH"
COMMIT="$(git rev-parse "refs/heads/$BRANCH" 2>/dev/null)" || die "refused: no local branch '$BRANCH'"

if [[ $DRY_RUN -eq 1 ]]; then
    echo "+ git push $REMOTE $BRANCH"
    echo "+ ssh $HOST: scripts/release.sh --dir $DIR --commit $COMMIT (fetch, checkout, venv from requirements.lock, pre-flight, restart $SERVICE, health gate ${TIMEOUT}s, rollback on failure)"
    echo "deploy.sh: dry run, nothing was executed"
    exit 0
fi

reach_host
if ! err="$(git push --quiet "$REMOTE" "$BRANCH" 2>&1)"; then
    die "git push $REMOTE $BRANCH failed ($(last_line "$err")); the host was not touched"
fi
echo "deploy.sh: pushed $BRANCH ($COMMIT) to $REMOTE"
remote_release --dir "$DIR" --etc "$ETC" --service "$SERVICE" --timeout "$TIMEOUT" --commit "$COMMIT"
