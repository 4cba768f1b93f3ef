#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: Chromium (browser tests), coturn
# (the TURN relay tests), iptables (network faults), redis-server (the cluster tests), ffmpeg and
# ffprobe (reading recordings back), the end-to-end test tools from npm, and aiortc from PyPI (a
# second, independent WebRTC stack as a subscriber). Skips whatever is already there.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v turnserver >/dev/null 2>&1 || need_apt+=(coturn)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
if ((${#need_apt[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need_apt[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -d e2e/node_modules/playwright-core ]; then
  (cd e2e && npm ci --no-audit --no-fund)
fi

if ! python3 -c 'import aiortc, websockets' >/dev/null 2>&1; then
  echo "installing aiortc and websockets with pip"
  python3 -m pip install --quiet --disable-pip-version-check 'aiortc==1.16.*' 'websockets>=12'
fi
