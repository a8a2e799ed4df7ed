import { describe, expect, it, jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    } finally {
      log.mockRestore();
      if (saved === undefined) delete process.env.CDK_VALIDATION;
      else process.env.CDK_VALIDATION = saved;
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

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
