import { describe, expect, it } from 'vitest';
import {
  checkCommand,
  commandRecord,
  decodeCommand,
  decodeCommandAck,
  decodeCommandStatus,
  encodeCommandStatus,
  isStateChange,
  type ReeferCommand,
} from '../../cloud-bridge/commands.js';
import { decodeMarker, encodeMarker } from '../../gateway/uplink/kafka-uplink.js';

const setpoint: ReeferCommand = { commandId: 'cmd-1', containerId: 'C01', gatewayId: 'gw-1', kind: 'setpoint', targetTemperature: -18, issuedMs: 1000, expiresMs: 61_000 };

describe('command records', () => {
  it('round-trips a command through its record, with the gateway in the gateway_id header', () => {
    const record = commandRecord(setpoint);
    expect(record.key).toBe('C01');
    expect(record.headers).toEqual({ gateway_id: 'gw-1' });
    expect(decodeCommand(record.value)).toEqual({ ok: true, value: setpoint });
  });

  it('names the field, the value and the expectation of a bad command', () => {
    expect(checkCommand({ ...setpoint, targetTemperature: 99 })).toEqual({ ok: false, reason: 'targetTemperature: expected °C from -70 to 30 for a setpoint, got 99' });
    expect(checkCommand({ ...setpoint, kind: 'reboot' })).toMatchObject({ ok: false, reason: expect.stringMatching(/^kind: expected setpoint, maintenance, defrost, got "reboot"/) });
    expect(checkCommand({ ...setpoint, containerId: 'C/01' })).toMatchObject({ ok: false, reason: expect.stringMatching(/^containerId:/) });
    expect(checkCommand({ ...setpoint, expiresMs: 1000 })).toMatchObject({ ok: false, reason: expect.stringMatching(/^expiresMs: expected epoch milliseconds after issuedMs/) });
    expect(checkCommand({ ...setpoint, kind: 'defrost' })).toMatchObject({ ok: false, reason: expect.stringMatching(/^targetTemperature: expected nothing for a defrost command/) });
    expect(decodeCommand(Buffer.from('not json'))).toEqual({ ok: false, reason: 'value is not JSON' });
    expect(decodeCommand(null)).toEqual({ ok: false, reason: 'empty value' });
  });

  it('drops fields a command does not have', () => {
    const { targetTemperature: _, ...defrost } = { ...setpoint, kind: 'defrost' as const };
    expect(decodeCommand(Buffer.from(JSON.stringify({ ...defrost, extra: 1 })))).toEqual({ ok: true, value: defrost });
  });

  it('decodes statuses and device acknowledgements, refusing what is not one', () => {
    const status = { commandId: 'cmd-1', containerId: 'C01', gatewayId: 'gw-1', status: 'applied' as const, timeMs: 5 };
    expect(decodeCommandStatus(encodeCommandStatus(status))).toEqual(status);
    expect(decodeCommandStatus(Buffer.from(JSON.stringify({ ...status, status: 'lost' })))).toBeNull();
    expect(decodeCommandAck(Buffer.from('{"commandId":"cmd-1","status":"rejected","detail":"no"}'))).toEqual({ ok: true, value: { commandId: 'cmd-1', status: 'rejected', detail: 'no' } });
    expect(decodeCommandAck(Buffer.from('{"commandId":"cmd-1","status":"done"}'))).toEqual({ ok: false, reason: 'status: expected applied or rejected, got "done"' });
  });

  it('moves a command forward only, never out of a final state', () => {
    expect(isStateChange('stored', 'delivered')).toBe(true);
    expect(isStateChange('stored', 'applied')).toBe(true);
    expect(isStateChange('delivered', 'expired')).toBe(true);
    expect(isStateChange('delivered', 'stored')).toBe(false);
    expect(isStateChange('applied', 'applied')).toBe(false);
    expect(isStateChange('expired', 'applied')).toBe(false);
    expect(isStateChange('rejected', 'delivered')).toBe(false);
  });
});

describe('uplink progress marker with command statuses', () => {
  it('carries the committed status range after ;s beside readings and dead letters', () => {
    expect(encodeMarker('e', [[1, 2]], [17, 20], [4, 9])).toBe('e:1-2;d17-20;s4-9');
    expect(decodeMarker('e:1-2;d17-20;s4-9')).toEqual({ epoch: 'e', ranges: [[1, 2]], deadLetters: [17, 20], commandStatuses: [4, 9] });
    expect(decodeMarker(encodeMarker('e', [], undefined, [3, 3]))).toEqual({ epoch: 'e', ranges: [], commandStatuses: [3, 3] });
    expect(decodeMarker('e:1-2;x4-9')).toBeNull();
  });
});
