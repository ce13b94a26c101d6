import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GC_BUSY_ABOVE, GC_QUIET_BELOW, gatewayHeapFlags, gcLoadMode } from '../../gateway/cli.js';

const cli = fileURLToPath(new URL('../../gateway/cli.ts', import.meta.url));

/**
 * Runs a node process that (with `apply`) takes the gateway's heap settings, then allocates like a
 * busy gateway: short-lived garbage while a working set of a few MB survives each scavenge, which
 * is what makes V8 double its young generation. Prints the young generation's size in bytes
 * before and after.
 */
function youngGeneration(apply: boolean): { before: number; after: number } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { applyGatewayHeapFlags } = await import(${JSON.stringify(cli)});
    const youngBytes = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    if (${apply}) applyGatewayHeapFlags(process.execArgv, undefined);
    const before = youngBytes();
    const kept = new Array(50_000);
    for (let i = 0; i < 2_000_000; i++) kept[i % kept.length] = { i, text: 'reading ' + i, values: [i, i + 1, i + 2] };
    process.stdout.write(JSON.stringify({ before, after: youngBytes() }));
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  if (run.status !== 0) throw new Error(`node exited with ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as { before: number; after: number };
}

describe('gateway heap settings', () => {
  it('sets both when node was given no heap flags', () => {
    expect(gatewayHeapFlags([])).toEqual(['--semi-space-growth-factor=1', '--heap-growing-percent=50']);
    expect(gatewayHeapFlags(['--enable-source-maps', '--v8-pool-size=1'])).toEqual(['--semi-space-growth-factor=1', '--heap-growing-percent=50']);
  });

  it('yields to a young-generation size given to node, spelt with dashes or underscores', () => {
    expect(gatewayHeapFlags(['--max-semi-space-size=8'])).toEqual(['--heap-growing-percent=50']);
    expect(gatewayHeapFlags(['--min_semi_space_size=2'])).toEqual(['--heap-growing-percent=50']);
    expect(gatewayHeapFlags(['--semi-space-growth-factor=2'])).toEqual(['--heap-growing-percent=50']);
  });

  it('yields to a heap growing factor given to node, and keeps it beside an old-space cap', () => {
    expect(gatewayHeapFlags(['--heap-growing-percent=100'])).toEqual(['--semi-space-growth-factor=1']);
    expect(gatewayHeapFlags(['--max-old-space-size=128'])).toEqual(['--semi-space-growth-factor=1', '--heap-growing-percent=50']);
  });

  it('gives way to V8 while collecting takes over a tenth of the time, and holds again once it is quiet', () => {
    expect(gcLoadMode(0.25, 'quiet')).toBe('busy');
    expect(gcLoadMode(GC_BUSY_ABOVE, 'quiet')).toBe('quiet');
    // Between the two thresholds the mode stays, so it does not flap.
    expect(gcLoadMode(0.06, 'busy')).toBe('busy');
    expect(gcLoadMode(0.06, 'quiet')).toBe('quiet');
    expect(gcLoadMode(GC_QUIET_BELOW / 2, 'busy')).toBe('quiet');
  });

  it('keeps the young generation at the size it has when applied, where V8 alone grows it', () => {
    const alone = youngGeneration(false);
    const applied = youngGeneration(true);
    expect(alone.after).toBeGreaterThan(alone.before);
    expect(applied.after).toBeLessThanOrEqual(applied.before);
  });
});
