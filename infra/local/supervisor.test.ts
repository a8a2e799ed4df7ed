import { describe, expect, it } from '@jest/globals';
import { restartPlan, superviseServices } from './supervisor.js';
import { waitFor } from '../../test/support/wait.js';

function service(name: string, script: string) {
  return { name, command: process.execPath, args: ['-e', script], env: { PATH: process.env.PATH }, cwd: process.cwd() };
}

describe('superviseServices', () => {
  it('prefixes output with the service name and restarts a service that crashed', async () => {
    const lines: string[] = [];
    const supervisor = superviseServices([service('flaky', "console.log('up'); process.exit(3)")], (l) => lines.push(l));
    try {
      await waitFor(() => lines.filter((l) => l === '[flaky] up').length >= 2, 'the flaky service up twice', 15_000);
      expect(lines).toContainEqual(expect.stringMatching(/^\[flaky\] exited \(3\); restarting in \d+\.\d s$/));
    } finally {
      await supervisor.stop();
    }
  });

  it('stops running services with SIGTERM and does not restart them', async () => {
    const lines: string[] = [];
    const script = "process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); console.log('up'); setInterval(() => {}, 1000);";
    const supervisor = superviseServices([service('steady', script)], (l) => lines.push(l));
    await waitFor(() => lines.includes('[steady] up'), 'the steady service up', 15_000);
    const [pid] = supervisor.pids();
    await supervisor.stop();
    expect(supervisor.pids()).toEqual([]);
    expect(() => process.kill(pid!, 0)).toThrow();
    await waitFor(() => lines.includes('[steady] bye'), "the service's last line", 5_000); // stdout may trail the exit
    // No wait for "no restart": stop() resolved after the exit, whose handler would have announced one.
    expect(lines.some((l) => l.includes('restarting'))).toBe(false);
  });

  it('restarts a service that had been up 10 s at once, and backs off from a crash soon after a start', () => {
    for (const random of [0, 0.5, 0.999]) {
      expect(restartPlan(10_001, 3, random)).toEqual({ attempt: 0, delayMs: 0 });
      const soon = restartPlan(2_000, 0, random);
      expect(soon.attempt).toBe(1);
      expect(soon.delayMs).toBe(Math.floor(1000 * random));
    }
    // A crash loop keeps backing off, up to the cap.
    expect(restartPlan(100, 10, 0.999).delayMs).toBe(Math.floor(15_000 * 0.999));
  });
});
