/**
 * The control API: the same operations as the in-process `control` handle, over HTTP under
 * /_control on the simulator's own server, for the CLI and for benchmarks in other processes.
 * Bad settings answer 400 with the setting named.
 *
 *   GET  /_control/digest            {digest}
 *   GET  /_control/stats             catalog size, epoch, seq, paused...
 *   GET  /_control/counters          requests by route/status, applications per key
 *   POST /_control/mutate            {n?, kinds?} -> {applied: [...]}
 *   POST /_control/skills/:id/update one named live skill changes now -> {applied: [...]}
 *   POST /_control/skills/:id/delete one named live skill is deleted now -> {applied: [...]}
 *   POST /_control/pause | /resume
 *   GET|PUT|DELETE /_control/faults  FaultSpec; GET also returns the fault log
 *   POST /_control/reset             {seed?} -> {epoch}
 *   POST /_control/emit-events       {enabled}
 *   POST /_control/configure         live settings (features, token, pageSizeCap, ...)
 *   GET  /_control/skills/:id        direct read of one skill (tombstone if deleted)
 *   POST /_control/close-ws          {code?}: closes every WebSocket connection
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SkillsyncError } from '../src/core/errors.js';
import { CONTROL_PREFIX } from './layouts.js';
import type { FaultSpec } from './faults.js';
import type { SimulatorControl } from './index.js';

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SkillsyncError('SKILLSYNC_ERR_SIM_BAD_SETTING', 'body: not valid JSON');
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new SkillsyncError('SKILLSYNC_ERR_SIM_BAD_SETTING', 'body: must be a JSON object');
  return v as Record<string, unknown>;
}

export async function handleControl(
  control: SimulatorControl,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const path = url.pathname.slice(CONTROL_PREFIX.length);
  const method = req.method ?? 'GET';
  try {
    if (method === 'GET' && path === '/digest') return reply(res, 200, { digest: control.digest() });
    if (method === 'GET' && path === '/stats') return reply(res, 200, control.stats());
    if (method === 'GET' && path === '/counters') {
      const { appliedByKey: _a, ratingHistory: _r, ...plain } = control.counters();
      return reply(res, 200, plain);
    }
    if (method === 'POST' && path === '/mutate') {
      const b = obj(await readJson(req));
      const n = b['n'] === undefined ? 1 : b['n'];
      return reply(res, 200, { applied: control.mutate(n as number, b['kinds'] as never) });
    }
    const named = method === 'POST' ? /^\/skills\/([^/]+)\/(update|delete)$/.exec(path) : null;
    if (named) {
      const id = decodeURIComponent(named[1] as string);
      const rec = named[2] === 'update' ? control.updateSkill(id) : control.deleteSkill(id);
      return reply(res, 200, { applied: [rec] });
    }
    if (method === 'POST' && path === '/pause') {
      control.pauseChanges();
      return reply(res, 200, { paused: true });
    }
    if (method === 'POST' && path === '/resume') {
      control.resumeChanges();
      return reply(res, 200, { paused: false });
    }
    if (path === '/faults') {
      if (method === 'GET') return reply(res, 200, { spec: control.faults(), log: control.faultLog() });
      if (method === 'PUT' || method === 'POST') {
        control.setFaults((await readJson(req)) as FaultSpec);
        return reply(res, 200, { spec: control.faults() });
      }
      if (method === 'DELETE') {
        control.clearFaults();
        return reply(res, 200, { spec: control.faults() });
      }
    }
    if (method === 'POST' && path === '/reset') {
      const b = obj(await readJson(req));
      return reply(res, 200, { epoch: control.resetDataset(b['seed'] as number | undefined) });
    }
    if (method === 'POST' && path === '/emit-events') {
      const b = obj(await readJson(req));
      control.setEmitEvents(b['enabled'] as boolean);
      return reply(res, 200, { emitEvents: b['enabled'] });
    }
    if (method === 'POST' && path === '/configure') {
      control.configure(obj(await readJson(req)));
      return reply(res, 200, control.stats());
    }
    if (method === 'POST' && path === '/close-ws') {
      const b = obj(await readJson(req));
      control.closeWebSockets(b['code'] as number | undefined);
      return reply(res, 200, { closed: true });
    }
    if (method === 'GET' && path.startsWith('/skills/')) {
      const skill = control.getSkill(decodeURIComponent(path.slice('/skills/'.length)));
      return skill
        ? reply(res, 200, skill)
        : reply(res, 404, { error: 'not_found', message: 'no such skill' });
    }
    reply(res, 404, { error: 'not_found', message: `no control route ${method} ${path}` });
  } catch (e) {
    if (e instanceof SkillsyncError && e.code === 'SKILLSYNC_ERR_SIM_BAD_SETTING')
      return reply(res, 400, { error: 'bad_setting', code: e.code, message: e.message });
    reply(res, 500, { error: 'internal', message: e instanceof Error ? e.message : String(e) });
  }
}
