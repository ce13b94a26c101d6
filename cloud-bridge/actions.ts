/**
 * The maintenance action, as the reference architecture's actions consumer takes it: after a
 * `MaintenanceNeeded` alert, a `maintenance` command goes to the container and a maintenance order is
 * opened. What may fail (the order endpoint) is retried through `reefer-alerts-retry` with a growing
 * delay, and dead-lettered on `reefer-alerts-dlq` with its reason after a bounded number of attempts.
 * Pure: record formats and decisions, no I/O.
 */
import type { MaintenanceNeeded } from './alerts.js';
import type { ReeferCommand } from './commands.js';
import { parseJsonObject } from './json-value.js';

export const DEFAULT_ALERTS_RETRY_TOPIC = 'reefer-alerts-retry';
export const DEFAULT_ALERTS_DLQ_TOPIC = 'reefer-alerts-dlq';

/** An action that failed and waits for its next attempt (value of a `reefer-alerts-retry` record). */
export interface PendingAction {
  alert: MaintenanceNeeded;
  /** Attempts made so far. */
  attempts: number;
  /** The next attempt is not made before this time. */
  notBeforeMs: number;
  /** The maintenance command is already on `reefer-commands`; only the order is left to do. */
  commandIssued: boolean;
  /** Why the last attempt failed. */
  lastError: string;
}

/** An action given up on (value of a `reefer-alerts-dlq` record). */
export interface DeadLetteredAction {
  alert: MaintenanceNeeded;
  attempts: number;
  commandIssued: boolean;
  reason: string;
  deadLetteredMs: number;
}

/** What a maintenance order endpoint receives (JSON, with header Idempotency-Key = alertId). */
export interface MaintenanceOrder {
  alertId: string;
  containerId: string;
  gatewayId: string;
  anomalyCount: number;
  rules: string[];
  /** When the alert was raised. */
  alertTimeMs: number;
  /** The command sent to the container with the order. */
  commandId: string;
}

export interface RetryPolicy {
  /** Attempts in all, the first included; past the last the action is dead-lettered. */
  maxAttempts: number;
  /** Delay before the second attempt; each later one doubles it, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The command id of an alert's maintenance command: the same alert always gives the same id. */
export function maintenanceCommandId(alertId: string): string {
  return `maintenance:${alertId.replace(/[^A-Za-z0-9._:-]/g, ':')}`.slice(0, 128);
}

export function maintenanceCommand(alert: MaintenanceNeeded, nowMs: number, ttlMs: number): ReeferCommand {
  return {
    commandId: maintenanceCommandId(alert.alertId),
    containerId: alert.containerId,
    gatewayId: alert.gatewayId,
    kind: 'maintenance',
    issuedMs: nowMs,
    expiresMs: nowMs + ttlMs,
  };
}

export function maintenanceOrder(alert: MaintenanceNeeded): MaintenanceOrder {
  return {
    alertId: alert.alertId,
    containerId: alert.containerId,
    gatewayId: alert.gatewayId,
    anomalyCount: alert.anomalyCount,
    rules: [...alert.rules],
    alertTimeMs: alert.timeMs,
    commandId: maintenanceCommandId(alert.alertId),
  };
}

/** Delay after failed attempt number `attempts` (1 for the first). */
export function retryDelayMs(attempts: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempts - 1));
}

export type AfterFailure = { kind: 'retry'; pending: PendingAction } | { kind: 'dead-letter'; dead: DeadLetteredAction };

/** What follows a failed attempt: another one later, or the dead-letter topic once maxAttempts were made. */
export function afterFailure(
  action: { alert: MaintenanceNeeded; attempts: number; commandIssued: boolean },
  error: string,
  nowMs: number,
  policy: RetryPolicy,
): AfterFailure {
  if (action.attempts >= policy.maxAttempts) {
    return {
      kind: 'dead-letter',
      dead: {
        alert: action.alert,
        attempts: action.attempts,
        commandIssued: action.commandIssued,
        reason: `gave up after ${action.attempts} attempts: ${error}`,
        deadLetteredMs: nowMs,
      },
    };
  }
  return {
    kind: 'retry',
    pending: { ...action, notBeforeMs: nowMs + retryDelayMs(action.attempts, policy), lastError: error },
  };
}

function isMaintenanceNeeded(a: unknown): a is MaintenanceNeeded {
  if (typeof a !== 'object' || a === null) return false;
  const m = a as Record<string, unknown>;
  return (
    m.type === 'MaintenanceNeeded' &&
    typeof m.alertId === 'string' &&
    typeof m.containerId === 'string' &&
    typeof m.gatewayId === 'string' &&
    typeof m.timeMs === 'number' &&
    typeof m.anomalyCount === 'number' &&
    Array.isArray(m.rules)
  );
}

export function encodePendingAction(pending: PendingAction): Buffer {
  return Buffer.from(JSON.stringify(pending), 'utf8');
}

/** Decodes a retry record's value; null (never a throw) when it is not one. */
export function decodePendingAction(value: Buffer | null): PendingAction | null {
  const p = parseJsonObject(value);
  if (typeof p === 'string' || !isMaintenanceNeeded(p.alert)) return null;
  if (typeof p.attempts !== 'number' || !Number.isInteger(p.attempts) || p.attempts < 1) return null;
  if (typeof p.notBeforeMs !== 'number' || typeof p.commandIssued !== 'boolean' || typeof p.lastError !== 'string') return null;
  return p as unknown as PendingAction;
}

export function encodeDeadLetteredAction(dead: DeadLetteredAction): Buffer {
  return Buffer.from(JSON.stringify(dead), 'utf8');
}

export function decodeDeadLetteredAction(value: Buffer | null): DeadLetteredAction | null {
  const d = parseJsonObject(value);
  if (typeof d === 'string' || !isMaintenanceNeeded(d.alert) || typeof d.attempts !== 'number' || typeof d.reason !== 'string') return null;
  return d as unknown as DeadLetteredAction;
}

/** Remembers the most recent ids, forgetting the oldest past `max`: an alert is acted on once. */
export function createRecentIds(max: number): { has(id: string): boolean; add(id: string): void; size(): number } {
  const ids = new Set<string>();
  return {
    has: (id) => ids.has(id),
    add(id) {
      ids.delete(id);
      ids.add(id);
      if (ids.size > max) ids.delete(ids.values().next().value!);
    },
    size: () => ids.size,
  };
}
