/**
 * A separate uploading process for test/outbox-crash.test.ts. It opens the shared SQLite file,
 * runs the real OutboxUploader against the simulator the test started, and
 *  - with `killAtAnswer: k`, SIGKILLs itself right after the remote accepted its k-th item
 *    and before the store marks it done (the 'answered' event fires exactly there), after
 *    printing `KILL <id> <key>`;
 *  - otherwise uploads until nothing is pending, prints `DONE` and exits 0 (the test may
 *    SIGKILL it from outside at any moment).
 *
 * Run as: node --import tsx test/helpers/outbox-crash-child.ts '<json args>'
 */
import { writeSync } from 'node:fs';
import { createMarketplaceClient } from '../../src/remote/marketplace-client.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { OutboxUploader } from '../../src/sync/outbox-uploader.js';
// Not outbox-rig.ts: that one pulls in the simulator, and every run pays its start-up.
import { OUTBOX_TOKEN, seededRandom } from './outbox-common.js';

interface ChildArgs {
  dbPath: string;
  url: string;
  seed: number;
  leaseMs: number;
  killAtAnswer: number | null;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const say = (line: string): void => {
  writeSync(1, `${line}\n`);
};

const store = await openSqliteStore({ path: args.dbPath });
const api = createMarketplaceClient({
  baseUrl: args.url,
  token: OUTBOX_TOKEN,
  instanceId: 'outbox-crash-child',
  requestsPerMinute: 0,
});
const uploader = new OutboxUploader(
  { store, api, random: seededRandom(args.seed) },
  { leaseMs: args.leaseMs, backoffBaseMs: 5, backoffCapMs: 50 },
);
let answered = 0;
uploader.on('answered', ({ item }) => {
  answered++;
  if (args.killAtAnswer !== null && answered >= args.killAtAnswer) {
    say(`KILL ${item.id} ${item.idempotencyKey}`);
    process.kill(process.pid, 'SIGKILL');
  }
});
await uploader.start();
say('READY');
for (;;) {
  await uploader.whenIdle();
  if ((await store.getSyncState()).pendingActions === 0) break;
  await new Promise((r) => setTimeout(r, 5));
}
await uploader.stop();
await api.close();
await store.close();
say('DONE');
