import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { GatewayStatus } from '../../gateway/main.js';
import { createLatestReadings } from '../../gateway/ops/latest-readings.js';
import { createMetrics } from '../../gateway/ops/metrics.js';
import { createOpsApi, toPublicJson } from '../../gateway/ops/ops-api.js';
import { REJECT_REASONS } from '../../gateway/pipeline/decode-reading.js';
import { alarmsOf } from '../../gateway/pipeline/lanes.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { sampleReading } from '../harness/reference-reading.js';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);

function reading(containerId: string, minute: number, change: Partial<ReeferReading> = {}): ReeferReading {
  return sampleReading({
    container_id: containerId,
    measurement_time: Date.UTC(2026, 5, 1, 11, minute),
    product_id: 'P05',
    temperature: 5.2,
    target_temperature: 5,
    latitude: 37.8,
    longitude: -122.3,
    ...change,
  });
}

// Cast: the status grows with the gateway, and these tests read only the fields written here.
const status = {
  uplink: 'down',
  mqttClients: 3,
  outbox: { count: 12, bytes: 4096, alarms: 2, oldestReceivedMs: NOW - 90_000 },
  deadLetters: 1,
  stats: {
    accepted: { mqtt: 5, serial: 2 },
    rejected: { mqtt: { 'malformed-json': 1 } },
    acceptedTotal: 7,
    duplicates: { mqtt: 1 },
    rejectedTotal: 1,
    sent: 4,
    uplinkErrors: 6,
    refused: 0,
    shed: { expired: 0, thinned: 3, droppedRoutine: 0, droppedAlarm: 0 },
  },
  ledger: [
    { containerId: 'C1', reason: 'thinned', count: 2 },
    { containerId: 'C2', reason: 'thinned', count: 1 },
    { containerId: 'C2', reason: 'gap', count: 4 },
    { containerId: 'G1', reason: 'malformed-json', count: 1 },
  ],
  disk: { freeBytes: 1_000_000, totalBytes: 8_000_000, writtenBytesToday: 5000, writtenBytesTotal: 9000 },
  replayUntilSeq: 0,
  upstream: [{ broker: 'mqtt://site:1883', clientId: 'gw-upstream', state: 'up', messagesIn: 2, storeFailures: 0, redelivered: 0, reconnects: 0, lastError: null }],
  serial: [],
  security: { refused: { 'bad-password': 2 }, refusedTotal: 2, throttled: 5, connections: 4 },
} as unknown as GatewayStatus;

const accepted = (seq: number) => ({ seq, transport: 'mqtt' as const, receivedMs: NOW - 1000 * (100 - seq) });

/** `name{labels} value` lines of an exposition, by series. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('metrics', () => {
  it('lists every registered metric, and every rejection reason, in docs/metrics.md', () => {
    const doc = readFileSync('docs/metrics.md', 'utf8');
    const metrics = createMetrics({ gatewayId: 'g', defaultMetrics: true }, { status: () => status, containersOnline: () => 0, now: () => NOW });
    const names = metrics.names();
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((name) => !doc.includes(`| \`${name}\` |`))).toEqual([]);
    expect(REJECT_REASONS.filter((reason) => !doc.includes(`| \`${reason}\` |`))).toEqual([]);
  });

  it('renders the status snapshot: counters per transport, the uplink state, and the ledger summed per reason without container labels', async () => {
    const metrics = createMetrics({ gatewayId: 'ship-7', defaultMetrics: false }, { status: () => status, containersOnline: () => 9, now: () => NOW });
    metrics.observeSend(100, 250);
    const text = await metrics.render();
    const s = samples(text);
    expect(s.get('reefer_gateway_info{gateway_id="ship-7"}')).toBe(1);
    expect(s.get('reefer_readings_accepted_total{transport="mqtt"}')).toBe(5);
    expect(s.get('reefer_readings_accepted_total{transport="serial"}')).toBe(2);
    expect(s.get('reefer_readings_accepted_total{transport="upstream"}')).toBe(0);
    expect(s.get('reefer_readings_rejected_total{transport="mqtt",reason="malformed-json"}')).toBe(1);
    expect(s.get('reefer_readings_duplicate_total{transport="mqtt"}')).toBe(1);
    expect(s.get('reefer_uplink_state{state="down"}')).toBe(1);
    expect(s.get('reefer_uplink_state{state="up"}')).toBe(0);
    expect(s.get('reefer_uplink_errors_total')).toBe(6);
    expect(s.get('reefer_uplink_sent_readings_total')).toBe(4);
    expect(s.get('reefer_uplink_send_duration_seconds_count')).toBe(1);
    expect(s.get('reefer_uplink_send_duration_seconds_sum')).toBe(0.25);
    expect(s.get('reefer_uplink_batch_readings_sum')).toBe(100);
    expect(s.get('reefer_outbox_readings')).toBe(12);
    expect(s.get('reefer_outbox_alarm_readings')).toBe(2);
    expect(s.get('reefer_outbox_oldest_age_seconds')).toBe(90);
    expect(s.get('reefer_outbox_shed_readings_total{kind="thinned"}')).toBe(3);
    expect(s.get('reefer_loss_ledger_readings_total{reason="thinned"}')).toBe(3);
    expect(s.get('reefer_loss_ledger_readings_total{reason="gap"}')).toBe(4);
    expect(text).not.toMatch(/container_id=|"C1"|"C2"|"G1"/);
    expect(s.get('reefer_disk_free_bytes')).toBe(1_000_000);
    expect(s.get('reefer_mqtt_clients_connected')).toBe(3);
    expect(s.get('reefer_mqtt_connections')).toBe(4);
    expect(s.get('reefer_mqtt_refused_total{reason="bad-password"}')).toBe(2);
    expect(s.get('reefer_mqtt_throttled_total')).toBe(5);
    expect(s.get('reefer_containers_online')).toBe(9);
    expect(s.get('reefer_upstream_broker_up{broker="mqtt://site:1883",client_id="gw-upstream"}')).toBe(1);
  });

  it('reads the status once per scrape', async () => {
    let reads = 0;
    const metrics = createMetrics(
      { gatewayId: 'g', defaultMetrics: false },
      {
        status: () => {
          reads += 1;
          return status;
        },
        containersOnline: () => 0,
        now: () => NOW,
      },
    );
    await metrics.render();
    expect(reads).toBe(1);
  });
});

describe('latest readings', () => {
  const lanes = { temperatureExcursionC: 3 };

  it('keeps the newest reading per container and ignores a late resend of an older one', () => {
    const latest = createLatestReadings({ maxContainers: 10, lanes });
    latest.record(reading('C1', 5, { temperature: 4.1 }), accepted(1));
    latest.record(reading('C1', 10, { temperature: 4.9 }), accepted(2));
    latest.record(reading('C1', 0, { temperature: 9.9 }), accepted(3));
    expect(latest.list()).toEqual([expect.objectContaining({ containerId: 'C1', temperature: 4.9, seq: 2, alarms: [] })]);
  });

  it('forgets the container heard from longest ago past its cap', () => {
    const latest = createLatestReadings({ maxContainers: 2, lanes });
    latest.record(reading('C1', 1), accepted(1));
    latest.record(reading('C2', 1), accepted(2));
    latest.record(reading('C1', 2), accepted(3));
    latest.record(reading('C3', 1), accepted(4));
    expect(latest.list().map((r) => r.containerId)).toEqual(['C1', 'C3']);
  });

  it('tells what changed since a version, and how many containers were heard from since a time', () => {
    const latest = createLatestReadings({ maxContainers: 10, lanes });
    latest.record(reading('C1', 1), accepted(1));
    const v = latest.version();
    latest.record(reading('C2', 1), accepted(50));
    expect(latest.changedSince(v).readings.map((r) => r.containerId)).toEqual(['C2']);
    expect(latest.changedSince(0).readings).toHaveLength(2);
    expect(latest.heardSince(NOW - 60_000)).toBe(1);
  });

  it('names each alarm by the lanes rule', () => {
    const rules = { temperatureExcursionC: 3 };
    expect(alarmsOf(reading('C1', 1), rules)).toEqual([]);
    expect(alarmsOf(reading('C1', 1, { time_door_open: 3 }), rules)).toEqual(['door-open']);
    expect(alarmsOf(reading('C1', 1, { kilowatts: 0, fan_1: false }), rules)).toEqual(['power-off']);
    expect(alarmsOf(reading('C1', 1, { temperature: 12 }), rules)).toEqual(['temperature-excursion']);
    expect(alarmsOf(reading('C1', 1, { maintenance_required: true, fan_3: false }), rules)).toEqual(['power-off', 'maintenance']);
  });
});

describe('ops API', () => {
  function api(refusing: boolean, mqttListening = true) {
    const latest = createLatestReadings({ maxContainers: 10, lanes: { temperatureExcursionC: 3 } });
    const metrics = createMetrics({ gatewayId: 'g', defaultMetrics: false }, { status: () => status, containersOnline: () => 0, now: () => NOW });
    return createOpsApi({ gatewayId: 'g', feedIntervalMs: 1000 }, { status: () => status, mqttListening: () => mqttListening, outboxRefusing: () => refusing, latest, metrics, now: () => NOW });
  }

  it('is ready with the uplink down, and reports it', async () => {
    const reply = await api(false).routes['/readyz']!();
    expect(reply.status).toBe(200);
    expect(JSON.parse(String(reply.body))).toEqual({ ready: true, mqtt: 'listening', outbox: 'writable', uplink: 'down' });
  });

  it('is unready while the outbox refuses input for a full disk, or MQTT does not listen', async () => {
    expect((await api(true).routes['/readyz']!()).status).toBe(503);
    expect(JSON.parse(String((await api(true).routes['/readyz']!()).body))).toMatchObject({ ready: false, outbox: 'refusing' });
    expect((await api(false, false).routes['/readyz']!()).status).toBe(503);
  });

  it('leaves out every secret-looking key, however deep', () => {
    const text = toPublicJson({ a: { password: 'x', brokers: [{ url: 'mqtt://h', username: 'u', password: 'y', apiKey: 'k', sessionToken: 't' }] } });
    expect(JSON.parse(text)).toEqual({ a: { brokers: [{ url: 'mqtt://h', username: 'u' }] } });
  });

  it('sends a dashboard that opens every container and the summary at once', () => {
    const latest = createLatestReadings({ maxContainers: 10, lanes: { temperatureExcursionC: 3 } });
    const metrics = createMetrics({ gatewayId: 'g', defaultMetrics: false }, { status: () => status, containersOnline: () => 0, now: () => NOW });
    const ops = createOpsApi({ gatewayId: 'g', feedIntervalMs: 60_000 }, { status: () => status, mqttListening: () => true, outboxRefusing: () => false, latest, metrics, now: () => NOW });
    latest.record(reading('C1', 1), accepted(1));
    const got: { summary: { uplink: string; lost: number }; containers: { full: boolean; readings: { containerId: string }[] } }[] = [];
    const unsubscribe = ops.feeds['/api/events']!.subscribe((data) => got.push(JSON.parse(data)));
    try {
      expect(got).toHaveLength(1);
      expect(got[0]!.containers).toMatchObject({ full: true, readings: [{ containerId: 'C1' }] });
      expect(got[0]!.summary).toMatchObject({ uplink: 'down', lost: 7 });
    } finally {
      unsubscribe();
      ops.close();
    }
  });
});
