import { describe, expect, it } from '@jest/globals';
import { isDevelopment, requireDevelopment } from './dev-mode.js';

describe('development mode', () => {
  it('is on only when TASKFLOW_ENV says development', () => {
    expect(isDevelopment({})).toBe(false);
    expect(isDevelopment({ TASKFLOW_ENV: 'production' })).toBe(false);
    expect(isDevelopment({ TASKFLOW_ENV: 'development' })).toBe(true);
    expect(() => isDevelopment({ TASKFLOW_ENV: 'Development' })).toThrow(/TASKFLOW_ENV/);
  });

  it('guards what must never run in production, naming it', () => {
    expect(() => requireDevelopment({}, 'the demo board')).toThrow(/^the demo board exists only in development mode/);
    expect(() => requireDevelopment({ TASKFLOW_ENV: 'development' }, 'the demo board')).not.toThrow();
  });
});
