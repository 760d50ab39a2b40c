/**
 * The layering of src/, checked over the import graph of every source file:
 * - src/http/ is a kit: it imports no feature (only the caller's identity, tenancy/caller.ts);
 * - a feature's services, repositories and engine never import src/http/ (only its routes, its
 *   request schemas and its OpenAPI operations do);
 * - no feature imports another feature's routes; only the app assembly (src/api/) mounts them;
 * - nothing but the entry points imports the app assembly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');
const FEATURES = [
  'audit',
  'delivery',
  'dlq',
  'event-types',
  'events',
  'portal',
  'retention',
  'tenancy',
  'webhooks',
];
const HTTP_FACING = /-(routes|schemas|openapi)\.ts$/;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative import of a file, as paths relative to src/ (`http/auth.ts`). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((spec) =>
    path.relative(SRC, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts'),
  );
}

const graph = sourceFiles(SRC).map((file) => ({
  file: path.relative(SRC, file),
  imports: importsOf(file),
}));
const folderOf = (file: string): string => (file.includes('/') ? file.split('/')[0]! : '');

function violations(rule: (file: string, imported: string) => boolean): string[] {
  return graph.flatMap(({ file, imports }) =>
    imports.filter((imported) => rule(file, imported)).map((imported) => `${file} → ${imported}`),
  );
}

describe('import boundaries', () => {
  it('sees the source tree', () => {
    expect(graph.length).toBeGreaterThan(50);
    expect(graph.some(({ imports }) => imports.includes('http/auth.ts'))).toBe(true);
  });

  it('src/http/ imports no feature and not the app', () => {
    expect(
      violations(
        (file, imported) =>
          folderOf(file) === 'http' &&
          (FEATURES.includes(folderOf(imported)) || folderOf(imported) === 'api') &&
          imported !== 'tenancy/caller.ts',
      ),
    ).toEqual([]);
  });

  it("a feature's services, repositories and engine never import src/http/", () => {
    expect(
      violations(
        (file, imported) =>
          FEATURES.includes(folderOf(file)) && !HTTP_FACING.test(file) && folderOf(imported) === 'http',
      ),
    ).toEqual([]);
  });

  it("no feature imports another feature's routes", () => {
    expect(
      violations(
        (file, imported) =>
          folderOf(file) !== 'api' &&
          imported.endsWith('-routes.ts') &&
          folderOf(imported) !== folderOf(file),
      ),
    ).toEqual([]);
  });

  it('only the entry points import the app assembly', () => {
    expect(
      violations(
        (file, imported) =>
          folderOf(imported) === 'api' &&
          folderOf(file) !== 'api' &&
          !['main.ts', 'service.ts'].includes(file),
      ),
    ).toEqual([]);
  });
});
