/** The keyring of this process: SECRETS_KEYS / SECRETS_KEY, or in development one kept in DATA_DIR. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { createSecretBox, DEFAULT_KEY_ID, generateKeyText, parseKey, type SecretBox } from './secret-box.js';

export async function loadSecretBox(config: Pick<Config, 'secretsKeys' | 'dataDir'>): Promise<SecretBox> {
  if (config.secretsKeys.length > 0) return createSecretBox(config.secretsKeys);
  const file = path.join(config.dataDir, 'secrets-key');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    await fs.mkdir(config.dataDir, { recursive: true });
    // 'wx': if another process wrote it first, keep theirs.
    await fs.writeFile(file, generateKeyText() + '\n', { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    text = await fs.readFile(file, 'utf8');
  }
  const key = parseKey(text);
  if (!key) throw new Error(`${file} does not hold a SECRETS_KEY (32 bytes in base64)`);
  return createSecretBox([{ id: DEFAULT_KEY_ID, key }]);
}
