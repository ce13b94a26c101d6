import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const listener = fileURLToPath(new URL('../../gateway/ingest/mqtt-listener.ts', import.meta.url));

/**
 * Loads the MQTT listener in a fresh node (with `debug` environment), then parses a PUBLISH with
 * mqtt-packet as aedes resolves it, and reports whether its `debug` gives real loggers (they have a
 * colour) and what was logged.
 */
function afterLoading(debugEnv: string | undefined): { packetLoggerIsReal: boolean; otherEnabled: boolean; parsedTopic: string; stderr: string } {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(listener)});
    const packetRequire = createRequire(createRequire(import.meta.resolve('aedes')).resolve('mqtt-packet'));
    const createDebug = packetRequire('debug');
    const mqttPacket = packetRequire('./mqtt.js');
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let parsedTopic = '';
    parser.on('packet', (packet) => (parsedTopic = packet.topic));
    parser.parse(mqttPacket.generate({ cmd: 'publish', topic: 'reefer/C01/telemetry', payload: Buffer.from('{}'), qos: 1, messageId: 7, retain: false, dup: false }));
    process.stdout.write(JSON.stringify({ packetLoggerIsReal: 'color' in createDebug('mqtt-packet:parser'), otherEnabled: createDebug('other').enabled === true, parsedTopic }));
  `;
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
  delete env.DEBUG;
  if (debugEnv !== undefined) env.DEBUG = debugEnv;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env });
  if (run.status !== 0) throw new Error(`node exited with ${run.status}: ${run.stderr}`);
  return { ...(JSON.parse(run.stdout) as { packetLoggerIsReal: boolean; otherEnabled: boolean; parsedTopic: string }), stderr: run.stderr };
}

describe("mqtt-packet's debug loggers", () => {
  it('do nothing once the MQTT listener is loaded, and packets still parse', () => {
    const loaded = afterLoading(undefined);
    expect(loaded.packetLoggerIsReal).toBe(false);
    expect(loaded.parsedTopic).toBe('reefer/C01/telemetry');
    expect(loaded.stderr).toBe('');
  });

  it('still log when DEBUG turns them on, and other namespaces keep the real debug', () => {
    const loaded = afterLoading('mqtt-packet:*,other');
    expect(loaded.packetLoggerIsReal).toBe(true);
    expect(loaded.otherEnabled).toBe(true);
    expect(loaded.parsedTopic).toBe('reefer/C01/telemetry');
    expect(loaded.stderr).toContain('mqtt-packet:parser');
  });
});
