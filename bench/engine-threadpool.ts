import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { engineThreadpoolSize } from '@gembatch/inference/threadpool-size';

/** Marks a run started by {@link withEngineThreadpool}: the threadpool size in its environment is ours, not the operator's. */
const SET_BY_BENCH = 'GEMBATCH_BENCH_SET_THREADPOOL';

/**
 * Gives this benchmark process the libuv threadpool a worker gets (`engineThreadpoolSize`), so its
 * in-process engine samples as the stack's worker does. libuv sizes the pool when the process
 * starts, so when `UV_THREADPOOL_SIZE` is not set this runs the same command again with it set and
 * exits with that run's code. In that run the variable is then removed again (the pool is already
 * sized): a stack it starts gives its worker the same size itself and its API and exporter Node's
 * default, as `gembatch up` does. A value the operator set is left as given, for every process.
 */
export async function withEngineThreadpool(): Promise<void> {
  if (process.env[SET_BY_BENCH]) {
    delete process.env[SET_BY_BENCH];
    delete process.env.UV_THREADPOOL_SIZE;
    return;
  }
  if (process.env.UV_THREADPOOL_SIZE) return;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: {
      ...process.env,
      UV_THREADPOOL_SIZE: String(engineThreadpoolSize(availableParallelism())),
      [SET_BY_BENCH]: '1',
    },
    stdio: 'inherit',
  });
  const code = await new Promise<number>((resolve) =>
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))),
  );
  process.exit(code);
}
