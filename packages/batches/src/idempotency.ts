import type { Redis } from 'ioredis';
import { GembatchError, redisKeys } from '@gembatch/contracts';

/** Why 24 hours: Stripe's and OpenAI's retention of idempotency keys; a client retries within minutes. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** Idempotency keys: printable ASCII, as Stripe and OpenAI accept them. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Claims an `Idempotency-Key` for a resource about to be created: returns `undefined` when this
 * request owns the key now (create `newId`), or the id the key already names (return that
 * resource). Keys are per tenant and per `scope` (`jobs`, `batches`) and live 24 hours.
 */
export async function claimIdempotencyKey(
  redis: Redis,
  prefix: string,
  tenant: string,
  scope: string,
  key: string,
  newId: string,
): Promise<string | undefined> {
  if (!IDEMPOTENCY_KEY.test(key))
    throw new GembatchError('GB_ERR_BAD_REQUEST', 'idempotency-key: 1 to 255 printable ASCII characters');
  const redisKey = redisKeys.idempotency(prefix, tenant, scope, key);
  const claimed = await redis.set(redisKey, newId, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
  if (claimed === 'OK') return undefined;
  return (await redis.get(redisKey)) ?? undefined;
}

/** Gives a key back after the creation it was claimed for failed, so a retry can succeed. */
export async function releaseIdempotencyKey(
  redis: Redis,
  prefix: string,
  tenant: string,
  scope: string,
  key: string,
): Promise<void> {
  await redis.del(redisKeys.idempotency(prefix, tenant, scope, key));
}
