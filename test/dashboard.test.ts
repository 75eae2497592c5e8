/**
 * The dashboard in real headless Chromium (playwright-core + Debian's /usr/bin/chromium)
 * against a running service + simulator: the page loads with the token from the URL fragment,
 * shows live state, "Sync now" starts a run that appears in the runs table, and a conflict can
 * be resolved from the page. Screenshots go to test-output/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service-fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) {
  // Visible in the test output: the browser test needs `apt-get install -y chromium`.
  console.warn(`\n[dashboard test] SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium)\n`);
}

describe.skipIf(!available)('dashboard in headless Chromium', () => {
  let t: TestService;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestService({ start: true, websocket: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync('test-output', { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('shows live state, "Sync now" adds a run, a conflict is resolved from the page', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${t.service.url}/#token=${encodeURIComponent(t.adminToken)}`);
    await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    // The fragment is dropped from the address bar and the token never travels in a URL.
    expect(page.url()).not.toContain('token');
    expect(requests.some((u) => u.includes(t.adminToken))).toBe(false);
    await expect.poll(() => page.locator('#cache-skills').textContent()).toBe('200');
    await expect.poll(() => page.locator('#ws-connected').textContent(), { timeout: 10_000 }).toBe('yes');

    const ids = async (): Promise<number[]> =>
      await page
        .locator('#runs tr')
        .evaluateAll((rows) =>
          rows.map((r) => Number((r as unknown as { dataset: Record<string, string> }).dataset['runId'])),
        );
    const before = await ids();
    const maxBefore = Math.max(0, ...before);
    await page.click('#sync-now');
    await expect
      .poll(async () => Math.max(0, ...(await ids())), { timeout: 15_000 })
      .toBeGreaterThan(maxBefore);
    await expect
      .poll(() => page.locator('#sync-message').textContent())
      .toMatch(/run \d+ (started|already running)/);
    await page.screenshot({ path: 'test-output/dashboard.png', fullPage: true });

    // A conflict appears on the page and "remote wins" resolves it.
    await t.service.config.update({ conflictStrategy: 'manual' });
    const [rec] = t.sim.control.mutate(1, ['update']);
    const skillId = rec!.skillId!;
    const remote = t.sim.control.getSkill(skillId)! as Record<string, unknown>;
    await t.service.store.setLocalOverrides(
      skillId,
      { version: `${String(remote['version'])}-local` },
      Date.now(),
    );
    const run = await t.service.engine.syncAll({ trigger: 'manual', mode: 'full' });
    expect(run.status).toBe('success');
    const row = page.locator('#conflicts tr', { hasText: skillId });
    await row.waitFor({ timeout: 10_000 });
    await page.screenshot({ path: 'test-output/dashboard-conflict.png', fullPage: true });
    await row.getByRole('button', { name: 'remote wins' }).click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    expect((await t.service.store.listConflicts({ status: 'open', limit: 10, offset: 0 })).total).toBe(0);
    await page.close();
  }, 60_000);

  it('asks for the token when none is given and refuses a wrong one', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.service.url}/`);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#token', 'wrong-token');
    await page.click('#login-form button');
    await expect.poll(() => page.locator('#login-error').textContent()).toMatch(/token/i);
    await page.fill('#token', t.adminToken);
    await page.click('#login-form button');
    await page.locator('#main').waitFor({ state: 'visible' });
    await page.close();
  }, 30_000);
});
