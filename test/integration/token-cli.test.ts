/**
 * `npm run token`: a usage text for --help, one-line errors (never a stack trace) for bad
 * input, and a token the API accepts for good input. The CLI runs as a real process.
 */
import { spawn } from 'node:child_process';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { TEST_JWT_SECRET } from '../helpers/service.js';

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/api/token-cli.ts', ...args], {
      env: { ...process.env, JWT_SECRET: TEST_JWT_SECRET, NODE_ENV: 'development' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run token', () => {
  it('--help prints the usage and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: npm run token -- --tenant ID/);
    expect(result.stdout).toContain('--expires DURATION');
  });

  it.each([
    [['--tenant', 'acme', '--expires', '0'], /--expires must be a positive duration/],
    [['--tenant', 'acme', '--expires', '1x'], /--expires must be a positive duration/],
    [['--expires', '1h'], /--tenant is required/],
    [['--tenant', 'acme', '--bogus'], /Unknown option '--bogus'/],
  ])('%j: one line saying why, the usage line, exit 2, no stack trace', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(message);
    expect(lines[1]).toMatch(/^usage: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints a token for the tenant, expiring when asked', async () => {
    const result = await runCli(['--tenant', 'acme', '--admin', '--expires', '2h']);
    expect(result.code).toBe(0);
    const claims = decodeJwt(result.stdout.trim());
    expect(claims).toMatchObject({ tenant_id: 'acme', role: 'admin' });
    expect(claims.exp! - Date.now() / 1000).toBeGreaterThan(7100);
    expect(claims.exp! - Date.now() / 1000).toBeLessThan(7300);
  });

  it('expires by default: 30 days for a tenant token, 24 h for an admin token; never when told', async () => {
    const tenant = decodeJwt((await runCli(['--tenant', 'acme'])).stdout.trim());
    expect(tenant.exp! - tenant.iat!).toBe(30 * 86400);
    const admin = decodeJwt((await runCli(['--tenant', 'ops', '--admin'])).stdout.trim());
    expect(admin.exp! - admin.iat!).toBe(86400);
    const forever = decodeJwt((await runCli(['--tenant', 'acme', '--expires', 'never'])).stdout.trim());
    expect(forever.exp).toBeUndefined();
    expect(forever.iat).toBeGreaterThan(Date.now() / 1000 - 60);
  });
});
