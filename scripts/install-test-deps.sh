#!/usr/bin/env bash
# Installs the programs ssogate's tests run for real (redis-server, wrk,
# chromium) when they are missing. Needs root for apt-get; otherwise it
# says what to install and fails.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
for pkg in "$@"; do
	case "$pkg" in
	wrk) command -v wrk >/dev/null 2>&1 || need+=(wrk) ;;
	chromium) command -v chromium >/dev/null 2>&1 || need+=(chromium) ;;
	esac
done
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "missing: ${need[*]}; install with: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
