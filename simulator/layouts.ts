/**
 * Path layouts the real marketplace has shown across releases. The handle's `url` is the base
 * URL (`http://host:port/api/v1/marketplace`); these paths are relative to it, so a client
 * configured with the matching path overrides works against any layout. The names are the
 * client's preset names (src/remote/paths.ts PATH_LAYOUTS), so one setting drives both.
 */
export const SIMULATOR_BASE_PATH = '/api/v1/marketplace';

export const LAYOUTS = {
  /** `/skills`, `/categories`, `/health` (the contract's default). */
  skills: { skills: '/skills', categories: '/categories', health: '/health' },
  /** `/marketplace/skills`, `/marketplace/categories`, `/marketplace/health`. */
  marketplace: {
    skills: '/marketplace/skills',
    categories: '/marketplace/categories',
    health: '/marketplace/health',
  },
  /** `/skills/marketplace/skills`, `/skills/marketplace/categories`, `/skills/marketplace/health`. */
  'skills-marketplace': {
    skills: '/skills/marketplace/skills',
    categories: '/skills/marketplace/categories',
    health: '/skills/marketplace/health',
  },
} as const satisfies Record<string, LayoutPaths>;

export interface LayoutPaths {
  readonly skills: string;
  readonly categories: string;
  readonly health: string;
}

export type LayoutName = keyof typeof LAYOUTS;
export const LAYOUT_NAMES = Object.keys(LAYOUTS) as LayoutName[];

/** Routes the simulator serves; fault rules and counters use these names. */
export const ROUTES = ['health', 'list_skills', 'get_skill', 'categories', 'rate', 'install'] as const;
export type RouteName = (typeof ROUTES)[number];

/** Path of the WebSocket endpoint (not under the layout). */
export const WS_PATH = '/ws';
/** Prefix of the control API on the same server. */
export const CONTROL_PREFIX = '/_control';
