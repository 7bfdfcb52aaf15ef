import { loadEnvOrExit } from '@gembatch/config';
import { drainOnSignals } from '@gembatch/lifecycle';
import { toGembatchError } from '@gembatch/contracts';
import { createLogger } from '@gembatch/telemetry';
import { WorkerEnv } from './env.ts';
import { ipcWorkerEvents } from './node/worker-events.ts';
import { WorkerNode } from './node/worker-node.ts';

/** Worker entry point: parse config, load the model, take jobs; drain on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const env = loadEnvOrExit(WorkerEnv, 'gembatch-worker');
  const log = createLogger({ service: 'worker', level: env.LOG_LEVEL });
  const events = ipcWorkerEvents();
  const node = new WorkerNode(env, log, events);

  // Active jobs get the grace period inside close(); the rest (model, connections) gets 30 s more.
  drainOnSignals({ log, close: () => node.close(), timeoutMs: env.GEMBATCH_SHUTDOWN_GRACE_SECONDS * 1000 + 30_000 });

  try {
    await node.start();
  } catch (error) {
    log.fatal({ err: error }, 'worker failed to start');
    const failure = toGembatchError(error);
    // Bounded: a parent that stopped reading must not keep a failed worker alive.
    await Promise.race([
      events?.({ type: 'worker.failed', code: failure.code, message: failure.message }),
      new Promise((resolve) => setTimeout(resolve, 1_000).unref()),
    ]);
    await node.close(0).catch(() => undefined);
    process.exit(1);
  }
}

await main();
