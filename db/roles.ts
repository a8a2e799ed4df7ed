// Database roles of the pipeline's services (docs/THREAT_MODEL.md, "Least privilege"). The
// migrations create them without passwords; whoever runs the database sets each password from
// its secret store (the local stack: `setRolePassword` with the local password).
import pg from 'pg';

/** Capture's role: REPLICATION + SELECT on the captured tables (db/migrations/0004_replication_role.sql). */
export const REPLICATION_ROLE = 'taskflow_replication';

export async function setRolePassword(adminUrl: string, role: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`ALTER ROLE ${client.escapeIdentifier(role)} PASSWORD ${client.escapeLiteral(password)}`);
  } finally {
    await client.end();
  }
}

/** The same database as `url`, logging in as `role`. */
export function urlAs(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(role);
  u.password = encodeURIComponent(password);
  return u.toString();
}
