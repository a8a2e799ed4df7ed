// `taskflow cost [--scale seed|FILE] [--json]`: the monthly AWS bill at a scale, by service, with
// IoT Core beside a self-hosted broker and what each cost lever does (infra/aws/cost/).
import { parseArgs } from 'node:util';
import { compare, type Comparison } from '../../infra/aws/cost/model.js';
import { loadPrices, loadScale } from '../../infra/aws/cost/load.js';
import type { Command } from '../command.js';

const usage = `usage: taskflow cost [--scale seed|FILE] [--json]
  --scale   seed (the design's production scale, infra/aws/cost/seed-scale.json) or a scale file of the same shape
  --json    the whole comparison as JSON`;

const usd = (x: number) => `$${Math.round(x).toLocaleString('en-US')}`;

export function formatComparison(c: Comparison, pricesAsOf: string): string {
  const lines: string[] = [];
  const bill = c.default;
  lines.push(`Monthly bill, us-east-1 list prices as of ${pricesAsOf} (recheck before quoting)`, '');
  for (const [name, item] of Object.entries(bill.services)) {
    const detail = Object.entries(item.detail).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`  ${name.padEnd(17)} ${usd(item.usd).padStart(10)}   ${detail}`);
  }
  lines.push(`  ${'total'.padEnd(17)} ${usd(bill.monthly_usd_total).padStart(10)}   (target $30,000, cap $40,000)`, '');
  lines.push(`Broker: IoT Core ${usd(c.iot_vs_selfhosted_usd.iot_core)} vs self-hosted MQTT on EKS ${usd(c.iot_vs_selfhosted_usd.self_hosted)}`, '');
  lines.push('Each lever alone:');
  for (const l of c.levers) lines.push(`  ${l.name.padEnd(55)} ${usd(l.monthly_usd_total).padStart(10)}  (${l.delta_usd >= 0 ? '+' : '-'}${usd(Math.abs(l.delta_usd))})`);
  lines.push('', 'Saving levers applied one after another:');
  for (const step of c.cumulative) lines.push(`  ${step.name.padEnd(55)} ${usd(step.monthly_usd_total).padStart(10)}`);
  lines.push('', 'The default levers if an assumption is off:');
  for (const x of c.sensitivity) lines.push(`  ${x.name.padEnd(55)} ${usd(x.monthly_usd_total).padStart(10)}  (${x.delta_usd >= 0 ? '+' : '-'}${usd(Math.abs(x.delta_usd))})`);
  return lines.join('\n');
}

export const command: Command = {
  summary: 'the monthly AWS bill at a scale: --scale seed|FILE [--json]',
  run(argv) {
    const { values } = parseArgs({ args: argv, options: { scale: { type: 'string', default: 'seed' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
    if (values.help) {
      console.log(usage);
      return Promise.resolve(0);
    }
    const prices = loadPrices();
    const comparison = compare(loadScale(values.scale), prices);
    console.log(values.json ? JSON.stringify({ prices_as_of: prices.as_of, ...comparison }, null, 2) : formatComparison(comparison, prices.as_of));
    return Promise.resolve(0);
  },
};
