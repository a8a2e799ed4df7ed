// The identity mapping: pseudonym → user id, one small mutable object each, beside (in
// production: in another bucket than) the immutable segments. `taskflow audit query` resolves
// actors through it; erasure deletes a user's object, after which their records show only the
// pseudonym and nothing in the store links it to them. The segments, and so the chain, are untouched.
import { type AuditStore, MUTABLE_PREFIX } from './store.js';

export function identityKey(pseudonym: string): string {
  return `${MUTABLE_PREFIX}${pseudonym}.json`;
}

export async function resolveIdentity(store: AuditStore, pseudonym: string): Promise<string | undefined> {
  const bytes = await store.get(identityKey(pseudonym));
  if (!bytes) return undefined;
  return (JSON.parse(Buffer.from(bytes).toString('utf8')) as { userId?: string }).userId;
}

/** Erasure: removes the link from the pseudonym to the user. True if there was one. */
export async function forgetIdentity(store: AuditStore, pseudonym: string): Promise<boolean> {
  const had = (await store.get(identityKey(pseudonym))) !== undefined;
  await store.delete(identityKey(pseudonym));
  return had;
}
