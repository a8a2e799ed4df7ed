// Least privilege, held to one table: every IAM role the CDK app synthesizes grants exactly the
// rows of docs/THREAT_MODEL.md's "AWS grants" table — no more (a widened grant fails here) and no
// less (a row the code no longer grants fails too), so the threat model and the code cannot drift.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAN_OUT_READERS, PRODUCTION_SERVICES } from '../../cli/commands/dev.js';
import { buildApp, type PipelineApp } from './app.js';
import { roleName } from './stacks/services.js';
import { workloads } from './workloads.js';

type Json = Record<string, unknown>;
interface CfnResource {
  Type: string;
  Properties?: Json;
}

let built: PipelineApp;
/** Per stack name (Taskflow-prod-Services …): its template's resources. */
const resources = new Map<string, Record<string, CfnResource>>();

beforeAll(() => {
  built = buildApp({ validation: false });
  for (const stack of Object.values(built.stacks)) resources.set(stack.stackName, (Template.fromStack(stack).toJSON() as { Resources: Record<string, CfnResource> }).Resources);
});

const LABELS: Record<string, string> = {
  'AWS::DynamoDB::GlobalTable': 'table',
  'AWS::Kinesis::Stream': 'stream',
  'AWS::Kinesis::StreamConsumer': 'stream-consumer',
  'AWS::KMS::Key': 'key',
  'AWS::S3::Bucket': 'bucket',
  'AWS::Logs::LogGroup': 'log-group',
  'AWS::SecretsManager::Secret': 'secret',
  'AWS::KinesisFirehose::DeliveryStream': 'delivery-stream',
};

/** `table:taskflow-dlq`, `stream:taskflow-changes`, `key:DataKey`: a resource by its type and physical (else logical) name. */
function nameOf(stackName: string, logicalId: string): string {
  const r = resources.get(stackName)?.[logicalId];
  if (!r) throw new Error(`no resource ${logicalId} in ${stackName}`);
  const p = r.Properties ?? {};
  const physical = [p.TableName, p.ConsumerName, p.BucketName, p.LogGroupName, p.DeliveryStreamName, p.Name].find((v) => typeof v === 'string');
  return `${LABELS[r.Type] ?? r.Type}:${(physical as string | undefined) ?? logicalId.replace(/[0-9A-F]{8}$/, '')}`;
}

/** A policy's Resource expression as text: ARN pieces joined, references named, the account's own IoT ARN prefix dropped, a log group's ARN (or its name in one) as `log-group:<name>`, a bucket named in an ARN as `bucket:<name>`, a secret named by its name (`…:secret:<name>-??????`) as `secret:<name>`. */
function render(stackName: string, expr: unknown): string {
  if (typeof expr === 'string') return expr;
  const o = expr as Json;
  if (Array.isArray(o['Fn::Join'])) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => render(stackName, p)).join(sep).replace(/^arn:aws:iot:[^:]+:\d+:/, 'iot:').replace(/^arn:aws:s3:::/, 'bucket:').replace(/^arn:aws:logs:[^:]+:\d+:log-group:(log-group:)?/, 'log-group:').replace(/^arn:aws:secretsmanager:[^:]+:\d+:secret:(.+)-\?{6}$/, 'secret:$1');
  }
  if (typeof o.Ref === 'string') {
    const pseudo: Record<string, string> = { 'AWS::Partition': 'aws', 'AWS::Region': built.settings.region, 'AWS::AccountId': built.settings.account, 'AWS::URLSuffix': 'amazonaws.com' };
    return pseudo[o.Ref] ?? nameOf(stackName, o.Ref);
  }
  if (Array.isArray(o['Fn::GetAtt'])) return nameOf(stackName, (o['Fn::GetAtt'] as string[])[0]!);
  if (typeof o['Fn::ImportValue'] === 'string') {
    // `Taskflow-prod-State:ExportsOutputFnGetAttTabledlq5141F856Arn…`: the exporting stack and its resource's logical id.
    const exported = o['Fn::ImportValue'];
    const [producer, output] = [exported.slice(0, exported.indexOf(':')), exported.slice(exported.indexOf(':') + 1)];
    const ids = Object.keys(resources.get(producer) ?? {}).filter((id) => output.startsWith(`ExportsOutputFnGetAtt${id}`) || output.startsWith(`ExportsOutputRef${id}`));
    const id = ids.sort((a, b) => b.length - a.length)[0];
    if (!id) throw new Error(`cannot name the export ${exported}`);
    return nameOf(producer, id);
  }
  throw new Error(`cannot render ${JSON.stringify(expr)}`);
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every role of the app → resource → allowed actions (inline, attached and managed policies). */
function synthesizedGrants(): Map<string, Map<string, Set<string>>> {
  const grants = new Map<string, Map<string, Set<string>>>();
  const add = (role: string, resource: string, actions: string[]) => {
    const byResource = grants.get(role) ?? new Map<string, Set<string>>();
    grants.set(role, byResource);
    const set = byResource.get(resource) ?? new Set<string>();
    byResource.set(resource, set);
    for (const a of actions) set.add(a);
  };
  const statementsInto = (role: string, stackName: string, doc: { Statement: Json[] }) => {
    for (const s of doc.Statement) {
      expect(s.Effect).toBe('Allow');
      expect(s.NotAction ?? s.NotResource).toBeUndefined();
      // A condition narrows the resource: `table:taskflow-leases if dynamodb:LeadingKeys=router`.
      const conditions = Object.values((s.Condition ?? {}) as Record<string, Record<string, string | string[]>>).flatMap((byKey) => Object.entries(byKey).map(([key, values]) => `${key}=${asList(values).join('|')}`));
      const suffix = conditions.length ? ` if ${conditions.sort().join(' and ')}` : '';
      for (const r of asList(s.Resource)) add(role, `${render(stackName, r)}${suffix}`, asList(s.Action as string | string[]));
    }
  };
  for (const [stackName, res] of resources) {
    const short = stackName.replace(/^Taskflow-[^-]+-/, '');
    const roleKey = (logicalId: string): string => {
      const name = res[logicalId]?.Properties?.RoleName;
      return typeof name === 'string' ? name.replace(/^taskflow-[^-]+-/, '') : `${short}/${logicalId.replace(/[0-9A-F]{8}$/, '')}`;
    };
    for (const [id, r] of Object.entries(res)) {
      if (r.Type === 'AWS::IAM::Role') {
        const p = r.Properties ?? {};
        grants.set(roleKey(id), grants.get(roleKey(id)) ?? new Map());
        for (const m of asList(p.ManagedPolicyArns as unknown[])) add(roleKey(id), 'managed-policy', [render(stackName, m).replace(/^arn:aws:iam::aws:policy\//, '')]);
        for (const inline of asList(p.Policies as { PolicyDocument: { Statement: Json[] } }[])) statementsInto(roleKey(id), stackName, inline.PolicyDocument);
      }
      if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
        const p = r.Properties as { Roles?: { Ref: string }[]; PolicyDocument: { Statement: Json[] } };
        for (const role of p.Roles ?? []) statementsInto(roleKey(role.Ref), stackName, p.PolicyDocument);
      }
    }
  }
  return grants;
}

/** The threat model's "AWS grants" table: `| role | resource | actions |`, one row per role and resource. */
function documentedGrants(): Map<string, Map<string, Set<string>>> {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'THREAT_MODEL.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### AWS grants'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| role |')));
  const grants = new Map<string, Map<string, Set<string>>>();
  for (const line of table.split('\n').filter((l) => /^\| `/.test(l))) {
    const [role, resource, actions] = line.split('|').slice(1, -1).map((c) => c.trim());
    const code = (cell: string | undefined) => [...(cell ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const [r] = code(role);
    const [res] = code(resource);
    if (!r || !res) throw new Error(`cannot read the grants row ${line}`);
    const byResource = grants.get(r) ?? new Map<string, Set<string>>();
    grants.set(r, byResource);
    if (byResource.has(res)) throw new Error(`two rows for ${r} on ${res}`);
    byResource.set(res, new Set(code(actions).filter((a) => a !== '—')));
  }
  return grants;
}

const flat = (g: Map<string, Map<string, Set<string>>>): string[] =>
  [...g].flatMap(([role, byResource]) => (byResource.size === 0 ? [`${role} (no grants)`] : [...byResource].map(([res, actions]) => `${role} | ${res} | ${[...actions].sort().join(' ')}`))).sort();

describe("the CDK app's IAM policies", () => {
  it("equal docs/THREAT_MODEL.md's AWS grants table, role by role and resource by resource", () => {
    const documented = documentedGrants();
    expect(documented.size).toBeGreaterThan(3);
    expect(flat(synthesizedGrants())).toEqual(flat(documented));
  });

  it('grant no wildcard action and no resource "*" (other than AWS-managed policies, listed as such)', () => {
    // CDK's KMS grants name these two action prefixes, always on one key ARN; nothing else may end in *.
    const kmsGrantActions = new Set(['kms:ReEncrypt*', 'kms:GenerateDataKey*']);
    for (const [role, byResource] of synthesizedGrants()) {
      for (const [resource, actions] of byResource) {
        if (resource === 'managed-policy') continue;
        expect(`${role} on ${resource}`).not.toMatch(/ on \*$/);
        for (const a of actions) if (!(kmsGrantActions.has(a) && resource.startsWith('key:'))) expect(`${role}: ${a}`).not.toContain('*');
      }
    }
  });

  it('let only audit write the audit trail, nobody delete from it or loosen its lock, and only gdpr read or delete identity mappings', () => {
    const grants = synthesizedGrants();
    // Every (role, action) on a bucket or its objects.
    const on = (bucket: string) => [...grants].flatMap(([role, byResource]) => [...byResource].filter(([resource]) => resource === `bucket:${bucket}` || resource.startsWith(`bucket:${bucket}/`)).flatMap(([, actions]) => [...actions].map((action) => `${role} ${action}`))).sort();
    const trail = on(built.settings.auditBucket);
    expect(trail).toContain('audit s3:PutObjectRetention');
    expect(trail.filter((g) => /^s3:(Put|Delete|Bypass|Restore|Replicate)/.test(g.split(' ')[1]!) && !g.startsWith('audit '))).toEqual([]);
    expect(trail.filter((g) => /^s3:(Delete|Bypass|PutBucket|PutObjectLegalHold|PutLifecycle|PutObjectAcl)/.test(g.split(' ')[1]!))).toEqual([]);
    const identities = on(built.settings.auditIdentityBucket);
    expect(identities.filter((g) => /^s3:(Get|Delete)/.test(g.split(' ')[1]!))).toEqual(['gdpr s3:DeleteObject', 'gdpr s3:GetObject']);
    expect(identities.filter((g) => g.endsWith(' s3:PutObject'))).toEqual(['audit s3:PutObject']);
  });

  it('give every service production runs (what `taskflow dev` starts, minus development-only ones, and the self-hosted broker tier) its own workload and IRSA role with grants', () => {
    // `taskflow dev` runs the broker inside its stack (infra/local/broker.ts), not as a service;
    // production runs it as the `broker` workload unless the browsers' broker is IoT Core.
    expect(built.settings.broker).toBe('self-hosted');
    const services = [...PRODUCTION_SERVICES, 'broker'].sort();
    expect(PRODUCTION_SERVICES.length).toBeGreaterThan(5);
    expect(workloads({ ...built.settings, broker: 'iot-core' }).map((w) => w.name).sort()).toEqual([...PRODUCTION_SERVICES].sort());
    expect(workloads(built.settings).map((w) => w.name).sort()).toEqual(services);
    // Roles appear in the grants by their name without `taskflow-<env>-`: the service's name.
    const grants = synthesizedGrants();
    expect(services.filter((name) => !grants.get(name)?.size)).toEqual([]);
    const roleNames = Object.values(resources.get(built.stacks.services.stackName) ?? {}).filter((r) => r.Type === 'AWS::IAM::Role').map((r) => r.Properties?.RoleName);
    // Besides the services' roles, only the External Secrets Operator's (it reads the deployment
    // secrets) and the CloudWatch agent's (it ships the alarms' metrics).
    expect(roleNames.sort()).toEqual([...services, 'external-secrets', 'cloudwatch-agent'].map((name) => roleName(built.settings, { name })).sort());
  });

  it('have `taskflow dev` read by enhanced fan-out exactly where production does, as the same stream consumers and settings', () => {
    const production = Object.fromEntries(
      workloads(built.settings)
        .filter((w) => w.fromStreamConsumers)
        .map((w) => {
          const [[consumerArnEnv, consumer]] = Object.entries(w.fromStreamConsumers!) as [[string, string]];
          const readerEnv = consumerArnEnv.replace(/_FANOUT_CONSUMER_ARN$/, '_READER');
          expect(w.env[readerEnv]).toBe('fanout');
          return [w.name, { consumer, readerEnv, consumerArnEnv }];
        }),
    );
    expect(Object.keys(production).sort()).toEqual(['analytics-archiver', 'notifications', 'router']);
    expect(FAN_OUT_READERS).toEqual(production);
  });
});
