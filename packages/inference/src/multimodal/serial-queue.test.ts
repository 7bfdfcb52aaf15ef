import { describe, expect, it } from 'vitest';
import { SerialQueue } from './serial-queue.ts';

describe('SerialQueue', () => {
  it('never overlaps two tasks and keeps their order', async () => {
    const queue = new SerialQueue();
    const events: string[] = [];
    let running = 0;
    const task = (name: string, ticks: number) => async () => {
      running += 1;
      expect(running).toBe(1);
      events.push(`start ${name}`);
      for (let i = 0; i < ticks; i += 1) await Promise.resolve();
      events.push(`end ${name}`);
      running -= 1;
      return name;
    };
    const results = await Promise.all([queue.run(task('a', 5)), queue.run(task('b', 1)), queue.run(task('c', 3))]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(events).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('goes on after a failure', async () => {
    const queue = new SerialQueue();
    const failed = queue.run(async () => {
      throw new Error('boom');
    });
    const next = queue.run(async () => 'ok');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
  });
});
