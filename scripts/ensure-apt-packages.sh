#!/usr/bin/env bash
# Install Debian packages for commands that are missing, and do nothing when they are all present.
#
#   scripts/ensure-apt-packages.sh dot=graphviz,fonts-liberation2 chromium=chromium,fonts-liberation
#
# Each argument is COMMAND=PACKAGE[,PACKAGE...]. The packages are installed only when COMMAND is not on PATH.
# Runs apt-get directly as root (CI), through sudo otherwise; never waits for input.
set -euo pipefail

missing=()
for spec in "$@"; do
  cmd=${spec%%=*}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    IFS=, read -r -a pkgs <<<"${spec#*=}"
    missing+=("${pkgs[@]}")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

manual="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
echo "==> installing system packages: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: apt-get not found. Install these with your system's package manager, then rerun make: ${missing[*]}" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  # `sudo -n` fails instead of prompting, so CI or a closed stdin never hangs on a password prompt.
  if [ -t 0 ] && [ -z "${CI:-}" ]; then as_root=(sudo); else as_root=(sudo -n); fi
else
  echo "error: not running as root and sudo is not installed. Ask an administrator to run:" >&2
  echo "  $manual" >&2
  exit 1
fi

# The lock timeout makes apt wait for another apt/dpkg run (e.g. unattended-upgrades) instead of failing.
apt_get=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
if ! { "${apt_get[@]}" update && "${apt_get[@]}" install -y --no-install-recommends "${missing[@]}"; }; then
  echo "error: could not install ${missing[*]}. Run this as root, then rerun make:" >&2
  echo "  $manual" >&2
  exit 1
fi
