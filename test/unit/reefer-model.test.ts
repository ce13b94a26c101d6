import { describe, expect, it } from 'vitest';
import {
  createFleetModel,
  createReefer,
  createRng,
  DEFAULT_INTERVAL_MS,
  type Reefer,
} from '../../device-sim/reefer-model.js';
import { simulatedClock } from '../../device-sim/fleet.js';
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
    expect(Math.abs(mean(values(readings, 'oxygen_level')) - 21)).toBeLessThan(0.2);
    expect(Math.abs(mean(values(readings, 'nitrogen_level')) - 78)).toBeLessThan(0.2);
    expect(Math.abs(mean(values(readings, 'carbon_dioxide_level')) - 4)).toBeLessThan(0.2);
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
