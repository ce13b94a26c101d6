/**
 * The actions consumer: takes the maintenance action for every `MaintenanceNeeded` alert on
 * `reefer-alerts` (anomalies alone call for none). The action issues a `maintenance` command to the
 * container through `reefer-commands` and opens a maintenance order at an HTTP endpoint. An attempt
 * that fails (endpoint unreachable, slow or answering other than 2xx) goes to the retry topic with its
 * attempt count and a not-before time; a second consumer makes the next attempt once that time has
 * come, and after `maxAttempts` the action goes to the dead-letter topic with its reason.
 *
 * Delivery is at least once end to end (offsets are committed after the records a batch produced are
 * acknowledged), and effects are idempotent: the command id is derived from the alert id (gateways
 * drop repeats), the order carries the alert id as its idempotency key, and a repeated alert is
 * recognised and skipped.
 */
import type { Logger } from 'pino';
import {
  afterFailure,
  createRecentIds,
  decodePendingAction,
  encodeDeadLetteredAction,
  encodePendingAction,
  maintenanceCommand,
  maintenanceOrder,
  type RetryPolicy,
} from './actions.js';
import { decodeAlert, type MaintenanceNeeded } from './alerts.js';
import { commandRecord } from './commands.js';
import type { BatchControl, ConsumedRecord, KafkaClient, KafkaConsumerPort, KafkaProducerPort } from './kafka-client.js';

export interface ActionsServiceOptions {
  alertsTopic: string;
  retryTopic: string;
  dlqTopic: string;
  commandsTopic: string;
  /** Consumer group of the alerts consumer; the retry consumer's is this with `.retry` appended. */
  groupId: string;
  /** Where maintenance orders are POSTed (JSON, header Idempotency-Key = alert id). */
  orderUrl: string;
  /** Longest an order request may take before it counts as failed. */
  orderTimeoutMs: number;
  retry: RetryPolicy;
  /** How long a maintenance command stays valid while its gateway or device is away. */
  commandTtlMs: number;
  /** Alert ids remembered to skip repeats; the order endpoint's idempotency key covers older ones. */
  rememberAlerts: number;
  /** Create the retry and dead-letter topics (and the others) when missing. */
  createTopics: boolean;
}

export interface ActionsServiceDeps {
  kafka: KafkaClient;
  logger: Logger;
  now(): number;
  /** Node's fetch unless given. */
  fetch?: typeof fetch;
}

export interface ActionsStats {
  /** MaintenanceNeeded alerts read. */
  alerts: number;
  /** Repeats of an alert already acted on, skipped. */
  duplicates: number;
  /** Records that were not MaintenanceNeeded alerts (anomalies, undecodable records). */
  ignored: number;
  commandsIssued: number;
  ordersPlaced: number;
  failedAttempts: number;
  retriesScheduled: number;
  deadLettered: number;
}

export interface ActionsService {
  start(): Promise<void>;
  stats(): ActionsStats;
  close(): Promise<void>;
}

/** Longest a waiting retry consumer goes without telling its group it is alive. */
const HEARTBEAT_EVERY_MS = 1000;

class ClosingError extends Error {
  readonly retriable = true;
  constructor() {
    super('actions service closing; the batch is read again after the restart');
    this.name = 'ClosingError';
  }
}

export function createActionsService(options: ActionsServiceOptions, deps: ActionsServiceDeps): ActionsService {
  const log = deps.logger.child({ component: 'actions' });
  const doFetch = deps.fetch ?? fetch;
  const stats: ActionsStats = { alerts: 0, duplicates: 0, ignored: 0, commandsIssued: 0, ordersPlaced: 0, failedAttempts: 0, retriesScheduled: 0, deadLettered: 0 };
  const seen = createRecentIds(options.rememberAlerts);
  let producer: KafkaProducerPort | undefined;
  let alertsConsumer: KafkaConsumerPort | undefined;
  let retryConsumer: KafkaConsumerPort | undefined;
  let running = false;
  let closing: Promise<void> | undefined;
  const wakers = new Set<() => void>();

  /** Null when the order was placed, else why not. */
  async function placeOrder(alert: MaintenanceNeeded): Promise<string | null> {
    try {
      const response = await doFetch(options.orderUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': alert.alertId },
        body: JSON.stringify(maintenanceOrder(alert)),
        signal: AbortSignal.timeout(options.orderTimeoutMs),
      });
      // Frees the connection whatever the endpoint answered.
      await response.arrayBuffer().catch(() => undefined);
      return response.ok ? null : `order endpoint ${options.orderUrl} answered ${response.status} ${response.statusText}`.trim();
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return `order endpoint ${options.orderUrl} unreachable: ${cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error))}`;
    }
  }

  /** One attempt at the action; a failure is passed on to the retry or dead-letter topic. Kafka errors reject. */
  async function attempt(alert: MaintenanceNeeded, attempts: number, commandIssued: boolean): Promise<void> {
    const p = producer!;
    let issued = commandIssued;
    if (!issued) {
      await p.send(options.commandsTopic, [commandRecord(maintenanceCommand(alert, deps.now(), options.commandTtlMs))]);
      issued = true;
      stats.commandsIssued += 1;
    }
    const error = await placeOrder(alert);
    if (error === null) {
      stats.ordersPlaced += 1;
      log.info({ alertId: alert.alertId, containerId: alert.containerId, attempts }, 'maintenance order placed');
      return;
    }
    stats.failedAttempts += 1;
    const next = afterFailure({ alert, attempts, commandIssued: issued }, error, deps.now(), options.retry);
    const headers = { alert_id: alert.alertId, attempts: String(attempts) };
    if (next.kind === 'retry') {
      await p.send(options.retryTopic, [{ key: alert.containerId, value: encodePendingAction(next.pending), headers }]);
      stats.retriesScheduled += 1;
      log.warn({ alertId: alert.alertId, attempts, notBeforeMs: next.pending.notBeforeMs, err: error }, 'maintenance action failed; retrying later');
    } else {
      await p.send(options.dlqTopic, [{ key: alert.containerId, value: encodeDeadLetteredAction(next.dead), headers: { ...headers, reason: next.dead.reason.slice(0, 200) } }]);
      stats.deadLettered += 1;
      log.error({ alertId: alert.alertId, attempts, reason: next.dead.reason }, 'maintenance action dead-lettered');
    }
  }

  async function onAlerts(records: ConsumedRecord[]): Promise<void> {
    for (const r of records) {
      if (!running) throw new ClosingError();
      const alert = decodeAlert(r.value);
      if (alert?.type !== 'MaintenanceNeeded') {
        stats.ignored += 1;
        continue;
      }
      stats.alerts += 1;
      if (seen.has(alert.alertId)) {
        stats.duplicates += 1;
        continue;
      }
      await attempt(alert, 1, false);
      seen.add(alert.alertId);
    }
  }

  /** Waits until `ms`, heartbeating; false when the service is closing. */
  async function waitUntil(ms: number, control: BatchControl): Promise<boolean> {
    while (running && deps.now() < ms) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(HEARTBEAT_EVERY_MS, ms - deps.now()));
        function done() {
          clearTimeout(timer);
          wakers.delete(done);
          resolve();
        }
        wakers.add(done);
      });
      if (running) await control.heartbeat().catch(() => undefined);
    }
    return running;
  }

  async function onRetries(records: ConsumedRecord[], control: BatchControl): Promise<void> {
    for (const r of records) {
      const pending = decodePendingAction(r.value);
      if (!pending) {
        stats.ignored += 1;
        log.warn({ topic: r.topic, partition: r.partition, offset: r.offset }, 'not a pending action; skipped');
        continue;
      }
      // Retries are appended in the order they fell due, so waiting for this one holds up none due sooner.
      if (!(await waitUntil(pending.notBeforeMs, control))) throw new ClosingError();
      await attempt(pending.alert, pending.attempts + 1, pending.commandIssued);
    }
  }

  return {
    async start() {
      if (running || closing) return;
      running = true;
      if (options.createTopics) {
        const admin = deps.kafka.admin();
        try {
          await admin.ensureTopics([
            { topic: options.alertsTopic },
            { topic: options.commandsTopic },
            { topic: options.retryTopic },
            { topic: options.dlqTopic, partitions: 1 },
          ]);
        } finally {
          await admin.close();
        }
      }
      producer = deps.kafka.producer();
      await producer.connect();
      alertsConsumer = deps.kafka.consumer({ groupId: options.groupId, topics: [options.alertsTopic], maxWaitTimeMs: 500 });
      retryConsumer = deps.kafka.consumer({ groupId: `${options.groupId}.retry`, topics: [options.retryTopic], maxWaitTimeMs: 500 });
      await alertsConsumer.start(onAlerts);
      await retryConsumer.start(onRetries);
      log.info({ alertsTopic: options.alertsTopic, retryTopic: options.retryTopic, dlqTopic: options.dlqTopic, orderUrl: options.orderUrl }, 'actions consumer started');
    },
    stats: () => ({ ...stats }),
    close() {
      closing ??= (async () => {
        running = false;
        for (const wake of [...wakers]) wake();
        await Promise.all([alertsConsumer?.close().catch(() => undefined), retryConsumer?.close().catch(() => undefined)]);
        await producer?.close().catch(() => undefined);
      })();
      return closing;
    },
  };
}
