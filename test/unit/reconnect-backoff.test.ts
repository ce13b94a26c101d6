import { describe, expect, it } from 'vitest';
import { jitteredBackoffMs } from '../../device-sim/mqtt-transport.js';

describe('jitteredBackoffMs', () => {
  it('doubles from the base up to the ceiling, each wait within ±50 %', () => {
    const low = (attempt: number) => jitteredBackoffMs(attempt, 1000, 30_000, () => 0);
    const high = (attempt: number) => jitteredBackoffMs(attempt, 1000, 30_000, () => 0.999_999);
    expect([0, 1, 2, 3, 4, 5, 6, 40].map(low)).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
    expect([0, 1, 5, 40].map(high)).toEqual([1500, 3000, 45_000, 45_000]);
  });

  it('spreads devices that fail together over the whole window', () => {
    let state = 1;
    const random = () => (state = (state * 16_807) % 2_147_483_647) / 2_147_483_647;
    const waits = Array.from({ length: 1000 }, () => jitteredBackoffMs(0, 1000, 30_000, random));
    expect(Math.min(...waits)).toBeLessThan(520);
    expect(Math.max(...waits)).toBeGreaterThan(1480);
    expect(new Set(waits.map((w) => Math.floor(w / 100))).size).toBe(10);
  });
});
