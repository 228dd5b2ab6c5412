#!/usr/bin/env bash
# Deploy: commit, push, pull on the host over SSH, restart the service, show its status.
#
#   DEPLOY_HOST=user@droplet ./scripts/deploy.sh [--dry-run] [--allow-dirty] [-m "commit message"]
#
# Environment: DEPLOY_HOST (required), DEPLOY_DIR (default /opt/trading-bot), DEPLOY_BRANCH (default: current),
# DEPLOY_REMOTE (default origin), DEPLOY_SERVICE (default trading-bot).
# A dirty working tree is refused unless --allow-dirty (then it is committed with -m's message) so that what
# runs on the host is always a commit you can name.
set -euo pipefail

DRY_RUN=0
ALLOW_DIRTY=0
MESSAGE=""

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --allow-dirty) ALLOW_DIRTY=1 ;;
        -m) shift; MESSAGE="${1:-}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "deploy.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/.."

HOST="${DEPLOY_HOST:-}"
DIR="${DEPLOY_DIR:-/opt/trading-bot}"
REMOTE="${DEPLOY_REMOTE:-origin}"
SERVICE="${DEPLOY_SERVICE:-trading-bot}"
BRANCH="${DEPLOY_BRANCH:-$(git rev-parse --abbrev-ref HEAD)}"

if [[ -z "$HOST" ]]; then
    echo "deploy.sh: DEPLOY_HOST is not set; export DEPLOY_HOST=user@host (the droplet running $SERVICE)" >&2
    exit 2
fi

step() {
    # Prints each step; runs it unless --dry-run.
    echo "+ $*"
    if [[ $DRY_RUN -eq 0 ]]; then
        "$@"
    fi
}

if [[ -n "$(git status --porcelain)" ]]; then
    if [[ $ALLOW_DIRTY -eq 0 ]]; then
        echo "deploy.sh: the working tree has uncommitted changes; commit them, or pass --allow-dirty -m MESSAGE" >&2
        git status --short >&2
        exit 1
    fi
    if [[ -z "$MESSAGE" ]]; then
        echo "deploy.sh: --allow-dirty needs -m MESSAGE for the commit it will make" >&2
        exit 2
    fi
    step git add -A
    step git commit -m "$MESSAGE"
fi

step git push "$REMOTE" "$BRANCH"
step ssh "$HOST" "cd '$DIR' && git fetch '$REMOTE' && git checkout '$BRANCH' && git pull --ff-only '$REMOTE' '$BRANCH' && .venv/bin/pip install --quiet -e ."
step ssh "$HOST" "sudo systemctl restart '$SERVICE'"
step ssh "$HOST" "systemctl --no-pager status '$SERVICE' | head -n 20"
if [[ $DRY_RUN -eq 1 ]]; then
    echo "deploy.sh: dry run, nothing was executed"
fi
