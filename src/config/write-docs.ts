/** `npm run docs:config`: writes docs/configuration.md and the README's table from the options table. */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigurationDoc, withReadmeTable } from './docs.js';

const doc = new URL('../../docs/configuration.md', import.meta.url);
writeFileSync(doc, renderConfigurationDoc());
const readme = new URL('../../README.md', import.meta.url);
writeFileSync(readme, withReadmeTable(readFileSync(readme, 'utf8')));
process.stdout.write(`wrote ${doc.pathname} and the README table\n`);
