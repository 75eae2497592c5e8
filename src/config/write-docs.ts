/** `npm run docs:config`: writes docs/configuration.md from the options table. */
import { writeFileSync } from 'node:fs';
import { renderConfigurationDoc } from './docs.js';

const target = new URL('../../docs/configuration.md', import.meta.url);
writeFileSync(target, renderConfigurationDoc());
process.stdout.write(`wrote ${target.pathname}\n`);
