// The local stand-in of IoT Core's policy engine: whether the policy documents a custom
// authorizer returned allow an action on a resource. IoT evaluates Allow and Deny statements
// with IAM's resource wildcards (`*` any characters, `?` exactly one; `+` and `#` are literal);
// nothing allowed is denied. Our authorizer writes Allow statements only, but a Deny wins here
// too so a document that adds one is judged as IoT would.
interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
}

const list = (x: string | string[]): string[] => (Array.isArray(x) ? x : [x]);

function wildcard(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.split('?').map((p) => p.replace(/[.?+^$()[\]{}|\\/*]/g, '\\$&')).join('.'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

function matches(statement: Statement, action: string, resource: string): boolean {
  return list(statement.Action).some((a) => wildcard(a).test(action)) && list(statement.Resource).some((r) => wildcard(r).test(resource));
}

/** Whether `documents` (JSON policy documents) allow `action` (e.g. `iot:Publish`) on the resource ARN. */
export function policyAllows(documents: readonly string[], action: string, resource: string): boolean {
  const statements = documents.flatMap((d) => (JSON.parse(d) as { Statement: Statement[] }).Statement);
  if (statements.some((s) => s.Effect === 'Deny' && matches(s, action, resource))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s, action, resource));
}

/** The ARN IoT checks for an action: `client/<id>`, `topic/<topic>` or `topicfilter/<filter>`. */
export function iotArn(account: { region: string; accountId: string }, kind: 'client' | 'topic' | 'topicfilter', name: string): string {
  return `arn:aws:iot:${account.region}:${account.accountId}:${kind}/${name}`;
}
