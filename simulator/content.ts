/**
 * Skill and category content as pure functions of (seed, index, version).
 *
 * The simulator never stores a skill's JSON: a million skills at ~1 KB would be a gigabyte.
 * It stores a few numbers per skill (catalog.ts) and rebuilds the content on demand from
 * pools of pre-escaped JSON fragments, by string concatenation, which costs about a
 * microsecond a skill. The same (seed, index, version) always gives the same bytes.
 */
import { hash4 } from './rng.js';

/** Thirty base categories: [name, display name, skill types that fit]. */
const BASE_CATEGORIES: readonly (readonly [string, string])[] = [
  ['data-processing', 'Data Processing'],
  ['web-scraping', 'Web Scraping'],
  ['devops', 'DevOps'],
  ['security', 'Security'],
  ['machine-learning', 'Machine Learning'],
  ['nlp', 'Natural Language'],
  ['computer-vision', 'Computer Vision'],
  ['databases', 'Databases'],
  ['cloud', 'Cloud'],
  ['monitoring', 'Monitoring'],
  ['testing', 'Testing'],
  ['documentation', 'Documentation'],
  ['finance', 'Finance'],
  ['marketing', 'Marketing'],
  ['sales', 'Sales'],
  ['customer-support', 'Customer Support'],
  ['productivity', 'Productivity'],
  ['communication', 'Communication'],
  ['file-management', 'File Management'],
  ['image-generation', 'Image Generation'],
  ['audio', 'Audio'],
  ['video', 'Video'],
  ['research', 'Research'],
  ['education', 'Education'],
  ['healthcare', 'Healthcare'],
  ['legal', 'Legal'],
  ['hr', 'Human Resources'],
  ['ecommerce', 'E-commerce'],
  ['iot', 'IoT'],
  ['automation', 'Automation'],
];

export const MAX_BASE_CATEGORIES = BASE_CATEGORIES.length;

const SKILL_TYPES = ['python', 'npm', 'shell', 'prompt', 'api'] as const;

const ADJECTIVES = [
  'Fast',
  'Smart',
  'Robust',
  'Simple',
  'Secure',
  'Batch',
  'Streaming',
  'Incremental',
  'Parallel',
  'Adaptive',
  'Lightweight',
  'Advanced',
  'Precise',
  'Resilient',
  'Scalable',
  'Unified',
  'Auto',
  'Quick',
  'Deep',
  'Live',
];
const NOUNS = [
  'Parser',
  'Extractor',
  'Analyzer',
  'Summarizer',
  'Converter',
  'Validator',
  'Scheduler',
  'Monitor',
  'Classifier',
  'Translator',
  'Generator',
  'Indexer',
  'Crawler',
  'Notifier',
  'Formatter',
  'Resolver',
  'Aggregator',
  'Exporter',
  'Importer',
  'Inspector',
  'Optimizer',
  'Planner',
  'Reporter',
  'Tracker',
];
const TOPICS = [
  'CSV',
  'JSON',
  'PDF',
  'Invoice',
  'Log',
  'Email',
  'Ticket',
  'Metric',
  'Image',
  'Sitemap',
  'Contract',
  'Receipt',
  'Calendar',
  'Spreadsheet',
  'Webhook',
  'Transcript',
  'Dataset',
  'Report',
  'Schema',
  'Queue',
];
const AUTHORS = [
  'atom-labs',
  'ada.lovelace',
  'grace-h',
  'linus.t',
  'margaret.h',
  'alan.turing',
  'katherine.j',
  'dennis.r',
  'barbara.l',
  'ken.t',
  'radia.p',
  'tim.bl',
  'frances.a',
  'john.mc',
  'edsger.d',
  'donald.k',
  'sophie.w',
  'guido.vr',
  'yukihiro.m',
  'anders.h',
  'Zoë Ångström',
  'José Núñez',
];
const SENTENCES = [
  'Processes large inputs in constant memory by streaming records instead of loading them at once.',
  'Retries transient failures with exponential backoff and reports permanent ones clearly.',
  'Works offline and caches intermediate results between runs to save time.',
  'Validates every record against a schema and quarantines the ones that fail.',
  'Supports dry runs so you can see what would change before anything is written.',
  'Emits structured logs and metrics that plug into your existing dashboards.',
  'Handles Unicode correctly, including combining marks, emoji and right-to-left scripts.',
  'Configurable through environment variables or a small YAML file; sensible defaults throughout.',
  'Designed for agents: every output is machine-readable JSON with stable field names.',
  'Rate-limits itself to stay within the quotas of the services it calls.',
  'Deduplicates results by content hash, so repeated runs are idempotent.',
  'Includes examples for the most common workflows and a troubleshooting guide.',
  'Ships with tests and type hints; contributions are welcome.',
  'Scales from a laptop to a cluster without code changes.',
  'Redacts secrets and personal data before anything leaves the machine.',
  'Understands "quoted" values, back\\slashes and tabs\tinside fields.',
];
const PY_PACKAGES = [
  'requests',
  'pandas',
  'numpy',
  'pydantic',
  'httpx',
  'beautifulsoup4',
  'lxml',
  'scikit-learn',
  'torch',
  'transformers',
  'pillow',
  'sqlalchemy',
  'boto3',
  'rich',
  'typer',
  'pyyaml',
  'openpyxl',
];
const NPM_PACKAGES = [
  'undici',
  'zod',
  'cheerio',
  'lodash',
  'dayjs',
  'sharp',
  'pdf-lib',
  'ws',
  'commander',
  'yaml',
  'csv-parse',
  'pino',
  'fast-xml-parser',
  'ioredis',
  'pg',
  'better-sqlite3',
];
const TAGS = [
  'etl',
  'ai',
  'automation',
  'cli',
  'batch',
  'realtime',
  'cloud',
  'local',
  'beta',
  'stable',
  'official',
  'community',
  'fast',
  'secure',
  'gpu',
  'no-code',
  'enterprise',
  'free',
  'open-source',
  'utility',
];

/** JSON-escaped (quoted) forms, computed once. */
const q = (s: string): string => JSON.stringify(s);
const Q_SENTENCES = SENTENCES.map((s) => JSON.stringify(s).slice(1, -1));
const Q_AUTHORS = AUTHORS.map(q);
const Q_PY = PY_PACKAGES.map(q);
const Q_NPM = NPM_PACKAGES.map(q);
const Q_TAGS = TAGS.map(q);
const Q_TYPES = SKILL_TYPES.map(q);

export interface CategoryInfo {
  readonly name: string;
  readonly displayName: string;
}

/** Category names: the base thirty, then `extra-N` for categories the mutation engine adds. */
export function baseCategory(i: number): CategoryInfo {
  const c = BASE_CATEGORIES[i % BASE_CATEGORIES.length] ?? ['misc', 'Misc'];
  return { name: c[0], displayName: c[1] };
}

const Q_CATEGORY_NAMES = BASE_CATEGORIES.map((c) => q(c[0]));

/** Per-category template fragments, so building a skill is concatenation only. */
interface Template {
  readonly codePrefix: string;
  readonly commandPrefix: string;
}
const TEMPLATES: Template[] = BASE_CATEGORIES.map(([name]) => ({
  codePrefix: JSON.stringify(
    `import json\nfrom skills.${name.replace(/-/g, '_')} import run\n\ndef main(args):\n    """Entry point."""\n`,
  ).slice(1, -1),
  commandPrefix: JSON.stringify(`atom run ${name}/`).slice(1, -1),
}));

export function skillName(seed: number, index: number): string {
  const h = hash4(seed, index, 0, 11);
  return `${ADJECTIVES[h % ADJECTIVES.length]} ${TOPICS[(h >>> 8) % TOPICS.length]} ${NOUNS[(h >>> 16) % NOUNS.length]}`;
}

/** Index of the base category a skill belongs to (fixed for its life). */
export function skillCategory(seed: number, index: number, categoryCount: number): number {
  return hash4(seed, index, 0, 12) % categoryCount;
}

function pickList(pool: readonly string[], h: number, count: number): string {
  let out = '';
  for (let k = 0; k < count; k++) {
    if (k > 0) out += ',';
    out += pool[(h + k * 7) % pool.length];
  }
  return out;
}

/**
 * The content of a skill, as a JSON fragment that starts right after the id member and ends
 * before the aggregates: `,"name":...,"x_origin":{...}`. Pure in (seed, index, version).
 */
export function skillContentFragment(
  seed: number,
  index: number,
  version: number,
  categoryCount: number,
): string {
  const h0 = hash4(seed, index, version, 1);
  const h1 = hash4(seed, index, version, 2);
  const h2 = hash4(seed, index, 0, 3);
  const cat = skillCategory(seed, index, categoryCount);
  const tpl = TEMPLATES[cat] as Template;
  const name = skillName(seed, index);
  const typeIdx = h2 % SKILL_TYPES.length;
  // Description: 1-8 sentences, so skills range from about 0.5 to 2 KB.
  const nSent = 1 + (h0 % 8);
  let desc = `${name}: `;
  for (let k = 0; k < nSent; k++) {
    if (k > 0) desc += ' ';
    desc += Q_SENTENCES[(h1 + k * 5) % Q_SENTENCES.length];
  }
  const slug = name.toLowerCase().replace(/ /g, '-');
  const major = 1 + (h2 % 3);
  const patch = h0 % 10;
  const nCode = 1 + ((h1 >>> 4) % 5);
  let code = tpl.codePrefix;
  for (let k = 0; k < nCode; k++)
    code += `    step_${k} = run(args, ${JSON.stringify(slug).slice(1, -1)}, ${version})\\n`;
  code += '    return json.dumps(step_0)\\n';
  return (
    `,"name":${q(name)}` +
    `,"description":"${desc}"` +
    `,"category":${Q_CATEGORY_NAMES[cat]}` +
    `,"skill_type":${Q_TYPES[typeIdx]}` +
    `,"author":${Q_AUTHORS[h2 % Q_AUTHORS.length]}` +
    `,"version":"${major}.${version - 1}.${patch}"` +
    `,"tags":[${pickList(Q_TAGS, h0 >>> 3, 1 + ((h0 >>> 11) % 4))}]` +
    `,"python_packages":[${typeIdx === 0 ? pickList(Q_PY, h1 >>> 5, 1 + ((h1 >>> 9) % 3)) : ''}]` +
    `,"npm_packages":[${typeIdx === 1 ? pickList(Q_NPM, h1 >>> 5, 1 + ((h1 >>> 9) % 3)) : ''}]` +
    `,"examples":["${tpl.commandPrefix}${slug} --input data.json","${tpl.commandPrefix}${slug} --dry-run"]` +
    `,"code":"${code}"` +
    `,"command":"${tpl.commandPrefix}${slug}"` +
    `,"parameters":{"input":{"type":"string","required":true},"limit":{"type":"integer","default":${10 + (h0 % 990)}}}` +
    `,"metadata":{"license":"${h2 % 2 === 0 ? 'MIT' : 'Apache-2.0'}","revision":${version},"homepage":"https://example.com/skills/${slug}"}` +
    `,"x_origin":{"region":"eu-${1 + (h2 % 3)}","shard":${h2 % 64}}`
  );
}

export function categoryDescription(name: string, version: number): string {
  return `Skills for ${name.replace(/-/g, ' ')} (revision ${version}).`;
}

export const SKILL_TYPE_NAMES: readonly string[] = SKILL_TYPES;

/** The skill_type of a skill (fixed for its life). */
export function skillTypeOf(seed: number, index: number): string {
  return SKILL_TYPES[hash4(seed, index, 0, 3) % SKILL_TYPES.length] as string;
}
