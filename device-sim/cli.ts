#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createFleet, type FleetProgress } from './fleet.js';
import type { Qos } from './mqtt-transport.js';
import { isPayloadForm, PAYLOAD_FORMS, type PayloadForm } from './payload-forms.js';

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
    'runs until Ctrl-C, which stops it gracefully.',
    '',
    'Flags:',
    ...rows.map(([left, right]) => `  ${left!.padEnd(width)}${right}`),
    '',
    'Exit status: 0 done, 1 no device could connect, 2 invalid flags.',
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

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseSimArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`reefer-sim: ${parsed.message}\n`);
    return 2;
  }
  const { help, ...options } = parsed.options;
  if (help) {
    process.stdout.write(SIM_USAGE);
    return 0;
  }

  const fleet = createFleet(options);
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
