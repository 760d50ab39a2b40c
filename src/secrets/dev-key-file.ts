/**
 * A key the service keeps for itself in development (no JWT_SECRET or SECRETS_KEY given): read
 * from DATA_DIR, or on first use generated and written there (mode 0600).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** The file's path and its text, trimmed. */
export async function readOrCreateDevKey(
  dataDir: string,
  name: string,
  generate: () => string,
): Promise<{ file: string; text: string }> {
  const file = path.join(dataDir, name);
  try {
    return { file, text: (await fs.readFile(file, 'utf8')).trim() };
  } catch {
    await fs.mkdir(dataDir, { recursive: true });
    // 'wx': if another process wrote it first, keep theirs.
    await fs.writeFile(file, generate() + '\n', { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return { file, text: (await fs.readFile(file, 'utf8')).trim() };
  }
}
