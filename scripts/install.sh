#!/usr/bin/env bash
# First install (and re-install) of the daemon on a host, run as root from the checkout in /opt/trading-bot:
#
#   sudo /opt/trading-bot/scripts/install.sh [--start]
#   sudo /opt/trading-bot/scripts/install.sh --venv-only     # (deploys) only the venv for this checkout's lock
#
# What it does, each step idempotent:
#   1. the venv from requirements.lock (hash-checked, nothing else installed), one per lock content under
#      .venvs/, `.venv` switched to it atomically; first, so a bad lock or an unreachable index stops the install
#      before anything else exists;
#   2. the system user `trading-bot` (no login shell, no home outside its state directory);
#   3. /etc/trading-bot (root:trading-bot 0750), /var/lib/trading-bot (trading-bot 0700);
#   4. /etc/trading-bot/config.toml from deploy/config.toml when absent (root:trading-bot 0640), and an empty
#      secrets file /etc/trading-bot/secrets.toml (trading-bot 0600) for the API keys; both must be readable by
#      the service user;
#   5. checks the config as the service user exactly as the daemon will load it;
#   6. the systemd unit, daemon-reload, enable (and start with --start).
# Anything wrong: one line naming the cause and the fix, exit non-zero, and the files it had not reached yet
# untouched. Paths can be moved for tests and unusual hosts with TB_PREFIX, TB_ETC, TB_STATE, TB_UNIT_DIR,
# TB_USER, TB_PYTHON, TB_SYSTEMCTL (`none`: install the unit file only). See docs/deploy.md.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${TB_PREFIX:-$here}"
ETC="${TB_ETC:-/etc/trading-bot}"
STATE="${TB_STATE:-/var/lib/trading-bot}"
UNIT_DIR="${TB_UNIT_DIR:-/etc/systemd/system}"
SVC_USER="${TB_USER:-trading-bot}"
PYTHON="${TB_PYTHON:-python3}"
SYSTEMCTL="${TB_SYSTEMCTL:-systemctl}"
LOCK="$PREFIX/requirements.lock"

START=0
VENV_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --start) START=1 ;;
        --venv-only) VENV_ONLY=1 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

# ------------------------------------------------------------------ pre-flight: nothing is changed before it
"$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null \
    || die "$PYTHON is not Python >= 3.11 with the venv module; run: apt-get install -y python3 python3-venv"
[[ -f "$LOCK" ]] || die "$LOCK is missing; deploy a commit that has it (make lock on a workstation)"
"$PYTHON" "$PREFIX/scripts/lock_input.py" --check "$LOCK" >/dev/null 2>&1 \
    || die "$LOCK does not match $PREFIX/pyproject.toml (a wrong or stale lock file); run make lock on a workstation, commit, deploy again"

# ------------------------------------------------------------------ the venv, from the lock only
install_venv() {
    local digest target link
    digest="$(sha256sum "$LOCK" | cut -c1-16)"
    target="$PREFIX/.venvs/$digest"
    if [[ ! -f "$target/.complete" ]]; then
        rm -rf "$target"
        mkdir -p "$PREFIX/.venvs"
        "$PYTHON" -m venv "$target"
        # --require-hashes + --no-deps: exactly the lock's files or nothing (a changed file on the index fails).
        if ! "$target/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$LOCK" \
            >"$target/pip.log" 2>&1; then
            tail -n 5 "$target/pip.log" >&2
            rm -rf "$target"
            die "pip could not install $LOCK (hash mismatch or the package index unreachable; last lines above); the running venv is untouched"
        fi
        rm -f "$target/pip.log"
        "$target/bin/python" "$PREFIX/scripts/lock_input.py" --pth
        touch "$target/.complete"
    fi
    # The switch is one rename: a running daemon keeps its old venv until it is restarted.
    link="$PREFIX/.venv.new.$$"
    ln -sfn ".venvs/$digest" "$link"
    mv -Tf "$link" "$PREFIX/.venv"
    say "venv $PREFIX/.venv -> .venvs/$digest (from $(basename "$LOCK"))"
}

[[ $VENV_ONLY -eq 1 || "$(id -u)" -eq 0 ]] || die "must run as root (it creates a system user and root-owned files); run: sudo $0"
command -v runuser >/dev/null || die "runuser not found (util-linux); run: apt-get install -y util-linux"
if [[ -e "$ETC/config.toml" ]] && ! [[ -f "$ETC/config.toml" ]]; then
    die "$ETC/config.toml is not a regular file; move it away and run again"
fi

# ------------------------------------------------------------------ 1. the venv first: a bad lock or an unreachable
# index stops the install before any user, directory or file is created
install_venv
[[ $VENV_ONLY -eq 0 ]] || exit 0

# ------------------------------------------------------------------ 2. user
if ! id -u "$SVC_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
    say "created system user $SVC_USER"
fi

# ------------------------------------------------------------------ 3. directories
install -d -m 0750 -o root -g "$SVC_USER" "$ETC"
install -d -m 0700 -o "$SVC_USER" -g "$SVC_USER" "$STATE"

# ------------------------------------------------------------------ 4. config and secrets
if [[ ! -e "$ETC/config.toml" ]]; then
    tmp="$(mktemp "$ETC/.config.XXXXXX")"
    sed "s#/var/lib/trading-bot#$STATE#g" "$PREFIX/deploy/config.toml" > "$tmp"
    chown "root:$SVC_USER" "$tmp"
    chmod 0640 "$tmp"
    mv "$tmp" "$ETC/config.toml"
    say "wrote $ETC/config.toml (edit it: venue.base_url, symbols, ...)"
fi
if [[ ! -e "$ETC/secrets.toml" ]]; then
    tmp="$(mktemp "$ETC/.secrets.XXXXXX")"
    printf '%s\n' "# API keys for the daemon (TRADER_SECRETS_FILE). Mode 0600, owner $SVC_USER. Back it up (RUNBOOK.md)." \
        "# [venue]" '# api_key = "..."' '# api_secret = "..."' > "$tmp"
    chown "$SVC_USER:$SVC_USER" "$tmp"
    chmod 0600 "$tmp"
    mv "$tmp" "$ETC/secrets.toml"
    say "wrote $ETC/secrets.toml (put the API keys there)"
fi
for f in "$ETC/config.toml" "$ETC/secrets.toml"; do
    runuser -u "$SVC_USER" -- test -r "$f" \
        || die "$f is not readable by $SVC_USER; run: chgrp $SVC_USER $f && chmod g+r $f (secrets: chown $SVC_USER $f && chmod 600 $f)"
done

# ------------------------------------------------------------------ 5. the config as the daemon will load it
if ! out="$(cd "$STATE" && runuser -u "$SVC_USER" -- env TRADER_SECRETS_FILE="$ETC/secrets.toml" \
    "$PREFIX/.venv/bin/python" -m settings.config --check "$ETC/config.toml" 2>&1)"; then
    echo "$out" >&2
    die "the config above is refused; fix $ETC/config.toml or $ETC/secrets.toml and run again"
fi
say "$out"

# ------------------------------------------------------------------ 6. the unit
unit="$UNIT_DIR/trading-bot.service"
mkdir -p "$UNIT_DIR"
sed -e "s#/opt/trading-bot#$PREFIX#g" -e "s#/etc/trading-bot#$ETC#g" -e "s#/var/lib/trading-bot#$STATE#g" \
    -e "s#^User=trading-bot#User=$SVC_USER#" -e "s#^Group=trading-bot#Group=$SVC_USER#" \
    "$PREFIX/deploy/trading-bot.service" > "$unit.tmp"
chmod 0644 "$unit.tmp"
mv "$unit.tmp" "$unit"
say "installed $unit"
read -r -a CTL <<< "$SYSTEMCTL"
if [[ "$SYSTEMCTL" == "none" ]]; then
    say "TB_SYSTEMCTL=none: unit not enabled; start the daemon yourself"
elif [[ "$(ps -o comm= -p 1 2>/dev/null)" != "systemd" && "$SYSTEMCTL" == "systemctl" ]]; then
    say "systemd is not PID 1 on this machine: unit installed, not enabled (run systemctl daemon-reload && systemctl enable --now trading-bot on a systemd host)"
else
    "${CTL[@]}" daemon-reload
    "${CTL[@]}" enable trading-bot
    if [[ $START -eq 1 ]]; then
        "${CTL[@]}" restart trading-bot
        say "started: journalctl -u trading-bot -f"
    else
        say "enabled; start with: systemctl start trading-bot (after the keys are in $ETC/secrets.toml)"
    fi
fi
