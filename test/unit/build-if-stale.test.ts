import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { isStale } from '../../scripts/build-if-stale.mjs';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) fs.rmSync(root, { recursive: true, force: true });
});

/** A project folder with src/, dist/main.js and, optionally, a stamp; times in seconds since the epoch. */
function project(times: { src: number; stamp?: number }): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'build-if-stale-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'src/api'), { recursive: true });
  fs.mkdirSync(path.join(root, 'dist'));
  for (const file of ['src/main.ts', 'src/api/app.ts', 'package.json', 'tsconfig.json']) {
    fs.writeFileSync(path.join(root, file), '');
    fs.utimesSync(path.join(root, file), 1000, 1000);
  }
  fs.utimesSync(path.join(root, 'src/api/app.ts'), times.src, times.src);
  for (const dir of ['src', 'src/api']) fs.utimesSync(path.join(root, dir), 1000, 1000);
  fs.writeFileSync(path.join(root, 'dist/main.js'), '');
  if (times.stamp !== undefined) {
    fs.writeFileSync(path.join(root, 'dist/.build-stamp'), '');
    fs.utimesSync(path.join(root, 'dist/.build-stamp'), times.stamp, times.stamp);
  }
  return root;
}

describe('build-if-stale', () => {
  it('builds when there is no stamp yet', () => {
    expect(isStale(project({ src: 2000 }))).toBe(true);
  });
  it('skips the build when every input is older than the stamp', () => {
    expect(isStale(project({ src: 2000, stamp: 3000 }))).toBe(false);
  });
  it('builds when a file deep in src/ changed after the stamp', () => {
    expect(isStale(project({ src: 4000, stamp: 3000 }))).toBe(true);
  });
  it('builds when a file was deleted from src/ after the stamp (its folder changed)', () => {
    const root = project({ src: 2000, stamp: 3000 });
    fs.rmSync(path.join(root, 'src/api/app.ts'));
    expect(isStale(root)).toBe(true);
  });
  it('builds when package.json changed after the stamp', () => {
    const root = project({ src: 2000, stamp: 3000 });
    fs.utimesSync(path.join(root, 'package.json'), 5000, 5000);
    expect(isStale(root)).toBe(true);
  });
});
