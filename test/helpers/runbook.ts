/** The runbook's SQL files (sql/runbook/), run with the real psql the way docs/runbook.md says. */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runFile, type RunResult } from './process.js';

export const RUNBOOK_DIR = path.join(REPO_ROOT, 'sql/runbook');

/** The names of the files in sql/runbook/, sorted. */
export const runbookFiles = fs
  .readdirSync(RUNBOOK_DIR)
  .filter((name) => name.endsWith('.sql'))
  .sort();

/** psql's environment: a connect timeout, and no pager. */
export const PSQL_ENV: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '10', PAGER: '' };

/** `psql <url> -X -v k=v … -f sql/runbook/<file>`, as the file's own header says to run it. */
export function runbookPsql(
  url: string,
  file: string,
  variables: Record<string, string> = {},
): Promise<RunResult> {
  const args = [url, '-X'];
  for (const [name, value] of Object.entries(variables)) args.push('-v', `${name}=${value}`);
  args.push('-f', path.join(RUNBOOK_DIR, file));
  return runFile('psql', args, { env: PSQL_ENV, timeout: 60_000 });
}
