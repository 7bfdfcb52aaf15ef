import { exitOnConfigError, loadEnv } from '@gembatch/config';
import { drainOnSignals } from '@gembatch/lifecycle';
import { createLogger } from '@gembatch/telemetry';
import { WorkerEnv } from './env.ts';
import { WorkerNode } from './node/worker-node.ts';

/** Worker entry point: parse config, load the model, take jobs; drain on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let env: WorkerEnv;
  try {
    env = loadEnv(WorkerEnv);
  } catch (error) {
    exitOnConfigError(error, 'gembatch-worker');
  }
  const log = createLogger({ service: 'worker', level: env.LOG_LEVEL });
  const node = new WorkerNode(env, log);

  // Active jobs get the grace period inside close(); the rest (model, connections) gets 30 s more.
  drainOnSignals({ log, close: () => node.close(), timeoutMs: env.GEMBATCH_SHUTDOWN_GRACE_SECONDS * 1000 + 30_000 });

  try {
    await node.start();
  } catch (error) {
    log.fatal({ err: error }, 'worker failed to start');
    await node.close(0).catch(() => undefined);
    process.exit(1);
  }
}

await main();
