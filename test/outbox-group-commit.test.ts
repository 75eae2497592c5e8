/**
 * Group commit of local actions on SQLite: ratings and installs issued in the same event-loop
 * turn share one transaction (one commit), each in its own savepoint, and no caller is answered
 * before that commit; a lone caller is not made to wait a turn. Real file stores; the WAL's
 * growth shows how many commits were made.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import type { EnqueueInput, OutboxKind } from '../src/store/types.js';
import { LocalActions } from '../src/sync/local-actions.js';
import { mkSkill, up } from './helpers/store-contract.js';

const T0 = Date.UTC(2026, 0, 1);
const SKILLS = ['s1', 's2', 's3'];

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function freshStore(): Promise<{ store: Store; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-group-'));
  dirs.push(dir);
  const path = join(dir, 'store.db');
  const store = await openSqliteStore({ path });
  stores.push(store);
  await store.applySkillPage({
    items: SKILLS.map((id) => up(mkSkill(id))),
    tombstones: [],
    source: 'full',
    now: T0,
    ttlMs: 86_400_000,
    epoch: null,
    guard: 'listing',
    checkpoint: null,
  });
  return { store, path };
}

function ratingItem(key: string, userId: string, skillId: string, kind: OutboxKind = 'rating'): EnqueueInput {
  return {
    kind,
    chainKey: `rating:${userId}:${skillId}`,
    payload: { skill_id: skillId, user_id: userId, rating: 4 },
    idempotencyKey: key,
    now: T0,
  };
}

function rate(store: Store, key: string, userId: string, skillId: string, rating = 4, kind?: OutboxKind) {
  return store.recordRating(
    { skillId, userId, rating, comment: null },
    ratingItem(key, userId, skillId, kind),
  );
}

describe('SQLite group commit of local actions', () => {
  it('actions of one turn share one commit; sequential ones commit each', async () => {
    const { store, path } = await freshStore();
    const wal = () => statSync(`${path}-wal`).size;
    const beforeConcurrent = wal();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => rate(store, `con-${i}`, `con-${i}`, SKILLS[i % 3]!)),
    );
    const concurrent = wal() - beforeConcurrent;
    const beforeSequential = wal();
    for (let i = 0; i < 20; i++) await rate(store, `seq-${i}`, `seq-${i}`, SKILLS[i % 3]!);
    const sequential = wal() - beforeSequential;
    // Each commit writes every page it touched (6-7 here); one commit of 20 writes each once.
    expect(concurrent).toBeGreaterThan(0);
    expect(concurrent * 5).toBeLessThan(sequential);
    // Ids in call order, and every action readable.
    const ids = answers.map((a) => a.outbox.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(20);
    for (let i = 0; i < 20; i++) {
      expect(await store.getRating(SKILLS[i % 3]!, `con-${i}`)).toMatchObject({
        rating: 4,
        uploadStatus: 'pending',
      });
    }
  });

  it('a lone caller commits at once; concurrent callers turn grouping back on', async () => {
    const { store, path } = await freshStore();
    const wal = () => statSync(`${path}-wal`).size;
    // Sequential callers: after two lone flushes the actions run in the call itself, so one
    // is committed (and readable by another connection) before its promise is even awaited.
    for (let i = 0; i < 5; i++) await rate(store, `seq-${i}`, `seq-${i}`, 's1');
    const pending = rate(store, 'direct', 'direct', 's1');
    const other = new Database(path, { readonly: true });
    try {
      expect(
        other.prepare("SELECT count(*) AS n FROM outbox WHERE idempotency_key = 'direct'").get(),
      ).toEqual({
        n: 1,
      });
    } finally {
      other.close();
    }
    await pending;
    // Then a sustained concurrent load: within one probe interval (32 actions) a turn's
    // actions are grouped again, and the later rounds commit once each.
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => rate(store, `w${round}-${i}`, `w${round}-${i}`, 's2')),
      );
    }
    const before = wal();
    await Promise.all(Array.from({ length: 20 }, (_, i) => rate(store, `last-${i}`, `last-${i}`, 's3')));
    const grouped = wal() - before;
    const beforeOne = wal();
    await rate(store, 'one', 'one', 's3');
    const one = wal() - beforeOne;
    expect(grouped).toBeLessThan(one * 4);
  });

  it('a failing action in a batch rolls back alone, all of it; the others commit', async () => {
    const { store, path } = await freshStore();
    const results = await Promise.allSettled([
      rate(store, 'k1', 'u1', 's1', 5),
      rate(store, 'k2', 'u2', 'nope'), // unknown skill: refused before any write
      // The rating row is written, then the outbox insert fails its CHECK: the savepoint
      // must take the rating row back too.
      rate(store, 'k3', 'u3', 's2', 2, 'bogus' as OutboxKind),
      store.enqueue({ ...ratingItem('k4', 'agent', 's3'), kind: 'install', skillId: 's3' }),
      rate(store, 'k5', 'u1', 's1', 1), // an edit of k1's rating, later in the same batch
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SKILLSYNC_ERR_ACTION_UNKNOWN_SKILL',
    });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'SKILLSYNC_ERR_STORE_QUERY' });
    await store.close();

    // What was acknowledged is on disk; nothing of the refused actions is.
    const again = await openSqliteStore({ path });
    stores.push(again);
    expect(await again.getRating('s1', 'u1')).toMatchObject({ rating: 1 });
    expect(await again.getRating('s2', 'u3')).toBeNull();
    const all = await again.listOutbox({ limit: 10, offset: 0 });
    expect(all.items.map((i) => i.idempotencyKey)).toEqual(['k1', 'k4', 'k5']);
  });

  it('a batch that cannot commit answers every caller with the error, and none hangs', async () => {
    const { store } = await freshStore();
    const pending = [rate(store, 'k1', 'u1', 's1'), rate(store, 'k2', 'u2', 's2')];
    // Closed before the batch runs: nothing of it can be committed.
    await store.close();
    const results = await Promise.allSettled(pending);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of results) {
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'SKILLSYNC_ERR_STORE_UNAVAILABLE' });
    }
  });

  it('LocalActions called concurrently: read-your-writes once each call resolves, one chain in order', async () => {
    const { store } = await freshStore();
    const actions = new LocalActions(store, { instanceId: 'group-test' });
    const [first, second, install] = await Promise.all([
      actions.rate({ skillId: 's1', userId: 'u1', rating: 2 }),
      actions.rate({ skillId: 's1', userId: 'u1', rating: 3, comment: 'edit' }),
      actions.install({ skillId: 's2', agentId: 'a1' }),
    ]);
    expect(first.outbox.id).toBeLessThan(second.outbox.id);
    expect(second.outbox.id).toBeLessThan(install.id);
    expect(second.rating).toMatchObject({ id: first.rating.id, rating: 3, comment: 'edit' });
    expect(await actions.getRating('s1', 'u1')).toMatchObject({ rating: 3, comment: 'edit' });
    const claimed = await store.claimDueOutbox({ now: T0 + 86_400_000 * 365 * 10, limit: 10, leaseUntil: 0 });
    // One item per chain: the rating chain's first item, and the install.
    expect(claimed.map((i) => i.id).sort((a, b) => a - b)).toEqual([first.outbox.id, install.id]);
  });
});
