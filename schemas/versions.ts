// Which version of its schema a row image is written against, told by the columns of its table.
// A migration that adds or renames columns changes what rows look like from the next row on,
// and capture labels each event with the oldest schema version that declares all its table's
// columns: v1 before a migration, v2 after it, with no restart and no setting to flip. A table
// mid-migration (expand: old and new column side by side) matches no version and gets the newest.
import { schemaDocuments } from './generated/schemas.js';
import { parseSchemaId } from './schema-id.js';

interface Version {
  version: number;
  columns: ReadonlySet<string>;
}

function versionsByName(documents: Readonly<Record<string, Record<string, unknown>>>): Map<string, Version[]> {
  const byName = new Map<string, Version[]>();
  for (const [id, doc] of Object.entries(documents)) {
    const ref = parseSchemaId(id);
    if (!ref) continue;
    const properties = typeof doc.properties === 'object' && doc.properties !== null ? Object.keys(doc.properties) : [];
    byName.set(ref.name, [...(byName.get(ref.name) ?? []), { version: ref.version, columns: new Set(properties) }]);
  }
  for (const versions of byName.values()) versions.sort((a, b) => a.version - b.version);
  return byName;
}

const VERSIONS = versionsByName(schemaDocuments);

/** The newest version of a schema (1 for a schema without files, which validation refuses anyway). */
export function latestVersion(schema: string): number {
  return VERSIONS.get(schema)?.at(-1)?.version ?? 1;
}

/** The oldest version of `schema` declaring every column; the newest when none does. */
export function versionForColumns(schema: string, columns: Iterable<string>, documents?: Readonly<Record<string, Record<string, unknown>>>): number {
  const versions = (documents ? versionsByName(documents) : VERSIONS).get(schema) ?? [];
  const names = [...columns];
  return versions.find((v) => names.every((c) => v.columns.has(c)))?.version ?? versions.at(-1)?.version ?? 1;
}
