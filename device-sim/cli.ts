#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ReeferReading } from '../schemas/reefer-reading.js';
import { openCsvExport, type CsvExport } from './csv-export.js';
import { createFleet, type FleetProgress } from './fleet.js';
import type { Qos } from './mqtt-transport.js';
import { isPayloadForm, PAYLOAD_FORMS, type PayloadForm } from './payload-forms.js';
import type { ReadingLabel } from './reefer-model.js';
import { createSerialFleet } from './serial-fleet.js';
import { isSerialFraming, SERIAL_FRAMINGS, type SerialFraming } from './serial-forms.js';
import { mergeScenario, parseFailureFlag, parseScenario, ScenarioError, FAILURE_FLAG_SYNTAX, type FailureRule, type Scenario } from './scenario.js';

export interface SimOptions {
  /** Print usage and exit. */
  help: boolean;
  devices: number;
  ratePerSecond: number;
  countPerDevice?: number;
  durationMs?: number;
  mqttUrl: string;
  seed: number;
  qos: Qos;
  form: PayloadForm;
  containerPrefix: string;
  /** Serial ports to write to instead of publishing over MQTT. */
  serialPaths?: string[];
  /** Line framing on the serial ports; json when absent. */
  serialFraming?: SerialFraming;
  /** YAML or JSON file of failures to inject (docs/simulator.md). */
  scenarioFile?: string;
  /** Failures from --failure, applied after the scenario file's. */
  failures?: FailureRule[];
  /** Chance per reading that a healthy container starts a random failure. */
  failureRatePerReading?: number;
  /** File to write the acknowledged readings to, as reference CSV with a failure column. */
  exportCsvPath?: string;
  /** Simulated time runs this many times faster than the wall clock (paced fleets). */
  timeScale?: number;
  /** Window over which the devices open their connections. */
  connectSpreadMs?: number;
  /** Devices subscribe to their commands and obey them (MQTT only). */
  commands?: boolean;
}

export type ParseSimArgsResult = { ok: true; options: SimOptions } | { ok: false; message: string };

type Draft = Omit<SimOptions, 'help'>;

/** One flag: its spelling, documented meaning and default, and how its value is checked and stored. */
interface Flag {
  name: string;
  placeholder: string;
  defaultText: string;
  description: string;
  /** Stores the value, or returns what was expected when the value is not acceptable. */
  apply(raw: string, into: Draft): string | undefined;
}

const POSITIVE_INT = /^[1-9]\d*$/;
const HEALTHY: ReadingLabel = { failure: 'none' };
const DECIMAL = /^\d+(\.\d+)?$/;
const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'];

function positiveInt(raw: string): number | undefined {
  const n = Number(raw);
  return POSITIVE_INT.test(raw) && Number.isSafeInteger(n) ? n : undefined;
}

const FLAGS: readonly Flag[] = [
  {
    name: 'devices',
    placeholder: 'N',
    defaultText: '10',
    description: 'reefers to simulate, each on its own MQTT connection',
    apply(raw, into) {
      const n = positiveInt(raw);
      if (n === undefined) return 'a positive integer';
      into.devices = n;
    },
  },
  {
    name: 'rate',
    placeholder: 'R',
    defaultText: '10',
    description: 'readings per second across the fleet; 0 sends as fast as acknowledgements allow',
    apply(raw, into) {
      if (!DECIMAL.test(raw)) return 'a number ≥ 0';
      into.ratePerSecond = Number(raw);
    },
  },
  {
    name: 'count',
    placeholder: 'N',
    defaultText: 'unlimited',
    description: 'readings each device sends, then stop',
    apply(raw, into) {
      const n = positiveInt(raw);
      if (n === undefined) return 'a positive integer';
      into.countPerDevice = n;
    },
  },
  {
    name: 'duration',
    placeholder: 'S',
    defaultText: 'unlimited',
    description: 'seconds to run, then stop',
    apply(raw, into) {
      if (!DECIMAL.test(raw) || Number(raw) <= 0) return 'a number of seconds > 0';
      into.durationMs = Math.round(Number(raw) * 1000);
    },
  },
  {
    name: 'mqtt-url',
    placeholder: 'URL',
    defaultText: 'mqtt://127.0.0.1:1883',
    description: 'broker (or gateway) to publish to',
    apply(raw, into) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return 'a URL such as mqtt://127.0.0.1:1883';
      }
      if (!MQTT_PROTOCOLS.includes(url.protocol)) return `a URL starting with ${MQTT_PROTOCOLS.map((p) => `${p}//`).join(', ')}`;
      into.mqttUrl = raw;
    },
  },
  {
    name: 'seed',
    placeholder: 'N',
    defaultText: '1',
    description: 'seed of the simulation; the same seed gives the same readings',
    apply(raw, into) {
      const n = Number(raw);
      if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n)) return 'an integer';
      into.seed = n;
    },
  },
  {
    name: 'qos',
    placeholder: '0|1|2',
    defaultText: '1',
    description: 'MQTT quality of service of every publish',
    apply(raw, into) {
      if (raw !== '0' && raw !== '1' && raw !== '2') return '0, 1 or 2';
      into.qos = Number(raw) as Qos;
    },
  },
  {
    name: 'form',
    placeholder: 'FORM',
    defaultText: 'canonical-json',
    description: `payload encoding, one of ${PAYLOAD_FORMS.join(', ')}`,
    apply(raw, into) {
      if (!isPayloadForm(raw)) return `one of ${PAYLOAD_FORMS.join(', ')}`;
      into.form = raw;
    },
  },
  {
    name: 'prefix',
    placeholder: 'P',
    defaultText: 'C',
    description: 'container id prefix; ids are the prefix and a zero-padded number (C0001, …)',
    apply(raw, into) {
      // Container ids are MQTT topic levels: no '/', '+' or '#'.
      if (!/^[A-Za-z0-9_-]+$/.test(raw)) return "letters, digits, '-' or '_'";
      into.containerPrefix = raw;
    },
  },
  {
    name: 'serial',
    placeholder: 'PATH[,PATH...]',
    defaultText: 'none, MQTT',
    description: 'write to these serial ports instead of MQTT; the --devices reefers are spread round-robin over them',
    apply(raw, into) {
      const paths = raw.split(',').map((p) => p.trim());
      if (paths.some((p) => p === '')) return 'comma-separated port paths such as /dev/ttyUSB0,/dev/ttyUSB1';
      if (new Set(paths).size !== paths.length) return 'each port path once';
      into.serialPaths = paths;
    },
  },
  {
    name: 'serial-framing',
    placeholder: 'FRAMING',
    defaultText: 'json',
    description: `line framing on the serial ports, one of ${SERIAL_FRAMINGS.join(', ')} (csv starts with a header row)`,
    apply(raw, into) {
      if (!isSerialFraming(raw)) return `one of ${SERIAL_FRAMINGS.join(', ')}`;
      into.serialFraming = raw;
    },
  },
  {
    name: 'scenario',
    placeholder: 'FILE',
    defaultText: 'none',
    description: 'YAML or JSON file of failures to inject, per container or per share of the fleet (docs/simulator.md)',
    apply(raw, into) {
      if (raw.trim() === '') return 'a file path';
      into.scenarioFile = raw;
    },
  },
  {
    name: 'failure',
    placeholder: 'SPEC',
    defaultText: 'none; repeatable',
    description:
      `inject a failure, SPEC = ${FAILURE_FLAG_SYNTAX}: MODE poweroff, co2sensor, o2sensor, temperature or tempgrowth; ` +
      'TARGET a container (C0003), ids joined by commas or a share of the fleet (10%); START a reading index (@10, 0 is the ' +
      'first) or simulated time since the first reading (@2h); READINGS how many (+20; to the end without it). ' +
      'Example: co2sensor:C0003@10+20',
    apply(raw, into) {
      const rule = parseFailureFlag(raw);
      if ('expected' in rule) return rule.expected;
      (into.failures ??= []).push(rule);
    },
  },
  {
    name: 'failure-rate',
    placeholder: 'P',
    defaultText: '0',
    description:
      'chance per reading that a healthy container starts a random failure (mode drawn from the five, 6–36 readings long), drawn from the seed',
    apply(raw, into) {
      if (!DECIMAL.test(raw) || Number(raw) > 1) return 'a chance from 0 to 1';
      into.failureRatePerReading = Number(raw);
    },
  },
  {
    name: 'export-csv',
    placeholder: 'FILE',
    defaultText: 'none',
    description: 'write every acknowledged reading to FILE as reference CSV, with the failure label as a last column',
    apply(raw, into) {
      if (raw.trim() === '') return 'a file path';
      into.exportCsvPath = raw;
    },
  },
  {
    name: 'time-scale',
    placeholder: 'K',
    defaultText: '1',
    description:
      'simulated time runs K times faster than the wall clock (needs --rate > 0); with --count or --duration the run starts in the past and ends at the present',
    apply(raw, into) {
      if (!DECIMAL.test(raw) || !(Number(raw) > 0)) return 'a number > 0';
      into.timeScale = Number(raw);
    },
  },
  {
    name: 'connect-spread',
    placeholder: 'S',
    defaultText: '1 ms per device',
    description: 'seconds over which the devices open their connections, sparing the broker a connection storm',
    apply(raw, into) {
      if (!DECIMAL.test(raw)) return 'a number of seconds ≥ 0';
      into.connectSpreadMs = Math.round(Number(raw) * 1000);
    },
  },
  {
    name: 'commands',
    placeholder: 'on|off',
    defaultText: 'off',
    description: 'devices subscribe to reefer/<containerId>/commands, obey setpoint, defrost and maintenance commands, and acknowledge them (docs/commands.md)',
    apply(raw, into) {
      if (raw !== 'on' && raw !== 'off') return 'on or off';
      into.commands = raw === 'on';
    },
  },
];

function defaults(): Draft {
  return {
    devices: 10,
    ratePerSecond: 10,
    mqttUrl: 'mqtt://127.0.0.1:1883',
    seed: 1,
    qos: 1,
    form: 'canonical-json',
    containerPrefix: 'C',
  };
}

export const SIM_USAGE: string = (() => {
  const rows = [
    ...FLAGS.map((f) => [`--${f.name} ${f.placeholder}`, `${f.description} (default: ${f.defaultText})`]),
    ['-h, --help', 'print this help and exit'],
  ];
  const width = Math.max(...rows.map(([left]) => left!.length)) + 2;
  return [
    'Usage: reefer-sim [flags]',
    '',
    'Simulates a fleet of refrigerated containers publishing sensor readings over MQTT to',
    'reefer/<containerId>/telemetry. Progress goes to stderr once a second; a one-line JSON',
    'summary goes to stdout at the end. Give --count or --duration, not both; with neither it',
    'runs until Ctrl-C, which stops it gracefully. With --serial the readings are written as',
    'lines on serial ports instead (one line per reading; each port takes its reefers in turn).',
    '',
    'Failures (--scenario, --failure, --failure-rate) follow the reference failure modes; while one',
    'is active its container reports maintenance_required true, and each reading is labelled with',
    'it (summary, --export-csv). The same seed gives the same readings and failures. See',
    'docs/simulator.md.',
    '',
    'Flags:',
    ...rows.map(([left, right]) => `  ${left!.padEnd(width)}${right}`),
    '',
    'Exit status: 0 done, 1 no device could connect, 2 invalid flags or scenario.',
    '',
  ].join('\n');
})();

/** Parses and checks the command line; never throws and never exits. */
export function parseSimArgs(argv: readonly string[]): ParseSimArgsResult {
  const parseOptions = Object.fromEntries([
    ...FLAGS.map((f) => [f.name, { type: 'string' as const }]),
    ['help', { type: 'boolean' as const, short: 'h' }],
  ]);
  // Non-strict, so that every mistake is reported here in one style (and "--rate -1" reads as a value).
  const { tokens } = parseArgs({ args: [...argv], options: parseOptions, strict: false, allowPositionals: true, tokens: true });

  const fail = (message: string): ParseSimArgsResult => ({ ok: false, message });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    return { ok: true, options: { help: true, ...defaults() } };
  }

  const draft = defaults();
  const known = FLAGS.map((f) => `--${f.name}`).join(', ');
  const given = new Set<string>();
  for (const token of tokens) {
    if (token.kind === 'positional') {
      return fail(`unexpected argument "${token.value}": reefer-sim takes flags only (see --help)`);
    }
    if (token.kind !== 'option') continue;
    const flag = FLAGS.find((f) => f.name === token.name);
    if (!flag) return fail(`${token.rawName}: unknown flag; expected one of ${known}, --help`);
    if (token.value === undefined) return fail(`--${flag.name}: expected a value (${flag.placeholder})`);
    const expected = flag.apply(token.value, draft);
    if (expected !== undefined) return fail(`--${flag.name}: expected ${expected}, got "${token.value}"`);
    given.add(flag.name);
  }
  const mqttOnly = ['mqtt-url', 'qos', 'form'].filter((name) => given.has(name));
  if (given.has('serial') && mqttOnly.length > 0) {
    return fail(`--serial and --${mqttOnly[0]}: --${mqttOnly[0]} applies to MQTT only; on serial ports use --serial-framing`);
  }
  if (given.has('serial-framing') && !given.has('serial')) return fail('--serial-framing: expected --serial too, got no serial ports');
  const mqttFleetOnly = ['scenario', 'failure', 'failure-rate', 'time-scale', 'connect-spread', 'commands'].filter((name) => given.has(name));
  if (given.has('serial') && mqttFleetOnly.length > 0) {
    return fail(`--serial and --${mqttFleetOnly[0]}: --${mqttFleetOnly[0]} applies to MQTT fleets only, so far`);
  }
  if (draft.timeScale !== undefined && draft.ratePerSecond === 0) {
    return fail('--time-scale: expected --rate > 0 too, got --rate 0 (an unpaced fleet already sends 5-minute readings)');
  }
  if (draft.countPerDevice !== undefined && draft.durationMs !== undefined) {
    return fail('--count and --duration: expected one of them, got both');
  }
  return { ok: true, options: { help: false, ...draft } };
}

function progressLine(p: FleetProgress, recentRate: number): string {
  const last = p.lastError ? ` (last: ${p.lastError})` : '';
  return `reefer-sim: ${p.connected}/${p.devices} connected, ${p.sent} sent, ${recentRate.toFixed(1)}/s, ${p.errors} errors${last}`;
}

/** The human-readable last word on stderr; stdout carries the same as JSON. */
export function summaryLine(p: FleetProgress, csv?: { path: string; rows: number }): string {
  const failing = Object.entries(p.failureReadings ?? {}).map(([mode, n]) => `${mode} ${n}`);
  const parts = [
    `reefer-sim: done in ${(p.elapsedMs / 1000).toFixed(1)} s: ${p.connected}/${p.devices} devices connected, ${p.sent} readings sent (${p.ratePerSecond.toFixed(1)}/s), ${p.errors} errors`,
    ...(failing.length > 0 ? [`readings under failure: ${failing.join(', ')}`] : []),
    ...(csv ? [`${csv.rows} rows written to ${csv.path}`] : []),
  ];
  return parts.join('; ');
}

/** The scenario file (if any) with the flags' failures; undefined when nothing is to fail. */
function loadScenario(options: Pick<SimOptions, 'scenarioFile' | 'failures' | 'failureRatePerReading'>): Scenario | undefined {
  let file: Scenario | undefined;
  if (options.scenarioFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.scenarioFile, 'utf8');
    } catch (error) {
      throw new ScenarioError([`--scenario: cannot read "${options.scenarioFile}": ${(error as Error).message}`]);
    }
    file = parseScenario(text, options.scenarioFile);
  }
  if (!file && !options.failures && options.failureRatePerReading === undefined) return undefined;
  return mergeScenario(file, options);
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseSimArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`reefer-sim: ${parsed.message}\n`);
    return 2;
  }
  const { help, scenarioFile, failures, failureRatePerReading, exportCsvPath, ...options } = parsed.options;
  if (help) {
    process.stdout.write(SIM_USAGE);
    return 0;
  }

  // Each reading is written once acknowledged; the export is opened once the fleet is known to be valid.
  let csv: CsvExport | undefined;
  const onSent =
    exportCsvPath === undefined
      ? undefined
      : (reading: ReeferReading, _containerId: string, label?: ReadingLabel) => csv?.write(reading, label ?? HEALTHY);
  let fleet: ReturnType<typeof createFleet>;
  try {
    const scenario = loadScenario({ scenarioFile, failures, failureRatePerReading });
    fleet = options.serialPaths
      ? createSerialFleet({ ...options, paths: options.serialPaths, framing: options.serialFraming ?? 'json', onSent })
      : createFleet({ ...options, scenario, onSent });
  } catch (error) {
    // A scenario naming a container the fleet does not have is only found once the fleet is known.
    if (!(error instanceof ScenarioError)) throw error;
    for (const problem of error.problems) process.stderr.write(`reefer-sim: ${problem}\n`);
    return 2;
  }
  if (exportCsvPath !== undefined) {
    try {
      csv = await openCsvExport(exportCsvPath);
    } catch (error) {
      process.stderr.write(`reefer-sim: --export-csv: ${(error as Error).message}\n`);
      return 2;
    }
  }
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    // A second Ctrl-C means the user does not want to wait for outstanding acknowledgements.
    if (signals > 1) process.exit(130);
    process.stderr.write('reefer-sim: stopping (again to quit at once)\n');
    void fleet.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let lastSent = 0;
  let lastMs = performance.now();
  const ticker = setInterval(() => {
    const p = fleet.progress();
    const now = performance.now();
    const recentRate = ((p.sent - lastSent) * 1000) / (now - lastMs);
    lastSent = p.sent;
    lastMs = now;
    process.stderr.write(`${progressLine(p, recentRate)}\n`);
  }, 1000);

  try {
    const summary = await fleet.run();
    clearInterval(ticker);
    await csv?.close();
    process.stderr.write(`${summaryLine(summary, csv && exportCsvPath ? { path: exportCsvPath, rows: csv.rows } : undefined)}\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.connected === 0 ? 1 : 0;
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`reefer-sim: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
