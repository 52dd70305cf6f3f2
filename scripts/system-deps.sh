#!/usr/bin/env bash
# Installs the Debian packages the tester and the embedded lab need, when missing and running as root.
# Without root it only reports what is missing (the lab needs root anyway; `make test`'s unit tests do not).
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
# the lab's real parts and the fault library
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v stress-ng >/dev/null 2>&1 || missing+=(stress-ng)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
[ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || missing+=(libnetfilter-queue-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v curl >/dev/null 2>&1 || missing+=(curl)   # the instance-stop dead-man timer on the DC hosts
command -v sudo >/dev/null 2>&1 || missing+=(sudo)   # the lab's non-root fault user (ssh.sudo)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
[ -x /usr/bin/chromium ] || missing+=(chromium)   # the dashboard's browser tests (tests/unit/test_dashboard_browser.py)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
