// The benches' CPU accounting, against real processes: a busy child's seconds are counted in its
// tree, and a descendant that ends stays counted once (through its parent's reaped-children count).
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../support/wait.js';
import { acrossIncarnations, coresPer10kChangesPerS, CpuMeter, cpuSeconds, cpuUsPerChange, processTree, treeCpuSeconds } from './report.js';

// Spins until the process itself has used `ms` of CPU (wall time would depend on the host's load).
const busy = (ms: number) => `for (let u = process.cpuUsage(); u.user + u.system < ${ms * 1000}; u = process.cpuUsage()) {}`;

describe('CpuMeter', () => {
  it('counts a process tree, including a grandchild that has ended', async () => {
    // A parent that starts a busy grandchild (600 ms of CPU), waits for it, then idles.
    const parent = spawn(
      process.execPath,
      ['-e', `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(busy(600))}]); c.on('exit', () => setTimeout(() => {}, 60000)); process.on('SIGTERM', () => process.exit(0));`],
      { stdio: 'ignore' },
    );
    try {
      const meter = new CpuMeter({ tree: () => treeCpuSeconds(parent.pid!) });
      meter.sample();
      // Until the grandchild has ended (the tree is the parent alone again) and been counted. Not
      // ">= 0.6": /proc counts in 10 ms ticks, each field rounded down, and the first sample may
      // already hold part of the parent's start-up, so the tree can read 0.59 s and stay there.
      const seconds = await waitFor(() => {
        const tree = meter.totals().tree!;
        return processTree(parent.pid!).length === 1 && tree >= 0.5 && tree;
      }, () => `the grandchild's CPU in the tree (${meter.totals().tree} s, ${processTree(parent.pid!).length} processes)`);
      // The grandchild's 600 ms counted once (twice would be over 1.2 s; node's start-up adds some).
      expect(seconds).toBeLessThan(1.2);
    } finally {
      parent.kill();
    }
  });

  it('keeps the last reading of a tree whose root has ended', async () => {
    const child = spawn(process.execPath, ['-e', busy(300)], { stdio: 'ignore' });
    const meter = new CpuMeter({ child: () => cpuSeconds(child.pid!) });
    meter.sample();
    while (child.exitCode === null) {
      meter.sample();
      await sleep(10);
    }
    expect(meter.totals().child).toBeGreaterThan(0.1);
  });
});

describe('acrossIncarnations', () => {
  it('sums the last reading of every pid a restarted service had', () => {
    let pid = 1;
    const readings = new Map<number, number>([[1, 2]]);
    const meter = new CpuMeter({
      service: acrossIncarnations(
        () => [pid],
        (p) => {
          const seconds = readings.get(p);
          if (seconds === undefined) throw new Error('ESRCH');
          return seconds;
        },
      ),
    });
    meter.sample(); // 2 s at the start
    readings.set(1, 5);
    meter.sample();
    readings.delete(1); // killed: its last reading, 5 s, stands
    pid = 2;
    meter.sample(); // the new pid cannot be read yet
    readings.set(2, 1.5);
    expect(meter.totals().service).toBe(5 + 1.5 - 2);
  });
});

describe('CPU per change', () => {
  it('turns CPU seconds into microseconds per change, and those into cores per 10,000 changes/s', () => {
    expect(cpuUsPerChange(2, 20_000)).toBe(100);
    expect(cpuUsPerChange(0.5, 3)).toBe(166666.7);
    expect(cpuUsPerChange(1, 0)).toBe(0);
    expect(coresPer10kChangesPerS(100)).toBe(1);
    expect(coresPer10kChangesPerS(42.5)).toBe(0.425);
  });
});
