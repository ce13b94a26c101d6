import { PRODUCTS, type Product, type ReeferReading } from '../schemas/reefer-reading.js';

/** A seeded source of randomness: the same seed gives the same sequence on every platform. */
export interface Rng {
  /** Uniform in [0, 1). */
  float(): number;
  /** Normally distributed. */
  normal(mean: number, sd: number): number;
  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
}

// Murmur3's finaliser: spreads nearby seeds (1, 2, 3 …) into unrelated 32-bit states, which
// mulberry32 alone does not do for its first outputs.
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Combines a seed with stream numbers into a new 32-bit seed, so related streams do not correlate. */
export function deriveSeed(seed: number, ...streams: number[]): number {
  let h = 0x9e3779b9;
  for (const part of [seed, ...streams]) {
    // Whole numbers beyond 32 bits (and negatives) keep all their bits in the hash.
    const whole = Math.trunc(part);
    h = mix32(h ^ (whole >>> 0));
    h = mix32(h ^ (Math.floor(whole / 2 ** 32) >>> 0));
  }
  return h;
}

/** mulberry32 for uniforms, Box–Muller for normals. */
export function createRng(seed: number): Rng {
  let a = deriveSeed(seed);
  let spareNormal: number | null = null;

  const float = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  const standardNormal = (): number => {
    if (spareNormal !== null) {
      const z = spareNormal;
      spareNormal = null;
      return z;
    }
    const u1 = 1 - float(); // (0, 1]: log(0) would be -Infinity
    const u2 = float();
    const r = Math.sqrt(-2 * Math.log(u1));
    spareNormal = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };

  return {
    float,
    normal: (mean, sd) => mean + sd * standardNormal(),
    int: (min, max) => min + Math.floor(float() * (max - min + 1)),
    chance: (p) => float() < p,
  };
}

/**
 * The failure a reefer is in; it shapes the physics of each step. Only the healthy mode exists so far;
 * the reference failure modes (poweroff, co2sensor, o2sensor, temperature, tempgrowth) belong here.
 */
export type FailureMode = 'none';

/** A reefer's physical state between two readings. */
export interface ReeferState {
  readonly containerId: string;
  readonly product: Product;
  failure: FailureMode;
  temperatureC: number;
  ambientTemperatureC: number;
  /** 1 holds the setpoint at 20 °C outside; more when pulling heat down, less when idling. */
  compressorEffort: number;
  /** Minutes the door was open during the last interval. */
  doorOpenMin: number;
  defrostCycle: number;
  latitude: number;
  longitude: number;
  /** Readings produced so far. */
  readings: number;
  nextMeasurementTimeMs: number;
}

export interface ReeferOptions {
  containerId: string;
  /** Product id from PRODUCTS, e.g. 'P05'; chosen by the seed when absent. */
  product?: string;
  seed: number;
  /** Time of the first reading, UTC ms. A fixed date by default, so a seed alone fixes every reading. */
  startTimeMs?: number;
  /** Simulated time between two readings; 5 minutes, as in the reference data. */
  intervalMs?: number;
  /** Inside temperature at the first reading; near the setpoint by default. */
  initialTemperatureC?: number;
  /** Position in degrees; a port chosen by the seed when absent. */
  latitude?: number;
  longitude?: number;
}

export interface Reefer {
  readonly containerId: string;
  readonly product: Product;
  /** The reading at the current simulated time; each call advances the reefer by one interval. */
  next(): ReeferReading;
  /** A copy of the current state, for inspection. */
  state(): ReeferState;
}

export const DEFAULT_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_START_TIME_MS = Date.UTC(2020, 0, 1);

const NOMINAL_AMBIENT_C = 20;
const NOMINAL_KILOWATTS = 2.7;
/** How fast the compressor pulls the inside temperature to the setpoint (first-order time constant). */
const PULL_DOWN_TAU_MIN = 20;
/** How fast the outside weather changes. */
const AMBIENT_TAU_MIN = 6 * 60;
/** How fast an open door lets the inside reach the outside temperature. */
const DOOR_TAU_MIN = 20;
const DOOR_OPEN_PROBABILITY = 0.01;
const DEFROST_CHANGE_PROBABILITY = 0.01;

// Reefer ports: default positions, jittered per container.
const PORTS: readonly (readonly [number, number])[] = [
  [37.8, -122.32], // Oakland
  [51.95, 4.14], // Rotterdam
  [1.26, 103.84], // Singapore
  [31.36, 121.62], // Shanghai
  [-23.98, -46.3], // Santos
  [-29.87, 31.03], // Durban
];

// Vaccines are a rare, high-value cargo next to fresh produce.
const PRODUCT_WEIGHTS: Readonly<Record<string, number>> = { P06: 0.1 };

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  const r = Math.round(value * f) / f;
  return r === 0 ? 0 : r; // no -0 in the output
}

const round2 = (value: number): number => round(value, 2);

function pickProduct(rng: Rng): Product {
  const weights = PRODUCTS.map((p) => PRODUCT_WEIGHTS[p.id] ?? 1);
  let x = rng.float() * weights.reduce((s, w) => s + w, 0);
  for (const [i, product] of PRODUCTS.entries()) {
    x -= weights[i] ?? 0;
    if (x < 0) return product;
  }
  return PRODUCTS[0] as Product;
}

function findProduct(id: string): Product {
  const product = PRODUCTS.find((p) => p.id === id);
  if (!product) {
    throw new RangeError(`product: expected one of ${PRODUCTS.map((p) => p.id).join(', ')}, got "${id}"`);
  }
  return product;
}

/** One reefer whose readings follow from its state over simulated time, not independent draws. */
export function createReefer(options: ReeferOptions): Reefer {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs: expected a positive number, got ${intervalMs}`);
  const intervalMin = intervalMs / 60_000;

  // Set-up and dynamics draw from separate streams, so naming the product keeps the same weather.
  const setup = createRng(deriveSeed(options.seed, 1));
  const rng = createRng(deriveSeed(options.seed, 2));

  const product = options.product === undefined ? pickProduct(setup) : findProduct(options.product);
  const setpointC = product.targetTemperatureC;
  const port = PORTS[setup.int(0, PORTS.length - 1)] ?? PORTS[0]!;
  const latitude = options.latitude ?? port[0] + setup.normal(0, 0.02);
  const longitude = options.longitude ?? port[1] + setup.normal(0, 0.02);

  const pullDownFactor = Math.exp(-intervalMin / PULL_DOWN_TAU_MIN);
  const ambientFactor = Math.exp(-intervalMin / AMBIENT_TAU_MIN);
  // Keeps the ambient's stationary spread at σ≈1 whatever the interval.
  const ambientStepSd = Math.sqrt(1 - ambientFactor ** 2);

  const s: ReeferState = {
    containerId: options.containerId,
    product,
    failure: 'none',
    temperatureC: options.initialTemperatureC ?? setpointC + setup.normal(0, 0.5),
    ambientTemperatureC: setup.normal(NOMINAL_AMBIENT_C, 1),
    compressorEffort: 1,
    doorOpenMin: 0,
    defrostCycle: setup.int(3, 6),
    latitude,
    longitude,
    readings: 0,
    nextMeasurementTimeMs: options.startTimeMs ?? DEFAULT_START_TIME_MS,
  };

  const effortFor = (temperatureC: number, ambientC: number): number =>
    Math.min(2, Math.max(0.3, 1 + 0.15 * (temperatureC - setpointC) + 0.03 * (ambientC - NOMINAL_AMBIENT_C)));

  s.compressorEffort = effortFor(s.temperatureC, s.ambientTemperatureC);

  const step = (): void => {
    s.ambientTemperatureC =
      NOMINAL_AMBIENT_C + (s.ambientTemperatureC - NOMINAL_AMBIENT_C) * ambientFactor + rng.normal(0, ambientStepSd);

    s.doorOpenMin = 0;
    if (rng.chance(DOOR_OPEN_PROBABILITY)) {
      s.doorOpenMin = Math.min(intervalMin, 1 + rng.float() * 9);
      s.temperatureC += (s.ambientTemperatureC - s.temperatureC) * (1 - Math.exp(-s.doorOpenMin / DOOR_TAU_MIN));
    }

    // The compressor works in proportion to how far the box is from its setpoint, then pulls it back.
    s.compressorEffort = effortFor(s.temperatureC, s.ambientTemperatureC);
    s.temperatureC = setpointC + (s.temperatureC - setpointC) * pullDownFactor + rng.normal(0, 0.3);

    if (rng.chance(DEFROST_CHANGE_PROBABILITY)) s.defrostCycle = rng.int(3, 6);
    s.nextMeasurementTimeMs += intervalMs;
  };

  const read = (): ReeferReading => ({
    container_id: s.containerId,
    measurement_time: s.nextMeasurementTimeMs,
    product_id: product.id,
    temperature: round2(s.temperatureC),
    target_temperature: setpointC,
    ambient_temperature: round2(s.ambientTemperatureC),
    kilowatts: round2(Math.max(0, NOMINAL_KILOWATTS * s.compressorEffort + rng.normal(0, 0.1))),
    time_door_open: round2(s.doorOpenMin),
    content_type: product.contentType,
    defrost_cycle: s.defrostCycle,
    oxygen_level: round2(rng.normal(21, 0.3)),
    nitrogen_level: round2(rng.normal(78, 0.3)),
    humidity_level: round2(rng.normal(product.humidityPercent, 1)),
    carbon_dioxide_level: round2(Math.max(0, rng.normal(4, 0.2))),
    fan_1: true,
    fan_2: true,
    fan_3: true,
    latitude: round(s.latitude, 4),
    longitude: round(s.longitude, 4),
    maintenance_required: false,
  });

  return {
    containerId: s.containerId,
    product,
    next() {
      if (s.readings > 0) step();
      s.readings += 1;
      return read();
    },
    state: () => ({ ...s }),
  };
}

export interface FleetModelOptions {
  devices: number;
  seed: number;
  /** Container ids are the prefix and a zero-padded number: C0001, C0002 … */
  containerPrefix?: string;
  startTimeMs?: number;
  intervalMs?: number;
}

/** Container id of the device at a 0-based index. */
export function containerIdFor(prefix: string, index: number, devices: number): string {
  // At least 4 digits, so a container keeps its id whatever the fleet's size (up to 9,999).
  const width = Math.max(4, String(devices).length);
  return `${prefix}${String(index + 1).padStart(width, '0')}`;
}

/** A fleet of reefers, each with its own seed stream derived from the fleet's seed. */
export function createFleetModel(options: FleetModelOptions): Reefer[] {
  const { devices, seed } = options;
  if (!Number.isInteger(devices) || devices < 1) {
    throw new RangeError(`devices: expected a positive integer, got ${devices}`);
  }
  const prefix = options.containerPrefix ?? 'C';
  return Array.from({ length: devices }, (_, i) =>
    createReefer({
      containerId: containerIdFor(prefix, i, devices),
      seed: deriveSeed(seed, i + 1),
      startTimeMs: options.startTimeMs,
      intervalMs: options.intervalMs,
    }),
  );
}
