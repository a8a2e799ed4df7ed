import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
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
    expect(out).toMatch(/7 schema files, 0 version steps checked: all compatible/);
  });

  it('passes a compatible new version (an optional field)', async () => {
    addVersion('project', (s) => (s.properties.color = { type: ['string', 'null'] }));
    const { code, out } = await run(['check', '--dir', dir]);
    expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('project v1 → v2: ok') });
  });

  it('fails on a v2 that removes a required field, naming schema and field (through the real CLI)', () => {
    addVersion('task', (s) => {
      s.required = s.required.filter((r) => r !== 'project_id');
      delete s.properties.project_id;
    });
    const r = spawnSync(process.execPath, [join(root, 'bin', 'taskflow.js'), 'schemas', 'check', '--dir', dir], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('task v1 → v2: BREAKING');
    expect(r.stdout).toMatch(/\[required\] project_id: no longer required/);
    expect(r.stdout).toMatch(/1 breaking, 0 errors/);
  }, 30_000);

  it('lets --require backward accept a change only old readers would mind', async () => {
    const { code } = await run(['check', '--dir', dir, '--require', 'backward']);
    expect(code).toBe(0);
  });

  it('checks an ad-hoc pair of files', async () => {
    const ok = await run(['check', '--old', join(schemasDir, 'task', 'v1.json'), '--new', join(schemasDir, 'task', 'v1.json')]);
    expect(ok.code).toBe(0);
    const broken = await run(['check', '--old', join(schemasDir, 'task', 'v1.json'), '--new', join(dir, 'task', 'v2.json')]);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/forward \(old readers, new events\):\n\s+\[required\] project_id/);
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

describe('taskflow schemas gen-types', () => {
  it('writes the generated modules for a schema folder and drops stale ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskflow-gen-'));
    try {
      cpSync(schemasDir, dir, { recursive: true, filter: (src) => src === schemasDir || !src.endsWith('.ts') });
      mkdirSync(join(dir, 'generated'), { recursive: true });
      writeFileSync(join(dir, 'generated', 'gone.v1.ts'), '// a schema that no longer exists\n');
      const { code, out } = await run(['gen-types', '--dir', dir]);
      expect(code).toBe(0);
      expect(out).toMatch(/wrote 8 files/);
      expect(existsSync(join(dir, 'generated', 'gone.v1.ts'))).toBe(false);
      const committed = readdirSync(join(schemasDir, 'generated')).sort();
      expect(readdirSync(join(dir, 'generated')).sort()).toEqual(committed);
      for (const f of committed) expect(readFileSync(join(dir, 'generated', f), 'utf8')).toBe(readFileSync(join(schemasDir, 'generated', f), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
