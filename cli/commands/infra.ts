// `taskflow infra synth [--out DIR] [--nag]`: synthesize the CDK app offline (CloudFormation
// templates plus the EKS manifests under DIR/k8s/); `taskflow infra prometheus-rules` and
// `taskflow infra grafana` print the local alert rules and the production dashboard, both built
// from the alarm catalog (infra/alarms.ts). aws-cdk-lib is a devDependency: loaded only here.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';

const usage = `usage:
  taskflow infra synth [--out DIR] [--nag]   CloudFormation templates and EKS manifests (default DIR: infra/aws/cdk.out)
                                              --nag: also CloudFormation validation and cdk-nag AwsSolutions checks
  taskflow infra prometheus-rules            the Prometheus alerting rules (infra/prometheus/alerts.yml)
  taskflow infra grafana                     the Grafana dashboard JSON (infra/prometheus/grafana-dashboard.json)
  taskflow infra consumers-configmap --outputs FILE [--namespace NS]
                                              the stream-consumers ConfigMap (EFO consumer ARNs) from \`cdk deploy --outputs-file FILE\``;

async function synth(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string', default: 'infra/aws/cdk.out' }, nag: { type: 'boolean', default: false } } });
  const { buildApp } = await import('../../infra/aws/app.js');
  const { manifests, workloads } = await import('../../infra/aws/workloads.js');
  const { roleName } = await import('../../infra/aws/stacks/services.js');
  const outdir = resolve(values.out);
  const { app, settings } = buildApp({ outdir, nag: values.nag, validation: values.nag });
  const assembly = app.synth();
  const k8sDir = join(outdir, 'k8s');
  mkdirSync(k8sDir, { recursive: true });
  for (const w of workloads(settings)) {
    const docs = manifests(w, { namespace: settings.namespace, image: `${settings.account}.dkr.ecr.${settings.region}.amazonaws.com/taskflow-pipeline:latest`, roleArn: `arn:aws:iam::${settings.account}:role/${roleName(settings, w)}`, region: settings.region });
    writeFileSync(join(k8sDir, `${w.name}.json`), `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }, null, 2)}\n`);
  }
  const { externalSecretsManifests } = await import('../../infra/aws/secrets.js');
  const operatorRole = `arn:aws:iam::${settings.account}:role/taskflow-${settings.env}-external-secrets`;
  writeFileSync(join(k8sDir, 'external-secrets.json'), `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: externalSecretsManifests({ env: settings.env, namespace: settings.namespace, region: settings.region, roleArn: operatorRole }) }, null, 2)}\n`);
  const { cloudWatchAgentManifests } = await import('../../infra/aws/metrics-shipping.js');
  const { alarms } = await import('../../infra/alarms.js');
  const agentRole = `arn:aws:iam::${settings.account}:role/taskflow-${settings.env}-cloudwatch-agent`;
  writeFileSync(join(k8sDir, 'cloudwatch-agent.json'), `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: cloudWatchAgentManifests({ env: settings.env, namespace: settings.namespace, region: settings.region, roleArn: agentRole, catalog: alarms(settings) }) }, null, 2)}\n`);
  for (const s of assembly.stacks) console.log(`${s.stackName}: ${Object.keys((s.template as { Resources?: object }).Resources ?? {}).length} resources`);
  console.log(`templates in ${outdir}, manifests in ${k8sDir}`);
  return 0;
}

async function consumersConfigMap(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { outputs: { type: 'string' }, namespace: { type: 'string' } } });
  if (!values.outputs) {
    console.error(usage);
    return 2;
  }
  const { fanOutConsumers, streamConsumersConfigMap, workloads } = await import('../../infra/aws/workloads.js');
  const { defaultSettings } = await import('../../infra/aws/settings.js');
  const settings = defaultSettings();
  const outputs = JSON.parse(readFileSync(values.outputs, 'utf8')) as Record<string, Record<string, string>>;
  process.stdout.write(`${JSON.stringify(streamConsumersConfigMap(outputs, values.namespace ?? settings.namespace, fanOutConsumers(workloads(settings))), null, 2)}\n`);
  return 0;
}

export const command: Command = {
  summary: 'the AWS deployment: synth [--out DIR] [--nag] | prometheus-rules | grafana | consumers-configmap --outputs FILE',
  subcommands: ['synth', 'prometheus-rules', 'grafana', 'consumers-configmap'],
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === 'help' || rest.includes('--help')) {
      console.log(usage);
      return 0;
    }
    if (sub === 'synth') return synth(rest);
    if (sub === 'consumers-configmap') return consumersConfigMap(rest);
    if (sub === 'prometheus-rules' || sub === 'grafana') {
      const { alarms, prometheusRules } = await import('../../infra/alarms.js');
      const { grafanaDashboard } = await import('../../infra/dashboard.js');
      const { defaultSettings } = await import('../../infra/aws/settings.js');
      const list = alarms(defaultSettings());
      process.stdout.write(sub === 'grafana' ? `${JSON.stringify(grafanaDashboard(list), null, 2)}\n` : prometheusRules(list));
      return 0;
    }
    console.error(usage);
    return 2;
  },
};
