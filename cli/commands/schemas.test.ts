import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { command } from './schemas.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const schemasDir = join(root, 'schemas');

type RowSchema = { [keyword: string]: unknown; required: string[]; properties: Record<string, unknown> };

async function run(argv: string[]): Promise<{ code: number | void; out: string }> {
  const lines: string[] = [];
  const capture = (...args: unknown[]) => void lines.push(args.join(' '));
  const log = jest.spyOn(console, 'log').mockImplementation(capture);
  const error = jest.spyOn(console, 'error').mockImplementation(capture);
  try {
    return { code: await command.run(argv), out: lines.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('taskflow schemas check', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'taskflow-schemas-'));
    cpSync(schemasDir, dir, { recursive: true, filter: (src) => src === schemasDir || !src.endsWith('.ts') });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function addVersion(name: string, change: (schema: RowSchema) => void): void {
    const schema = JSON.parse(readFileSync(join(dir, name, 'v1.json'), 'utf8')) as RowSchema;
    schema.$id = `taskflow://schemas/${name}/v2`;
    schema['x-version'] = 2;
    change(schema);
    writeFileSync(join(dir, name, 'v2.json'), JSON.stringify(schema, null, 2));
  }

  it('passes on the committed schemas', async () => {
    const { code, out } = await run(['check']);
    expect(code).toBe(0);
    expect(out).toMatch(/9 schema files \(9 published\), 2 version steps checked: all compatible/);
    // task v2 renames due_date (a date) to due_at (a timestamp): allowed because its upcaster is registered.
    expect(out).toMatch(/task v1 → v2: ok\n {2}backward \(new readers, old events\) \(carried by the upcaster from task v1\):\n {4}\[removed\] due_date/);
  });

  it('passes a compatible new version (an optional field)', async () => {
    addVersion('project', (s) => (s.properties.color = { type: ['string', 'null'] }));
    const { code, out } = await run(['check', '--dir', dir]);
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('project v1 → v2: ok') });
  });

  it('fails on a v2 that no longer requires a field, naming schema and field (through the real CLI)', () => {
    addVersion('membership', (s) => {
      s.required = s.required.filter((r) => r !== 'user_id');
    });
    const r = spawnSync(process.execPath, [join(root, 'bin', 'taskflow.js'), 'schemas', 'check', '--dir', dir], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('membership v1 → v2: BREAKING');
    expect(r.stdout).toMatch(/\[required\] user_id: no longer required/);
    expect(r.stdout).toMatch(/1 breaking, 0 errors/);
  }, 30_000);

  it('lets --require backward accept a change only old readers would mind', async () => {
    const { code } = await run(['check', '--dir', dir, '--require', 'backward']);
    expect(code).toBe(0);
  });

  it('checks an ad-hoc pair of files', async () => {
    const ok = await run(['check', '--old', join(schemasDir, 'task', 'v1.json'), '--new', join(schemasDir, 'task', 'v1.json')]);
    expect(ok.code).toBe(0);
    const broken = await run(['check', '--old', join(schemasDir, 'membership', 'v1.json'), '--new', join(dir, 'membership', 'v2.json')]);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/forward \(old readers, new events\):\n\s+\[required\] user_id/);
    // A pair of files has no upcaster: the rename of task v2 is refused.
    const renamed = await run(['check', '--old', join(schemasDir, 'task', 'v1.json'), '--new', join(schemasDir, 'task', 'v2.json')]);
    expect(renamed.code).toBe(1);
    expect(renamed.out).toMatch(/\[removed\] due_date/);
  });

  it('catches a rename (or a retype by renaming) until its upcaster is registered', async () => {
    const renamed = mkdtempSync(join(tmpdir(), 'taskflow-schemas-rename-'));
    try {
      cpSync(schemasDir, renamed, { recursive: true, filter: (src) => src === schemasDir || !src.endsWith('.ts') });
      const schema = JSON.parse(readFileSync(join(renamed, 'project', 'v1.json'), 'utf8')) as RowSchema;
      schema.$id = 'taskflow://schemas/project/v2';
      schema['x-version'] = 2;
      const { archived, ...rest } = schema.properties;
      schema.properties = { ...rest, archived_at: { type: ['string', 'null'], format: 'date-time' } };
      writeFileSync(join(renamed, 'project', 'v2.json'), JSON.stringify(schema, null, 2));
      void archived;
      const { code, out } = await run(['check', '--dir', renamed]);
      expect(code).toBe(1);
      expect(out).toMatch(/project v1 → v2: BREAKING\n {2}backward \(new readers, old events\):\n {4}\[removed\] archived: .*register an upcaster from project v1/);
      expect(out).toMatch(/1 breaking, 0 errors/);
    } finally {
      rmSync(renamed, { recursive: true, force: true });
    }
  });

  it('refuses a file that is not a JSON Schema', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ type: 'object', properties: { a: { type: 'strnig' } } }));
    const r = await run(['check', '--old', join(schemasDir, 'task', 'v1.json'), '--new', bad]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/bad\.json: not a valid JSON Schema: schema\/properties\/a\/type must be equal to one of the allowed values/);
  });

  it('refuses bad usage', async () => {
    expect((await run(['check', '--old', 'a.json'])).code).toBe(2);
    expect((await run(['check', '--require', 'sideways'])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
  });
});

describe('published schemas are immutable', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'taskflow-published-'));
    cpSync(schemasDir, dir, { recursive: true, filter: (src) => src === schemasDir || !src.endsWith('.ts') });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const edit = (file: string, change: (schema: RowSchema) => void, format = (s: unknown) => JSON.stringify(s, null, 2)) => {
    const path = join(dir, file);
    const schema = JSON.parse(readFileSync(path, 'utf8')) as RowSchema;
    change(schema);
    writeFileSync(path, format(schema));
  };

  it('every committed schema version is published', () => {
    const lock = JSON.parse(readFileSync(join(schemasDir, 'published.lock.json'), 'utf8')) as { published: Record<string, unknown> };
    const files = readdirSync(schemasDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'generated')
      .flatMap((d) => readdirSync(join(schemasDir, d.name)).filter((f) => /^v\d+\.json$/.test(f)).map((f) => `${d.name}/${f}`));
    expect(Object.keys(lock.published).sort()).toEqual(files.sort());
  });

  it("fails when a published file is edited in place (a field's enum), naming the file and the field", () => {
    edit('membership/v1.json', (s) => ((s.properties.role as { enum: unknown }).enum = ['owner']));
    const r = spawnSync(process.execPath, [join(root, 'bin', 'taskflow.js'), 'schemas', 'check', '--dir', dir], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`error: ${join(dir, 'membership', 'v1.json')}: published version changed at /properties/role/enum; a published schema is immutable: revert it and put the change in a new version (membership/v2.json)`);
    expect(r.stdout).toMatch(/0 breaking, 1 errors/);
  }, 30_000);

  it('also fails on a compatible edit, an added field or a removed one, and on a deleted published file', async () => {
    edit('project/v1.json', (s) => {
      s.properties.color = { type: ['string', 'null'] };
      delete s.properties.name;
    });
    rmSync(join(dir, 'truncate', 'v1.json'));
    const { code, out } = await run(['check', '--dir', dir]);
    expect(code).toBe(1);
    expect(out).toMatch(/project\/v1\.json: published version changed at \/properties\/color \(added\), \/properties\/name \(removed\);/);
    expect(out).toContain('truncate/v1.json: published, but the file is gone');
  });

  it('ignores formatting and key order', async () => {
    edit('comment/v1.json', () => {}, (s) => JSON.stringify(Object.fromEntries(Object.entries(s as object).reverse())));
    expect((await run(['check', '--dir', dir])).code).toBe(0);
  });

  it('publish records a new version once; from then on it is immutable too', async () => {
    edit('project/v1.json', (s) => {
      s.$id = 'taskflow://schemas/project/v2';
      s['x-version'] = 2;
      s.properties.color = { type: ['string', 'null'] };
    });
    // (that made v1 into v2: put v1 back from the committed copy)
    cpSync(join(dir, 'project', 'v1.json'), join(dir, 'project', 'v2.json'));
    cpSync(join(schemasDir, 'project', 'v1.json'), join(dir, 'project', 'v1.json'));
    const before = await run(['check', '--dir', dir]);
    expect(before).toEqual({ code: 0, out: expect.stringContaining('not published yet: project/v2.json') });
    const published = await run(['publish', '--dir', dir]);
    expect(published).toEqual({ code: 0, out: expect.stringContaining('published project/v2.json in') });
    expect((await run(['publish', '--dir', dir])).out).toContain('every schema version is already published');
    edit('project/v2.json', (s) => ((s.properties.color as { type: unknown }).type = 'string'));
    const after = await run(['check', '--dir', dir]);
    expect(after.code).toBe(1);
    expect(after.out).toMatch(/project\/v2\.json: published version changed at \/properties\/color\/type; .* \(project\/v3\.json\)/);
  });

  it('publish refuses while check fails, so a broken version never becomes immutable', async () => {
    addBreakingVersion(dir);
    const r = await run(['publish', '--dir', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('nothing published: fix the errors above first');
    expect(readFileSync(join(dir, 'published.lock.json'), 'utf8')).toBe(readFileSync(join(schemasDir, 'published.lock.json'), 'utf8'));
  });
});

function addBreakingVersion(dir: string): void {
  const schema = JSON.parse(readFileSync(join(dir, 'membership', 'v1.json'), 'utf8')) as RowSchema;
  schema.$id = 'taskflow://schemas/membership/v2';
  schema['x-version'] = 2;
  schema.required = schema.required.filter((r) => r !== 'user_id');
  writeFileSync(join(dir, 'membership', 'v2.json'), JSON.stringify(schema, null, 2));
}

describe('taskflow schemas gen-types', () => {
  it('writes the generated modules for a schema folder and drops stale ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskflow-gen-'));
    try {
      cpSync(schemasDir, dir, { recursive: true, filter: (src) => src === schemasDir || !src.endsWith('.ts') });
      mkdirSync(join(dir, 'generated'), { recursive: true });
      writeFileSync(join(dir, 'generated', 'gone.v1.ts'), '// a schema that no longer exists\n');
      const { code, out } = await run(['gen-types', '--dir', dir]);
      expect(code).toBe(0);
      expect(out).toMatch(/wrote 11 files/);
      expect(existsSync(join(dir, 'generated', 'gone.v1.ts'))).toBe(false);
      const committed = readdirSync(join(schemasDir, 'generated')).sort();
      expect(readdirSync(join(dir, 'generated')).sort()).toEqual(committed);
      for (const f of committed) expect(readFileSync(join(dir, 'generated', f), 'utf8')).toBe(readFileSync(join(schemasDir, 'generated', f), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
