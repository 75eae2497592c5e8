/**
 * The simulator's targeted changes: control.updateSkill / deleteSkill and
 * POST /_control/skills/:id/update|delete change one named live skill now, with its event, as
 * the mutation engine does; a skill that is not live is refused naming `skillId`.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../simulator/index.js';

let sim: SimulatorHandle | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function post(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await request(url, { method: 'POST' });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
}

describe('simulator control: one named skill', () => {
  it('updates and deletes the skill named, with its event, in process and over HTTP', async () => {
    const s = (sim = await startSimulator({ skills: 10 }));
    const before = s.control.getSkill('skill-00000003');
    const seq0 = s.control.stats().seq;

    expect(s.control.updateSkill('skill-00000003')).toEqual({ kind: 'update', skillId: 'skill-00000003' });
    const after = s.control.getSkill('skill-00000003');
    expect(after?.version).not.toBe(before?.version);
    expect(Date.parse(after?.updated_at ?? '')).toBeGreaterThan(Date.parse(before?.updated_at ?? ''));
    expect(s.control.stats().seq).toBe(seq0 + 1);

    const del = await post(`${s.controlUrl}/skills/skill-00000000/delete`);
    expect(del).toEqual({ status: 200, json: { applied: [{ kind: 'delete', skillId: 'skill-00000000' }] } });
    expect(s.control.getSkill('skill-00000000')?.deleted_at).toBeTypeOf('string');
    expect(s.control.liveSkillIds()).toHaveLength(9);
    expect(s.control.stats().seq).toBe(seq0 + 2);

    const upd = await post(`${s.controlUrl}/skills/skill-00000004/update`);
    expect(upd.status).toBe(200);
    expect(s.control.getSkill('skill-00000004')?.updated_at).not.toBe(after?.updated_at);
    // Nothing else changed.
    expect(s.control.liveSkillIds()).toEqual(
      Array.from({ length: 9 }, (_, i) => `skill-${String(i + 1).padStart(8, '0')}`),
    );
  });

  it('refuses a deleted or unknown skill, naming skillId', async () => {
    const s = (sim = await startSimulator({ skills: 10 }));
    s.control.deleteSkill('skill-00000001');
    expect(() => s.control.deleteSkill('skill-00000001')).toThrow(/skillId/);
    expect(() => s.control.updateSkill('skill-00000099')).toThrow(/skillId/);
    const r = await post(`${s.controlUrl}/skills/nope/update`);
    expect(r.status).toBe(400);
    expect(r.json['message']).toMatch(/skillId/);
    expect(s.control.stats().liveSkills).toBe(9);
  });
});
