import { describe, expect, it } from 'vitest';
import {
  afterFailure,
  createRecentIds,
  decodeDeadLetteredAction,
  decodePendingAction,
  encodeDeadLetteredAction,
  encodePendingAction,
  maintenanceCommand,
  maintenanceCommandId,
  maintenanceOrder,
  retryDelayMs,
} from '../../cloud-bridge/actions.js';
import type { MaintenanceNeeded } from '../../cloud-bridge/alerts.js';
import { commandFromFlags, joinNegativeSetpoint, parseDurationMs } from '../../cloud-bridge/command-subcommand.js';
import { checkCommand } from '../../cloud-bridge/commands.js';

const alert: MaintenanceNeeded = { type: 'MaintenanceNeeded', alertId: 'gw-7/1234/maintenance', containerId: 'C01', gatewayId: 'gw-7', timeMs: 1000, anomalyCount: 3, rules: ['co2', 'co2', 'o2'] };
const policy = { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 3000 };

describe('maintenance action', () => {
  it('derives a valid command id from the alert id, the same every time, and addresses the alert\'s gateway', () => {
    expect(maintenanceCommandId(alert.alertId)).toBe('maintenance:gw-7:1234:maintenance');
    const command = maintenanceCommand(alert, 5000, 60_000);
    expect(checkCommand(command)).toEqual({ ok: true, value: command });
    expect(command).toMatchObject({ containerId: 'C01', gatewayId: 'gw-7', kind: 'maintenance', issuedMs: 5000, expiresMs: 65_000 });
    expect(maintenanceOrder(alert)).toMatchObject({ alertId: alert.alertId, commandId: command.commandId, rules: ['co2', 'co2', 'o2'] });
  });

  it('retries with a doubling delay up to its ceiling, then dead-letters after maxAttempts with the reason', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, policy))).toEqual([1000, 2000, 3000, 3000]);
    const first = afterFailure({ alert, attempts: 1, commandIssued: true }, 'answered 503', 10_000, policy);
    expect(first).toEqual({ kind: 'retry', pending: { alert, attempts: 1, commandIssued: true, notBeforeMs: 11_000, lastError: 'answered 503' } });
    expect(afterFailure({ alert, attempts: 2, commandIssued: true }, 'x', 10_000, policy)).toMatchObject({ kind: 'retry', pending: { notBeforeMs: 12_000 } });
    expect(afterFailure({ alert, attempts: 3, commandIssued: false }, 'unreachable: ECONNREFUSED', 10_000, policy)).toEqual({
      kind: 'dead-letter',
      dead: { alert, attempts: 3, commandIssued: false, reason: 'gave up after 3 attempts: unreachable: ECONNREFUSED', deadLetteredMs: 10_000 },
    });
  });

  it('round-trips retry and dead-letter records and refuses what is not one', () => {
    const pending = { alert, attempts: 2, notBeforeMs: 5, commandIssued: true, lastError: 'e' };
    expect(decodePendingAction(encodePendingAction(pending))).toEqual(pending);
    expect(decodePendingAction(Buffer.from(JSON.stringify({ ...pending, attempts: 0 })))).toBeNull();
    expect(decodePendingAction(Buffer.from(JSON.stringify({ ...pending, alert: { ...alert, type: 'ContainerAnomaly' } })))).toBeNull();
    expect(decodePendingAction(Buffer.from('{'))).toBeNull();
    const dead = { alert, attempts: 3, commandIssued: true, reason: 'r', deadLetteredMs: 9 };
    expect(decodeDeadLetteredAction(encodeDeadLetteredAction(dead))).toEqual(dead);
  });

  it('remembers the most recent alert ids only', () => {
    const ids = createRecentIds(2);
    ids.add('a');
    ids.add('b');
    ids.add('a');
    ids.add('c');
    expect([ids.has('a'), ids.has('b'), ids.has('c'), ids.size()]).toEqual([true, false, true, 2]);
  });
});

describe('reefer-bridge command flags', () => {
  it('reads durations with units', () => {
    expect([parseDurationMs('90s'), parseDurationMs('15m'), parseDurationMs('2h'), parseDurationMs('1500'), parseDurationMs('0'), parseDurationMs('soon')]).toEqual([
      90_000, 900_000, 7_200_000, 1500, null, null,
    ]);
  });

  it('builds one command from the flags, naming the flag at fault', () => {
    const built = commandFromFlags({ container: 'C01', gateway: 'gw-7', setpoint: '-18', ttl: '10m', id: 'cmd-x' }, 1000);
    expect(built).toEqual({ ok: true, command: { commandId: 'cmd-x', containerId: 'C01', gatewayId: 'gw-7', kind: 'setpoint', targetTemperature: -18, issuedMs: 1000, expiresMs: 601_000 } });
    expect(commandFromFlags({ container: 'C01', gateway: 'gw-7', defrost: true, maintenance: true }, 0)).toEqual({
      ok: false,
      message: 'expected exactly one of --setpoint, --maintenance and --defrost, got --maintenance and --defrost',
    });
    expect(commandFromFlags({ container: 'C01', gateway: 'gw-7', setpoint: 'cold' }, 0)).toMatchObject({ ok: false, message: expect.stringMatching(/^--setpoint \(targetTemperature: expected/) });
    expect(commandFromFlags({ gateway: 'gw-7', defrost: true }, 0)).toMatchObject({ ok: false, message: expect.stringMatching(/^--container/) });
    expect(commandFromFlags({ container: 'C01', gateway: 'gw-7', defrost: true, ttl: 'later' }, 0)).toEqual({ ok: false, message: '--ttl: expected a duration such as 90s, 15m or 2h, got "later"' });
  });
});

describe('reefer-bridge command arguments', () => {
  it('takes a negative setpoint as the value of --setpoint, not as a flag', () => {
    expect(joinNegativeSetpoint(['--setpoint', '-18', '--defrost'])).toEqual(['--setpoint=-18', '--defrost']);
    expect(joinNegativeSetpoint(['--setpoint', '4', '--ttl', '-1'])).toEqual(['--setpoint', '4', '--ttl', '-1']);
  });
});
