import { Agent, request } from 'node:http';

/**
 * The benchmark's own HTTP client for the requests it times: node:http over kept-alive sockets.
 *
 * Why not `fetch`: the client shares the machine's cores with what it measures, and on the 2-core
 * build machine `fetch` (undici's WHATWG layer) spent about 0.35 ms more CPU per request than
 * `http.request` (0.43 vs 0.09 ms per small JSON round trip, client and a no-op server in one
 * process, 16 in flight). Driving the stack's one-token jobs (three requests each) cost the client
 * 3.2 ms of CPU per job, more than the bare engine spends on one; the llama-server target pays the
 * same per request. Plain `http://` only (every target listens on 127.0.0.1).
 */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface HttpReply {
  status: number;
  text: string;
}

/** Sends `body` (JSON) with `method` to `url` and reads the whole reply as text; rejects after `timeoutMs`. */
export function requestText(url: string, method: 'GET' | 'POST', body: unknown, timeoutMs: number): Promise<HttpReply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}
