/**
 * Contract: continueTrace keeps a valid parent's trace id and flags with a fresh span id each
 * time, and starts a new trace for a missing, malformed or all-zero parent.
 */
import { describe, expect, test } from 'vitest';
import { continueTrace, traceIdOf } from '../src/internal.ts';

const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const shape = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

describe('continueTrace', () => {
  test('keeps the trace id and flags, with a new span id every time (well past one pool of random bytes)', () => {
    const children = Array.from({ length: 2000 }, () => continueTrace(parent));
    expect(children.every((child) => shape.test(child) && traceIdOf(child) === traceIdOf(parent) && child.endsWith('-01'))).toBe(true);
    expect(new Set(children.map((child) => child.split('-')[2])).size).toBe(children.length);
  });

  test('starts a new trace for a missing, malformed or all-zero parent', () => {
    const started = [undefined, 'nonsense', 42, '00-00000000000000000000000000000000-00f067aa0ba902b7-01'].map((given) => continueTrace(given));
    expect(started.every((child) => shape.test(child))).toBe(true);
    expect(new Set(started.map(traceIdOf)).size).toBe(started.length);
    expect(started.map(traceIdOf)).not.toContain('00000000000000000000000000000000');
  });
});
