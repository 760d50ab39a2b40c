/**
 * Once per `npm test`: a throw-away embedded PostgreSQL in a temporary directory, with a
 * template database migrated once. Each test file clones the template (test/helpers/database.ts).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { withDatabase } from './urls.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    templateDatabase: string;
  }
}

export const TEMPLATE_DATABASE = 'hookrelay_template';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.TEST_DATABASE_URL;
  let dataDir: string | undefined;
  let stopServer = async () => undefined as void;
  let adminUrl: string;
  if (external) {
    adminUrl = external;
  } else {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hookrelay-test-'));
    const server = await startEmbeddedPostgres({ dataDir, databaseName: 'postgres' });
    adminUrl = server.adminConnectionString;
    stopServer = () => server.stop();
  }

  const admin = createDatabase(adminUrl, { max: 1 });
  await admin.pool.query(`drop database if exists ${TEMPLATE_DATABASE}`);
  await admin.pool.query(`create database ${TEMPLATE_DATABASE}`);
  await admin.close();

  const templateUrl = withDatabase(adminUrl, TEMPLATE_DATABASE);
  const template = createDatabase(templateUrl, { max: 2 });
  await migrate(template.pool);
  await template.close();

  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', TEMPLATE_DATABASE);

  return async () => {
    await stopServer();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  };
}
