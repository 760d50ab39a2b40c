#!/usr/bin/env node
// Checks that the monitoring files speak about metrics that exist and point at runbook sections
// that exist. Run with tsx (it reads the metric registry from src/):
//   node --import tsx scripts/check-monitoring.mjs
// 1. Every metric in the Grafana dashboard's and the alert rules' PromQL is one the service
//    registers (src/observability/metrics.ts, with prom-client's default process metrics) or `up`.
// 2. Every dashboard expression parses: they are written into a throw-away rule file and checked
//    with `promtool check rules`.
// 3. Every alert has a runbook_url `docs/runbook.md#anchor`, and docs/runbook.md has that heading.
// 4. Every alert has a unit test (prometheus/alerts.test.yml) that fires it and one that does not.
// 5. docs/runbook.md keeps its SQL in sql/runbook/: no ```sql block, and each file it names exists.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

const problems = [];
const problem = (message) => problems.push(message);

// --- the metric names the service exposes ----------------------------------------------------
const { createMetrics } = await import('../src/observability/metrics.ts');
const families = await createMetrics().registry.getMetricsAsJSON();
const known = new Set(['up']);
for (const family of families) {
  known.add(family.name);
  if (family.type === 'histogram') {
    for (const suffix of ['_bucket', '_sum', '_count']) known.add(family.name + suffix);
  }
  if (family.type === 'summary') for (const suffix of ['_sum', '_count']) known.add(family.name + suffix);
}

const PROMQL_WORDS = new Set(['by', 'without', 'and', 'or', 'unless', 'on', 'ignoring', 'bool', 'offset']);
const PROMQL_WORDS_WITH_LIST = ['group_left', 'group_right'];

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricNames(expr) {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '') // label lists
    .replace(new RegExp(`\\b(${PROMQL_WORDS_WITH_LIST.join('|')})\\s*\\([^)]*\\)`, 'g'), '');
  const names = new Set();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(match.index + match[0].length);
    if (/^\s*\(/.test(after)) continue; // a function call
    if (PROMQL_WORDS.has(match[0])) continue;
    if (/^\d/.test(match[0]) || /^[0-9.]+[smhdwy]?$/.test(match[0])) continue;
    if (match[0] === 'Inf' || match[0] === 'NaN') continue;
    names.add(match[0]);
  }
  return [...names];
}

function checkNames(where, expr) {
  const names = metricNames(expr);
  if (names.length === 0) problem(`${where}: no metric found in "${expr}"`);
  for (const name of names) {
    if (!known.has(name)) problem(`${where}: unknown metric "${name}" in "${expr}"`);
  }
}

// --- Grafana dashboards ----------------------------------------------------------------------
const dashboardDir = 'grafana/dashboards';
const dashboardExprs = [];
for (const file of readdirSync(dashboardDir).filter((name) => name.endsWith('.json'))) {
  const dashboard = JSON.parse(readFileSync(path.join(dashboardDir, file), 'utf8'));
  for (const panel of dashboard.panels ?? []) {
    for (const target of panel.targets ?? []) {
      if (!target.expr) continue;
      const where = `${file}: panel "${panel.title}"`;
      checkNames(where, target.expr);
      dashboardExprs.push({ where, expr: target.expr });
    }
  }
}
if (dashboardExprs.length === 0) problem(`${dashboardDir}: no panel queries found`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'dashboard-rules-'));
try {
  const rules = dashboardExprs
    .map(
      (item, index) =>
        `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(item.expr)}\n`,
    )
    .join('');
  const file = path.join(tmp, 'dashboard.rules.yml');
  writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}`);
  try {
    execFileSync('promtool', ['check', 'rules', file], { stdio: 'pipe' });
  } catch (err) {
    problem(`dashboard queries do not parse:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

// --- alert rules -------------------------------------------------------------------------------
/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

const runbook = readFileSync('docs/runbook.md', 'utf8');
const anchors = new Set(
  runbook
    .split('\n')
    .filter((line) => /^#{1,6}\s/.test(line))
    .map((line) => githubSlug(line.replace(/^#+\s*/, ''))),
);

const alerts = readFileSync('prometheus/alerts.yml', 'utf8');
const alertBlocks = alerts.split(/\n\s*- alert:\s*/).slice(1);
if (alertBlocks.length === 0) problem('prometheus/alerts.yml: no alerts');
for (const block of alertBlocks) {
  const name = block.split('\n')[0].trim();
  const exprMatch = block.match(/\n\s*expr:\s*(\|[^\n]*\n((?:\s{10,}[^\n]*\n)+)|([^\n]+))/);
  const expr = exprMatch ? (exprMatch[2] ?? exprMatch[3] ?? '').trim() : '';
  if (!expr) problem(`alert ${name}: no expr`);
  else checkNames(`alert ${name}`, expr);
  const url = block.match(/\n\s*runbook_url:\s*(\S+)/)?.[1];
  if (!url) {
    problem(`alert ${name}: no runbook_url annotation`);
    continue;
  }
  const [file, anchor] = url.split('#');
  if (file !== 'docs/runbook.md' || !anchor)
    problem(`alert ${name}: runbook_url "${url}" is not docs/runbook.md#section`);
  else if (!anchors.has(anchor)) problem(`alert ${name}: docs/runbook.md has no section #${anchor}`);
}

// --- every alert has unit tests that fire it and keep it quiet ---------------------------------
// prometheus/alerts.test.yml (run by `promtool test rules`): for each alert at least one
// alert_rule_test expects it firing and one expects `exp_alerts: []`.
const alertTests = readFileSync('prometheus/alerts.test.yml', 'utf8').split('\n');
const fires = new Set();
const quiet = new Set();
alertTests.forEach((line, index) => {
  const name = line.match(/^\s*-\s*alertname:\s*(\S+)/)?.[1];
  if (!name) return;
  const expectation = alertTests.slice(index + 1).find((next) => /^\s*exp_alerts:/.test(next));
  if (expectation === undefined) return;
  if (/exp_alerts:\s*\[\s*\]/.test(expectation)) quiet.add(name);
  else fires.add(name);
});
for (const block of alertBlocks) {
  const name = block.split('\n')[0].trim();
  if (!fires.has(name)) problem(`alert ${name}: no unit test in prometheus/alerts.test.yml that fires it`);
  if (!quiet.has(name))
    problem(`alert ${name}: no unit test in prometheus/alerts.test.yml that keeps it quiet`);
}

// --- the runbook's SQL lives in sql/runbook/ ----------------------------------------------------
if (/```sql/i.test(runbook))
  problem('docs/runbook.md: SQL belongs in sql/runbook/*.sql, not in a ```sql block');
for (const match of runbook.matchAll(/sql\/runbook\/[A-Za-z0-9_.-]+\.sql/g)) {
  if (!existsSync(match[0])) problem(`docs/runbook.md names ${match[0]}, which does not exist`);
}
for (const file of readdirSync('sql/runbook').filter((name) => name.endsWith('.sql'))) {
  if (!runbook.includes(`sql/runbook/${file}`))
    problem(`sql/runbook/${file} is not referred to by docs/runbook.md`);
}

if (problems.length > 0) {
  for (const message of problems) process.stderr.write(`check-monitoring: ${message}\n`);
  process.exit(1);
}
process.stdout.write(
  `check-monitoring: ${dashboardExprs.length} dashboard queries and ${alertBlocks.length} alerts use known metrics; each alert is unit-tested firing and quiet; runbook links and SQL files are in place\n`,
);
