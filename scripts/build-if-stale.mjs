/**
 * `npm start` (and the bench): compiles src/ to dist/ only when something it is built from
 * changed since the last build, so a restart takes a moment instead of a full `tsc` run.
 * "Changed" is by modification time: any file or folder under src/, tsconfig.json,
 * tsconfig.build.json or package.json newer than dist/.build-stamp (written after each
 * successful build). `npm run build` always compiles.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/** The newest modification time (ms) among `paths` and, for folders, everything in them; 0 when none exist. */
export function newestMtime(paths) {
  let newest = 0;
  const visit = (p) => {
    let stat;
    try {
      stat = fs.statSync(p);
    } catch {
      return;
    }
    // A folder's own time too: deleting or renaming a file changes only its folder's.
    newest = Math.max(newest, stat.mtimeMs);
    if (stat.isDirectory()) for (const entry of fs.readdirSync(p)) visit(path.join(p, entry));
  };
  for (const p of paths) visit(p);
  return newest;
}

/** Whether the build in `root` is missing or older than any of its inputs. */
export function isStale(root) {
  const stamp = path.join(root, 'dist', '.build-stamp');
  if (!fs.existsSync(stamp) || !fs.existsSync(path.join(root, 'dist', 'main.js'))) return true;
  const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'].map((p) =>
    path.join(root, p),
  );
  return newestMtime(inputs) > fs.statSync(stamp).mtimeMs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  if (isStale(root)) {
    execFileSync(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
    fs.writeFileSync(path.join(root, 'dist', '.build-stamp'), `${new Date().toISOString()}\n`);
  }
}
