// The erasure policy as data: gdpr/POLICY.md's two tables, mirrored here so the processor, the
// proof and a test (policy.test.ts) read one list. Pure data.

export const POLICY_VERSION = '2026-12-03.10';

/** Erasure must be complete everywhere this long after the request is recorded. */
export const ERASURE_DEADLINE_MS = 72 * 3600 * 1000;

export const PERSONAL_FIELDS = ['users.id', 'users.email', 'users.display_name', 'tasks.description', 'comments.body', 'mentions', 'audit actor'] as const;

/** How erasure reaches a sink: by a purge step and scan of the processor, by destroying the subject's keys, by holding nothing of a person to erase, or not yet. */
export type ReachedBy = 'processor' | 'keys' | 'none held' | 'not yet';

export interface SinkPolicy {
  sink: string;
  method: string;
  reachedBy: ReachedBy;
}

export const SINKS: readonly SinkPolicy[] = [
  { sink: 'source-db', method: 'delete (users row, comments, memberships) + anonymise (ids on tasks/projects, descriptions they wrote, their email in any text)', reachedBy: 'processor' },
  { sink: 'subject-keys', method: 'crypto-shred', reachedBy: 'keys' },
  { sink: 'kinesis', method: 'crypto-shred (encrypted fields) + expiry', reachedBy: 'keys' },
  { sink: 'router-changelog', method: 'delete (the event\'s row images and actor; its seq stays for replay)', reachedBy: 'processor' },
  { sink: 'router-memberships', method: 'delete (their memberships and the tombstones of removed ones, by key; nothing of an erased subject is stored again)', reachedBy: 'processor' },
  { sink: 'search-index', method: 'delete (comments) + anonymise (descriptions)', reachedBy: 'processor' },
  { sink: 'notifications-inbox', method: 'delete (notifications, watches, projected memberships)', reachedBy: 'processor' },
  { sink: 'audit-trail', method: 'pseudonym cut', reachedBy: 'processor' },
  { sink: 'firehose-errors', method: 'crypto-shred + expiry', reachedBy: 'keys' },
  { sink: 'raw-archive', method: 'crypto-shred + expiry', reachedBy: 'keys' },
  { sink: 'warehouse-raw', method: 'anonymise (every value of the event\'s row images and source holding an identifier, or encrypted under their key, blanked; the row kept)', reachedBy: 'processor' },
  { sink: 'warehouse-curated', method: 'anonymise (ids) + delete (comment bodies, descriptions, any value naming them; history follows raw)', reachedBy: 'processor' },
  { sink: 'dead-letters', method: 'delete', reachedBy: 'processor' },
  { sink: 'logs', method: 'none held (user ids pseudonymised, emails, names and content redacted in every line, lib/logger.ts; lines written before policy 2026-12-03.9 expire)', reachedBy: 'none held' },
];

/** The sinks the processor must purge and verify itself, in the order it does them. */
export const PROCESSOR_SINKS: readonly string[] = SINKS.filter((s) => s.reachedBy === 'processor').map((s) => s.sink);
