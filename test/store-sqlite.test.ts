import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { runStoreContract } from './helpers/store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'skillsync-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runStoreContract('sqlite :memory:', () => openSqliteStore({ path: ':memory:' }));
runStoreContract('sqlite file (WAL)', () => openSqliteStore({ path: join(dir, `store-${n++}.db`) }));
