import { describe, expect, it } from 'vitest';
import {
  createFleetModel,
  createReefer,
  createRng,
  DEFAULT_INTERVAL_MS,
  FAILURE_MODES,
  type FailureWindow,
  type LabelledReading,
  type Reefer,
  type ReeferOptions,
} from '../../device-sim/reefer-model.js';
import { simulatedClock, timeScaledClock } from '../../device-sim/fleet.js';
import { PRODUCTS, REFERENCE_COLUMNS, type ReeferReading } from '../../schemas/reefer-reading.js';

const START_MS = Date.UTC(2024, 4, 1, 12, 0, 0);

function take(reefer: Reefer, n: number): ReeferReading[] {
  return Array.from({ length: n }, () => reefer.next());
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

function values(readings: ReeferReading[], key: keyof ReeferReading): number[] {
  return readings.map((r) => r[key] as number);
}

describe('createRng', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 20 }, () => a.float());
    expect(Array.from({ length: 20 }, () => b.float())).toEqual(seqA);
    expect(Array.from({ length: 20 }, () => c.float())).not.toEqual(seqA);
  });

  it('draws normals with the requested mean and spread', () => {
    const rng = createRng(7);
    const xs = Array.from({ length: 20_000 }, () => rng.normal(10, 2));
    const m = mean(xs);
    const sd = Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
    expect(m).toBeCloseTo(10, 1);
    expect(sd).toBeGreaterThan(1.9);
    expect(sd).toBeLessThan(2.1);
  });
});

describe('createReefer', () => {
  it('produces the same readings for the same seed', () => {
    const a = take(createReefer({ containerId: 'C01', seed: 9, startTimeMs: START_MS }), 200);
    const b = take(createReefer({ containerId: 'C01', seed: 9, startTimeMs: START_MS }), 200);
    expect(b).toEqual(a);
  });

  it('produces different readings for different seeds', () => {
    const a = take(createReefer({ containerId: 'C01', seed: 9, product: 'P01' }), 20);
    const b = take(createReefer({ containerId: 'C01', seed: 10, product: 'P01' }), 20);
    expect(b.map((r) => r.temperature)).not.toEqual(a.map((r) => r.temperature));
  });

  it('advances measurement_time by intervalMs per reading, starting at startTimeMs', () => {
    const five = take(createReefer({ containerId: 'C01', seed: 1, startTimeMs: START_MS }), 5);
    expect(five.map((r) => r.measurement_time)).toEqual([0, 1, 2, 3, 4].map((i) => START_MS + i * DEFAULT_INTERVAL_MS));

    const fast = take(createReefer({ containerId: 'C01', seed: 1, startTimeMs: START_MS, intervalMs: 1000 }), 3);
    expect(fast.map((r) => r.measurement_time)).toEqual([START_MS, START_MS + 1000, START_MS + 2000]);
  });

  it('fills every reference column', () => {
    const [r] = take(createReefer({ containerId: 'C01', seed: 1 }), 1);
    for (const column of REFERENCE_COLUMNS) expect(r?.[column], column).not.toBeNull();
  });

  it('rounds measured values to two decimals', () => {
    const readings = take(createReefer({ containerId: 'C01', seed: 3 }), 300);
    const keys: (keyof ReeferReading)[] = [
      'temperature',
      'ambient_temperature',
      'kilowatts',
      'time_door_open',
      'oxygen_level',
      'nitrogen_level',
      'humidity_level',
      'carbon_dioxide_level',
    ];
    for (const r of readings) {
      for (const k of keys) {
        const v = r[k] as number;
        expect(Math.abs(v * 100 - Math.round(v * 100)), `${k}=${v}`).toBeLessThan(1e-6);
      }
    }
  });

  it.each(PRODUCTS.map((p) => [p.id, p] as const))('keeps %s readings plausible for the product', (id, product) => {
    const readings = take(createReefer({ containerId: 'C01', seed: 5, product: id }), 1000);
    for (const r of readings) {
      expect(r.product_id).toBe(id);
      expect(r.target_temperature).toBe(product.targetTemperatureC);
      expect(r.content_type).toBe(product.contentType);
      expect([r.fan_1, r.fan_2, r.fan_3]).toEqual([true, true, true]);
      expect(r.maintenance_required).toBe(false);
      expect(r.defrost_cycle).toBeGreaterThanOrEqual(3);
      expect(r.defrost_cycle).toBeLessThanOrEqual(6);
      expect(r.time_door_open).toBeGreaterThanOrEqual(0);
      expect(r.kilowatts).toBeGreaterThanOrEqual(0);
    }
    expect(Math.abs(mean(values(readings, 'temperature')) - product.targetTemperatureC)).toBeLessThan(1);
    expect(Math.abs(mean(values(readings, 'ambient_temperature')) - 20)).toBeLessThan(1.5);
    expect(Math.abs(mean(values(readings, 'kilowatts')) - 2.7)).toBeLessThan(0.5);
    // Respiration lowers O2 and raises CO2 by up to 1.5 points (ripening fruit); vaccines do not breathe.
    const o2 = mean(values(readings, 'oxygen_level'));
    const co2 = mean(values(readings, 'carbon_dioxide_level'));
    expect(o2).toBeGreaterThan(19.3);
    expect(o2).toBeLessThan(21.2);
    expect(co2).toBeGreaterThan(3.8);
    expect(co2).toBeLessThan(5.7);
    expect(Math.abs(21 - o2 - (co2 - 4))).toBeLessThan(0.2);
    expect(Math.abs(mean(values(readings, 'nitrogen_level')) - 78)).toBeLessThan(0.2);
    expect(Math.abs(mean(values(readings, 'humidity_level')) - product.humidityPercent)).toBeLessThan(0.5);
    // Healthy readings stay clear of the reference anomaly thresholds.
    for (const r of readings) {
      expect(r.carbon_dioxide_level).toBeLessThan(10.8);
      expect(r.oxygen_level).toBeGreaterThan(12);
      expect(Math.abs(r.temperature - product.targetTemperatureC)).toBeLessThan(20);
    }
  });

  it('relaxes a warm container toward its setpoint while drawing more power', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 2, product: 'P01', initialTemperatureC: 20 });
    const readings = take(reefer, 60);
    const temps = values(readings, 'temperature');
    expect(temps[0]).toBe(20);
    // The deviation shrinks roughly geometrically (τ = 20 min at 5-minute readings).
    expect(temps[4]! - 4).toBeLessThan((20 - 4) * 0.6);
    expect(temps[4]! - 4).toBeGreaterThan(0);
    expect(Math.abs(mean(temps.slice(30)) - 4)).toBeLessThan(0.5);
    expect(mean(values(readings.slice(1, 4), 'kilowatts'))).toBeGreaterThan(mean(values(readings.slice(30), 'kilowatts')));
  });

  it('changes state smoothly between readings rather than drawing each one afresh', () => {
    const readings = take(createReefer({ containerId: 'C01', seed: 4, product: 'P05' }), 2000);
    const ambient = values(readings, 'ambient_temperature');
    const steps = ambient.slice(1).map((a, i) => Math.abs(a - ambient[i]!));
    // Ambient wanders with σ≈1 over hours but moves only a little from one 5-minute reading to the next.
    expect(mean(steps)).toBeLessThan(0.3);
  });

  it('opens the door now and then, which warms the container', () => {
    const readings = take(createReefer({ containerId: 'C01', seed: 11, product: 'P03' }), 3000);
    const openings = readings.map((r, i) => [r, i] as const).filter(([r]) => (r.time_door_open ?? 0) > 0);
    expect(openings.length).toBeGreaterThan(5);
    expect(openings.length).toBeLessThan(readings.length * 0.05);
    const warmings = openings.map(([r, i]) => r.temperature - readings[i - 1]!.temperature);
    expect(mean(warmings)).toBeGreaterThan(0.5);
  });

  it('chooses the product from the seed when none is given, and vaccines rarely', () => {
    const ids = Array.from({ length: 2000 }, (_, seed) => createReefer({ containerId: 'C', seed }).product.id);
    for (const p of PRODUCTS) expect(ids).toContain(p.id);
    const vaccines = ids.filter((id) => id === 'P06').length;
    expect(vaccines).toBeLessThan(ids.length * 0.05);
    expect(createReefer({ containerId: 'C', seed: 77 }).product).toEqual(createReefer({ containerId: 'C', seed: 77 }).product);
  });

  it('rejects an unknown product id, naming it', () => {
    expect(() => createReefer({ containerId: 'C01', seed: 1, product: 'P99' })).toThrow(/product: expected one of P01.*got "P99"/);
  });

  it('keeps a healthy failure mode in its state', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 1 });
    reefer.next();
    expect(reefer.state().failure).toBe('none');
    expect(reefer.state().readings).toBe(1);
  });
});

describe('createFleetModel', () => {
  it('names containers with the prefix and a zero-padded number', () => {
    expect(createFleetModel({ devices: 3, seed: 1 }).map((r) => r.containerId)).toEqual(['C0001', 'C0002', 'C0003']);
    expect(createFleetModel({ devices: 2, seed: 1, containerPrefix: 'SHIP-' }).map((r) => r.containerId)).toEqual([
      'SHIP-0001',
      'SHIP-0002',
    ]);
    const large = createFleetModel({ devices: 12_000, seed: 1 });
    expect(large[0]?.containerId).toBe('C00001');
    expect(large.at(-1)?.containerId).toBe('C12000');
  });

  it('gives each reefer its own readings, reproducibly from the fleet seed', () => {
    const a = createFleetModel({ devices: 5, seed: 3, startTimeMs: START_MS }).map((r) => take(r, 10));
    const b = createFleetModel({ devices: 5, seed: 3, startTimeMs: START_MS }).map((r) => take(r, 10));
    expect(b).toEqual(a);
    const temperatures = new Set(a.map((readings) => JSON.stringify(values(readings, 'temperature'))));
    expect(temperatures.size).toBe(5);
    expect(a.every((readings) => readings[0]?.measurement_time === START_MS)).toBe(true);
  });

  it('rejects a fleet without devices', () => {
    expect(() => createFleetModel({ devices: 0, seed: 1 })).toThrow(/devices: expected a positive integer, got 0/);
  });
});

describe('simulated clock', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  it('keeps a paced fleet in step with the wall clock', () => {
    expect(simulatedClock({ devices: 20, ratePerSecond: 10 }, now)).toEqual({ startTimeMs: now, intervalMs: 2000 });
  });
  it('ends an unpaced fleet with a count at the present, never in the future', () => {
    const clock = simulatedClock({ devices: 5, ratePerSecond: 0, countPerDevice: 100 }, now);
    expect(clock.intervalMs).toBe(5 * 60_000);
    expect(clock.startTimeMs + 100 * clock.intervalMs).toBe(now);
  });
  it('uses the start and interval given', () => {
    expect(simulatedClock({ devices: 5, ratePerSecond: 3, startTimeMs: 42, intervalMs: 7 }, now)).toEqual({ startTimeMs: 42, intervalMs: 7 });
  });
});

function samples(reefer: Reefer, n: number): LabelledReading[] {
  return Array.from({ length: n }, () => reefer.sample());
}

const share = <T,>(xs: T[], predicate: (x: T) => boolean): number => xs.filter(predicate).length / xs.length;

/** The same reefer with a failure window, readings 10 to 10 + length − 1. */
function failing(mode: FailureWindow['mode'], options: Partial<ReeferOptions> = {}, length = 100): LabelledReading[] {
  const reefer = createReefer({ containerId: 'C01', seed: 21, product: 'P05', ...options, failures: [{ mode, startReading: 10, readings: length }] });
  return samples(reefer, 10 + length + 30);
}

const within = (all: LabelledReading[], length = 100): ReeferReading[] => all.slice(10, 10 + length).map((s) => s.reading);

describe('reefer physics', () => {
  it('pulls a warm box to the setpoint with the same time constant whatever the reading interval', () => {
    // τ = 20 min: after 30 simulated minutes, 16 °C of excess shrinks to 16·e^(−1.5) ≈ 3.6 °C.
    for (const intervalMin of [1, 5, 15]) {
      const deviations = Array.from({ length: 40 }, (_, seed) => {
        const reefer = createReefer({ containerId: 'C01', seed, product: 'P01', initialTemperatureC: 20, intervalMs: intervalMin * 60_000 });
        return take(reefer, 30 / intervalMin + 1).at(-1)!.temperature - 4;
      });
      expect(mean(deviations), `${intervalMin}-minute readings`).toBeGreaterThan(3);
      expect(mean(deviations), `${intervalMin}-minute readings`).toBeLessThan(4.3);
    }
  });

  it('lets the box drift toward ambient while the power is off, then pulls it back down', () => {
    const ratios: number[] = [];
    for (let seed = 0; seed < 30; seed++) {
      const reefer = createReefer({ containerId: 'C01', seed, product: 'P01', failures: [{ mode: 'poweroff', startReading: 1, readings: 48 }] });
      const readings = take(reefer, 49 + 24);
      const [before, off, after] = [readings[0]!, readings.slice(1, 49), readings.slice(49)];
      // Insulated box: the gap to ambient shrinks by e^(−1) in 4 hours (48 readings).
      ratios.push((off.at(-1)!.ambient_temperature! - off.at(-1)!.temperature) / (before.ambient_temperature! - before.temperature));
      for (const r of off) {
        expect(r.kilowatts).toBe(0);
        expect([r.fan_1, r.fan_2, r.fan_3]).toEqual([false, false, false]);
      }
      expect(off.at(-1)!.temperature).toBeGreaterThan(before.temperature + 5);
      // Back at the setpoint within 2 hours (a defrost or an open door may warm it again for a while).
      expect(Math.min(...values(after.slice(-12), 'temperature'))).toBeLessThan(4 + 1.5);
      expect(after[0]!.kilowatts).toBeGreaterThan(2.7);
    }
    expect(mean(ratios)).toBeGreaterThan(0.25);
    expect(mean(ratios)).toBeLessThan(0.45);
  });

  it('records each door opening in time_door_open and never opens a sealed vaccine container', () => {
    const readings = take(createReefer({ containerId: 'C01', seed: 11, product: 'P03' }), 3000);
    const opened = readings.filter((r) => r.time_door_open! > 0);
    expect(opened.length).toBeGreaterThan(5);
    for (const r of opened) expect(r.time_door_open).toBeLessThanOrEqual(10);
    const vaccines = take(createReefer({ containerId: 'C01', seed: 11, product: 'P06' }), 3000);
    expect(vaccines.every((r) => r.time_door_open === 0)).toBe(true);
  });

  it('defrosts every few hours: defrost_cycle counts the last 24 h of them, the box warms briefly, heaters draw ≈1.8 kW', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 5, product: 'P01' });
    const rows = Array.from({ length: 3 * 288 }, () => {
      const reading = reefer.next();
      return { reading, defrosting: reefer.state().defrostRemainingMin > 0 };
    });
    const starts = rows.map((r, i) => i).filter((i) => i > 0 && rows[i]!.defrosting && !rows[i - 1]!.defrosting);
    // Cycles of 5–8 h: 9 to 15 defrosts in 3 days.
    expect(starts.length).toBeGreaterThanOrEqual(9);
    expect(starts.length).toBeLessThanOrEqual(15);
    const increments = starts.filter((i) => rows[i]!.reading.defrost_cycle! > rows[i - 1]!.reading.defrost_cycle!);
    expect(increments.length).toBeGreaterThanOrEqual(starts.length - 2);
    for (const { reading } of rows) {
      expect(reading.defrost_cycle).toBeGreaterThanOrEqual(3);
      expect(reading.defrost_cycle).toBeLessThanOrEqual(6);
    }
    const during = rows.filter((r) => r.defrosting).map((r) => r.reading);
    const otherwise = rows.filter((r) => !r.defrosting).map((r) => r.reading);
    expect(mean(values(during, 'temperature'))).toBeGreaterThan(mean(values(otherwise, 'temperature')) + 0.5);
    expect(mean(values(during, 'temperature'))).toBeLessThan(4 + 4);
    expect(Math.abs(mean(values(during, 'kilowatts')) - 1.8)).toBeLessThan(0.2);
  });

  it('lets ripening bananas and avocados consume O2 and emit CO2 over the voyage, faster when warm', () => {
    const voyage = (product: string, failures?: FailureWindow[]): ReeferReading[] =>
      take(createReefer({ containerId: 'C01', seed: 8, product, failures }), 4 * 288);
    for (const product of ['P02', 'P04']) {
      const readings = voyage(product);
      const [firstDay, lastDay] = [readings.slice(0, 288), readings.slice(-288)];
      expect(mean(values(lastDay, 'oxygen_level')), product).toBeLessThan(mean(values(firstDay, 'oxygen_level')) - 0.5);
      expect(mean(values(lastDay, 'carbon_dioxide_level')), product).toBeGreaterThan(mean(values(firstDay, 'carbon_dioxide_level')) + 0.5);
      // Well clear of the sensor-failure thresholds.
      expect(Math.min(...values(readings, 'oxygen_level')), product).toBeGreaterThan(18);
      expect(Math.max(...values(readings, 'carbon_dioxide_level')), product).toBeLessThan(7);
    }
    const carrots = voyage('P01').slice(-288);
    expect(Math.abs(mean(values(carrots, 'oxygen_level')) - 20.7)).toBeLessThan(0.3);
    const vaccines = voyage('P06').slice(-288);
    expect(Math.abs(mean(values(vaccines, 'oxygen_level')) - 21)).toBeLessThan(0.2);
    expect(Math.abs(mean(values(vaccines, 'carbon_dioxide_level')) - 4)).toBeLessThan(0.2);

    const cool = voyage('P02').slice(500, 700);
    const warm = voyage('P02', [{ mode: 'poweroff', startReading: 400, readings: 300 }]).slice(500, 700);
    expect(mean(values(warm, 'carbon_dioxide_level'))).toBeGreaterThan(mean(values(cool, 'carbon_dioxide_level')) + 0.3);
  });

  it('keeps vaccines at −50 °C', () => {
    const readings = take(createReefer({ containerId: 'C01', seed: 3, product: 'P06' }), 1000);
    expect(readings.every((r) => r.target_temperature === -50)).toBe(true);
    expect(Math.abs(mean(values(readings, 'temperature')) + 50)).toBeLessThan(0.5);
  });
});

describe('reference failure modes', () => {
  it('labels each reading with the failure active then and sets maintenance_required while it lasts', () => {
    const all = failing('o2sensor', {}, 5);
    expect(all.map((s) => s.label.failure)).toEqual(all.map((_, i) => (i >= 10 && i < 15 ? 'o2sensor' : 'none')));
    expect(all.map((s) => s.reading.maintenance_required)).toEqual(all.map((_, i) => i >= 10 && i < 15));
  });

  it('co2sensor: CO2 reads ≈12 (σ≈2), mostly above the 10.8 anomaly threshold', () => {
    for (const product of ['P01', 'P02', 'P06']) {
      const readings = within(failing('co2sensor', { product }));
      const co2 = values(readings, 'carbon_dioxide_level');
      expect(share(co2, (x) => x > 10.8), product).toBeGreaterThan(0.6);
      expect(Math.abs(mean(co2) - 12), product).toBeLessThan(0.6);
      const sd = Math.sqrt(mean(co2.map((x) => (x - mean(co2)) ** 2)));
      expect(sd).toBeGreaterThan(1.5);
      expect(sd).toBeLessThan(2.5);
    }
  });

  it('o2sensor: O2 reads ≈11 (σ≈2), mostly below the 12 anomaly threshold', () => {
    const o2 = values(within(failing('o2sensor')), 'oxygen_level');
    expect(share(o2, (x) => x < 12)).toBeGreaterThan(0.6);
    expect(Math.abs(mean(o2) - 11)).toBeLessThan(0.6);
  });

  it('temperature: reads ≈ target + 20, mostly beyond the |t − target| > 20 anomaly threshold', () => {
    for (const product of ['P05', 'P06']) {
      const readings = within(failing('temperature', { product }));
      expect(share(readings, (r) => Math.abs(r.temperature - r.target_temperature!) > 20), product).toBeGreaterThan(0.75);
      expect(Math.abs(mean(readings.map((r) => r.temperature - r.target_temperature!)) - 20.5), product).toBeLessThan(1);
    }
  });

  it('tempgrowth: the temperature climbs 2 °C per reading until it reaches ambient, the compressor flat out', () => {
    const all = failing('tempgrowth', { product: 'P06' }, 50);
    const readings = within(all, 50);
    let climbs = 0;
    for (let i = 1; i < readings.length; i++) {
      const [prev, cur] = [readings[i - 1]!, readings[i]!];
      if (prev.temperature + 2 <= prev.ambient_temperature! - 1) {
        expect(cur.temperature - prev.temperature).toBeCloseTo(2, 5);
        climbs += 1;
      }
      expect(cur.temperature).toBeLessThanOrEqual(Math.max(prev.temperature, cur.ambient_temperature!) + 0.01);
      expect(cur.kilowatts).toBeGreaterThan(4.8);
    }
    expect(climbs).toBeGreaterThan(30);
    // It ends near ambient (which wanders on): the climb stopped there.
    expect(Math.abs(readings.at(-1)!.temperature - readings.at(-1)!.ambient_temperature!)).toBeLessThan(2.5);
  });

  it('poweroff: kilowatts 0 on consecutive readings and fans off, then back to normal', () => {
    const all = failing('poweroff', {}, 12);
    const readings = within(all, 12);
    for (const r of readings) expect([r.kilowatts, r.fan_1, r.fan_2, r.fan_3]).toEqual([0, false, false, false]);
    for (const s of all.slice(0, 10).concat(all.slice(22))) expect(s.reading.kilowatts).toBeGreaterThan(0);
  });

  it('sensor faults change only the faulty value, leaving every other reading as it would have been', () => {
    const healthy = take(createReefer({ containerId: 'C01', seed: 21, product: 'P05' }), 140);
    for (const [mode, key] of [
      ['co2sensor', 'carbon_dioxide_level'],
      ['o2sensor', 'oxygen_level'],
      ['temperature', 'temperature'],
    ] as const) {
      const faulty = failing(mode).map((s) => s.reading);
      expect(faulty.slice(0, 10)).toEqual(healthy.slice(0, 10));
      expect(faulty.slice(110)).toEqual(healthy.slice(110));
      for (let i = 10; i < 110; i++) {
        expect({ ...faulty[i], [key]: 0, maintenance_required: false }).toEqual({ ...healthy[i], [key]: 0 });
      }
    }
  });

  it('applies the first listed of two overlapping failures and a scheduled failure over a random one', () => {
    const reefer = createReefer({
      containerId: 'C01',
      seed: 4,
      failures: [
        { mode: 'co2sensor', startReading: 2, readings: 3 },
        { mode: 'poweroff', startReading: 0, readings: 8 },
      ],
      randomFailures: { ratePerReading: 1, modes: ['o2sensor'], minReadings: 100, maxReadings: 100 },
    });
    expect(samples(reefer, 10).map((s) => s.label.failure)).toEqual([
      'poweroff', 'poweroff', 'co2sensor', 'co2sensor', 'co2sensor', 'poweroff', 'poweroff', 'poweroff', 'o2sensor', 'o2sensor',
    ]);
  });

  it('covers the rest of the run from a window that started before it, and the whole run when endless', () => {
    const before = createReefer({ containerId: 'C01', seed: 4, failures: [{ mode: 'temperature', startReading: -5, readings: 8 }] });
    expect(samples(before, 5).map((s) => s.label.failure)).toEqual(['temperature', 'temperature', 'temperature', 'none', 'none']);
    const endless = createReefer({ containerId: 'C01', seed: 4, failures: [{ mode: 'o2sensor', startReading: 1, readings: Infinity }] });
    expect(samples(endless, 300).filter((s) => s.label.failure === 'none')).toHaveLength(1);
  });
});

describe('random failures', () => {
  const random = { ratePerReading: 0.01, modes: ['poweroff', 'tempgrowth'] as const, minReadings: 3, maxReadings: 6 };

  it('start by chance from the seed, with the modes and lengths asked for', () => {
    const labels = samples(createReefer({ containerId: 'C01', seed: 12, randomFailures: random }), 3000).map((s) => s.label.failure);
    const runs: { mode: string; length: number }[] = [];
    labels.forEach((mode, i) => {
      if (mode === 'none') return;
      if (i > 0 && labels[i - 1] === mode && runs.length > 0) runs.at(-1)!.length += 1;
      else runs.push({ mode, length: 1 });
    });
    expect(runs.length).toBeGreaterThan(10);
    expect(runs.length).toBeLessThan(60);
    for (const run of runs) {
      expect(['poweroff', 'tempgrowth']).toContain(run.mode);
      // Two failures back to back of the same mode read as one run.
      expect(run.length).toBeGreaterThanOrEqual(3);
    }
    expect(runs.filter((r) => r.length <= 6).length).toBeGreaterThan(runs.length * 0.8);
  });

  it('are the same for the same seed and differ for another', () => {
    const labels = (seed: number) =>
      samples(createReefer({ containerId: 'C01', seed, randomFailures: random }), 2000).map((s) => s.label.failure).join();
    expect(labels(12)).toBe(labels(12));
    expect(labels(13)).not.toBe(labels(12));
  });

  it('reject a rate outside 0..1 or an empty list of modes, naming the option', () => {
    expect(() => createReefer({ containerId: 'C', seed: 1, randomFailures: { ...random, ratePerReading: 2 } })).toThrow(
      /randomFailures\.ratePerReading: expected a number from 0 to 1, got 2/,
    );
    expect(() => createReefer({ containerId: 'C', seed: 1, randomFailures: { ...random, modes: [] } })).toThrow(/randomFailures\.modes/);
  });
});

describe('fleet model with failures', () => {
  it('gives the listed containers their failures, and the same fleet for the same seed', () => {
    const failures = new Map<string, FailureWindow[]>([['C0002', [{ mode: 'poweroff', startReading: 1, readings: 2 }]]]);
    const run = () => createFleetModel({ devices: 3, seed: 9, startTimeMs: START_MS, failures }).map((r) => samples(r, 4));
    const fleet = run();
    expect(fleet.map((readings) => readings.map((s) => s.label.failure))).toEqual([
      ['none', 'none', 'none', 'none'],
      ['none', 'poweroff', 'poweroff', 'none'],
      ['none', 'none', 'none', 'none'],
    ]);
    expect(run()).toEqual(fleet);
  });

  it('knows the five reference failure modes', () => {
    expect([...FAILURE_MODES]).toEqual(['poweroff', 'co2sensor', 'o2sensor', 'temperature', 'tempgrowth']);
  });
});

describe('time-scaled clock', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  it('runs simulated time K times faster than the pace and ends a counted run at the present', () => {
    const clock = timeScaledClock({ devices: 10, ratePerSecond: 10, countPerDevice: 100, timeScale: 300 }, now);
    expect(clock.intervalMs).toBe(300_000);
    expect(clock.startTimeMs + 100 * clock.intervalMs).toBe(now);
  });
  it('ends a run of a given duration at the present', () => {
    const clock = timeScaledClock({ devices: 10, ratePerSecond: 10, durationMs: 60_000, timeScale: 60 }, now);
    expect(clock.intervalMs).toBe(60_000);
    expect(clock.startTimeMs).toBe(now - 60 * 60_000);
  });
  it('starts an endless run now', () => {
    expect(timeScaledClock({ devices: 2, ratePerSecond: 1, timeScale: 10 }, now)).toEqual({ startTimeMs: now, intervalMs: 20_000 });
  });
});
