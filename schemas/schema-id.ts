// Schema identity: every schema file is schemas/<name>/v<version>.json with
// `$id` = taskflow://schemas/<name>/v<version>, and events name it in `dataschema`.

export interface SchemaRef {
  name: string;
  version: number;
}

const SCHEMA_ID = /^taskflow:\/\/schemas\/([a-z][a-z0-9-]*)\/v(\d+)$/;

export function schemaId(ref: SchemaRef): string {
  return `taskflow://schemas/${ref.name}/v${ref.version}`;
}

/** The name and version in a schema id, or undefined when it is not a TaskFlow schema id. */
export function parseSchemaId(id: string): SchemaRef | undefined {
  const m = SCHEMA_ID.exec(id);
  return m ? { name: m[1]!, version: Number(m[2]) } : undefined;
}
