#!/usr/bin/env bash
# Installs the Debian tools that the checks and tests call, skipping what is already there:
#   psql           (postgresql-client)  runs sql/runbook/*.sql in test/integration/runbook-sql.test.ts
#   promtool       (prometheus)         checks prometheus.yml and the alert rules, runs their unit tests
#   prometheus     (prometheus)         scrapes the service in test/integration/prometheus.test.ts
#   docker-compose (docker-compose)     `docker-compose config` parses docker-compose.yml; no engine needed
#   chromium       (chromium)           the portal's end-to-end test, test/e2e/portal-browser.test.ts
# Needs root (CI runs as root) when something is missing; does nothing otherwise.
set -euo pipefail

missing=()
command -v psql >/dev/null 2>&1 && psql --version >/dev/null 2>&1 || missing+=(postgresql-client)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-tools: psql, promtool, prometheus, docker-compose and chromium are installed"
  exit 0
fi

echo "ci-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: the tools only, no daemons or documentation we do not call.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in psql promtool prometheus docker-compose chromium; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ci-tools: $tool still missing after install" >&2; exit 1; }
done
echo "ci-tools: $(psql --version); $(promtool --version 2>&1 | head -n1); $(docker-compose version --short 2>&1)"
