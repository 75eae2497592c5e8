/**
 * Child process of the crash test: opens the store named by argv[2] (a SKILLSYNC_DATABASE_URL),
 * resumes from its checkpoint and applies crash-workload pages forever, until it is killed.
 * Prints "ready <page>" once the store is open.
 *   node --import tsx test/helpers/store-crash-child.ts <url> <pageSize> <pool>
 */
import { openStore } from '../../src/store/open-store.js';
import { crashPage } from './store-crash-workload.js';

const [url, pageSizeArg, poolArg] = process.argv.slice(2);
if (url === undefined) throw new Error('usage: store-crash-child <url> <pageSize> <pool>');
const w = { pageSize: Number(pageSizeArg ?? 100), pool: Number(poolArg ?? 1500) };
const store = await openStore(url);
let page = ((await store.getCheckpoint())?.pagesApplied ?? 0) + 1;
process.stdout.write(`ready ${page}\n`);
for (;;) {
  await store.applySkillPage(crashPage(page, w));
  page++;
}
