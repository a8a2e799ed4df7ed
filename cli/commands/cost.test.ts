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
    expect(out).toMatch(/Kinesis records uncompressed \(CAPTURE_COMPRESSION=none\) +\$[\d,]+ +\([+-]\$[\d,]+\)/);
    expect(out).toContain('The default levers if an assumption is off:');
  });

  it('--json gives the total, each service and the broker comparison', async () => {
    const { out } = await run(['--json']);
    const doc = JSON.parse(out) as { prices_as_of: string; default: { monthly_usd_total: number; services: Record<string, { usd: number }> }; iot_vs_selfhosted_usd: { iot_core: number; self_hosted: number } };
    expect(doc.prices_as_of).toMatch(/^\d{4}-\d{2}/);
    // The default broker is the self-hosted tier: no IoT Core, no authorizer Lambda.
    expect(Object.keys(doc.default.services).sort()).toEqual(['cloudwatch', 'dynamodb', 'eks_nodes', 'firehose', 'kinesis', 'kms', 'mqtt_self_hosted', 's3', 'snowflake']);
    expect(doc.iot_vs_selfhosted_usd.iot_core).toBeGreaterThan(0);
  });

  it('names the file when --scale cannot be read', async () => {
    await expect(run(['--scale', '/nonexistent/scale.json'])).rejects.toThrow(/cannot read \/nonexistent\/scale.json/);
  });
});
