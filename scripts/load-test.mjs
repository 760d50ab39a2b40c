#!/usr/bin/env node
// `npm run load-test`: runs the k6 script test/load/events.js against a deployed instance.
// Arguments after `--` go to `k6 run` (e.g. `npm run load-test -- -e RATE=500`); BASE_URL, TOKEN,
// RATE and the rest are read from the environment (see the script's header).
import { spawn } from 'node:child_process';
import process from 'node:process';

const child = spawn('k6', ['run', ...process.argv.slice(2), 'test/load/events.js'], { stdio: 'inherit' });
// Ctrl-C reaches k6 too; wait for it to print its summary rather than exit under it.
process.on('SIGINT', () => undefined);
child.on('error', (err) => {
  if (err.code === 'ENOENT') {
    process.stderr.write(
      'k6 is not installed (https://grafana.com/docs/k6/latest/set-up/install-k6/); without it, `npm run bench` is the runnable equivalent: it measures the same against a service it starts itself.\n',
    );
    process.exit(127);
  }
  throw err;
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
