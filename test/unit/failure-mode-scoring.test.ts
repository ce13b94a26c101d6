import { describe, expect, it } from 'vitest';
import { evaluateReading, initialRuleState, type AnomalyKind } from '../../cloud-bridge/reefer-rules.js';
import { createReefer, FAILURE_MODES, type ReferenceFailureMode } from '../../device-sim/reefer-model.js';

/** Which rule each failure mode should trip. */
const EXPECTED: Record<ReferenceFailureMode, AnomalyKind[]> = {
  poweroff: ['power-off'],
  co2sensor: ['co2'],
  o2sensor: ['o2'],
  temperature: ['temperature'],
  tempgrowth: ['temperature', 'cold-chain'],
};

const PRODUCTS = ['P01', 'P02', 'P03', 'P04', 'P05'];

function score(mode: ReferenceFailureMode | null, reefers: number, readings: number): { failureReadings: number; flagged: number } {
  let failureReadings = 0;
  let flagged = 0;
  for (let i = 0; i < reefers; i++) {
    const reefer = createReefer({
      containerId: `C${i}`,
      product: PRODUCTS[i % PRODUCTS.length],
      seed: 1000 + i,
      failures: mode ? [{ mode, startReading: 20, readings: 60 }] : [],
    });
    let state = initialRuleState();
    let flaggedInWindow = false;
    for (let n = 0; n < readings; n++) {
      const { reading, label } = reefer.sample();
      const result = evaluateReading(reading, state);
      state = result.state;
      const hit = mode ? result.anomalies.some((a) => EXPECTED[mode].includes(a)) : result.anomalies.length > 0;
      if (mode === null) {
        failureReadings += 1;
        if (hit) flagged += 1;
      } else if (label.failure === mode) {
        failureReadings += 1;
        if (hit) flaggedInWindow = true;
      }
    }
    if (mode !== null && flaggedInWindow) flagged += 1;
  }
  return { failureReadings, flagged };
}

describe('simulated failure modes against the reference rules', () => {
  it.each(FAILURE_MODES)('%s: every failing reefer is flagged by its rule during the failure', (mode) => {
    const { flagged } = score(mode, 50, 100);
    process.stdout.write(`[scoring] ${mode}: ${flagged} of 50 failing reefers flagged by ${EXPECTED[mode].join('/')}\n`);
    expect(flagged).toBe(50);
  });

  it('a healthy fleet almost never trips a rule (false-positive rate printed)', () => {
    const { failureReadings: readings, flagged } = score(null, 100, 288);
    const rate = flagged / readings;
    process.stdout.write(`[scoring] healthy fleet: ${flagged} of ${readings} readings flagged, false-positive rate ${(rate * 100).toFixed(3)} %\n`);
    expect(rate).toBeLessThan(0.001);
  });
});
