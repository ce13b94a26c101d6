/**
 * The uplink drains the outbox into Kafka: oldest first, in batches, deleting rows only after Kafka
 * acknowledged them. While Kafka cannot be reached it keeps the rows and retries with a capped,
 * jittered exponential backoff; readings keep arriving into the outbox meanwhile.
 */
import type { Logger } from 'pino';
import type { KafkaProducerPort, KafkaRecord } from '../../cloud-bridge/kafka-client.js';
import type { Outbox, OutboxRow } from '../outbox/sqlite-outbox.js';

export type UplinkState = 'connecting' | 'up' | 'down' | 'closed';

export interface UplinkOptions {
  topic: string;
  gatewayId: string;
  /** Most readings sent in one produce request. */
  batchSize: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** How often an idle uplink looks at the outbox even without being told of new rows. */
  idlePollMs: number;
}

export interface UplinkDeps {
  outbox: Outbox;
  producer: KafkaProducerPort;
  /** Turns a stored row into the Kafka record value (framing). */
  frame(row: OutboxRow): Buffer;
  logger: Logger;
  onSent?(count: number, latencyMs: number): void;
  onStateChange?(state: UplinkState): void;
  onError?(error: unknown): void;
}

export interface Uplink {
  start(): void;
  /** Wakes an idle uplink: new rows are waiting. */
  notify(): void;
  state(): UplinkState;
  close(): Promise<void>;
}

export function createUplink(options: UplinkOptions, deps: UplinkDeps): Uplink {
  const log = deps.logger.child({ component: 'uplink' });
  let state: UplinkState = 'connecting';
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let backoffMs = options.minBackoffMs;
  let connected = false;

  function setState(next: UplinkState): void {
    if (state === next) return;
    state = next;
    log.info({ state }, `uplink ${state}`);
    deps.onStateChange?.(state);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  function toRecord(row: OutboxRow): KafkaRecord {
    return {
      key: row.containerId,
      value: deps.frame(row),
      headers: { gateway_id: options.gatewayId, seq: String(row.seq) },
      timestampMs: row.receivedMs,
    };
  }

  async function failed(error: unknown): Promise<void> {
    deps.onError?.(error);
    setState('down');
    log.warn({ err: error instanceof Error ? error.message : String(error), retryInMs: backoffMs }, 'Kafka unreachable; readings stay in the outbox');
    // Full jitter keeps a fleet of gateways from reconnecting in step after a shared outage.
    await sleep(backoffMs / 2 + Math.random() * (backoffMs / 2));
    backoffMs = Math.min(options.maxBackoffMs, backoffMs * 2);
  }

  async function run(): Promise<void> {
    while (running) {
      if (!connected) {
        try {
          await deps.producer.connect();
          connected = true;
        } catch (error) {
          await failed(error);
          continue;
        }
      }
      const rows = deps.outbox.peek(options.batchSize);
      if (rows.length === 0) {
        setState('up');
        await sleep(options.idlePollMs);
        continue;
      }
      const startedMs = Date.now();
      try {
        await deps.producer.send(options.topic, rows.map(toRecord));
      } catch (error) {
        await failed(error);
        continue;
      }
      deps.outbox.remove(rows.map((r) => r.seq));
      backoffMs = options.minBackoffMs;
      setState('up');
      deps.onSent?.(rows.length, Date.now() - startedMs);
    }
  }

  return {
    start() {
      if (running || state === 'closed') return;
      running = true;
      loop = run();
    },
    notify() {
      wake?.();
    },
    state: () => state,
    async close() {
      if (state === 'closed') return;
      running = false;
      wake?.();
      await loop;
      setState('closed');
      await deps.producer.close().catch(() => undefined);
    },
  };
}
