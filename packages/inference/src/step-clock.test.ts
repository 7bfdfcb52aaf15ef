import { describe, expect, it } from 'vitest';
import { StepClock } from './step-clock.ts';

describe('StepClock', () => {
  it('splits each step into decode, sampling and scheduling', () => {
    const clock = new StepClock();
    // Step 1: decode 0-10, every token back and the step released at 13, next decode at 14.
    clock.dispatched(0);
    clock.decoded(10);
    clock.released(13);
    clock.dispatched(14);
    // Step 2: decode 14-20, released at 20, next decode at 25.
    clock.decoded(20);
    clock.released(20);
    clock.dispatched(25);
    expect(clock.times).toEqual({ decode: 16, sampling: 3, scheduling: 6 });
  });

  it('counts a decode end to the next dispatch as sampling when no step is released (one-token jobs)', () => {
    const clock = new StepClock();
    clock.dispatched(0);
    clock.decoded(4);
    clock.dispatched(9);
    clock.decoded(12);
    expect(clock.times).toEqual({ decode: 7, sampling: 5, scheduling: 0 });
  });

  it('counts nothing while no job generates, and ignores events out of order', () => {
    const clock = new StepClock();
    clock.dispatched(0);
    clock.decoded(4);
    clock.released(5);
    clock.idle(6);
    // Idle from 6 to 100: a release or decode end while idle changes nothing.
    clock.released(50);
    clock.decoded(60);
    clock.dispatched(100);
    // A release during a decode (a job left) is not the step's end.
    clock.released(101);
    clock.decoded(103);
    clock.released(104);
    expect(clock.times).toEqual({ decode: 7, sampling: 2, scheduling: 1 });
  });
});
