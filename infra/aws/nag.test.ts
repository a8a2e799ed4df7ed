// The one synth with CloudFormation validation and cdk-nag's AwsSolutions checks: any finding
// not acknowledged (with its reason) in infra/aws/nag.ts fails it.
import { describe, expect, it } from '@jest/globals';
import { Validations } from 'aws-cdk-lib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from './app.js';

describe('AWS deployment under validation and cdk-nag', () => {
  it('synthesizes with no unacknowledged finding, and every acknowledgement gives a reason', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'taskflow-cdk-'));
    try {
      const { app } = buildApp({ outdir, nag: true, validation: true });
      expect(() => app.synth()).not.toThrow();
      // Each acknowledgement is recorded as metadata { "<plugin>::<rule>": reason } on its construct.
      const entries = app.node.findAll().flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap((m) => Object.entries(m.data as Record<string, string>)));
      expect(entries.length).toBeGreaterThan(0);
      for (const [id, reason] of entries) expect({ id, reason: reason.length > 20 }).toEqual({ id, reason: true });
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }, 120_000);
});
