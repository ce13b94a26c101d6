import { mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { startTestGateway } from '../harness/gateway-under-test.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function launchBrowser(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  cleanups.push(() => browser.close());
  return browser;
}

describe('dashboard', () => {
  it('shows the containers a simulated fleet reports, with their latest temperature, setpoint and alarms, and the uplink state, updating live', async () => {
    const gw = await startTestGateway(bootstrap);
    cleanups.push(() => gw.close());
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 60_000 }).toBe('up');

    const latest = new Map<string, ReeferReading>();
    const fleet = createFleet({
      mqttUrl: gw.mqttUrl,
      devices: 12,
      countPerDevice: 5,
      ratePerSecond: 0,
      seed: 17,
      qos: 1,
      form: 'canonical-json',
      onSent: (reading) => {
        const before = latest.get(reading.container_id);
        if (!before || before.measurement_time < reading.measurement_time) latest.set(reading.container_id, reading);
      },
    });
    cleanups.push(() => fleet.stop());
    expect((await fleet.run()).errors).toBe(0);
    expect(latest.size).toBe(12);

    const browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${gw.gateway.httpPort()}/`);

    const rows = page.locator('#rows tr');
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(12);
    for (const [containerId, reading] of latest) {
      const row = page.locator(`#rows tr[data-container="${containerId}"]`);
      expect(await row.locator('td.id').textContent()).toBe(containerId);
      expect(await row.locator('td.temp').textContent()).toBe(`${reading.temperature.toFixed(1)} °C`);
      expect(await row.locator('td.setpoint').textContent()).toBe(`${reading.target_temperature!.toFixed(1)} °C`);
    }
    await expect.poll(() => page.locator('#uplink-state').textContent(), { timeout: 30_000 }).toBe('up');
    expect(await page.locator('#gateway-id').textContent()).toBe('gw-test');
    await expect.poll(() => page.locator('#devices-online').textContent(), { timeout: 30_000 }).toBe('12');

    // Two containers go into alarm after the page opened: the page shows it without a reload.
    const device = await connectDevice({ url: gw.mqttUrl, clientId: 'dashboard-test', qos: 1 });
    const now = Date.now();
    const door = { ...latest.get('C0003')!, measurement_time: now - 1000, time_door_open: 4 };
    const hot = { ...latest.get('C0007')!, measurement_time: now - 1000, temperature: latest.get('C0007')!.target_temperature! + 9.5 };
    await device.publish('reefer/C0003/telemetry', Buffer.from(JSON.stringify({ ...door, measurement_time: new Date(door.measurement_time).toISOString() })));
    await device.publish('reefer/C0007/telemetry', Buffer.from(JSON.stringify({ ...hot, measurement_time: new Date(hot.measurement_time).toISOString() })));
    await device.close();

    const doorRow = page.locator('#rows tr[data-container="C0003"]');
    await expect.poll(() => doorRow.locator('td.alarms').textContent(), { timeout: 30_000 }).toBe('door open');
    const hotRow = page.locator('#rows tr[data-container="C0007"]');
    await expect.poll(() => hotRow.locator('td.alarms').textContent(), { timeout: 30_000 }).toBe('excursion');
    expect(await hotRow.locator('td.temp').textContent()).toBe(`${hot.temperature.toFixed(1)} °C`);
    // Containers in alarm are listed first.
    expect(await rows.nth(0).getAttribute('data-container')).toBe('C0003');
    expect(await rows.nth(1).getAttribute('data-container')).toBe('C0007');
    await expect.poll(() => page.locator('#rate-out').textContent(), { timeout: 30_000 }).toMatch(/^\d+\.\d$/);

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
