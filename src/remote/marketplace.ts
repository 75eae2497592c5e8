/**
 * What the rest of skillsync needs from the marketplace: the interface the HTTP client
 * (src/remote/marketplace-client.ts) implements. Errors are thrown as SkillsyncError /
 * RemoteHttpError (src/core/errors.ts) with codes by class; callers decide by `retryable`.
 */
import type {
  Category,
  Health,
  InstallAnswer,
  InstallRequest,
  InvalidRecord,
  RatingAnswer,
  RatingRequest,
  Skill,
  SkillPage,
} from './contract.js';

export interface CallOptions {
  signal?: AbortSignal;
  /**
   * Retry transient failures inside the client (default true: up to 5 attempts, full-jitter
   * backoff 1 s doubling to 16 s, Retry-After honoured). The outbox passes false: it retries
   * per item with its own, longer backoff that survives restarts.
   */
  retry?: boolean;
}

export interface ListSkillsParams extends CallOptions {
  pageSize: number;
  /** 1-based page number (base contract). */
  page?: number;
  /** Keyset cursor (`cursor` extension); an empty string asks for the first page. */
  cursor?: string;
  /** `updated_since` extension: lists changes since this ISO time, tombstones included. */
  updatedSince?: string;
}

export interface MarketplaceApi {
  health(options?: CallOptions): Promise<Health>;
  listSkills(params: ListSkillsParams): Promise<SkillPage>;
  /** null when the marketplace answers 404 (treat as deleted). */
  getSkill(skillId: string, options?: CallOptions): Promise<Skill | null>;
  listCategories(options?: CallOptions): Promise<{ categories: Category[]; invalid: InvalidRecord[] }>;
  rate(request: RatingRequest, idempotencyKey: string, options?: CallOptions): Promise<RatingAnswer>;
  install(
    skillId: string,
    request: InstallRequest,
    idempotencyKey: string,
    options?: CallOptions,
  ): Promise<InstallAnswer>;
  close(): Promise<void>;
}
