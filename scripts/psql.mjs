#!/usr/bin/env node
// `npm run psql [-- psql arguments]`: psql on the database the service uses — DATABASE_URL when
// set, else the embedded server under DATA_DIR (default ./.data; start it with `npm start`),
// whose port and password are kept in DATA_DIR/pg-port and DATA_DIR/pg-password.
// Example: npm run psql -- -f sql/runbook/queue-depth.sql
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

function embeddedUrl() {
  const dataDir = path.resolve(process.env.DATA_DIR?.trim() || './.data');
  const read = (name) => {
    try {
      return readFileSync(path.join(dataDir, name), 'utf8').trim();
    } catch {
      process.stderr.write(
        `No embedded database in ${dataDir} (${name} missing): run \`npm start\` first, or set DATABASE_URL.\n`,
      );
      process.exit(2);
    }
  };
  const port = read('pg-port');
  const password = read('pg-password');
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/hookrelay`;
}

const url = process.env.DATABASE_URL?.trim() || embeddedUrl();
const child = spawn('psql', [url, '-X', ...process.argv.slice(2)], { stdio: 'inherit' });
child.once('error', (err) => {
  process.stderr.write(
    err.code === 'ENOENT'
      ? 'psql is not installed: install the PostgreSQL client (Debian: apt-get install postgresql-client).\n'
      : `psql could not start: ${err.message}\n`,
  );
  process.exit(2);
});
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
