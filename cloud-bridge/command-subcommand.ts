/**
 * `reefer-bridge command`: publishes one command to a container through `reefer-commands`, prints its
 * id, and with --wait follows its statuses on `reefer-command-status` until a final one.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import {
  checkCommand,
  commandRecord,
  decodeCommandStatus,
  DEFAULT_COMMAND_STATUS_TOPIC,
  DEFAULT_COMMANDS_TOPIC,
  FINAL_COMMAND_STATES,
  type CommandStatus,
  type ReeferCommand,
} from './commands.js';
import { createKafkaClient, type KafkaConsumerPort } from './kafka-client.js';
import { KAFKA_FLAG_OPTIONS, KAFKA_FLAGS_USAGE, parseKafkaFlags } from './kafka-flags.js';
import type { BridgeSubcommand } from './subcommand.js';

export const COMMAND_USAGE = `Usage: reefer-bridge command --container ID --gateway ID (--setpoint °C | --maintenance | --defrost) [flags]

Publishes one command to reefer-commands for the gateway that serves the container, and prints the
command id. The gateway stores it, delivers it to the device on reefer/<container>/commands once
the device is subscribed, and reports each change of state on reefer-command-status.
See docs/commands.md.

Options:
      --container ID        the container to command
      --gateway ID          the gateway that serves it (the gateway_id of its telemetry)
      --setpoint C          change the setpoint to C °C
      --maintenance         flag the container for maintenance
      --defrost             start a defrost
      --ttl DURATION        validity: 90s, 15m, 2h or milliseconds (default 1h)
      --id ID               command id (default: a random one)
      --wait                follow the command's statuses until applied, rejected or expired
      --wait-timeout DURATION  give up waiting after this long (default 5m)
      --topic NAME          (default ${DEFAULT_COMMANDS_TOPIC})
      --status-topic NAME   (default ${DEFAULT_COMMAND_STATUS_TOPIC})
  -h, --help                print this help and exit

${KAFKA_FLAGS_USAGE}
Exit status: 0 published (with --wait: applied), 1 rejected or expired, 2 bad usage, 3 --wait timed out.
`;

/** `90s`, `15m`, `2h`, `1d` or plain milliseconds; null when it is none of them. */
export function parseDurationMs(raw: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  const ms = Math.round(Number(m[1]) * unit);
  return ms > 0 ? ms : null;
}

/** Builds the command from the flags; a message naming the flag and the expectation when they do not make one. */
export function commandFromFlags(values: Record<string, string | boolean | undefined>, nowMs: number): { ok: true; command: ReeferCommand } | { ok: false; message: string } {
  const kinds = (['setpoint', 'maintenance', 'defrost'] as const).filter((k) => values[k] !== undefined && values[k] !== false);
  if (kinds.length !== 1) return { ok: false, message: `expected exactly one of --setpoint, --maintenance and --defrost, got ${kinds.length === 0 ? 'none' : kinds.map((k) => `--${k}`).join(' and ')}` };
  const ttlMs = values.ttl === undefined ? 3_600_000 : parseDurationMs(String(values.ttl));
  if (ttlMs === null) return { ok: false, message: `--ttl: expected a duration such as 90s, 15m or 2h, got "${String(values.ttl)}"` };
  const target = values.setpoint === undefined ? undefined : Number(values.setpoint);
  const checked = checkCommand({
    commandId: values.id ?? `cmd-${randomUUID()}`,
    containerId: values.container,
    gatewayId: values.gateway,
    kind: kinds[0],
    ...(target !== undefined ? { targetTemperature: target } : {}),
    issuedMs: nowMs,
    expiresMs: nowMs + ttlMs,
  });
  if (!checked.ok) {
    const flag = { commandId: '--id', containerId: '--container', gatewayId: '--gateway', targetTemperature: '--setpoint' }[checked.reason.split(':')[0] ?? ''] ?? '';
    return { ok: false, message: flag ? `${flag} (${checked.reason})` : checked.reason };
  }
  return { ok: true, command: checked.value };
}

/** `--setpoint -18` as `--setpoint=-18`: a strict parser takes a value starting with a dash for a flag. */
export function joinNegativeSetpoint(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i] === '--setpoint' && next !== undefined && /^-\d/.test(next)) {
      out.push(`--setpoint=${next}`);
      i += 1;
    } else out.push(argv[i]!);
  }
  return out;
}

export const commandSubcommand: BridgeSubcommand = {
  summary: 'publish one command (setpoint, maintenance, defrost) to a container and print its id; --wait for its status',
  async run(argv, io) {
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args: joinNegativeSetpoint(argv),
        options: {
          container: { type: 'string' },
          gateway: { type: 'string' },
          setpoint: { type: 'string' },
          maintenance: { type: 'boolean' },
          defrost: { type: 'boolean' },
          ttl: { type: 'string' },
          id: { type: 'string' },
          wait: { type: 'boolean' },
          'wait-timeout': { type: 'string' },
          ...KAFKA_FLAG_OPTIONS,
          topic: { type: 'string' },
          'status-topic': { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
        strict: true,
        allowPositionals: false,
      }));
    } catch (error) {
      io.stderr.write(`reefer-bridge command: ${error instanceof Error ? error.message : String(error)}\n\n${COMMAND_USAGE}`);
      return 2;
    }
    if (values.help) {
      io.stdout.write(COMMAND_USAGE);
      return 0;
    }
    const built = commandFromFlags(values, Date.now());
    const waitTimeoutMs = values['wait-timeout'] === undefined ? 300_000 : parseDurationMs(String(values['wait-timeout']));
    const connection = parseKafkaFlags(values, io.env);
    if (!built.ok || waitTimeoutMs === null || !connection.ok) {
      const problems = [
        ...(built.ok ? [] : [built.message]),
        ...(waitTimeoutMs === null ? [`--wait-timeout: expected a duration such as 90s or 5m, got "${String(values['wait-timeout'])}"`] : []),
        ...(connection.ok ? [] : connection.problems),
      ];
      io.stderr.write(`reefer-bridge command: ${problems.join('\n  ')}\n`);
      return 2;
    }
    const command = built.command;
    const logger = pino({ name: 'reefer-bridge', level: 'error' }, pino.destination({ dest: 2, sync: true }));
    const kafka = createKafkaClient({ ...connection.connection, clientId: 'reefer-bridge-command', logger });

    // Subscribed before publishing, so no status can slip past.
    let consumer: KafkaConsumerPort | undefined;
    let finished: (status: CommandStatus | null) => void = () => {};
    const outcome = new Promise<CommandStatus | null>((resolve) => (finished = resolve));
    if (values.wait) {
      consumer = kafka.consumer({ groupId: `reefer-bridge-command-${randomUUID()}`, topics: [(values['status-topic'] as string | undefined) ?? DEFAULT_COMMAND_STATUS_TOPIC], maxWaitTimeMs: 200 });
      await consumer.start((records) => {
        for (const r of records) {
          const status = decodeCommandStatus(r.value);
          if (status?.commandId !== command.commandId) continue;
          io.stdout.write(`${status.status}${status.detail ? `: ${status.detail}` : ''}\n`);
          if (FINAL_COMMAND_STATES.has(status.status)) finished(status);
        }
      });
    }
    const producer = kafka.producer();
    try {
      await producer.connect();
      await producer.send((values.topic as string | undefined) ?? DEFAULT_COMMANDS_TOPIC, [commandRecord(command)]);
    } finally {
      await producer.close().catch(() => undefined);
    }
    io.stdout.write(`${command.commandId}\n`);
    if (!consumer) return 0;
    const timer = setTimeout(() => finished(null), waitTimeoutMs);
    void io.stopRequested.then(() => finished(null));
    const final = await outcome;
    clearTimeout(timer);
    await consumer.close().catch(() => undefined);
    if (!final) {
      io.stderr.write(`reefer-bridge command: no final status for ${command.commandId} within ${waitTimeoutMs} ms\n`);
      return 3;
    }
    return final.status === 'applied' ? 0 : 1;
  },
};
