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

/**
 * mulberry32 for uniforms, Box–Muller for normals. A class rather than closures: a fleet of 10,000
 * reefers holds 50,000 of them, and shared prototype methods keep each to a few dozen bytes.
 */
class Mulberry32 implements Rng {
  private a: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    this.a = deriveSeed(seed);
  }

  float(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = Math.imul(this.a ^ (this.a >>> 15), 1 | this.a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  normal(mean: number, sd: number): number {
    return mean + sd * this.standardNormal();
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  private standardNormal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    const u1 = 1 - this.float(); // (0, 1]: log(0) would be -Infinity
    const u2 = this.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
}

export function createRng(seed: number): Rng {
  return new Mulberry32(seed);
}

/** The reference architecture's failure modes (see DESIGN.md, "Reference failure modes and rules"). */
export const FAILURE_MODES = ['poweroff', 'co2sensor', 'o2sensor', 'temperature', 'tempgrowth'] as const;
export type ReferenceFailureMode = (typeof FAILURE_MODES)[number];

/** The failure a reefer is in at one reading; it shapes the physics of the step and the reading. */
export type FailureMode = 'none' | ReferenceFailureMode;

export function isFailureMode(value: string): value is ReferenceFailureMode {
  return (FAILURE_MODES as readonly string[]).includes(value);
}

/** What the simulator knows about a reading and a real device would not say: the ground truth. */
export interface ReadingLabel {
  /** The failure active when the reading was taken; 'none' when healthy. */
  readonly failure: FailureMode;
}

export interface LabelledReading {
  readonly reading: ReeferReading;
  readonly label: ReadingLabel;
}

/**
 * A failure over a run of readings, counted from 0 (the first reading). `startReading` may be
 * negative: a failure that began before the run is active from the first reading until it ends.
 */
export interface FailureWindow {
  readonly mode: ReferenceFailureMode;
  readonly startReading: number;
  /** How many readings it lasts; Infinity for the rest of the run. */
  readonly readings: number;
}

/** Failures that start at random, drawn from the reefer's own seed. */
export interface RandomFailures {
  /** Chance, at each reading of a reefer not already in a random failure, that one starts. */
  readonly ratePerReading: number;
  /** Modes to draw from, uniformly. */
  readonly modes: readonly ReferenceFailureMode[];
  /** Length of a random failure in readings, drawn uniformly from this range (inclusive). */
  readonly minReadings: number;
  readonly maxReadings: number;
}

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
  /** Defrost cycles started in the last 24 h of simulated time. */
  defrostCycle: number;
  /** Minutes left of the defrost in progress; 0 when not defrosting. */
  defrostRemainingMin: number;
  /** Minutes of cooling until the next defrost starts. */
  minutesToDefrost: number;
  oxygenPercent: number;
  carbonDioxidePercent: number;
  nitrogenPercent: number;
  humidityPercent: number;
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
  /** Scheduled failures; where two overlap, the one listed first applies. They win over random ones. */
  failures?: readonly FailureWindow[];
  randomFailures?: RandomFailures;
}

export interface Reefer {
  readonly containerId: string;
  readonly product: Product;
  /** The reading at the current simulated time; each call advances the reefer by one interval. */
  next(): ReeferReading;
  /** Like next(), with the failure active at that reading. */
  sample(): LabelledReading;
  /** A copy of the current state, for inspection. */
  state(): ReeferState;
  /** The setpoint now, °C: the product's until a command changes it. */
  targetTemperature(): number;
  /** Changes the setpoint (a command); the inside temperature follows over the next readings. */
  setTargetTemperature(celsius: number): void;
  /** Starts a defrost now (a command); false when one is already running. */
  startDefrost(): boolean;
  /** Maintenance (a command): ends the random failure in progress, if any; scheduled ones run their course. True when one ended. */
  repair(): boolean;
}

export const DEFAULT_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_START_TIME_MS = Date.UTC(2020, 0, 1);

const NOMINAL_AMBIENT_C = 20;
const NOMINAL_KILOWATTS = 2.7;
const EFFORT_MIN = 0.3;
const EFFORT_MAX = 2;
/** How fast the compressor pulls the inside temperature to the setpoint (first-order time constant). */
const PULL_DOWN_TAU_MIN = 20;
/** Spread of the inside temperature around the setpoint from load and airflow, in steady state. */
const TEMPERATURE_SD_C = 0.5;
/** How fast an insulated box without power warms to the outside temperature. */
const POWER_OFF_TAU_MIN = 4 * 60;
/** How fast the outside weather changes. */
const AMBIENT_TAU_MIN = 6 * 60;
/** How fast an open door lets the inside reach the outside temperature. */
const DOOR_TAU_MIN = 20;
/** Door openings per simulated minute: about one reading in a hundred at 5-minute readings. */
const DOOR_OPENINGS_PER_MIN = 0.002;
const DOOR_OPEN_MAX_MIN = 10;
/**
 * Cooling time between two defrosts. With a defrost lasting 20–30 minutes, a cycle takes 5–8 h, so
 * 3–5 of them start in any 24 h: the reference's defrost_cycle values.
 */
const DEFROST_GAP_MIN = [4.5 * 60, 7.5 * 60] as const;
const DEFROST_LENGTH_MIN = [20, 30] as const;
/** The heaters melt the ice off the evaporator and warm the air a little; the compressor is off. */
const DEFROST_RISE_C = 5;
const DEFROST_TAU_MIN = 60;
const DEFROST_KILOWATTS = 1.8;
const DAY_MS = 24 * 60 * 60_000;
/** Fresh-air exchange through the vents: how fast the atmosphere returns to its equilibrium. */
const GAS_TAU_MIN = 2 * 60;
const GAS_DRIFT_SD = 0.15;
const HUMIDITY_TAU_MIN = 30;
/** Moisture evens out more slowly than heat through an open door: the humid cargo buffers it. */
const DOOR_HUMIDITY_TAU_MIN = 60;
const HUMIDITY_SD = 1;
/** Without the evaporator drying the air, produce and condensation push humidity up. */
const POWER_OFF_HUMIDITY_PERCENT = 85;
const OUTSIDE_HUMIDITY_PERCENT = 70;
/** The reference's baseline atmosphere (its CO2 of ≈4 % is far above outdoor air; kept as it is). */
const AIR_O2_PERCENT = 21;
const AIR_CO2_PERCENT = 4;
const AIR_N2_PERCENT = 78;
/** Respiration doubles for every 10 °C of warming (Q10 ≈ 2 for fresh produce), within these bounds. */
const Q10_FACTOR_BOUNDS = [0.5, 3] as const;
const STILL_AIR_NOISE_FACTOR = 0.2;
// The reference's sensor-failure signatures (DESIGN.md). Temperature reads target + 21 ± 1 rather than
// + 20 ± 1, so most readings, not half of them, cross the |t − target| > 20 anomaly rule.
const TEMPERATURE_FAILURE_OFFSET_C = 21;
const TEMPERATURE_FAILURE_SD_C = 1;
const O2_FAILURE_PERCENT = [11, 2] as const;
const CO2_FAILURE_PERCENT = [12, 2] as const;
const TEMPGROWTH_C_PER_READING = 2;

/**
 * How a product's respiration shifts the atmosphere at equilibrium with the vents: percentage points
 * of O2 consumed and of CO2 emitted (respiratory quotient ≈ 1). Climacteric fruit ripen during the
 * voyage, so their respiration grows from a fifth of its full rate with this time constant.
 */
interface Respiration {
  readonly shiftPercent: number;
  readonly ripeningTauMin?: number;
}

const RESPIRATION: Readonly<Record<string, Respiration>> = {
  P01: { shiftPercent: 0.3 }, // carrots
  P02: { shiftPercent: 1.5, ripeningTauMin: 36 * 60 }, // bananas
  P03: { shiftPercent: 0.3 }, // salad
  P04: { shiftPercent: 1.5, ripeningTauMin: 48 * 60 }, // avocados
  P05: { shiftPercent: 0.6, ripeningTauMin: 72 * 60 }, // tomatoes
  P06: { shiftPercent: 0 }, // vaccines do not breathe
};

/** Sealed cargo: vaccine containers are not opened in transit. */
const SEALED_PRODUCTS: ReadonlySet<string> = new Set(['P06']);

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

// Independent random streams per reefer, so that a change in one (naming the product, scheduling a
// failure, a defrost shifted by a power cut) leaves the draws of the others as they were.
const STREAM_SETUP = 1;
const STREAM_PROCESS = 2;
const STREAM_RANDOM_FAILURES = 3;
const STREAM_SENSOR_FAULTS = 4;
const STREAM_DEFROST = 5;

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  const r = Math.round(value * f) / f;
  return r === 0 ? 0 : r; // no -0 in the output
}

const round2 = (value: number): number => round(value, 2);
const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));

/** Exact first-order relaxation toward `target` over `minutes`, whatever the step. */
function relax(value: number, target: number, minutes: number, tauMin: number): number {
  return target + (value - target) * Math.exp(-minutes / tauMin);
}

/** Step spread of an Ornstein–Uhlenbeck process with stationary spread `sd`, over `minutes`. */
function ouStepSd(sd: number, minutes: number, tauMin: number): number {
  return sd * Math.sqrt(1 - Math.exp((-2 * minutes) / tauMin));
}

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

function checkRandomFailures(r: RandomFailures): void {
  if (!(r.ratePerReading >= 0 && r.ratePerReading <= 1)) {
    throw new RangeError(`randomFailures.ratePerReading: expected a number from 0 to 1, got ${r.ratePerReading}`);
  }
  if (r.modes.length === 0) throw new RangeError('randomFailures.modes: expected at least one failure mode, got none');
  if (!(Number.isInteger(r.minReadings) && r.minReadings >= 1 && Number.isInteger(r.maxReadings) && r.maxReadings >= r.minReadings)) {
    throw new RangeError(
      `randomFailures.minReadings/maxReadings: expected integers with 1 ≤ min ≤ max, got ${r.minReadings} and ${r.maxReadings}`,
    );
  }
}

/** One reefer whose readings follow from its state over simulated time, not independent draws. */
export function createReefer(options: ReeferOptions): Reefer {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs: expected a positive number, got ${intervalMs}`);
  const intervalMin = intervalMs / 60_000;
  const windows = options.failures ?? [];
  const random = options.randomFailures;
  if (random) checkRandomFailures(random);

  const setup = createRng(deriveSeed(options.seed, STREAM_SETUP));
  const rng = createRng(deriveSeed(options.seed, STREAM_PROCESS));
  const failureRng = createRng(deriveSeed(options.seed, STREAM_RANDOM_FAILURES));
  const faultRng = createRng(deriveSeed(options.seed, STREAM_SENSOR_FAULTS));
  const defrostRng = createRng(deriveSeed(options.seed, STREAM_DEFROST));

  const product = options.product === undefined ? pickProduct(setup) : findProduct(options.product);
  // The product's setpoint until a command changes it.
  let setpointC = product.targetTemperatureC;
  const respiration = RESPIRATION[product.id] ?? { shiftPercent: 0 };
  const doorsOpen = !SEALED_PRODUCTS.has(product.id);
  const port = PORTS[setup.int(0, PORTS.length - 1)] ?? PORTS[0]!;
  const latitude = options.latitude ?? port[0] + setup.normal(0, 0.02);
  const longitude = options.longitude ?? port[1] + setup.normal(0, 0.02);
  const startTimeMs = options.startTimeMs ?? DEFAULT_START_TIME_MS;

  const ambientFactor = Math.exp(-intervalMin / AMBIENT_TAU_MIN);
  // Keeps the ambient's stationary spread at σ≈1 whatever the interval.
  const ambientStepSd = Math.sqrt(1 - ambientFactor ** 2);
  const doorChance = 1 - Math.exp(-DOOR_OPENINGS_PER_MIN * intervalMin);

  const s: ReeferState = {
    containerId: options.containerId,
    product,
    failure: 'none',
    temperatureC: options.initialTemperatureC ?? setpointC + setup.normal(0, 0.5),
    ambientTemperatureC: setup.normal(NOMINAL_AMBIENT_C, 1),
    compressorEffort: 1,
    doorOpenMin: 0,
    defrostCycle: 0,
    defrostRemainingMin: 0,
    minutesToDefrost: 0,
    oxygenPercent: AIR_O2_PERCENT,
    carbonDioxidePercent: AIR_CO2_PERCENT,
    nitrogenPercent: AIR_N2_PERCENT,
    humidityPercent: product.humidityPercent,
    latitude,
    longitude,
    readings: 0,
    nextMeasurementTimeMs: startTimeMs,
  };

  const defrostGapMin = (): number => DEFROST_GAP_MIN[0] + defrostRng.float() * (DEFROST_GAP_MIN[1] - DEFROST_GAP_MIN[0]);
  const defrostLengthMin = (): number =>
    DEFROST_LENGTH_MIN[0] + defrostRng.float() * (DEFROST_LENGTH_MIN[1] - DEFROST_LENGTH_MIN[0]);

  // The reefer has been running before the first reading: its last day of defrosts is history.
  const defrostStartsMs: number[] = [];
  {
    const gapMin = defrostGapMin();
    s.minutesToDefrost = defrostRng.float() * gapMin;
    let pastMs = startTimeMs - (gapMin - s.minutesToDefrost) * 60_000;
    while (pastMs > startTimeMs - DAY_MS) {
      defrostStartsMs.unshift(pastMs);
      pastMs -= (defrostGapMin() + defrostLengthMin()) * 60_000;
    }
    s.defrostCycle = defrostStartsMs.length;
  }

  const minutesElapsed = (): number => (s.nextMeasurementTimeMs - startTimeMs) / 60_000;

  /** The atmosphere the vents and the product's respiration settle at, given how warm the box is. */
  const gasShiftPercent = (): number => {
    const ripeness =
      respiration.ripeningTauMin === undefined ? 1 : 1 - 0.8 * Math.exp(-minutesElapsed() / respiration.ripeningTauMin);
    const q10 = clamp(2 ** ((s.temperatureC - setpointC) / 10), Q10_FACTOR_BOUNDS[0], Q10_FACTOR_BOUNDS[1]);
    return respiration.shiftPercent * ripeness * q10;
  };
  s.oxygenPercent = AIR_O2_PERCENT - gasShiftPercent();
  s.carbonDioxidePercent = AIR_CO2_PERCENT + gasShiftPercent();

  const effortFor = (temperatureC: number, ambientC: number): number =>
    clamp(1 + 0.15 * (temperatureC - setpointC) + 0.03 * (ambientC - NOMINAL_AMBIENT_C), EFFORT_MIN, EFFORT_MAX);

  s.compressorEffort = effortFor(s.temperatureC, s.ambientTemperatureC);

  let randomFailure: { mode: ReferenceFailureMode; untilReading: number } | null = null;

  /** The failure at reading `index`: a scheduled one first, else a random one, else none. */
  const failureAt = (index: number): FailureMode => {
    if (random) {
      // One draw per reading whatever happens, so the schedule depends on the seed alone.
      const starts = failureRng.chance(random.ratePerReading);
      if (randomFailure && index >= randomFailure.untilReading) randomFailure = null;
      if (starts && !randomFailure) {
        const mode = random.modes[failureRng.int(0, random.modes.length - 1)]!;
        randomFailure = { mode, untilReading: index + failureRng.int(random.minReadings, random.maxReadings) };
      }
    }
    for (const w of windows) {
      if (index >= w.startReading && index < w.startReading + w.readings) return w.mode;
    }
    return randomFailure?.mode ?? 'none';
  };

  /** Cooling, with the defrost cycles that interrupt it, over `minutes`. */
  const cool = (minutes: number): void => {
    let left = minutes;
    while (left > 0) {
      if (s.defrostRemainingMin > 0) {
        const m = Math.min(left, s.defrostRemainingMin);
        s.temperatureC = relax(s.temperatureC, setpointC + DEFROST_RISE_C, m, DEFROST_TAU_MIN);
        s.defrostRemainingMin -= m;
        left -= m;
        if (s.defrostRemainingMin <= 0) {
          s.defrostRemainingMin = 0;
          s.minutesToDefrost = defrostGapMin();
        }
      } else {
        const m = Math.min(left, s.minutesToDefrost);
        s.temperatureC = relax(s.temperatureC, setpointC, m, PULL_DOWN_TAU_MIN);
        s.minutesToDefrost -= m;
        left -= m;
        if (s.minutesToDefrost <= 0) {
          s.minutesToDefrost = 0;
          s.defrostRemainingMin = defrostLengthMin();
          const atMs = s.nextMeasurementTimeMs + (intervalMin - left) * 60_000;
          defrostStartsMs.push(atMs);
        }
      }
    }
  };

  const step = (failure: FailureMode): void => {
    s.nextMeasurementTimeMs += intervalMs;
    s.ambientTemperatureC =
      NOMINAL_AMBIENT_C + (s.ambientTemperatureC - NOMINAL_AMBIENT_C) * ambientFactor + rng.normal(0, ambientStepSd);

    s.doorOpenMin = 0;
    if (rng.chance(doorChance) && doorsOpen) {
      s.doorOpenMin = Math.min(intervalMin, 1 + rng.float() * (DOOR_OPEN_MAX_MIN - 1));
      s.temperatureC = relax(s.temperatureC, s.ambientTemperatureC, s.doorOpenMin, DOOR_TAU_MIN);
      s.humidityPercent = relax(s.humidityPercent, OUTSIDE_HUMIDITY_PERCENT, s.doorOpenMin, DOOR_HUMIDITY_TAU_MIN);
    }
    const closedMin = intervalMin - s.doorOpenMin;
    const temperatureNoise = rng.normal(0, ouStepSd(TEMPERATURE_SD_C, intervalMin, PULL_DOWN_TAU_MIN));

    const powered = failure !== 'poweroff';
    if (!powered) {
      // Without fans the air is still: it wanders far less than when the compressor cycles.
      s.temperatureC = relax(s.temperatureC, s.ambientTemperatureC, closedMin, POWER_OFF_TAU_MIN) + temperatureNoise * STILL_AIR_NOISE_FACTOR;
    } else if (failure === 'tempgrowth') {
      // The compressor runs flat out and loses ground all the same (a refrigerant leak, say).
      if (s.temperatureC < s.ambientTemperatureC) {
        s.temperatureC = Math.min(s.temperatureC + TEMPGROWTH_C_PER_READING, s.ambientTemperatureC);
      }
    } else {
      cool(closedMin);
      s.temperatureC += temperatureNoise;
    }
    while (defrostStartsMs.length > 0 && defrostStartsMs[0]! <= s.nextMeasurementTimeMs - DAY_MS) defrostStartsMs.shift();
    s.defrostCycle = defrostStartsMs.length;

    s.compressorEffort = !powered ? 0 : failure === 'tempgrowth' ? EFFORT_MAX : effortFor(s.temperatureC, s.ambientTemperatureC);

    const shift = gasShiftPercent();
    const gasSd = ouStepSd(GAS_DRIFT_SD, intervalMin, GAS_TAU_MIN);
    s.oxygenPercent = relax(s.oxygenPercent, AIR_O2_PERCENT - shift, intervalMin, GAS_TAU_MIN) + rng.normal(0, gasSd);
    s.carbonDioxidePercent =
      relax(s.carbonDioxidePercent, AIR_CO2_PERCENT + shift, intervalMin, GAS_TAU_MIN) + rng.normal(0, gasSd);
    s.nitrogenPercent = relax(s.nitrogenPercent, AIR_N2_PERCENT, intervalMin, GAS_TAU_MIN) + rng.normal(0, gasSd);
    const humidityTarget = powered ? product.humidityPercent : POWER_OFF_HUMIDITY_PERCENT;
    const humidityTauMin = powered ? HUMIDITY_TAU_MIN : POWER_OFF_TAU_MIN;
    s.humidityPercent =
      relax(s.humidityPercent, humidityTarget, closedMin, humidityTauMin) +
      rng.normal(0, ouStepSd(HUMIDITY_SD, intervalMin, HUMIDITY_TAU_MIN));
  };

  const read = (failure: FailureMode): ReeferReading => {
    const powered = failure !== 'poweroff';
    const defrosting = s.defrostRemainingMin > 0 && failure !== 'tempgrowth';
    // The sensors always take their noise draws, so a fault leaves the readings after it unchanged.
    const kilowattNoise = rng.normal(0, 0.1);
    const o2Noise = rng.normal(0, 0.1);
    const co2Noise = rng.normal(0, 0.1);
    const kilowatts = !powered
      ? 0
      : Math.max(0, (defrosting ? DEFROST_KILOWATTS : NOMINAL_KILOWATTS * s.compressorEffort) + kilowattNoise);
    const temperature =
      failure === 'temperature'
        ? faultRng.normal(setpointC + TEMPERATURE_FAILURE_OFFSET_C, TEMPERATURE_FAILURE_SD_C)
        : s.temperatureC;
    const oxygen = failure === 'o2sensor' ? faultRng.normal(...O2_FAILURE_PERCENT) : s.oxygenPercent + o2Noise;
    const carbonDioxide = failure === 'co2sensor' ? faultRng.normal(...CO2_FAILURE_PERCENT) : s.carbonDioxidePercent + co2Noise;
    return {
      container_id: s.containerId,
      measurement_time: s.nextMeasurementTimeMs,
      product_id: product.id,
      temperature: round2(temperature),
      target_temperature: setpointC,
      ambient_temperature: round2(s.ambientTemperatureC),
      kilowatts: round2(kilowatts),
      time_door_open: round2(s.doorOpenMin),
      content_type: product.contentType,
      defrost_cycle: s.defrostCycle,
      oxygen_level: round2(clamp(oxygen, 0, 100)),
      nitrogen_level: round2(s.nitrogenPercent),
      humidity_level: round2(clamp(s.humidityPercent, 0, 100)),
      carbon_dioxide_level: round2(Math.max(0, carbonDioxide)),
      fan_1: powered,
      fan_2: powered,
      fan_3: powered,
      latitude: round(s.latitude, 4),
      longitude: round(s.longitude, 4),
      // The reference labels a reading as needing maintenance while its container is failing.
      maintenance_required: failure !== 'none',
    };
  };

  const sample = (): LabelledReading => {
    const failure = failureAt(s.readings);
    if (s.readings > 0) step(failure);
    s.failure = failure;
    s.readings += 1;
    return { reading: read(failure), label: { failure } };
  };

  return {
    containerId: s.containerId,
    product,
    next: () => sample().reading,
    sample,
    state: () => ({ ...s }),
    targetTemperature: () => setpointC,
    setTargetTemperature(celsius) {
      if (!Number.isFinite(celsius)) throw new RangeError(`targetTemperature: expected a finite number of °C, got ${celsius}`);
      setpointC = celsius;
    },
    startDefrost() {
      if (s.defrostRemainingMin > 0) return false;
      s.defrostRemainingMin = defrostLengthMin();
      s.minutesToDefrost = 0;
      defrostStartsMs.push(s.nextMeasurementTimeMs);
      s.defrostCycle = defrostStartsMs.length;
      return true;
    },
    repair() {
      if (!randomFailure) return false;
      randomFailure = null;
      return true;
    },
  };
}

export interface FleetModelOptions {
  devices: number;
  seed: number;
  /** Container ids are the prefix and a zero-padded number: C0001, C0002 … */
  containerPrefix?: string;
  startTimeMs?: number;
  intervalMs?: number;
  /** Scheduled failures per container id. */
  failures?: ReadonlyMap<string, readonly FailureWindow[]>;
  /** Random failures, the same rule for every reefer, each drawing from its own seed. */
  randomFailures?: RandomFailures;
}

/** Container id of the device at a 0-based index. */
export function containerIdFor(prefix: string, index: number, devices: number): string {
  // At least 4 digits, so a container keeps its id whatever the fleet's size (up to 9,999).
  const width = Math.max(4, String(devices).length);
  return `${prefix}${String(index + 1).padStart(width, '0')}`;
}

/** Container ids of a fleet, in device order. */
export function fleetContainerIds(devices: number, prefix = 'C'): string[] {
  return Array.from({ length: devices }, (_, i) => containerIdFor(prefix, i, devices));
}

/** A fleet of reefers, each with its own seed stream derived from the fleet's seed. */
export function createFleetModel(options: FleetModelOptions): Reefer[] {
  const { devices, seed } = options;
  if (!Number.isInteger(devices) || devices < 1) {
    throw new RangeError(`devices: expected a positive integer, got ${devices}`);
  }
  return fleetContainerIds(devices, options.containerPrefix ?? 'C').map((containerId, i) =>
    createReefer({
      containerId,
      seed: deriveSeed(seed, i + 1),
      startTimeMs: options.startTimeMs,
      intervalMs: options.intervalMs,
      failures: options.failures?.get(containerId),
      randomFailures: options.randomFailures,
    }),
  );
}
