// The object store port: where the raw archive lives (S3 in production). Two adapters: S3 through
// @aws-sdk/client-s3 (any S3 API, locally s3rver with path-style addressing) and a folder on disk
// (the local stack's default: a PUT to s3rver costs ~16 ms, too slow for load tests). Keys are
// '/'-separated; listing returns keys in lexicographic (UTF-8 byte) order, as S3 does.
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type Dirent, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { optionalSetting } from './config.js';
import { TaskflowError } from './errors.js';

/** The local stack's stand-in for S3: a folder holding a folder per bucket. */
export const S3_DIR_SETTING = optionalSetting({ name: 'S3_DIR', default: 'unset: S3', meaning: "A local folder with a folder per bucket, in place of S3 (the local stack's)." });

export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ObjectStore {
  put(key: string, body: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array>;
  /** Every object whose key starts with `prefix` and sorts after `startAfter`, in key order. */
  list(prefix: string, startAfter?: string): Promise<StoredObject[]>;
  delete(key: string): Promise<void>;
}

function checkKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new TaskflowError('OBJECT_KEY_INVALID', `object key "${key}" is not a relative path of non-empty segments`);
  }
}

/** Objects as files under `root` (key = relative path). Writes are atomic: a reader never sees half an object. */
export class FsObjectStore implements ObjectStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    const path = join(this.root, key);
    mkdirSync(dirname(path), { recursive: true });
    // Temp names start with '.', which list() skips.
    const tmp = join(dirname(path), `.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
    writeFileSync(tmp, body);
    renameSync(tmp, path);
    return Promise.resolve();
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    try {
      return await readFile(join(this.root, key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new TaskflowError('OBJECT_NOT_FOUND', `no object ${key}`, { cause: err });
      throw err;
    }
  }

  list(prefix: string, startAfter = ''): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    // Only the directories that can hold matching keys are walked, and only files after
    // startAfter are stat'ed: a listing from a recent key (the loader's) costs the recent folders.
    const walk = (dir: string): void => {
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const path = join(dir, entry.name);
        const key = relative(this.root, path).split(sep).join('/');
        if (entry.isDirectory()) {
          // Every key below starts with `inside`: one can sort after startAfter only if `inside` does or is its prefix.
          const inside = `${key}/`;
          const after = inside > startAfter || startAfter.startsWith(inside);
          if (after && (key.startsWith(prefix) || prefix.startsWith(inside))) walk(path);
        } else if (key.startsWith(prefix) && key > startAfter) {
          const st = statSync(path, { throwIfNoEntry: false });
          if (st?.isFile()) found.push({ key, size: st.size, lastModified: st.mtime }); // else deleted meanwhile
        }
      }
    };
    walk(this.root);
    return Promise.resolve(found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
  }

  delete(key: string): Promise<void> {
    checkKey(key);
    rmSync(join(this.root, key), { force: true });
    return Promise.resolve();
  }
}

/** Objects in one S3 bucket. */
export class S3ObjectStore implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  async put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body }));
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) throw new TaskflowError('OBJECT_NOT_FOUND', `object ${key} has no body`);
      return await out.Body.transformToByteArray();
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new TaskflowError('OBJECT_NOT_FOUND', `no object ${key}`, { cause: err });
      throw err;
    }
  }

  async list(prefix: string, startAfter?: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}) }),
      );
      for (const o of out.Contents ?? []) {
        if (o.Key !== undefined) found.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}
