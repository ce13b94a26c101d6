import { describe, expect, it } from 'vitest';
import { parseSimArgs, SIM_USAGE } from '../../device-sim/cli.js';
import { createDeviceCommandHandler } from '../../device-sim/device-commands.js';
import { createReefer } from '../../device-sim/reefer-model.js';

const NOW_MS = Date.UTC(2026, 0, 1);

function command(fields: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ containerId: 'C01', expiresMs: NOW_MS + 60_000, ...fields }));
}

function ackOf(payload: Buffer | null): unknown {
  return payload === null ? null : JSON.parse(payload.toString('utf8'));
}

describe('the reefer model under commands', () => {
  it('moves the target to a new setpoint at once and the temperature toward it over the next readings', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 11, product: 'P05', intervalMs: 60_000 });
    const before = Array.from({ length: 5 }, () => reefer.next());
    expect(before.every((r) => r.target_temperature === 5)).toBe(true);

    reefer.setTargetTemperature(-10);
    const after = Array.from({ length: 90 }, () => reefer.next());
    expect(after.every((r) => r.target_temperature === -10)).toBe(true);
    const mean = (rs: typeof after) => rs.reduce((sum, r) => sum + r.temperature!, 0) / rs.length;
    // First-order pull-down (τ = 20 min): a few minutes in it has moved, after an hour it has settled.
    expect(mean(after.slice(2, 6))).toBeLessThan(mean(before) - 1);
    expect(mean(after.slice(2, 6))).toBeGreaterThan(-8);
    expect(Math.abs(mean(after.slice(-20)) - -10)).toBeLessThan(1.5);
  });

  it('is the same reefer as before when no command arrives: commands add no random draws', () => {
    const a = createReefer({ containerId: 'C01', seed: 4 });
    const b = createReefer({ containerId: 'C01', seed: 4 });
    b.setTargetTemperature(b.targetTemperature());
    expect(Array.from({ length: 50 }, () => b.next())).toEqual(Array.from({ length: 50 }, () => a.next()));
  });

  it('starts a defrost on request: the heater replaces the compressor, the temperature rises and the day\'s defrost count grows', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 2, product: 'P01', intervalMs: 5 * 60_000 });
    for (let i = 0; i < 3; i++) reefer.next();
    while (reefer.state().defrostRemainingMin > 0) reefer.next();
    const cooling = reefer.next();
    expect(reefer.startDefrost()).toBe(true);
    expect(reefer.startDefrost()).toBe(false);
    const defrosting = Array.from({ length: 4 }, () => reefer.next());
    const rise = Math.max(...defrosting.map((r) => r.temperature ?? Number.NEGATIVE_INFINITY)) - (cooling.temperature ?? 0);
    expect(rise).toBeGreaterThan(0.5);
    expect(defrosting[0]!.defrost_cycle).toBe((cooling.defrost_cycle ?? 0) + 1);
    // Defrost power (1.8 kW) against the compressor's ≈2.7 kW.
    expect(defrosting[0]!.kilowatts!).toBeLessThan(2.2);
  });

  it('ends a random failure in progress on maintenance', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 9, randomFailures: { ratePerReading: 1, modes: ['co2sensor'], minReadings: 50, maxReadings: 50 } });
    expect(reefer.sample().label.failure).toBe('co2sensor');
    expect(reefer.repair()).toBe(true);
    expect(reefer.repair()).toBe(false);
  });
});

describe('a simulated device handling commands', () => {
  it('applies a setpoint once and answers a redelivery with the same acknowledgement', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 1, product: 'P02' });
    const applied: string[] = [];
    const handler = createDeviceCommandHandler(reefer, { now: () => NOW_MS, onApplied: (c) => applied.push(c.commandId) });
    const payload = command({ commandId: 'cmd-1', kind: 'setpoint', targetTemperature: 2 });
    const first = handler.handle(payload);
    expect(ackOf(first)).toEqual({ commandId: 'cmd-1', status: 'applied' });
    reefer.setTargetTemperature(9);
    expect(handler.handle(payload)).toEqual(first);
    // The repeat did not apply the command again.
    expect(reefer.targetTemperature()).toBe(9);
    expect(applied).toEqual(['cmd-1']);
    expect(handler.handled()).toBe(1);
  });

  it('rejects what it cannot do, with the reason, and ignores what is not a command', () => {
    const handler = createDeviceCommandHandler(createReefer({ containerId: 'C01', seed: 1 }), { now: () => NOW_MS });
    expect(ackOf(handler.handle(command({ commandId: 'a', kind: 'setpoint', targetTemperature: 80 })))).toEqual({
      commandId: 'a',
      status: 'rejected',
      detail: 'targetTemperature: expected °C from -70 to 30, got 80',
    });
    expect(ackOf(handler.handle(command({ commandId: 'b', kind: 'defrost', expiresMs: NOW_MS - 1 })))).toEqual({ commandId: 'b', status: 'rejected', detail: 'expired before it reached the device' });
    expect(ackOf(handler.handle(command({ commandId: 'c', kind: 'defrost', containerId: 'C02' })))).toMatchObject({ status: 'rejected', detail: 'containerId: expected C01, got C02' });
    expect(ackOf(handler.handle(command({ commandId: 'd', kind: 'maintenance' })))).toEqual({ commandId: 'd', status: 'applied', detail: 'no failure in progress' });
    expect(handler.handle(Buffer.from('garbage'))).toBeNull();
    expect(handler.handle(Buffer.from('{"kind":"defrost"}'))).toBeNull();
  });

  it('forgets the oldest command ids past its limit', () => {
    const reefer = createReefer({ containerId: 'C01', seed: 1 });
    const handler = createDeviceCommandHandler(reefer, { now: () => NOW_MS, rememberCommands: 2 });
    for (const id of ['x', 'y', 'z']) handler.handle(command({ commandId: id, kind: 'setpoint', targetTemperature: 1 }));
    handler.handle(command({ commandId: 'x', kind: 'setpoint', targetTemperature: 3 }));
    expect(handler.handled()).toBe(4);
    expect(reefer.targetTemperature()).toBe(3);
  });
});

describe('reefer-sim --commands', () => {
  it('turns command handling on for MQTT fleets and refuses it on serial ports', () => {
    expect(parseSimArgs(['--commands', 'on'])).toMatchObject({ ok: true, options: { commands: true } });
    expect(parseSimArgs(['--commands', 'yes'])).toEqual({ ok: false, message: '--commands: expected on or off, got "yes"' });
    expect(parseSimArgs(['--serial', '/dev/ttyUSB0', '--commands', 'on'])).toMatchObject({ ok: false, message: expect.stringMatching(/^--serial and --commands: --commands applies to MQTT fleets only/) });
    expect(SIM_USAGE).toMatch(/--commands on\|off/);
  });
});
