/**
 * The gateway's running counts, kept as plain numbers on the hot path and read by the metrics
 * endpoint, the CLI's status line and the tests.
 */
import type { Transport } from '../../schemas/reefer-reading.js';

export interface StatsSnapshot {
  accepted: Record<string, number>;
  rejected: Record<string, Record<string, number>>;
  acceptedTotal: number;
  /** Resent readings recognised and not stored again, per transport. */
  duplicates: Record<string, number>;
  rejectedTotal: number;
  sent: number;
  uplinkErrors: number;
  /** Readings not acknowledged because the disk was full; their devices keep them. */
  refused: number;
  shed: { expired: number; thinned: number; droppedRoutine: number; droppedAlarm: number };
}

export interface GatewayStats {
  accepted(transport: Transport): void;
  rejected(transport: Transport, reason: string): void;
  duplicate(transport: Transport): void;
  sent(count: number): void;
  uplinkError(): void;
  refused(count?: number): void;
  shed(report: StatsSnapshot['shed']): void;
  snapshot(): StatsSnapshot;
}

export function createGatewayStats(): GatewayStats {
  const accepted: Record<string, number> = {};
  const duplicates: Record<string, number> = {};
  const rejected: Record<string, Record<string, number>> = {};
  let acceptedTotal = 0;
  let rejectedTotal = 0;
  let sent = 0;
  let uplinkErrors = 0;
  let refused = 0;
  const shed = { expired: 0, thinned: 0, droppedRoutine: 0, droppedAlarm: 0 };
  return {
    refused(count = 1) {
      refused += count;
    },
    shed(report) {
      shed.expired += report.expired;
      shed.thinned += report.thinned;
      shed.droppedRoutine += report.droppedRoutine;
      shed.droppedAlarm += report.droppedAlarm;
    },
    accepted(transport) {
      accepted[transport] = (accepted[transport] ?? 0) + 1;
      acceptedTotal += 1;
    },
    rejected(transport, reason) {
      const perReason = (rejected[transport] ??= {});
      perReason[reason] = (perReason[reason] ?? 0) + 1;
      rejectedTotal += 1;
    },
    duplicate(transport) {
      duplicates[transport] = (duplicates[transport] ?? 0) + 1;
    },
    sent(count) {
      sent += count;
    },
    uplinkError() {
      uplinkErrors += 1;
    },
    snapshot() {
      return {
        accepted: { ...accepted },
        rejected: Object.fromEntries(Object.entries(rejected).map(([t, r]) => [t, { ...r }])),
        acceptedTotal,
        duplicates: { ...duplicates },
        rejectedTotal,
        sent,
        uplinkErrors,
        refused,
        shed: { ...shed },
      };
    },
  };
}
