import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { GembatchError } from '@gembatch/contracts';
import type { Logger } from './logger.ts';

export interface MetricsServerOptions {
  /** The registry served at `path`. */
  registry: Registry;
  /** TCP port; `0` picks a free one (read it back from `port`). Defaults to `0`. */
  port?: number;
  /** Interface to listen on. Defaults to `127.0.0.1` (loopback: expose it deliberately). */
  host?: string;
  /** Path of the exposition. Defaults to `/metrics`. */
  path?: string;
  /** Logs scrape failures (codes and timings only). Defaults to none. */
  logger?: Logger;
}

/**
 * A minimal HTTP server for Prometheus: `GET <path>` answers the registry's text exposition,
 * `GET /healthz` answers `ok`, everything else 404/405. Used by worker nodes and the exporter.
 */
export class MetricsServer {
  #closing: Promise<void> | undefined;

  readonly #server: Server;

  private constructor(
    server: Server,
    /** The port it listens on (the real one when 0 was asked). */
    readonly port: number,
    /** Full URL of the metrics endpoint. */
    readonly url: string,
  ) {
    this.#server = server;
  }

  /** Starts listening; rejects with `GB_ERR_CONFIG` when the port is taken or the host is wrong. */
  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    const host = options.host ?? '127.0.0.1';
    const path = options.path ?? '/metrics';
    const server = createServer((request, response) => {
      void handle(options.registry, path, options.logger, request, response);
    });
    // Prometheus scrapes every few seconds over keep-alive; let idle sockets go after 65 s (above its 60 s max interval default).
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(
          new GembatchError(
            'GB_ERR_CONFIG',
            error.code === 'EADDRINUSE'
              ? `metrics port ${options.port ?? 0} on ${host} is already in use`
              : `metrics server cannot listen on ${host}:${options.port ?? 0} (${error.code ?? error.message})`,
            { cause: error },
          ),
        );
      };
      server.once('error', onError);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    return new MetricsServer(server, port, `http://${urlHost}:${port}${path}`);
  }

  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }
}

/** Starts a `MetricsServer` (see its options). */
export function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  return MetricsServer.start(options);
}

async function handle(
  registry: Registry,
  path: string,
  logger: Logger | undefined,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (pathname === '/healthz') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (pathname !== path) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; metrics are at ${path}\n`);
    return;
  }
  const started = performance.now();
  try {
    const body = await registry.metrics();
    response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : body);
  } catch (error) {
    const code = error instanceof GembatchError ? error.code : 'GB_ERR_INTERNAL';
    logger?.error(
      {
        code,
        ms: Math.round(performance.now() - started),
        err: error instanceof Error ? { name: error.name, message: error.message } : undefined,
      },
      'metrics scrape failed',
    );
    if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
    response.end('metrics unavailable\n');
  }
}
