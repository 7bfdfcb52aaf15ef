import { createHash } from 'node:crypto';
import { ConfigError } from '@gembatch/config';
import { TenantId } from '@gembatch/contracts';

/** Shortest API key accepted: anything shorter is guessable. */
const MIN_KEY_LENGTH = 16;

function digest(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * API keys → tenants, from `GEMBATCH_API_KEYS="key1:tenant1,key2:tenant2"`. Keys are kept only as
 * sha256 digests and looked up by digest, so neither memory dumps nor lookup timing reveal them.
 */
export class ApiKeyRing {
  readonly #tenants: ReadonlyMap<string, string>;

  private constructor(tenants: ReadonlyMap<string, string>) {
    this.#tenants = tenants;
  }

  /**
   * Parses the variable. Problems name the entry by position, never by value (it is a secret), and
   * are thrown together as a `ConfigError`. Returns `undefined` when unset or blank: auth is off.
   */
  static parse(raw: string | undefined): ApiKeyRing | undefined {
    if (raw === undefined || raw.trim() === '') return undefined;
    const tenants = new Map<string, string>();
    const problems: string[] = [];
    raw.split(',').forEach((entry, index) => {
      const where = `GEMBATCH_API_KEYS: entry ${index + 1}`;
      const trimmed = entry.trim();
      const colon = trimmed.lastIndexOf(':');
      if (colon <= 0) {
        problems.push(`${where} must be key:tenant`);
        return;
      }
      const key = trimmed.slice(0, colon);
      const tenant = trimmed.slice(colon + 1);
      if (key.length < MIN_KEY_LENGTH || /\s/.test(key))
        problems.push(`${where} has a key shorter than ${MIN_KEY_LENGTH} characters or with spaces`);
      else if (!TenantId.safeParse(tenant).success)
        problems.push(`${where} has an invalid tenant id (lowercase letters, digits, - and _; at most 63)`);
      else if (tenants.has(digest(key))) problems.push(`${where} repeats an earlier key`);
      else tenants.set(digest(key), tenant);
    });
    if (problems.length > 0) throw new ConfigError(problems);
    return new ApiKeyRing(tenants);
  }

  /** The tenant of a presented key, or `undefined` for an unknown one. */
  tenantFor(key: string): string | undefined {
    return this.#tenants.get(digest(key));
  }

  get size(): number {
    return this.#tenants.size;
  }
}
