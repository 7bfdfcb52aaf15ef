import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request the receiver took, after checking its signature with `standardwebhooks`. */
export interface ReceivedWebhook {
  /** The `webhook-id` header. */
  id: string;
  /** The parsed body, present only when the signature verified. */
  body: unknown;
  /** Whether `Webhook.verify` accepted the headers and body. */
  verified: boolean;
  /** The HTTP status the receiver answered. */
  answered: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks`. */
  url: string;
  /** Every request, in arrival order. */
  readonly received: ReceivedWebhook[];
  /** Resolves once `count` requests have arrived (bounded by `timeoutMs`, default 30 s). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

export interface WebhookReceiverOptions {
  /** The `whsec_…` secret the sender signs with. */
  secret: string;
  /** Status to answer the n-th request (0-based), after verification. Defaults to 200 for a verified one, 401 otherwise. */
  answer?(index: number, verified: boolean): number;
}

/**
 * A loopback HTTP server that verifies every request with the `standardwebhooks` package, the way a
 * real receiver would, and records it. For webhook tests; close it with `closeAfterTest`.
 */
export async function startWebhookReceiver(options: WebhookReceiverOptions): Promise<WebhookReceiver> {
  const verifier = new Webhook(options.secret);
  const received: ReceivedWebhook[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = createServer((request, response) => {
    void readBody(request).then((raw) => {
      let body: unknown;
      let verified = false;
      try {
        body = verifier.verify(raw, request.headers as Record<string, string>);
        verified = true;
      } catch {
        body = undefined;
      }
      const answered = options.answer?.(received.length, verified) ?? (verified ? 200 : 401);
      received.push({ id: String(request.headers['webhook-id'] ?? ''), body, verified, answered });
      response.writeHead(answered).end();
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    async waitFor(count, timeoutMs = 30_000) {
      if (received.length < count) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(
                new Error(`the webhook receiver got ${received.length} of ${count} requests within ${timeoutMs} ms`),
              ),
            timeoutMs,
          );
          waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
        });
      }
      return received.slice(0, count);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
