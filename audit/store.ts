// The audit trail's storage port and its local adapter. Segments are written once and never
// changed: `create` succeeds only for a key that does not exist yet, which is what keeps two
// writers of one shard (a paused worker whose lease was taken) from forking the chain — the
// second one finds the key taken, reloads the head and goes on after it. In production the
// adapter is S3 (s3-store.ts) with a conditional PUT (`If-None-Match: *`) into a bucket with
// Object Lock in compliance mode, so not even the account root can delete or overwrite a segment
// before its retention ends; the identity mapping (pseudonym → user id) lives under another
// prefix (in production another bucket, without Object Lock) because erasure must be able to
// delete it. AUDIT_STORE chooses the adapter (open-store.ts).
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TaskflowError } from '../lib/errors.js';

export interface AuditStore {
  /** Writes `key` if it does not exist; false (and nothing written) when it does. */
  create(key: string, body: Uint8Array): Promise<boolean>;
  get(key: string): Promise<Uint8Array | undefined>;
  /** Keys under `prefix` that sort after `startAfter`, in key order. */
  list(prefix: string, startAfter?: string): Promise<string[]>;
  /** Mutable objects only (the identity mapping): overwrites. */
  put(key: string, body: Uint8Array): Promise<void>;
  /** Mutable objects only (erasure of an identity mapping). */
  delete(key: string): Promise<void>;
}

/** The identity mapping: the only objects overwritten and deleted (in production a bucket without Object Lock). */
export const MUTABLE_PREFIX = 'identities/';

export function isMutableKey(key: string): boolean {
  return key.startsWith(MUTABLE_PREFIX);
}

export function checkKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '' || part === '.' || part === '..' || part.startsWith('.'))) {
    throw new TaskflowError('AUDIT_KEY_INVALID', `object key "${key}" is not a relative path of non-empty segments`);
  }
}

/** A temp file older than this was left by a crash between write and rename (a write takes milliseconds). */
const STALE_TEMP_MS = 10 * 60 * 1000;
const TEMP_NAME = /^\.\d+-[a-z0-9]*\.tmp$/;

/** Objects as files under `root`. A created object appears whole or not at all, and survives a crash once `create` resolved. */
export class FileAuditStore implements AuditStore {
  constructor(
    readonly root: string,
    now: number = Date.now(),
  ) {
    mkdirSync(root, { recursive: true });
    this.sweepStaleTemps(root, now);
  }

  /** Removes temp files a crash left behind (another live writer's are younger than STALE_TEMP_MS). */
  private sweepStaleTemps(dir: string, now: number): void {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) this.sweepStaleTemps(path, now);
      else if (TEMP_NAME.test(e.name) && now - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? now) > STALE_TEMP_MS) rmSync(path, { force: true });
    }
  }

  private writeTemp(path: string, body: Uint8Array): string {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return tmp;
  }

  create(key: string, body: Uint8Array): Promise<boolean> {
    checkKey(key);
    const path = join(this.root, key);
    const tmp = this.writeTemp(path, body);
    try {
      // link() fails if the name exists: an atomic create-if-absent, unlike rename().
      linkSync(tmp, path);
      const dir = openSync(dirname(path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
      return Promise.resolve(true);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return Promise.resolve(false);
      throw err;
    } finally {
      unlinkSync(tmp);
    }
  }

  get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    try {
      return Promise.resolve(readFileSync(join(this.root, key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(undefined);
      throw err;
    }
  }

  list(prefix: string, startAfter = ''): Promise<string[]> {
    // Keys here are <dir>/<dir>/<name>: walk only the directories that can hold matches.
    const found: string[] = [];
    const walk = (dir: string, keyPrefix: string): void => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const key = `${keyPrefix}${e.name}`;
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) walk(join(dir, e.name), `${key}/`);
        } else if (key.startsWith(prefix) && key > startAfter) found.push(key);
      }
    };
    walk(this.root, '');
    return Promise.resolve(found.sort());
  }

  put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    const path = join(this.root, key);
    renameSync(this.writeTemp(path, body), path);
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    checkKey(key);
    rmSync(join(this.root, key), { force: true });
    return Promise.resolve();
  }
}

/** In memory, for unit and property tests. */
export class MemoryAuditStore implements AuditStore {
  readonly objects = new Map<string, Uint8Array>();

  create(key: string, body: Uint8Array): Promise<boolean> {
    checkKey(key);
    if (this.objects.has(key)) return Promise.resolve(false);
    this.objects.set(key, Uint8Array.from(body));
    return Promise.resolve(true);
  }
  get(key: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.objects.get(key));
  }
  list(prefix: string, startAfter = ''): Promise<string[]> {
    return Promise.resolve([...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > startAfter).sort());
  }
  put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    this.objects.set(key, Uint8Array.from(body));
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }
}
