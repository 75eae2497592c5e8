/**
 * A demo-like run with faults, every log line captured: HTTP faults and rate limits from the
 * marketplace, a flapping WebSocket with malformed frames (token also in the WS query string,
 * legacy mode), live changes, wrong admin tokens, a token in a query string, local actions.
 * No token may appear in any log line; logs carry request ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service-fixture.js';

let t: TestService;

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  t = await startTestService({
    websocket: true,
    start: true,
    env: { ATOM_SAAS_WS_LEGACY_QUERY_TOKEN: 'true', SKILLSYNC_LOG_LEVEL: 'trace' },
    simulator: {
      skills: 300,
      changesPerSecond: 20,
      faults: {
        seed: 3,
        rules: [
          { fault: 'error', route: 'list_skills', rate: 0.15, status: 503 },
          { fault: 'rate_limit', route: 'list_skills', rate: 0.1, retryAfterSeconds: 1 },
          { fault: 'ws_close_every', everyMs: 700 },
          { fault: 'ws_malformed', rate: 0.2 },
          { fault: 'poison', userId: 'poison-user' },
        ],
      },
    },
  });
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe('logs of a faulty demo-like run', () => {
  it('never contain a token, and carry request ids', async () => {
    const app = t.service.app;
    const base = t.service.url!;
    // Traffic: wrong admin tokens, a token in a query string, normal and admin calls, actions.
    await fetch(`${base}/api/admin/sync/status`, { headers: { authorization: `Bearer ${t.apiToken}` } });
    await fetch(`${base}/api/admin/sync/status`, { headers: { authorization: `Bearer ${t.adminToken}x` } });
    await fetch(`${base}/api/marketplace/skills?token=${t.adminToken}&query=${t.apiToken}`);
    await fetch(`${base}/api/nope/${t.adminToken}`);
    await fetch(`${base}/api/admin/sync/trigger`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.adminToken}`,
        'content-type': 'application/json',
        'x-api-token': t.apiToken,
      },
      body: JSON.stringify({ mode: 'incremental' }),
    });
    // Request ids: kept when they look like one, replaced when they do not or are a secret.
    await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'hop-1.edge:42' } });
    await fetch(`${base}/healthz`, { headers: { 'x-request-id': `forged id ${'x'.repeat(100)}` } });
    await fetch(`${base}/healthz`, { headers: { 'x-request-id': t.adminToken } });
    const id = t.sim.control.liveSkillIds()[1]!;
    await app.inject({
      method: 'POST',
      url: `/api/marketplace/skills/${id}/ratings`,
      payload: { user_id: 'poison-user', rating: 5, comment: t.apiToken },
    });
    await app.inject({
      method: 'PUT',
      url: '/api/admin/sync/config',
      headers: t.auth,
      payload: { admin_token: t.adminToken },
    });

    // Let the faults play out: reconnects after server closes, malformed frames, a dead letter.
    await until('websocket reconnects and invalid frames', async () => {
      const ws = await t.service.store.getWsState();
      return ws.reconnectAttempts >= 2 && ws.counts.invalid > 0;
    });
    await until(
      'a dead-lettered outbox item',
      async () => (await t.service.store.stats(Date.now())).outbox.dead > 0,
    );
    await until('the triggered run to finish', () => !t.service.engine.running, 40_000);
    await t.service.stop();

    expect(t.logs.length).toBeGreaterThan(20);
    const all = t.logs.join('\n');
    expect(all).not.toContain(t.adminToken);
    expect(all).not.toContain(t.apiToken);
    // The run really had faults and auth failures in it.
    expect(all).toContain('admin auth failed');
    const requestLines = t.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['req'] !== undefined);
    expect(requestLines.length).toBeGreaterThan(0);
    for (const line of requestLines) expect(line['reqId']).toEqual(expect.any(String));
    const reqIds = new Set(requestLines.map((l) => l['reqId']));
    expect(reqIds).toContain('hop-1.edge:42');
    expect([...reqIds].some((r) => String(r).startsWith('forged'))).toBe(false);
    const tokenUrl = requestLines.find((l) => String((l['req'] as { url: string }).url).includes('token='));
    expect((tokenUrl?.['req'] as { url: string }).url).toContain('token=[redacted]');
  }, 90_000);
});
