/**
 * The gateway's running counts, kept as plain numbers on the hot path and read by the metrics
 * endpoint, the CLI's status line and the tests.
 */
import type { Transport } from '../../schemas/reefer-reading.js';

export interface StatsSnapshot {
  accepted: Record<string, number>;
  rejected: Record<string, Record<string, number>>;
  acceptedTotal: number;
  rejectedTotal: number;
  sent: number;
  uplinkErrors: number;
}

export interface GatewayStats {
  accepted(transport: Transport): void;
  rejected(transport: Transport, reason: string): void;
  sent(count: number): void;
  uplinkError(): void;
  snapshot(): StatsSnapshot;
}

export function createGatewayStats(): GatewayStats {
  const accepted: Record<string, number> = {};
  const rejected: Record<string, Record<string, number>> = {};
  let acceptedTotal = 0;
  let rejectedTotal = 0;
  let sent = 0;
  let uplinkErrors = 0;
  return {
    accepted(transport) {
      accepted[transport] = (accepted[transport] ?? 0) + 1;
      acceptedTotal += 1;
    },
    rejected(transport, reason) {
      const perReason = (rejected[transport] ??= {});
      perReason[reason] = (perReason[reason] ?? 0) + 1;
      rejectedTotal += 1;
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
        rejectedTotal,
        sent,
        uplinkErrors,
      };
    },
  };
}
