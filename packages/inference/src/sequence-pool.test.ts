import { describe, expect, it } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import { SequencePool } from './sequence-pool.ts';

const seq = (sequenceId: number) => ({ sequenceId });

describe('SequencePool', () => {
  it('hands out the lowest free id first and takes them back', async () => {
    const pool = new SequencePool([seq(2), seq(0), seq(1)]);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect([a.sequenceId, b.sequenceId]).toEqual([0, 1]);
    pool.release(a);
    expect((await pool.acquire()).sequenceId).toBe(0);
    expect(pool.inUse).toBe(2);
  });

  it('queues jobs when every sequence is busy, first come first served', async () => {
    const pool = new SequencePool([seq(0)]);
    const held = await pool.acquire();
    const order: string[] = [];
    const first = pool.acquire().then((s) => {
      order.push('first');
      return s;
    });
    const second = pool.acquire().then(() => order.push('second'));
    expect(pool.waiting).toBe(2);
    pool.release(held);
    pool.release(await first);
    await second;
    expect(order).toEqual(['first', 'second']);
  });

  it('a cancelled waiter leaves the queue with GB_ERR_CANCELLED', async () => {
    const pool = new SequencePool([seq(0)]);
    await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toSatisfy(
      (e: unknown) => e instanceof GembatchError && e.code === 'GB_ERR_CANCELLED',
    );
    expect(pool.waiting).toBe(0);
  });

  it('with an affinity, hands out the free sequence it scores highest (ties: the lowest id)', async () => {
    const pool = new SequencePool([seq(0), seq(1), seq(2), seq(3)]);
    const held = { 0: 2, 1: 7, 2: 7, 3: 1 } as Record<number, number>;
    expect((await pool.acquire(undefined, (s) => held[s.sequenceId] ?? 0)).sequenceId).toBe(1);
    expect((await pool.acquire(undefined, (s) => held[s.sequenceId] ?? 0)).sequenceId).toBe(2);
    expect((await pool.acquire(undefined, () => 0)).sequenceId).toBe(0);
  });
});
