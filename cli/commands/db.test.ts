import { describe, expect, it } from '@jest/globals';
import { parseDuration, resolveDatabaseUrl } from './db.js';

describe('taskflow db options', () => {
  it('parses durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
  });

  it('takes the database URL from the flag, then DATABASE_URL, then the stack file', () => {
    const stack = () => ({ postgres: { url: 'postgres://stack/db' } });
    const none = () => {
      throw new Error('ENOENT');
    };
    expect(resolveDatabaseUrl('postgres://flag/db', { DATABASE_URL: 'postgres://env/db' }, stack)).toBe('postgres://flag/db');
    expect(resolveDatabaseUrl(undefined, { DATABASE_URL: 'postgres://env/db' }, stack)).toBe('postgres://env/db');
    expect(resolveDatabaseUrl(undefined, {}, stack)).toBe('postgres://stack/db');
    expect(() => resolveDatabaseUrl(undefined, {}, none)).toThrow(/--database-url/);
  });
});
