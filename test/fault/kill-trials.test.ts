import { describe, expect, inject, it } from 'vitest';
import { runKillTrials } from '../harness/kill-trials.js';

const bootstrap = inject('kafkaBootstrap');
const TRIALS = Number(process.env.REEFER_KILL_TRIALS ?? 20);

describe('kill -9 under load', () => {
  it(`loses and duplicates nothing acknowledged across ${TRIALS} kills at random moments`, async () => {
    const { trials, report } = await runKillTrials({ bootstrap, trials: TRIALS });
    expect(trials).toBe(TRIALS);
    expect(report.acknowledged).toBeGreaterThan(TRIALS * 100);
    expect(report.lost).toBe(0);
    expect(report.duplicated).toBe(0);
    expect(report.altered).toEqual([]);
  });
});
