#!/usr/bin/env bash
# Installs the system packages GeoMarket needs, when run as root on Debian or Ubuntu.
# Otherwise prints the exact install line and fails, so nothing half-works later.
set -euo pipefail

# chromium: the browser tests (tests/browser) drive it with Playwright.
PACKAGES=(postgresql-15-postgis-3 redis-server gdal-bin libgdal-dev libgeos-dev libproj-dev chromium)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# An external DATABASE_URL / REDIS_URL still needs the client libraries, not the servers.
if [ -n "${DATABASE_URL:-}" ]; then missing=("${missing[@]/postgresql-15-postgis-3/}"); fi
if [ -n "${REDIS_URL:-}" ]; then missing=("${missing[@]/redis-server/}"); fi
read -r -a missing <<<"${missing[*]:-}"

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a default cluster on 5432 after installing PostgreSQL; GeoMarket
  # runs its own on a separate port, so that one is left as the system has it.
  exit 0
fi

echo "Missing system packages: ${missing[*]}" >&2
echo "Install them with:" >&2
echo "  sudo apt-get install -y ${missing[*]}" >&2
exit 1
