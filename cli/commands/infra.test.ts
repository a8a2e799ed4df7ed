import { describe, expect, it, jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command } from './infra.js';

describe('taskflow infra synth', () => {
  it('writes every stack template and the EKS manifests, offline', async () => {
    const out = mkdtempSync(join(tmpdir(), 'taskflow-synth-'));
    const lines: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
    const saved = process.env.CDK_VALIDATION;
    process.env.CDK_VALIDATION = 'false';
    try {
      expect(await command.run(['synth', '--out', out])).toBe(0);
      for (const stack of ['Compliance', 'Stream', 'State', 'Realtime', 'Analytics', 'Database', 'Services', 'Observability']) expect(existsSync(join(out, `Taskflow-prod-${stack}.template.json`))).toBe(true);
      const router = JSON.parse(readFileSync(join(out, 'k8s', 'router.json'), 'utf8')) as { items: { kind: string; metadata: { annotations?: Record<string, string> } }[] };
      expect(router.items.map((i) => i.kind)).toContain('StatefulSet');
      expect(router.items[0]?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::123456789012:role/taskflow-prod-router');
      expect(lines.join('\n')).toMatch(/Taskflow-prod-Stream: \d+ resources/);
      const secrets = JSON.parse(readFileSync(join(out, 'k8s', 'external-secrets.json'), 'utf8')) as { items: { kind: string; metadata: { annotations?: Record<string, string> } }[] };
      expect(secrets.items[0]?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::123456789012:role/taskflow-prod-external-secrets');
      expect(secrets.items.filter((i) => i.kind === 'ExternalSecret').length).toBeGreaterThan(0);
    } finally {
      log.mockRestore();
      if (saved === undefined) delete process.env.CDK_VALIDATION;
      else process.env.CDK_VALIDATION = saved;
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  it('writes the stream-consumers ConfigMap from cdk deploy outputs, and refuses outputs missing a fan-out reader', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskflow-outputs-'));
    const arn = (name: string) => `arn:aws:kinesis:us-east-1:123456789012:stream/taskflow-changes/consumer/${name}:1733300000`;
    const chunks: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => chunks.push(String(chunk)) > 0);
    const error = jest.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const full = join(dir, 'outputs.json');
      writeFileSync(full, JSON.stringify({ 'Taskflow-prod-Stream': { EfoConsumerArnrouter: arn('router'), EfoConsumerArnnotifications: arn('notifications'), EfoConsumerArnarchiver: arn('archiver'), StreamName: 'taskflow-changes' } }));
      expect(await command.run(['consumers-configmap', '--outputs', full])).toBe(0);
      const configMap = JSON.parse(chunks.join('')) as { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
      expect(configMap).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'taskflow-stream-consumers', namespace: 'taskflow' }, data: { router: arn('router'), notifications: arn('notifications'), archiver: arn('archiver') } });
      const partial = join(dir, 'partial.json');
      writeFileSync(partial, JSON.stringify({ 'Taskflow-prod-Stream': { EfoConsumerArnrouter: arn('router') } }));
      await expect(command.run(['consumers-configmap', '--outputs', partial])).rejects.toThrow(/notifications, archiver/);
      expect(await command.run(['consumers-configmap'])).toBe(2);
    } finally {
      write.mockRestore();
      error.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown subcommand with the usage', async () => {
    const error = jest.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await command.run(['deploy'])).toBe(2);
      expect(error.mock.calls.join(' ')).toContain('taskflow infra synth');
    } finally {
      error.mockRestore();
    }
  });
});
