#!/usr/bin/env bash
# Installs the system packages GeoMarket needs, when run as root on Debian or Ubuntu.
# Otherwise prints the exact install line and fails, so nothing half-works later.
set -euo pipefail

# postgresql-postgis: PostGIS for the PostgreSQL the distribution ships (and that
# PostgreSQL): 15 on Debian 12, 17 on Debian 13, 16 on Ubuntu 24.04. Naming one major
# (postgresql-15-postgis-3) left any other release without a package to install.
# chromium: the browser tests (tests/browser) drive it with Playwright.
# pgbouncer: the transaction pooler in front of the local PostGIS (PGBOUNCER=1).
PACKAGES=(postgresql-postgis redis-server gdal-bin libgdal-dev libgeos-dev libproj-dev chromium pgbouncer)
# python3-pip: scripts/uv installs uv with pip where uv is missing, and Debian's python3
# comes without pip (Debian 13 has no uv package either).
if ! command -v uv >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1; then
  PACKAGES+=(python3-pip)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# An external DATABASE_URL / REDIS_URL still needs the client libraries, not the servers.
if [ -n "${DATABASE_URL:-}" ]; then missing=("${missing[@]/postgresql-postgis/}"); fi
# The local PgBouncer fronts the local PostgreSQL only.
if [ -n "${DATABASE_URL:-}" ]; then missing=("${missing[@]/pgbouncer/}"); fi
if [ -n "${REDIS_URL:-}" ]; then missing=("${missing[@]/redis-server/}"); fi
read -r -a missing <<<"${missing[*]:-}"

# PgBouncer keeps server-side prepared statements across transactions from 1.21 on
# (max_prepared_statements); Debian 12 ships 1.18, Ubuntu 22.04 1.16 (Debian 13 and
# Ubuntu 24.04 ship newer ones). Where the distribution's is older, the source package
# of its next release (verified by apt like any package, from the mirror the machine
# already uses) is built once into /usr/local, which comes first in PATH: about 30 s.
# PGBOUNCER_SOURCE_SUITE names that release.
PGBOUNCER_MIN_VERSION=1.21
# shellcheck disable=SC1091
distribution=$(. /etc/os-release && echo "${ID:-debian}")
# Ubuntu keeps PgBouncer in universe, Debian in main.
if [ "$distribution" = ubuntu ]; then
  default_suite=noble source_component=universe
else
  default_suite=trixie source_component=main
fi
PGBOUNCER_SOURCE_SUITE=${PGBOUNCER_SOURCE_SUITE:-$default_suite}
PGBOUNCER_BUILD_PACKAGES=(gcc make pkg-config dpkg-dev libevent-dev libc-ares-dev libssl-dev)

pgbouncer_recent() {
  if [ -n "${DATABASE_URL:-}" ]; then return 0; fi
  local version
  version=$(PATH=/usr/local/bin:$PATH:/usr/sbin pgbouncer --version 2>/dev/null | awk 'NR == 1 {print $2}')
  [ -n "$version" ] && [ "$(printf '%s\n%s\n' "$PGBOUNCER_MIN_VERSION" "$version" | sort -V | head -n 1)" = "$PGBOUNCER_MIN_VERSION" ]
}

pgbouncer_build() {
  echo "Debian's PgBouncer is older than $PGBOUNCER_MIN_VERSION: building $PGBOUNCER_SOURCE_SUITE's into /usr/local"
  apt-get install -y -qq --no-install-recommends "${PGBOUNCER_BUILD_PACKAGES[@]}" >/dev/null
  local work mirror
  work=$(mktemp -d)
  # The mirror this machine already installs Debian's packages from.
  mirror=$(apt-cache policy pgbouncer | awk '$2 ~ /^https?:/ && / Packages$/ {print $2; exit}')
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb-src $mirror $PGBOUNCER_SOURCE_SUITE $source_component" >"$work/sources.list"
  local apt_options=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_options[@]}" update -qq
  (cd "$work" && apt-get "${apt_options[@]}" source -qq --download-only pgbouncer >/dev/null)
  (cd "$work" && dpkg-source -x ./pgbouncer_*.dsc src >/dev/null)
  (cd "$work/src" && ./configure --prefix=/usr/local --without-pam --without-systemd >/dev/null &&
    make -s -j "$(nproc)" >/dev/null && make -s install >/dev/null)
  rm -rf "$work"
  pgbouncer_recent
}

if [ "${#missing[@]}" -eq 0 ]; then
  if pgbouncer_recent; then exit 0; fi
  missing=()
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "Installing system packages: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian starts a default cluster on 5432 after installing PostgreSQL; GeoMarket
  # runs its own on a separate port, so that one is left as the system has it.
  pgbouncer_recent || pgbouncer_build
  exit 0
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
else
  echo "PgBouncer $PGBOUNCER_MIN_VERSION or newer is missing (Debian 12's is older): run this as root to build it" >&2
fi
exit 1
