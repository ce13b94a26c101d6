/**
 * Prometheus metrics: the only file that imports prom-client, with one registry per gateway. Nearly
 * every value is read from the gateway's status when Prometheus scrapes (collect callbacks over one
 * snapshot per scrape), so ingest does no extra work for them; only the uplink's send latency is
 * observed as it happens, once per Kafka transaction. Every metric is described in docs/metrics.md.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayStatus } from '../main.js';
import type { UplinkState } from '../uplink/kafka-uplink.js';
import { ONLINE_WINDOW_MS } from './latest-readings.js';

export interface MetricsOptions {
  gatewayId: string;
  /** prom-client's process_* and nodejs_* metrics (memory, CPU, event-loop lag, GC). */
  defaultMetrics: boolean;
}

export interface MetricsDeps {
  status(): GatewayStatus;
  /** Containers heard from within ONLINE_WINDOW_MS. */
  containersOnline(): number;
  now(): number;
}

export interface GatewayMetrics {
  /** One uplink transaction committed `count` readings in `latencyMs`. */
  observeSend(count: number, latencyMs: number): void;
  /** The exposition text, read from one status snapshot. */
  render(): Promise<string>;
  readonly contentType: string;
  /** Names of every registered metric, for the documentation check. */
  names(): string[];
}

const TRANSPORTS = ['mqtt', 'serial', 'upstream'] as const;
const UPLINK_STATES: readonly UplinkState[] = ['connecting', 'up', 'down', 'closed'];
const SHED_KINDS = [
  ['expired', 'expired'],
  ['thinned', 'thinned'],
  ['droppedRoutine', 'dropped-routine'],
  ['droppedAlarm', 'dropped-alarm'],
] as const;

export function createMetrics(options: MetricsOptions, deps: MetricsDeps): GatewayMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  let snapshot: GatewayStatus | undefined;
  const current = (): GatewayStatus => snapshot ?? deps.status();
  const registers = [registry];

  /** Mirrors a running total kept elsewhere: Prometheus sees a counter, ingest keeps plain numbers. */
  function mirroredCounter<L extends string>(name: string, help: string, labelNames: readonly L[], read: (s: GatewayStatus) => Iterable<[Partial<Record<L, string>>, number]>): void {
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read(current())) this.inc(labels, value);
      },
    });
  }

  function gauge<L extends string>(name: string, help: string, labelNames: readonly L[], read: (s: GatewayStatus) => Iterable<[Partial<Record<L, string>>, number]>): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read(current())) this.set(labels, value);
      },
    });
  }

  const single = (value: number): [Record<string, string>, number][] => [[{}, value]];

  gauge('reefer_gateway_info', 'Always 1; carries the gateway id as a label.', ['gateway_id'], () => [[{ gateway_id: options.gatewayId }, 1]]);

  mirroredCounter('reefer_readings_accepted_total', 'Readings stored in the outbox, per transport.', ['transport'], (s) =>
    TRANSPORTS.map((t) => [{ transport: t }, s.stats.accepted[t] ?? 0]),
  );
  mirroredCounter('reefer_readings_rejected_total', 'Input rejected and dead-lettered, per transport and reason.', ['transport', 'reason'], (s) =>
    Object.entries(s.stats.rejected).flatMap(([transport, reasons]) => Object.entries(reasons).map(([reason, n]): [Record<string, string>, number] => [{ transport, reason }, n])),
  );
  mirroredCounter('reefer_readings_duplicate_total', 'Resent readings recognised and stored once, per transport.', ['transport'], (s) =>
    TRANSPORTS.map((t) => [{ transport: t }, s.stats.duplicates[t] ?? 0]),
  );
  mirroredCounter('reefer_readings_refused_total', 'Readings not stored because the disk was full; their devices were not acknowledged.', [], (s) => single(s.stats.refused));

  gauge('reefer_outbox_readings', 'Readings waiting in the outbox.', [], (s) => single(s.outbox.count));
  gauge('reefer_outbox_bytes', 'Approximate bytes the waiting readings occupy (compared with outbox.maxBytes).', [], (s) => single(s.outbox.bytes));
  gauge('reefer_outbox_alarm_readings', 'Waiting readings in the alarm lane.', [], (s) => single(s.outbox.alarms));
  gauge('reefer_outbox_oldest_age_seconds', 'Age of the oldest waiting reading since the gateway received it; 0 when the outbox is empty.', [], (s) =>
    single(s.outbox.oldestReceivedMs === null ? 0 : Math.max(0, deps.now() - s.outbox.oldestReceivedMs) / 1000),
  );
  gauge('reefer_dead_letters', 'Rejected inputs kept in the dead-letter table.', [], (s) => single(s.deadLetters));
  mirroredCounter('reefer_outbox_shed_readings_total', 'Readings removed from the outbox over its limits since the start, per kind.', ['kind'], (s) =>
    SHED_KINDS.map(([field, kind]) => [{ kind }, s.stats.shed[field]]),
  );
  mirroredCounter('reefer_loss_ledger_readings_total', 'Readings in the loss ledger (dropped, expired, rejected or missing), summed over containers, per reason; kept across restarts.', ['reason'], (s) => {
    const byReason = new Map<string, number>();
    for (const e of s.ledger) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + e.count);
    return [...byReason].map(([reason, n]) => [{ reason }, n]);
  });

  gauge('reefer_uplink_state', '1 for the uplink state the gateway is in, 0 for the others.', ['state'], (s) => UPLINK_STATES.map((state) => [{ state }, s.uplink === state ? 1 : 0]));
  mirroredCounter('reefer_uplink_sent_readings_total', 'Readings committed to Kafka.', [], (s) => single(s.stats.sent));
  mirroredCounter('reefer_uplink_errors_total', 'Failed or timed-out Kafka operations (each followed by a retry).', [], (s) => single(s.stats.uplinkErrors));
  const sendSeconds = new Histogram({
    name: 'reefer_uplink_send_duration_seconds',
    help: 'Time one uplink transaction took to commit, from send to Kafka acknowledgement.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const batchReadings = new Histogram({
    name: 'reefer_uplink_batch_readings',
    help: 'Readings carried by one committed uplink transaction.',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    registers,
  });

  gauge('reefer_disk_free_bytes', 'Free space on the filesystem holding the outbox.', [], (s) => single(s.disk.freeBytes));
  gauge('reefer_disk_size_bytes', 'Size of the filesystem holding the outbox.', [], (s) => single(s.disk.totalBytes));
  gauge('reefer_disk_written_bytes_today', 'Bytes this process wrote to storage since the start of the UTC day.', [], (s) => single(s.disk.writtenBytesToday));
  mirroredCounter('reefer_disk_written_bytes_total', 'Bytes this process wrote to storage since it started.', [], (s) => single(s.disk.writtenBytesTotal));

  gauge('reefer_mqtt_clients_connected', 'Devices connected to the embedded MQTT broker.', [], (s) => single(s.mqttClients));
  gauge('reefer_mqtt_connections', 'Open TCP connections to the embedded MQTT broker, on both listeners, logged in or not.', [], (s) => single(s.security.connections));
  mirroredCounter('reefer_mqtt_refused_total', 'MQTT connections, publishes and subscriptions refused, per reason.', ['reason'], (s) =>
    Object.entries(s.security.refused).map(([reason, n]): [Record<string, string>, number] => [{ reason }, n ?? 0]),
  );
  mirroredCounter('reefer_mqtt_throttled_total', 'Publishes held back by the per-client rate limit and then taken.', [], (s) => single(s.security.throttled));
  gauge('reefer_containers_online', `Containers whose latest reading arrived in the last ${ONLINE_WINDOW_MS / 60_000} minutes.`, [], () => single(deps.containersOnline()));
  gauge('reefer_upstream_broker_up', '1 while connected and subscribed to an upstream broker, else 0.', ['broker', 'client_id'], (s) =>
    s.upstream.map((u) => [{ broker: u.broker, client_id: u.clientId }, u.state === 'up' ? 1 : 0]),
  );
  const commands = (s: GatewayStatus) => s.commands ?? { stored: 0, duplicates: 0, invalid: 0, refused: 0, delivered: 0, applied: 0, rejected: 0, expired: 0, badAcks: 0, pending: 0 };
  mirroredCounter('reefer_commands_received_total', 'Command records for this gateway, per outcome: stored, duplicate, invalid, refused.', ['outcome'], (s) => {
    const c = commands(s);
    return [[{ outcome: 'stored' }, c.stored], [{ outcome: 'duplicate' }, c.duplicates], [{ outcome: 'invalid' }, c.invalid], [{ outcome: 'refused' }, c.refused]];
  });
  mirroredCounter('reefer_commands_delivered_total', 'Commands a device acknowledged receiving (MQTT PUBACK).', [], (s) => single(commands(s).delivered));
  mirroredCounter('reefer_commands_acked_total', 'Commands a device acknowledged on its ack topic, per status: applied, rejected.', ['status'], (s) => [
    [{ status: 'applied' }, commands(s).applied],
    [{ status: 'rejected' }, commands(s).rejected],
  ]);
  mirroredCounter('reefer_commands_expired_total', 'Commands that expired before reaching their device, never delivered.', [], (s) => single(commands(s).expired));
  mirroredCounter('reefer_commands_bad_acks_total', 'Acknowledgements from devices that named no command of theirs or did not parse.', [], (s) => single(commands(s).badAcks));
  gauge('reefer_commands_pending', 'Commands stored at the gateway and waiting for their devices.', [], (s) => single(commands(s).pending));
  gauge('reefer_serial_port_up', '1 while a serial port is open and read, else 0.', ['path'], (s) => s.serial.map((p) => [{ path: p.path }, p.state === 'up' ? 1 : 0]));

  return {
    observeSend(count, latencyMs) {
      sendSeconds.observe(latencyMs / 1000);
      batchReadings.observe(count);
    },
    async render() {
      snapshot = deps.status();
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
    contentType: registry.contentType,
    names: () => registry.getMetricsAsArray().map((m) => m.name),
  };
}
