import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { runStoreContract } from './helpers/store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'skillsync-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runStoreContract('sqlite :memory:', () => openSqliteStore({ path: ':memory:' }));
runStoreContract('sqlite file (WAL)', () => openSqliteStore({ path: join(dir, `store-${n++}.db`) }));

it('a prefix search sees terms another connection wrote after it searched the same word', async () => {
  const path = join(dir, `store-${n++}.db`);
  const reader = await openSqliteStore({ path });
  const writer = await openSqliteStore({ path });
  try {
    const skill = (id: string, name: string) => ({
      skill: { skill_id: id, name, version: '1.0.0' },
      contentHash: id,
    });
    const apply = (id: string, name: string, now: number) =>
      writer.applySkillPage({
        items: [skill(id, name)],
        tombstones: [],
        now,
        ttlMs: 3_600_000,
        source: 'incremental',
        epoch: null,
        guard: 'version',
        checkpoint: null,
      });
    const total = async (text: string) =>
      (await reader.searchSkills({ text, page: 1, pageSize: 5, now: 1 })).total;
    await apply('a', 'wombatone', 1);
    expect(await total('wombat')).toBe(1);
    await apply('b', 'wombattwo', 2);
    expect(await total('wombat')).toBe(2);
    expect(await total('wombatt')).toBe(1);
  } finally {
    await reader.close();
    await writer.close();
  }
});
