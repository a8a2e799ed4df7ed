import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSchemaDir } from './catalog.js';
import { generateFiles } from './codegen.js';

const schemasDir = dirname(fileURLToPath(import.meta.url));
const generatedDir = join(schemasDir, 'generated');

describe('generated types', () => {
  it('are up to date with the schemas (run `npm run gen:types` after changing a schema)', async () => {
    const expected = await generateFiles(loadSchemaDir(schemasDir));
    const committed = readdirSync(generatedDir).filter((f) => f.endsWith('.ts')).sort();
    expect(committed).toEqual([...expected.keys()].sort());
    for (const [name, content] of expected) {
      expect({ name, content: readFileSync(join(generatedDir, name), 'utf8') }).toEqual({ name, content });
    }
  }, 30_000);
});

describe('schema files', () => {
  const files = loadSchemaDir(schemasDir);
  const byId = (id: string) => files.find((f) => f.schema.$id === id)!.schema as { $defs: Record<string, unknown> };

  it('exist for every contract, every version', () => {
    expect(files.map((f) => `${f.name}/v${f.version}`)).toEqual([
      'comment/v1', 'comment/v2', 'envelope/v1', 'gdpr-erasure/v1', 'membership/v1', 'project/v1', 'task/v1', 'task/v2', 'truncate/v1',
    ]);
  });

  // Each schema is self-contained (its $refs stay inside it), so shared definitions are copies:
  // they must not drift apart.
  it('keep their copies of shared definitions identical', () => {
    expect(byId('taskflow://schemas/comment/v1').$defs.encrypted).toEqual(byId('taskflow://schemas/task/v1').$defs.encrypted);
    expect(byId('taskflow://schemas/truncate/v1').$defs.changeSource).toEqual(byId('taskflow://schemas/envelope/v1').$defs.changeSource);
    expect(byId('taskflow://schemas/truncate/v1').$defs.actor).toEqual(byId('taskflow://schemas/envelope/v1').$defs.actor);
  });
});
