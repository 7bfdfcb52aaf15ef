import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { ConfigError, envInt, envList, loadEnv } from '@gembatch/config';
import { WebhookAllowlist } from './webhook-allowlist.ts';

/**
 * Webhook settings, shared by the API (which refuses unlisted URLs at submission) and the process
 * that delivers them. Parse with `loadWebhookConfig`.
 */
export const WebhookEnvSchema = z.object({
  /** Comma-separated URL prefixes webhooks may be sent to (e.g. `https://hooks.example.com/gembatch/`). Empty: webhooks off. */
  GEMBATCH_WEBHOOK_ALLOWED_URLS: envList.default([]),
  /** Standard Webhooks signing secret, `whsec_` + base64 (≥ 24 bytes). Required when URLs are allowed. Secret: never logged. */
  GEMBATCH_WEBHOOK_SECRET: z.string().optional(),
  /** Delivery tries per event (the first plus retries) before it is marked failed. */
  GEMBATCH_WEBHOOK_ATTEMPTS: envInt(1, 50).default(8),
  /** First retry delay (ms); doubles each retry (2 s, 4 s, ... ~4 min by the 8th). */
  GEMBATCH_WEBHOOK_BACKOFF_MS: envInt(1).default(2_000),
  /** How long one delivery may take before it counts as failed (ms). */
  GEMBATCH_WEBHOOK_TIMEOUT_MS: envInt(100, 120_000).default(10_000),
});

/** Parsed webhook configuration. */
export interface WebhookConfig {
  allowlist: WebhookAllowlist;
  /** `whsec_…`; undefined when webhooks are off. */
  secret: string | undefined;
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
}

/** Shortest secret accepted (bytes after base64 decoding): 192 bits, what Standard Webhooks libraries generate at minimum. */
const MIN_SECRET_BYTES = 24;

/**
 * Reads and checks the webhook variables: every allowlist entry parses, and a usable secret is
 * set when any URL is allowed. Throws a `ConfigError` naming each bad variable, never its value.
 */
export function loadWebhookConfig(source: Record<string, string | undefined> = process.env): WebhookConfig {
  const env = loadEnv(WebhookEnvSchema, source);
  const problems: string[] = [];
  let allowlist = WebhookAllowlist.none;
  try {
    allowlist = WebhookAllowlist.parse(env.GEMBATCH_WEBHOOK_ALLOWED_URLS);
  } catch (error) {
    problems.push(`GEMBATCH_WEBHOOK_ALLOWED_URLS: ${(error as Error).message}`);
  }
  const secret = env.GEMBATCH_WEBHOOK_SECRET;
  if (secret !== undefined) {
    const bytes = secretBytes(secret);
    if (bytes === undefined) problems.push('GEMBATCH_WEBHOOK_SECRET: must be whsec_ followed by base64');
    else if (bytes < MIN_SECRET_BYTES)
      problems.push(`GEMBATCH_WEBHOOK_SECRET: must decode to at least ${MIN_SECRET_BYTES} bytes`);
  } else if (env.GEMBATCH_WEBHOOK_ALLOWED_URLS.length > 0)
    problems.push(
      'GEMBATCH_WEBHOOK_SECRET: required when GEMBATCH_WEBHOOK_ALLOWED_URLS is set (deliveries are signed)',
    );
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    allowlist,
    secret,
    attempts: env.GEMBATCH_WEBHOOK_ATTEMPTS,
    backoffMs: env.GEMBATCH_WEBHOOK_BACKOFF_MS,
    timeoutMs: env.GEMBATCH_WEBHOOK_TIMEOUT_MS,
  };
}

function secretBytes(secret: string): number | undefined {
  const body = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : undefined;
  if (body === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return undefined;
  try {
    // The library's own decoder: what it accepts here, it signs with later.
    new Webhook(secret);
  } catch {
    return undefined;
  }
  return Buffer.from(body, 'base64').length;
}
