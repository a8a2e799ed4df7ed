import { describe, expect, it, jest } from '@jest/globals';
import { command } from './cost.js';

async function run(argv: string[]): Promise<{ code: number | void; out: string }> {
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
  try {
    return { code: await command.run(argv), out: lines.join('\n') };
  } finally {
    log.mockRestore();
  }
}

describe('taskflow cost', () => {
  it('prints the bill by service, the broker comparison and the levers', async () => {
    const { code, out } = await run([]);
    expect(code).toBe(0);
    expect(out).toMatch(/kinesis .*shards=\d+/);
    expect(out).toMatch(/Broker: IoT Core \$[\d,]+ vs self-hosted MQTT on EKS \$[\d,]+/);
    expect(out).toMatch(/^ {2}total +\$[\d,]+/m);
    expect(out).toContain('publish to every project');
  });

  it('--json gives the total, each service and the broker comparison', async () => {
    const { out } = await run(['--json']);
    const doc = JSON.parse(out) as { prices_as_of: string; default: { monthly_usd_total: number; services: Record<string, { usd: number }> }; iot_vs_selfhosted_usd: { iot_core: number; self_hosted: number } };
    expect(doc.prices_as_of).toMatch(/^\d{4}-\d{2}/);
    expect(Object.keys(doc.default.services)).toEqual(expect.arrayContaining(['kinesis', 'dynamodb', 'iot_core', 'firehose', 's3', 'kms', 'eks_nodes', 'lambda', 'snowflake', 'cloudwatch']));
    expect(doc.iot_vs_selfhosted_usd.iot_core).toBeGreaterThan(0);
  });

  it('names the file when --scale cannot be read', async () => {
    await expect(run(['--scale', '/nonexistent/scale.json'])).rejects.toThrow(/cannot read \/nonexistent\/scale.json/);
  });
});
