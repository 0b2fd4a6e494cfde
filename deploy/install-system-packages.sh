#!/usr/bin/env bash
# Installs the Debian packages Shailoo's tests and demo need, only when missing.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
# Cyrillic fonts for printed ballots and reports (reportlab/PIL load the TTF files).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# Headless Chromium and its WebDriver for the public site's browser tests (Selenium drives
# them by path; nothing is downloaded), and wrk for the site's load bench.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${need[@]}"
fi

# PostgreSQL: the central server's tests run on it too (postgresql://postgres@127.0.0.1:5432).
# Start the installed cluster when it is stopped; install the server when it is missing.
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "installing Debian package: postgresql"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q postgresql
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name port status _; do
    if [ "$status" != "online" ]; then
      echo "starting PostgreSQL cluster $ver/$name on port $port"
      sudo_cmd=""
      [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
      $sudo_cmd pg_ctlcluster "$ver" "$name" start || echo "warning: could not start PostgreSQL $ver/$name"
    fi
  done
fi
