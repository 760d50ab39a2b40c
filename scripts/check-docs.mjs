#!/usr/bin/env node
// Keeps the README and the operator documents honest about the repository they describe:
// - every relative link points at a file that exists, and every #anchor at a heading in it;
// - every file path in backticks (src/…, test/…, sql/…, migrations/…, scripts/…, …) exists;
// - every test name quoted after a test file's path appears in that file;
// - every `npm run <script>` names a script in package.json.
// Usage: node scripts/check-docs.mjs   (docs/api.md is left to its own checks)
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const documents = [
  'README.md',
  ...readdirSync('docs')
    .filter((name) => name.endsWith('.md') && name !== 'api.md')
    .map((name) => path.join('docs', name)),
  ...readdirSync('docs/postmortems')
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join('docs/postmortems', name)),
];
const scripts = Object.keys(JSON.parse(readFileSync('package.json', 'utf8')).scripts ?? {});
const problems = [];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file) {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set(
    text
      .split('\n')
      .filter((line) => /^#{1,6}\s/.test(line))
      .map((line) => githubSlug(line.replace(/^#+\s*/, ''))),
  );
}

const PATH_PREFIXES = [
  'src/',
  'test/',
  'sql/',
  'migrations/',
  'scripts/',
  'grafana/',
  'prometheus/',
  'docs/',
  'bench/',
  '.github/',
];

for (const doc of documents) {
  const text = readFileSync(doc, 'utf8');
  const where = (what) => `${doc}: ${what}`;

  for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = match[1];
    if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
    const [file, anchor] = target.split('#');
    const resolved = file ? path.normalize(path.join(path.dirname(doc), file)) : doc;
    if (!existsSync(resolved)) {
      problems.push(where(`link to ${target}: ${resolved} does not exist`));
      continue;
    }
    if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) {
      problems.push(where(`link to ${target}: no heading #${anchor} in ${resolved}`));
    }
  }

  for (const match of text.matchAll(/`([^`\s]+)`(?::\s*((?:"[^"]+"(?:,\s*)?)+))?/g)) {
    const candidate = match[1].replace(/[.,;:]$/, '');
    if (!PATH_PREFIXES.some((prefix) => candidate.startsWith(prefix))) continue;
    if (/[*<>{}$]|\.\.\./.test(candidate) || candidate.includes('…')) continue; // patterns, placeholders
    if (!existsSync(candidate)) {
      problems.push(where(`${candidate} does not exist`));
      continue;
    }
    if (match[2] && candidate.endsWith('.test.ts')) {
      const source = readFileSync(candidate, 'utf8');
      for (const name of match[2].matchAll(/"([^"]+)"/g)) {
        if (!source.includes(name[1])) problems.push(where(`${candidate} has no test "${name[1]}"`));
      }
    }
  }

  for (const match of text.matchAll(/npm run (?:--silent )?([a-z][\w:-]*)/g)) {
    if (!scripts.includes(match[1]))
      problems.push(where(`npm run ${match[1]}: no such script in package.json`));
  }
}

if (problems.length > 0) {
  for (const problem of problems) process.stderr.write(`check-docs: ${problem}\n`);
  process.exit(1);
}
process.stdout.write(
  `check-docs: ${documents.length} documents, links, paths, test names and npm scripts in place\n`,
);
