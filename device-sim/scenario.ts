import { parseDocument } from 'yaml';
import { z } from 'zod';
import {
  createRng,
  deriveSeed,
  FAILURE_MODES,
  isFailureMode,
  type FailureWindow,
  type RandomFailures,
  type ReferenceFailureMode,
} from './reefer-model.js';

/** Which containers a failure rule hits: named ones, or a share of the fleet chosen by the seed. */
export type FailureTarget = { readonly containers: readonly string[] } | { readonly fraction: number };

/**
 * When a failure starts: at a reading (0 is the first), at a simulated time, or after some simulated
 * time since the first reading. A time falls on the first reading at or after it.
 */
export type FailureStart = { readonly reading: number } | { readonly timeMs: number } | { readonly afterMs: number };

export interface FailureRule {
  readonly target: FailureTarget;
  readonly mode: ReferenceFailureMode;
  readonly start: FailureStart;
  /** Readings it lasts; to the end of the run when absent. */
  readonly readings?: number;
  /** Where the rule was written (`scenario.yaml failures[2]`, `--failure …`), for messages. */
  readonly origin: string;
}

/** Failures to inject into a run: scheduled ones, and optionally random ones. */
export interface Scenario {
  readonly failures: readonly FailureRule[];
  readonly random?: RandomFailures;
}

/** A scenario that cannot be used; every problem names its key (or flag) and what was expected. */
export class ScenarioError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'ScenarioError';
    this.problems = problems;
  }
}

export const EMPTY_SCENARIO: Scenario = Object.freeze({ failures: Object.freeze([]) });

/** Length of a random failure when the scenario does not say: 30 minutes to 3 hours of 5-minute readings. */
export const DEFAULT_RANDOM_FAILURE_READINGS = [6, 36] as const;

const CONTAINER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MODES_TEXT = FAILURE_MODES.join(', ');

/** Milliseconds of a duration such as `90s`, `30m`, `2h`, `1.5d`; undefined when it is not one. */
export function parseDuration(raw: string): number | undefined {
  const match = DURATION.exec(raw.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNIT_MS[match[2]!]!);
}

/** UTC ms of an ISO 8601 time or the reference's `YYYY-MM-DD HH:MM:SS`; a time without a zone is UTC. */
export function parseSimulatedTime(raw: string): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?$/.exec(raw.trim());
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T${match[2]}${match[3] ?? 'Z'}`);
  return Number.isNaN(ms) ? undefined : ms;
}

const mode = z.string({ error: `expected one of ${MODES_TEXT}` }).refine(isFailureMode, `expected one of ${MODES_TEXT}`);
const containerId = z.string({ error: 'expected a container id' }).regex(CONTAINER_ID, "expected a container id (letters, digits, '-' or '_')");
const wholeReadings = (what: string, min: number) =>
  z.number({ error: `expected ${what}` }).int(`expected ${what}`).min(min, `expected ${what}`);

const ruleSchema = z
  .object({
    container: z.union([containerId, z.array(containerId).min(1, 'expected at least one container id')], {
      error: 'expected a container id or a list of them',
    }),
    fraction: z.number({ error: 'expected a number > 0 and ≤ 1' }).gt(0, 'expected a number > 0 and ≤ 1').lte(1, 'expected a number > 0 and ≤ 1'),
    mode,
    startReading: wholeReadings('a reading index ≥ 0 (0 is the first reading)', 0),
    startTime: z
      .string({ error: 'expected a time such as 2024-05-01T12:00:00Z' })
      .refine((v) => parseSimulatedTime(v) !== undefined, 'expected a time such as 2024-05-01T12:00:00Z'),
    startAfter: z
      .string({ error: 'expected a duration such as 90s, 30m, 2h or 1d' })
      .refine((v) => parseDuration(v) !== undefined, 'expected a duration such as 90s, 30m, 2h or 1d'),
    readings: wholeReadings('a positive number of readings', 1),
  })
  .partial({ container: true, fraction: true, startReading: true, startTime: true, startAfter: true, readings: true })
  .strict()
  .superRefine((rule, ctx) => {
    const targets = ['container', 'fraction'].filter((k) => k in rule);
    if (targets.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `expected exactly one of container or fraction, got ${targets.length === 0 ? 'neither' : 'both'}` });
    }
    const starts = ['startReading', 'startTime', 'startAfter'].filter((k) => k in rule);
    if (starts.length > 1) {
      ctx.addIssue({ code: 'custom', message: `expected at most one of startReading, startTime or startAfter, got ${starts.join(' and ')}` });
    }
  });

const randomSchema = z
  .object({
    rate: z.number({ error: 'expected a chance per reading from 0 to 1' }).min(0, 'expected a chance per reading from 0 to 1').max(1, 'expected a chance per reading from 0 to 1'),
    modes: z.array(mode, { error: `expected a list of modes from ${MODES_TEXT}` }).min(1, 'expected at least one mode'),
    readings: z
      .tuple([wholeReadings('a positive number of readings', 1), wholeReadings('a positive number of readings', 1)], {
        error: 'expected [min, max] readings',
      })
      .refine(([min, max]) => min <= max, 'expected [min, max] readings with min ≤ max'),
  })
  .partial({ modes: true, readings: true })
  .strict();

const scenarioSchema = z
  .object({
    failures: z.array(ruleSchema, { error: 'expected a list of failure rules' }),
    random: randomSchema,
  })
  .partial()
  .strict();

type ScenarioDocument = z.infer<typeof scenarioSchema>;

/** The keys allowed in the mapping at a path of the scenario document. */
function schemaAt(path: readonly PropertyKey[]): Record<string, unknown> {
  if (path[0] === 'failures') return ruleSchema.shape;
  if (path[0] === 'random') return randomSchema.shape;
  return scenarioSchema.shape;
}

function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  return out || '(top level)';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const part of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[part] : undefined;
  return v;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function ruleFromDocument(rule: NonNullable<ScenarioDocument['failures']>[number], origin: string): FailureRule {
  const target: FailureTarget =
    rule.fraction !== undefined
      ? { fraction: rule.fraction }
      : { containers: typeof rule.container === 'string' ? [rule.container] : [...(rule.container ?? [])] };
  const start: FailureStart =
    rule.startTime !== undefined
      ? { timeMs: parseSimulatedTime(rule.startTime)! }
      : rule.startAfter !== undefined
        ? { afterMs: parseDuration(rule.startAfter)! }
        : { reading: rule.startReading ?? 0 };
  return { target, mode: rule.mode as ReferenceFailureMode, start, readings: rule.readings, origin };
}

/**
 * Reads a scenario written in YAML or JSON (JSON is YAML too). Throws a ScenarioError naming every
 * bad key, its value and what was expected.
 */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    // The first line of a YAML error says what and where ("… at line 3, column 4:"); the rest quotes the file.
    throw new ScenarioError(doc.errors.map((e) => `${source}: ${e.message.split('\n')[0]!.replace(/:$/, '')}`));
  }
  const raw: unknown = doc.toJS();
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ScenarioError([`${source}: expected a mapping with "failures" and/or "random", got ${show(raw ?? null)}`]);
  }
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) {
    const problems: string[] = [];
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        const known = Object.keys(schemaAt(issue.path)).join(', ');
        for (const key of issue.keys) problems.push(`${source}: ${keyPath([...issue.path, key])}: unknown key; expected one of ${known}`);
        continue;
      }
      const value = valueAt(raw, issue.path);
      // A problem with a whole rule (two targets, say) names its keys; repeating the rule would not help.
      const isRule = typeof value === 'object' && value !== null && !Array.isArray(value);
      const got = isRule ? '' : `, got ${show(value)}`;
      problems.push(`${source}: ${keyPath(issue.path)}: ${issue.message}${got}`);
    }
    throw new ScenarioError(problems);
  }
  const { failures = [], random } = result.data;
  return {
    failures: failures.map((rule, i) => ruleFromDocument(rule, `${source} failures[${i}]`)),
    random: random && {
      ratePerReading: random.rate,
      modes: (random.modes ?? [...FAILURE_MODES]) as ReferenceFailureMode[],
      minReadings: random.readings?.[0] ?? DEFAULT_RANDOM_FAILURE_READINGS[0],
      maxReadings: random.readings?.[1] ?? DEFAULT_RANDOM_FAILURE_READINGS[1],
    },
  };
}

/** The syntax of one `--failure` value, for help and messages. */
export const FAILURE_FLAG_SYNTAX = 'MODE:TARGET[@START][+READINGS]';

/**
 * Parses a `--failure` value such as `co2sensor:C0003@10+20` (container C0003 from reading 10 for 20
 * readings) or `poweroff:5%@2h+12` (5 % of the fleet, from 2 h of simulated time, for 12 readings).
 * TARGET is a container id, ids joined by commas, or a percentage of the fleet; START is a reading
 * index or a duration of simulated time; without START from the first reading, without READINGS to
 * the end. Returns what was expected when the value does not parse.
 */
export function parseFailureFlag(raw: string, origin = `--failure ${raw}`): FailureRule | { expected: string } {
  const fail = (detail: string): { expected: string } => ({ expected: `${FAILURE_FLAG_SYNTAX} (${detail})` });
  const match = /^([a-z0-9]+):([^@+]+)(?:@([^+]+))?(?:\+(.+))?$/.exec(raw);
  if (!match) return fail('e.g. co2sensor:C0003@10+20');
  const [, modeText, targetText, startText, readingsText] = match as unknown as [string, string, string, string?, string?];
  if (!isFailureMode(modeText)) return fail(`MODE one of ${MODES_TEXT}`);

  let target: FailureTarget;
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(targetText);
  if (percent) {
    const fraction = Number(percent[1]) / 100;
    if (!(fraction > 0 && fraction <= 1)) return fail('TARGET a percentage > 0 and ≤ 100');
    target = { fraction };
  } else {
    const containers = targetText.split(',');
    if (!containers.every((c) => CONTAINER_ID.test(c))) return fail('TARGET a container id, ids joined by commas, or a percentage such as 10%');
    target = { containers };
  }

  let start: FailureStart = { reading: 0 };
  if (startText !== undefined) {
    const afterMs = parseDuration(startText);
    if (/^\d+$/.test(startText)) start = { reading: Number(startText) };
    else if (afterMs !== undefined) start = { afterMs };
    else return fail('START a reading index or a duration such as 90s, 30m, 2h');
  }

  let readings: number | undefined;
  if (readingsText !== undefined) {
    readings = Number(readingsText);
    if (!/^[1-9]\d*$/.test(readingsText) || !Number.isSafeInteger(readings)) return fail('READINGS a positive integer');
  }
  return { target, mode: modeText, start, readings, origin };
}

/** Resolves a scenario against one run: which containers fail, from which reading, for how long. */
export interface ScenarioRun {
  /** Container ids of the fleet, in device order. */
  containerIds: readonly string[];
  seed: number;
  /** Simulated time of every device's first reading, and between two readings. */
  startTimeMs: number;
  intervalMs: number;
}

export interface ResolvedScenario {
  /** Scheduled failures per container id, in scenario order (the first listed wins an overlap). */
  failures: Map<string, FailureWindow[]>;
  random?: RandomFailures;
}

// Its own stream, so choosing containers for a fraction leaves every reefer's readings as they were.
const STREAM_FRACTION = 0xfa11;

function startReading(start: FailureStart, run: ScenarioRun): number {
  if ('reading' in start) return start.reading;
  const offsetMs = 'afterMs' in start ? start.afterMs : start.timeMs - run.startTimeMs;
  // A failure that began before the run still covers the readings left of it.
  return Math.ceil(offsetMs / run.intervalMs);
}

/** Picks ⌈fraction × fleet⌉ containers (at least one), the same ones for the same seed and rule. */
function pickFraction(fraction: number, run: ScenarioRun, ruleIndex: number): string[] {
  const ids = [...run.containerIds];
  const count = Math.min(ids.length, Math.max(1, Math.ceil(fraction * ids.length - 1e-9)));
  const rng = createRng(deriveSeed(run.seed, STREAM_FRACTION, ruleIndex));
  for (let i = 0; i < count; i++) {
    const j = rng.int(i, ids.length - 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, count);
}

/** Turns rules into per-container failure windows. Throws a ScenarioError for a container not in the fleet. */
export function resolveScenario(scenario: Scenario, run: ScenarioRun): ResolvedScenario {
  const known = new Set(run.containerIds);
  const failures = new Map<string, FailureWindow[]>();
  const problems: string[] = [];
  scenario.failures.forEach((rule, i) => {
    let targets: readonly string[];
    if ('fraction' in rule.target) {
      targets = pickFraction(rule.target.fraction, run, i);
    } else {
      const unknown = rule.target.containers.filter((c) => !known.has(c));
      if (unknown.length > 0) {
        const first = run.containerIds[0];
        const last = run.containerIds.at(-1);
        problems.push(
          `${rule.origin}: container ${unknown.map((c) => `"${c}"`).join(', ')} is not in the fleet; expected one of ${first}${first === last ? '' : ` … ${last}`}`,
        );
        return;
      }
      targets = rule.target.containers;
    }
    const window: FailureWindow = { mode: rule.mode, startReading: startReading(rule.start, run), readings: rule.readings ?? Infinity };
    for (const id of targets) {
      const list = failures.get(id);
      if (list) list.push(window);
      else failures.set(id, [window]);
    }
  });
  if (problems.length > 0) throw new ScenarioError(problems);
  return { failures, random: scenario.random };
}

/** A scenario file with the command line's additions: its rules after the file's, its rate over the file's. */
export function mergeScenario(
  file: Scenario | undefined,
  flags: { failures?: readonly FailureRule[]; failureRatePerReading?: number },
): Scenario {
  const base = file ?? EMPTY_SCENARIO;
  let random = base.random;
  if (flags.failureRatePerReading !== undefined) {
    random = {
      modes: [...FAILURE_MODES],
      minReadings: DEFAULT_RANDOM_FAILURE_READINGS[0],
      maxReadings: DEFAULT_RANDOM_FAILURE_READINGS[1],
      ...base.random,
      ratePerReading: flags.failureRatePerReading,
    };
  }
  return { failures: [...base.failures, ...(flags.failures ?? [])], random };
}
