/**
 * What the operations HTTP server serves: health and readiness, the status as JSON, the latest reading
 * of each container, Prometheus metrics, and the dashboard with its live feed. Readiness means the
 * gateway takes input and can keep it; an uplink outage does not make it unready, because buffering
 * through one is its job.
 */
import type { GatewayStatus } from '../main.js';
import type { UplinkState } from '../uplink/kafka-uplink.js';
import { DASHBOARD_HTML } from './dashboard-page.js';
import type { EventFeed, HttpReply, HttpRoute } from './http-server.js';
import { ONLINE_WINDOW_MS, type LatestReadings } from './latest-readings.js';
import type { GatewayMetrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  /** Ingest: the embedded MQTT broker accepts connections. */
  mqtt: 'listening' | 'not-listening';
  /** The outbox takes new readings, or refuses them for a full disk. */
  outbox: 'writable' | 'refusing';
  /** Reported, not required: readings wait in the outbox while the uplink is down. */
  uplink: UplinkState;
}

export interface OpsApiOptions {
  gatewayId: string;
  /** How often an open dashboard is sent fresh numbers. */
  feedIntervalMs: number;
}

export interface OpsApiDeps {
  status(): GatewayStatus;
  mqttListening(): boolean;
  /** True while new readings would be refused for a full disk. */
  outboxRefusing(): boolean;
  latest: LatestReadings;
  metrics: GatewayMetrics;
  now(): number;
}

export interface OpsApi {
  routes: Record<string, HttpRoute>;
  feeds: Record<string, EventFeed>;
  readiness(): Readiness;
  /** Stops the feed's timer; subscribers get nothing more. */
  close(): void;
}

/** Keys whose values never leave the gateway, whatever object they turn up in. */
const SECRET_KEY = /password|passphrase|secret|credential|token|private.?key|api.?key/i;

/** JSON without any secret-looking key: the status carries none today, and must not start to by accident. */
export function toPublicJson(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => (key !== '' && SECRET_KEY.test(key) ? undefined : v));
}

/** Ledger reasons for readings that will never reach Kafka though they were measured; the rest are rejections. */
const LOSS_REASONS: ReadonlySet<string> = new Set(['thinned', 'shed-routine', 'shed-alarm', 'expired', 'gap']);

function json(status: number, value: unknown): HttpReply {
  return { status, contentType: 'application/json; charset=utf-8', body: toPublicJson(value) };
}

/** The dashboard's numbers: small, as they go to every open page every tick. */
export function dashboardSummary(gatewayId: string, s: GatewayStatus, readiness: Readiness, containersOnline: number, containersTracked: number, nowMs: number) {
  let lost = 0;
  for (const e of s.ledger) if (LOSS_REASONS.has(e.reason)) lost += e.count;
  return {
    gatewayId,
    timeMs: nowMs,
    ready: readiness.ready,
    uplink: s.uplink,
    mqttClients: s.mqttClients,
    containersOnline,
    containersTracked,
    outbox: {
      count: s.outbox.count,
      bytes: s.outbox.bytes,
      alarms: s.outbox.alarms,
      oldestAgeMs: s.outbox.oldestReceivedMs === null ? null : Math.max(0, nowMs - s.outbox.oldestReceivedMs),
    },
    acceptedTotal: s.stats.acceptedTotal,
    rejectedTotal: s.stats.rejectedTotal,
    duplicatesTotal: Object.values(s.stats.duplicates).reduce((a, b) => a + b, 0),
    sent: s.stats.sent,
    refused: s.stats.refused,
    lost,
    disk: { freeBytes: s.disk.freeBytes, totalBytes: s.disk.totalBytes },
  };
}

export function createOpsApi(options: OpsApiOptions, deps: OpsApiDeps): OpsApi {
  const subscribers = new Set<(data: string) => void>();
  let timer: NodeJS.Timeout | undefined;
  let version = 0;
  let closed = false;

  function readiness(): Readiness {
    const mqtt = deps.mqttListening() ? 'listening' : 'not-listening';
    const outbox = deps.outboxRefusing() ? 'refusing' : 'writable';
    return { ready: mqtt === 'listening' && outbox === 'writable', mqtt, outbox, uplink: deps.status().uplink };
  }

  function summary(): ReturnType<typeof dashboardSummary> {
    const now = deps.now();
    return dashboardSummary(options.gatewayId, deps.status(), readiness(), deps.latest.heardSince(now - ONLINE_WINDOW_MS), deps.latest.size(), now);
  }

  /** One status read per tick, shared by every open dashboard; each gets only the containers that changed. */
  function tick(): void {
    const changed = deps.latest.changedSince(version);
    version = changed.version;
    const data = toPublicJson({ summary: summary(), containers: { full: false, readings: changed.readings } });
    for (const send of subscribers) send(data);
  }

  const feed: EventFeed = {
    subscribe(send) {
      if (closed) return () => undefined;
      // A new page starts from everything; it then shares the ticks' changes with the others.
      send(toPublicJson({ summary: summary(), containers: { full: true, readings: deps.latest.list() } }));
      subscribers.add(send);
      if (!timer) {
        version = deps.latest.version();
        timer = setInterval(tick, options.feedIntervalMs);
      }
      return () => {
        subscribers.delete(send);
        if (subscribers.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
  };

  return {
    routes: {
      '/': () => ({
        status: 200,
        contentType: 'text/html; charset=utf-8',
        body: DASHBOARD_HTML,
        headers: {
          // Everything the page needs is inline or from this gateway.
          'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        },
      }),
      '/healthz': () => json(200, { status: 'alive' }),
      '/readyz': () => {
        const r = readiness();
        return json(r.ready ? 200 : 503, r);
      },
      '/api/status': () => json(200, { gatewayId: options.gatewayId, timeMs: deps.now(), ...deps.status() }),
      '/api/containers': () => {
        const readings = deps.latest.list();
        return json(200, { containers: readings, online: deps.latest.heardSince(deps.now() - ONLINE_WINDOW_MS) });
      },
      '/metrics': async () => ({ status: 200, contentType: deps.metrics.contentType, body: await deps.metrics.render() }),
    },
    feeds: { '/api/events': feed },
    readiness,
    close() {
      closed = true;
      subscribers.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
