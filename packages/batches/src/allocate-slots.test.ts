import { describe, expect, it } from 'vitest';
import { allocateSlots, type SlotTurns } from './batch-feeder.ts';

const fresh = (): SlotTurns => ({ tenants: [], batches: new Map() });

describe('allocateSlots', () => {
  it('shares the window by tenant first: one tenant with three batches gets no more than a tenant with one', () => {
    const slots = allocateSlots(
      60,
      [
        { id: 'a1', tenant: 'acme', wants: 500 },
        { id: 'a2', tenant: 'acme', wants: 500 },
        { id: 'a3', tenant: 'acme', wants: 500 },
        { id: 'g1', tenant: 'globex', wants: 500 },
      ],
      fresh(),
    );
    expect(slots.get('g1')).toBe(30);
    expect([slots.get('a1'), slots.get('a2'), slots.get('a3')]).toEqual([10, 10, 10]);
  });

  it('gives what a small batch wants and the rest to the others; never more than free', () => {
    const slots = allocateSlots(
      100,
      [
        { id: 'big', tenant: 't', wants: 500 },
        { id: 'small', tenant: 't', wants: 10 },
      ],
      fresh(),
    );
    expect(Object.fromEntries(slots)).toEqual({ big: 90, small: 10 });
    expect(allocateSlots(0, [{ id: 'x', tenant: 't', wants: 5 }], fresh()).size).toBe(0);
  });

  it('continues the rotation across calls, so single free slots alternate between batches', () => {
    const turns = fresh();
    const batches = [
      { id: 'big', tenant: 't', wants: 500 },
      { id: 'new', tenant: 't', wants: 10 },
    ];
    const winners = Array.from({ length: 4 }, () => [...allocateSlots(1, batches, turns).keys()][0]);
    expect(winners).toEqual(['big', 'new', 'big', 'new']);
  });
});
