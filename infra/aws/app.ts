// The CDK app: stacks a reader can map to the architecture. Synthesized offline
// (`taskflow infra synth`); nothing here talks to AWS.
import { App, type Stack, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { acknowledgeFindings } from './nag.js';
import { defaultSettings, type Settings } from './settings.js';
import { AnalyticsStack } from './stacks/analytics.js';
import { ComplianceStack } from './stacks/compliance.js';
import { DatabaseStack } from './stacks/database.js';
import { ObservabilityStack } from './stacks/observability.js';
import { RealtimeStack } from './stacks/realtime.js';
import { ServicesStack } from './stacks/services.js';
import { StateStack } from './stacks/state.js';
import { StreamStack } from './stacks/stream.js';
import { workloads } from './workloads.js';

export interface PipelineApp {
  app: App;
  settings: Settings;
  stacks: {
    compliance: ComplianceStack;
    stream: StreamStack;
    state: StateStack;
    realtime: RealtimeStack;
    analytics: AnalyticsStack;
    database: DatabaseStack;
    services: ServicesStack;
    observability: ObservabilityStack;
  };
}

export interface BuildOptions {
  settings?: Settings;
  outdir?: string;
  /** CloudFormation validation during synth (~20 s); unset: the CDK_VALIDATION environment variable decides. */
  validation?: boolean;
  /** cdk-nag's AwsSolutions rules as a validation plugin (unacknowledged findings fail the synth). */
  nag?: boolean;
}

export function buildApp(opts: BuildOptions = {}): PipelineApp {
  const settings = opts.settings ?? defaultSettings();
  const app = new App({ ...(opts.outdir ? { outdir: opts.outdir } : {}), ...(opts.validation === undefined ? {} : { builtinCloudFormationValidation: opts.validation }) });
  const env = { account: settings.account, region: settings.region };
  const name = (s: string) => `Taskflow-${settings.env}-${s}`;
  const compliance = new ComplianceStack(app, name('Compliance'), settings, { env });
  const stream = new StreamStack(app, name('Stream'), settings, { env });
  const state = new StateStack(app, name('State'), compliance.key, settings, { env });
  const memberships = state.tables.memberships;
  if (!memberships) throw new Error('the memberships table is missing from infra/local/tables.ts');
  const realtime = new RealtimeStack(app, name('Realtime'), settings, { memberships, presence: stream.presence }, { env });
  const analytics = new AnalyticsStack(app, name('Analytics'), settings, { key: compliance.key }, { env });
  const database = new DatabaseStack(app, name('Database'), { env });
  const services = new ServicesStack(app, name('Services'), settings, workloads(settings), { changes: stream.changes, presence: stream.presence, consumers: stream.consumers, tables: state.tables, dataKey: compliance.key, rawDelivery: analytics.raw }, { env });
  const observability = new ObservabilityStack(app, name('Observability'), settings, compliance.key, { env });
  const stacks = { compliance, stream, state, realtime, analytics, database, services, observability };
  for (const stack of Object.values(stacks) as Stack[]) Tags.of(stack).add('project', 'taskflow-pipeline');
  if (opts.nag) {
    acknowledgeFindings(stacks, settings);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  }
  return { app, settings, stacks };
}
