/**
 * docs/runbook.md's psql command lines run as written. Every command line in the runbook that
 * runs a file of sql/runbook/ — `psql "$DATABASE_URL" -X [-v name=value …] -f sql/runbook/<file>`
 * or `npm run psql -- [-v name=value …] -f sql/runbook/<file>`, in a code block or in inline
 * backticks — is found, its placeholders (`<pid>`, `<n>`, `<id>`, …) are filled with values that
 * make sense for the variable they give (the pid of a session this test holds open, a real
 * worker id, an existing tenant, a number), and it is run with the real psql against a migrated
 * database: exit status 0, no ERROR, and not the file's usage line (that would mean the line
 * leaves out a required variable). A snippet that looks like part of such a command line but is
 * not a whole one (`sql/runbook/x.sql -v a=1`, `-v a=1` alone, `-f …`) fails the test: an
 * operator must be able to paste every one.
 *
 * Also: the table at the end of the runbook lists every file with exactly the variables the file
 * reads (`\if :{?name}`), required apart from optional; and every file run with no variable at
 * all either runs (exit 0, no ERROR) or, when it requires some, prints its one usage line alone,
 * on stdout, with exit status 0, before any SQL.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { REPO_ROOT, runFile, waitFor, type RunResult } from '../helpers/process.js';
import { PSQL_ENV, RUNBOOK_DIR, runbookFiles } from '../helpers/runbook.js';

const RUNBOOK = path.join(REPO_ROOT, 'docs/runbook.md');

interface Snippet {
  /** 1-based line of docs/runbook.md where the snippet starts. */
  line: number;
  text: string;
}

/**
 * Each line of every fenced code block (lines continued with a trailing backslash joined, shell
 * comments left out) and each inline code span of the prose (whitespace, line breaks included,
 * collapsed to one space), in document order.
 */
function snippetsOf(markdown: string): Snippet[] {
  const snippets: Snippet[] = [];
  const prose: string[] = [];
  let fence: string | undefined;
  let pending: Snippet | undefined;
  markdown.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    if (fence === undefined) {
      const opening = /^(```+|~~~+)/.exec(trimmed);
      if (opening) {
        fence = opening[1];
        prose.push('');
      } else {
        prose.push(raw);
      }
      return;
    }
    prose.push('');
    if (trimmed.startsWith(fence!)) {
      fence = undefined;
      if (pending) snippets.push(pending);
      pending = undefined;
      return;
    }
    const text = pending ? `${pending.text} ${trimmed}` : trimmed;
    const line = pending ? pending.line : index + 1;
    if (text.endsWith('\\')) {
      pending = { line, text: text.slice(0, -1).trim() };
      return;
    }
    pending = undefined;
    if (text !== '' && !text.startsWith('#')) snippets.push({ line, text });
  });
  const text = prose.join('\n');
  for (const match of text.matchAll(/`([^`]+)`/g)) {
    if (/\n\s*\n/.test(match[1]!)) continue; // not a span: a lone backtick paired across paragraphs
    snippets.push({
      line: text.slice(0, match.index).split('\n').length,
      text: match[1]!.replace(/\s+/g, ' ').trim(),
    });
  }
  return snippets.sort((a, b) => a.line - b.line);
}

interface DocumentedCommand extends Snippet {
  form: 'psql' | 'npm run psql';
  variables: [name: string, value: string][];
  file: string;
}

const PREFIX = /^(psql "\$DATABASE_URL"|npm run psql --)(?=\s|$)/;
const VALUE = String.raw`(?:[\w.:-]+|'[^'<>]*'|<[a-z_ ]+>)`;
const COMMAND = new RegExp(
  String.raw`^(psql "\$DATABASE_URL"|npm run psql --)((?: -X| -v [a-z_]+=${VALUE})*) -f sql/runbook/([\w-]+\.sql)$`,
);

/** Snippets that run a runbook file, or look as if they meant to (and are then problems). */
function documentedCommands(markdown: string): { commands: DocumentedCommand[]; problems: string[] } {
  const commands: DocumentedCommand[] = [];
  const problems: string[] = [];
  for (const snippet of snippetsOf(markdown)) {
    const { line, text } = snippet;
    const looksLikeOne =
      PREFIX.test(text) ||
      /(^|\s)-v\s+\w+=/.test(text) ||
      /(^|\s)-f\s+sql\/runbook/.test(text) ||
      /sql\/runbook\/\S*\s+-/.test(text);
    if (!looksLikeOne) continue;
    const match = COMMAND.exec(text);
    if (!match) {
      problems.push(
        `docs/runbook.md:${line}: \`${text}\` is not a whole command line an operator can paste ` +
          '(psql "$DATABASE_URL" -X [-v name=value …] -f sql/runbook/<file>.sql, or npm run psql -- …)',
      );
      continue;
    }
    const [, prefix, options, file] = match;
    const form = prefix === 'npm run psql --' ? 'npm run psql' : 'psql';
    if (form === 'psql' && !/(^| )-X( |$)/.test(options!)) {
      problems.push(`docs/runbook.md:${line}: \`${text}\` leaves out -X (the operator's psqlrc would apply)`);
      continue;
    }
    if (!runbookFiles.includes(file!)) {
      problems.push(`docs/runbook.md:${line}: \`${text}\` names sql/runbook/${file}, which does not exist`);
      continue;
    }
    const variables = [...options!.matchAll(new RegExp(String.raw` -v ([a-z_]+)=(${VALUE})`, 'g'))].map(
      (m) => [m[1]!, m[2]!] as [string, string],
    );
    commands.push({ line, text, form, variables, file: file! });
  }
  return { commands, problems };
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = PSQL_ENV): Promise<RunResult> {
  return runFile(file, args, { cwd: REPO_ROOT, env, timeout: 60_000 });
}

/** The variables a file reads: each is tested with `\if :{?name}` (to default it, or to require it). */
function variablesOf(file: string): string[] {
  const text = fs.readFileSync(path.join(RUNBOOK_DIR, file), 'utf8');
  return [...new Set([...text.matchAll(/\\(?:if|elif) :\{\?(\w+)\}/g)].map((m) => m[1]!))].sort();
}

/** The runbook's closing table: file → required and optional variables. */
function variablesTable(markdown: string): Map<string, { required: string[]; optional: string[] }> {
  const section = markdown.slice(markdown.indexOf("## The runbook's SQL files"));
  const lines = section.split('\n').filter((line) => line.startsWith('|'));
  const header = lines[0]!.split('|').map((cell) => cell.trim());
  const requiredColumn = header.indexOf('required variables');
  const optionalColumn = header.indexOf('optional variables');
  expect(requiredColumn, 'a "required variables" column').toBeGreaterThan(0);
  expect(optionalColumn, 'an "optional variables" column').toBeGreaterThan(0);
  const names = (cell: string) => [...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort();
  const table = new Map<string, { required: string[]; optional: string[] }>();
  for (const line of lines.slice(2)) {
    const cells = line.split('|').map((cell) => cell.trim());
    const file = /^`sql\/runbook\/([\w-]+\.sql)`$/.exec(cells[1]!)?.[1];
    expect(file, `a table row naming a file: ${line}`).toBeDefined();
    table.set(file!, { required: names(cells[requiredColumn]!), optional: names(cells[optionalColumn]!) });
  }
  return table;
}

const markdown = fs.readFileSync(RUNBOOK, 'utf8');
const { commands, problems } = documentedCommands(markdown);

let database: TestDatabase;
let client: pg.Client;
const sessions: pg.Client[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(`
    insert into tenants (id) values ('acme'), ('globex');
    insert into quotas (tenant_id) values ('acme'), ('globex');
    insert into worker_heartbeats (worker_id, hostname, pid, started_at, last_seen_at) values
      ('worker-3f9a', 'host-a', 101, now() - interval '2 hours', now() - interval '1 hour');
  `);
});

afterAll(async () => {
  for (const session of sessions) await session.end().catch(() => undefined);
  await client?.end();
  await database?.drop();
});

/** A session sleeping in a query, as an abandoned psql would be: its pid is what `<pid>` stands for. */
async function sleepingSession(): Promise<number> {
  const session = new pg.Client({ connectionString: database.url, application_name: 'runbook-docs-sleeper' });
  session.on('error', () => undefined);
  await session.connect();
  sessions.push(session);
  const pid = (await session.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  session.query('select pg_sleep(600)').catch(() => undefined);
  await waitFor(
    async () =>
      (await client.query(`select 1 from pg_stat_activity where pid = $1 and state = 'active'`, [pid]))
        .rowCount === 1 || undefined,
    5000,
    'the sleeping session to be active',
  );
  return pid;
}

/** What a placeholder in `-v name=<…>` stands for, by the variable it gives. */
async function valueFor(name: string, placeholder: string): Promise<string> {
  switch (name) {
    case 'pid':
      return String(await sleepingSession());
    case 'worker_id':
      return (await client.query<{ worker_id: string }>('select worker_id from worker_heartbeats limit 1'))
        .rows[0]!.worker_id;
    case 'tenant_id':
      return 'acme';
    case 'max_events_per_sec':
    case 'max_concurrent_deliveries':
    case 'max_dlq_size':
      return '200';
    default:
      throw new Error(`no test value for -v ${name}=${placeholder}: add one to valueFor`);
  }
}

describe('docs/runbook.md command lines', () => {
  it('are found, and every snippet that runs a sql/runbook/ file is a whole command line', () => {
    expect(problems).toEqual([]);
    expect(commands.length).toBeGreaterThan(0);
    process.stdout.write(`docs/runbook.md: ${commands.length} documented psql command lines\n`);
  });

  it('npm run psql is node scripts/psql.mjs, which these tests run in its place', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).scripts;
    expect(scripts.psql).toBe('node scripts/psql.mjs');
  });

  for (const command of commands) {
    it(`docs/runbook.md:${command.line}: ${command.text}`, async () => {
      const variables: [string, string][] = [];
      for (const [name, value] of command.variables) {
        variables.push([name, /^<.*>$/.test(value) ? await valueFor(name, value) : value]);
      }
      const options = variables.map(([name, value]) => ` -v ${name}=${value}`).join('');
      // As written, with ON_ERROR_STOP=1 given as well, placeholders filled in; npm run psql as the
      // script it names (see above), so that npm's own output stays out of the way.
      const prefix = command.form === 'psql' ? 'psql "$DATABASE_URL" -X' : 'node scripts/psql.mjs';
      const line = `${prefix} -v ON_ERROR_STOP=1${options} -f sql/runbook/${command.file}`;
      const result = await run('sh', ['-c', line], { ...PSQL_ENV, DATABASE_URL: database.url });
      const report = `${line}\nexit ${result.code}\n${result.stderr}\n${result.stdout}`;
      expect(result.code, report).toBe(0);
      expect(result.stderr, report).not.toMatch(/ERROR/);
      expect(result.stdout, `${report}\n(the usage line: a required variable is missing)`).not.toMatch(
        /^usage:/m,
      );

      const given = Object.fromEntries(variables);
      if (command.file === 'terminate-backend.sql') {
        await waitFor(
          async () =>
            (await client.query('select 1 from pg_stat_activity where pid = $1', [Number(given.pid)]))
              .rowCount === 0 || undefined,
          5000,
          `session ${given.pid} to end`,
        );
      }
      if (command.file === 'raise-tenant-quota.sql') {
        const quota = await client.query(
          `select max_events_per_sec, max_concurrent_deliveries, max_dlq_size from quotas where tenant_id = $1`,
          [given.tenant_id],
        );
        for (const limit of ['max_events_per_sec', 'max_concurrent_deliveries', 'max_dlq_size']) {
          if (given[limit] !== undefined) expect(String(quota.rows[0][limit]), limit).toBe(given[limit]);
        }
      }
    });
  }
});

describe("docs/runbook.md's table of sql/runbook/ files", () => {
  it('lists every file with the variables it reads, required apart from optional', () => {
    const table = variablesTable(markdown);
    expect([...table.keys()].sort()).toEqual(runbookFiles);
    for (const file of runbookFiles) {
      const { required, optional } = table.get(file)!;
      expect([...required, ...optional].sort(), file).toEqual(variablesOf(file));
      expect(
        required.filter((name) => optional.includes(name)),
        `${file}: required and optional at once`,
      ).toEqual([]);
    }
  });

  it('each file run with no variable runs, or prints its usage line alone when it requires some', async () => {
    const table = variablesTable(markdown);
    const audited = async () =>
      Number((await client.query<{ n: string }>('select count(*) as n from audit_log')).rows[0]!.n);
    for (const file of runbookFiles) {
      const { required, optional } = table.get(file)!;
      const auditRowsBefore = await audited();
      const result = await run('psql', [
        database.url,
        '-X',
        '-v',
        'ON_ERROR_STOP=1',
        '-f',
        `sql/runbook/${file}`,
      ]);
      const report = `${file}: exit ${result.code}\n${result.stderr}\n${result.stdout}`;
      expect(result.code, report).toBe(0);
      expect(result.stderr, report).toBe('');
      if (required.length === 0) {
        expect(result.stdout, report).not.toMatch(/^usage:/m);
        continue;
      }
      // One line, the usage, naming the file and every variable it takes; nothing ran.
      const lines = result.stdout.split('\n').filter((line) => line !== '');
      expect(lines, report).toHaveLength(1);
      expect(lines[0], report).toMatch(/^usage: psql "\$DATABASE_URL" -X /);
      expect(lines[0], report).toContain(`-f sql/runbook/${file}`);
      for (const name of [...required, ...optional]) expect(lines[0], report).toContain(`-v ${name}=`);
      expect(await audited(), `${file} changed nothing`).toBe(auditRowsBefore);
    }
  });
});
