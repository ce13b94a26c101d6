/**
 * `reefer-bridge actions`: runs the maintenance actions consumer (actions-service.ts) until stopped.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_ALERTS_DLQ_TOPIC, DEFAULT_ALERTS_RETRY_TOPIC } from './actions.js';
import { createActionsService } from './actions-service.js';
import { DEFAULT_COMMANDS_TOPIC } from './commands.js';
import { createKafkaClient } from './kafka-client.js';
import { KAFKA_FLAG_OPTIONS, KAFKA_FLAGS_USAGE, parseKafkaFlags } from './kafka-flags.js';
import type { BridgeSubcommand } from './subcommand.js';

export const ACTIONS_USAGE = `Usage: reefer-bridge actions --order-url URL [flags]

Consumes MaintenanceNeeded alerts and, for each, issues a maintenance command to the container
(through reefer-commands, to the gateway that serves it) and POSTs a maintenance order to URL
(JSON, header Idempotency-Key = the alert id). A failed order is retried through the retry topic
with a doubling delay and dead-lettered with its reason after --max-attempts. See docs/commands.md.

Options:
      --order-url URL          maintenance order endpoint (env REEFER_ORDER_URL); required
      --max-attempts N         attempts per action before it is dead-lettered (default 3)
      --retry-delay-ms MS      delay before the second attempt; doubles after each failure (default 30000)
      --retry-max-delay-ms MS  longest delay between attempts (default 600000)
      --order-timeout-ms MS    longest an order request may take (default 10000)
      --command-ttl-ms MS      how long a maintenance command stays valid (default 86400000)
      --alerts-topic NAME      (default reefer-alerts)
      --retry-topic NAME       (default ${DEFAULT_ALERTS_RETRY_TOPIC})
      --dlq-topic NAME         (default ${DEFAULT_ALERTS_DLQ_TOPIC})
      --commands-topic NAME    (default ${DEFAULT_COMMANDS_TOPIC})
      --group ID               consumer group (default reefer-actions)
      --log-level LEVEL        (default info)
  -h, --help                   print this help and exit

${KAFKA_FLAGS_USAGE}`;

/** A flag that must be a whole number of at least `min`; the message names the flag, the value and the expectation. */
export function intFlag(name: string, raw: string | undefined, fallback: number, min: number): number | string {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= min ? n : `--${name}: expected a whole number ≥ ${min}, got "${raw}"`;
}

export const actionsSubcommand: BridgeSubcommand = {
  summary: 'the maintenance actions consumer: a command and an order per MaintenanceNeeded, with retry and dead-letter topics',
  async run(argv, io) {
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args: [...argv],
        options: {
          ...KAFKA_FLAG_OPTIONS,
          'order-url': { type: 'string' },
          'max-attempts': { type: 'string' },
          'retry-delay-ms': { type: 'string' },
          'retry-max-delay-ms': { type: 'string' },
          'order-timeout-ms': { type: 'string' },
          'command-ttl-ms': { type: 'string' },
          'alerts-topic': { type: 'string' },
          'retry-topic': { type: 'string' },
          'dlq-topic': { type: 'string' },
          'commands-topic': { type: 'string' },
          group: { type: 'string' },
          'log-level': { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
        strict: true,
        allowPositionals: false,
      }));
    } catch (error) {
      io.stderr.write(`reefer-bridge actions: ${error instanceof Error ? error.message : String(error)}\n\n${ACTIONS_USAGE}`);
      return 2;
    }
    if (values.help) {
      io.stdout.write(ACTIONS_USAGE);
      return 0;
    }
    const str = (name: string) => values[name] as string | undefined;
    const orderUrl = str('order-url') ?? io.env.REEFER_ORDER_URL;
    const problems: string[] = [];
    if (orderUrl === undefined || !/^https?:\/\/./.test(orderUrl)) problems.push(`--order-url: expected an http(s) URL, got ${orderUrl === undefined ? 'nothing' : `"${orderUrl}"`}`);
    const maxAttempts = intFlag('max-attempts', str('max-attempts'), 3, 1);
    const baseDelayMs = intFlag('retry-delay-ms', str('retry-delay-ms'), 30_000, 0);
    const maxDelayMs = intFlag('retry-max-delay-ms', str('retry-max-delay-ms'), 600_000, 0);
    const orderTimeoutMs = intFlag('order-timeout-ms', str('order-timeout-ms'), 10_000, 1);
    const commandTtlMs = intFlag('command-ttl-ms', str('command-ttl-ms'), 86_400_000, 1);
    for (const v of [maxAttempts, baseDelayMs, maxDelayMs, orderTimeoutMs, commandTtlMs]) if (typeof v === 'string') problems.push(v);
    const level = str('log-level') ?? 'info';
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) problems.push(`--log-level: expected fatal, error, warn, info, debug, trace or silent, got "${level}"`);
    const connection = parseKafkaFlags(values, io.env);
    if (!connection.ok) problems.push(...connection.problems);
    if (problems.length > 0 || !connection.ok) {
      io.stderr.write(`reefer-bridge actions: ${problems.join('\n  ')}\n`);
      return 2;
    }
    const logger = pino({ name: 'reefer-actions', level }, pino.destination({ dest: 2, sync: false }));
    const kafka = createKafkaClient({ ...connection.connection, clientId: 'reefer-actions', logger });
    const service = createActionsService(
      {
        alertsTopic: str('alerts-topic') ?? 'reefer-alerts',
        retryTopic: str('retry-topic') ?? DEFAULT_ALERTS_RETRY_TOPIC,
        dlqTopic: str('dlq-topic') ?? DEFAULT_ALERTS_DLQ_TOPIC,
        commandsTopic: str('commands-topic') ?? DEFAULT_COMMANDS_TOPIC,
        groupId: str('group') ?? 'reefer-actions',
        orderUrl: orderUrl!,
        orderTimeoutMs: orderTimeoutMs as number,
        retry: { maxAttempts: maxAttempts as number, baseDelayMs: baseDelayMs as number, maxDelayMs: maxDelayMs as number },
        commandTtlMs: commandTtlMs as number,
        rememberAlerts: 100_000,
        createTopics: true,
      },
      { kafka, logger, now: Date.now },
    );
    await service.start();
    const signal = await io.stopRequested;
    logger.info({ signal, ...service.stats() }, 'stopping');
    await service.close();
    logger.flush();
    return 0;
  },
};
