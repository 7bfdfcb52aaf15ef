import { describe, expect, it } from 'vitest';
import { LockstepBarrier } from './lockstep-barrier.ts';

/** Resolves once all queued microtasks have run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('LockstepBarrier', () => {
  it('releases a lone participant at once', async () => {
    const barrier = new LockstepBarrier();
    await barrier.arrive(3);
    expect(barrier.releases).toBe(1);
  });

  it('holds every participant until the last arrives, then releases in sequence id order', async () => {
    const barrier = new LockstepBarrier();
    const order: number[] = [];
    // 5 is alone and goes at once; 1 and 3 then join and wait for 5's next arrival.
    await barrier.arrive(5);
    const joined = [1, 3].map((id) => barrier.arrive(id).then(() => order.push(id)));
    await flush();
    expect(order).toEqual([]);
    const five = barrier.arrive(5).then(() => order.push(5));
    await Promise.all([...joined, five]);
    expect(order).toEqual([1, 3, 5]);
    expect(barrier.size).toBe(3);
    // Next step, arrivals out of order: released in sequence order all the same.
    order.length = 0;
    await Promise.all([3, 5, 1].map((id) => barrier.arrive(id).then(() => order.push(id))));
    expect(order).toEqual([1, 3, 5]);
  });

  it('a participant that leaves releases the ones waiting for it', async () => {
    const barrier = new LockstepBarrier();
    await barrier.arrive(0);
    let released = false;
    const waiting = barrier.arrive(1).then(() => {
      released = true;
    });
    // 0 and 1 are participants; 1 waits for 0, which finishes its job instead of arriving.
    await flush();
    expect(released).toBe(false);
    barrier.leave(0);
    await waiting;
    expect(released).toBe(true);
    expect(barrier.size).toBe(1);
  });

  it('a waiting participant that leaves is let go, and no longer counts as arrived', async () => {
    const barrier = new LockstepBarrier();
    await Promise.all([barrier.arrive(0), barrier.arrive(1), barrier.arrive(2)]);
    // 1 arrives, then its job is cancelled while it waits for 0 and 2.
    const one = barrier.arrive(1);
    barrier.leave(1);
    await one;
    let released = false;
    const zero = barrier.arrive(0).then(() => {
      released = true;
    });
    await flush();
    // Its arrival went with it: 0 still waits for 2.
    expect(released).toBe(false);
    await Promise.all([zero, barrier.arrive(2)]);
    expect(barrier.size).toBe(2);
    // And it can come back as a newcomer.
    await Promise.all([0, 1, 2].map((id) => barrier.arrive(id)));
    expect(barrier.size).toBe(3);
  });

  it('a newcomer waits for the step in flight, then goes with it', async () => {
    const barrier = new LockstepBarrier();
    await barrier.arrive(0);
    const one = barrier.arrive(1);
    await Promise.all([barrier.arrive(0), one]);
    // Sequence 0 is back for the next step while 1 is still decoding; 2 arrives with its first token.
    const released: number[] = [];
    const a = barrier.arrive(0).then(() => released.push(0));
    const c = barrier.arrive(2).then(() => released.push(2));
    await flush();
    expect(released).toEqual([]);
    const b = barrier.arrive(1).then(() => released.push(1));
    await Promise.all([a, b, c]);
    expect(released).toEqual([0, 1, 2]);
  });

  it('refuses a double arrival in one step', async () => {
    const barrier = new LockstepBarrier();
    await barrier.arrive(0);
    void barrier.arrive(1);
    expect(() => barrier.arrive(1)).toThrow(/twice/);
    barrier.leave(1);
    barrier.leave(0);
  });
});
