/** The keyring of this process: SECRETS_KEYS / SECRETS_KEY, or in development one kept in DATA_DIR. */
import type { Config } from '../config.js';
import { readOrCreateDevKey } from './dev-key-file.js';
import { createSecretBox, DEFAULT_KEY_ID, generateKeyText, parseKey, type SecretBox } from './secret-box.js';

export async function loadSecretBox(config: Pick<Config, 'secretsKeys' | 'dataDir'>): Promise<SecretBox> {
  if (config.secretsKeys.length > 0) return createSecretBox(config.secretsKeys);
  const { file, text } = await readOrCreateDevKey(config.dataDir, 'secrets-key', generateKeyText);
  const key = parseKey(text);
  if (!key) throw new Error(`${file} does not hold a SECRETS_KEY (32 bytes in base64)`);
  return createSecretBox([{ id: DEFAULT_KEY_ID, key }]);
}
