// The control plane's admin credential: a random bearer token created at first start. The store
// keeps only its SHA-256; the token itself is written once to `<data-dir>/admin-token` (0600)
// for the operator and the CLI (`--admin-token`, `WEFT_ADMIN_TOKEN`). A token file that is gone
// or no longer matches the stored hash is replaced by a new token at the next start: whoever can
// write the data dir already holds the store, so that grants nothing new.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export const ADMIN_TOKEN_KEY = '/weft/admin/token';
export const ADMIN_TOKEN_FILE = 'admin-token';
export const ADMIN_TOKEN_PREFIX = 'weft-admin-';

interface StoredAdminToken {
  sha256: string;
  createdAt: string;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class AdminToken {
  private constructor(private readonly hash: Buffer) {}

  /**
   * The admin token's hash from the store, creating the token first when there is none or when
   * `<dataDir>/admin-token` does not hold it. Returns the token only when it was just created
   * and there is no data dir to write it to (an in-memory store): the caller must hand it out.
   */
  static async ensure(
    store: Store,
    dataDir: string | undefined,
    log: Logger,
  ): Promise<{ admin: AdminToken; path: string | undefined; created: string | undefined }> {
    const kv = await store.get(ADMIN_TOKEN_KEY);
    const stored = kv ? Buffer.from((JSON.parse(kv.value) as StoredAdminToken).sha256, 'hex') : undefined;
    const path = dataDir === undefined ? undefined : join(dataDir, ADMIN_TOKEN_FILE);
    if (stored && path && existsSync(path)) {
      const onDisk = readFileSync(path, 'utf8').trim();
      if (timingSafeEqual(digest(onDisk), stored))
        return { admin: new AdminToken(stored), path, created: undefined };
      log.warn({ path }, 'the admin token file does not match the stored token; creating a new admin token');
    } else if (stored && !path) {
      return { admin: new AdminToken(stored), path, created: undefined };
    }
    const token = ADMIN_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const hash = digest(token);
    if (path) {
      // Written (0600) before the hash is stored: a crash in between leaves the old token valid.
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, token + '\n', { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, path);
    }
    const record: StoredAdminToken = { sha256: hash.toString('hex'), createdAt: new Date().toISOString() };
    await store.txn([{ type: 'put', key: ADMIN_TOKEN_KEY, value: JSON.stringify(record) }]);
    return { admin: new AdminToken(hash), path, created: path ? undefined : token };
  }

  /** True when `token` is the admin token (constant time in the token's content). */
  verify(token: string): boolean {
    return timingSafeEqual(digest(token), this.hash);
  }
}
