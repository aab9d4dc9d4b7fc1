/**
 * The MQTT telemetry decode has a hand-written fast path beside its zod schema (src/protocol/mqtt.ts). Both must
 * give the same verdict and the same frame for every input, valid or not: the zod schema stays the reference.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMqttPayload, telemetryBySchema, telemetryFast } from '../../../src/protocol/mqtt.js';
import { MAX_DEVICE_TIME_MS } from '../../../src/protocol/types.js';

const numberish = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(0, -0, 0xffffffff, 0xffffffff + 1, MAX_DEVICE_TIME_MS, MAX_DEVICE_TIME_MS + 1, Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2, 1.5, -1, 1e300, NaN, Infinity, -Infinity),
  fc.double(),
  fc.nat(),
);
const anything = fc.oneof(numberish, fc.string({ maxLength: 4 }), fc.boolean(), fc.constant(null), fc.constant(undefined),
  fc.array(fc.integer(), { maxLength: 2 }), fc.constant({}));
const key = fc.oneof(
  fc.constantFrom('QB', 'PV', 'TR', 'a', 'A_1', 'X9', '_x', '1A', '', '__proto__', 'constructor', 'toString', 'a-b', 'é',
    'K'.repeat(32), 'K'.repeat(33)),
  fc.string({ maxLength: 6 }),
);
const values = fc.oneof(
  fc.dictionary(key, fc.oneof(numberish, fc.constant(null)), { maxKeys: 5 }),
  fc.dictionary(key, anything, { maxKeys: 4 }),
  anything,
);
const item = fc.oneof(
  fc.record({ seq: numberish, t: numberish, v: values }),
  fc.record({ seq: numberish, t: numberish, v: values, extra: anything }),
  fc.record({ seq: anything, t: anything, v: values }, { requiredKeys: [] }),
  anything,
);

describe('MQTT telemetry fast path', () => {
  it('agrees with the zod schema on every input (property)', () => {
    fc.assert(fc.property(item, (x) => {
      expect(telemetryFast(x)).toEqual(telemetryBySchema(x));
    }), { numRuns: 20_000 });
  });

  it('agrees on inputs as JSON.parse builds them, own __proto__ keys included', () => {
    const texts = [
      '{"seq":1,"t":2,"v":{"QB":150.5,"PV":null}}',
      '{"seq":1,"t":2,"v":{"__proto__":1}}',
      '{"seq":1,"t":2,"v":{"__proto__":{"QB":1}}}',
      '{"seq":-0,"t":-0,"v":{"QB":-0}}',
      '{"seq":4294967296,"t":2,"v":{}}',
      '{"seq":1,"t":9000000000000,"v":{}}',
      '{"seq":1,"t":2,"v":[]}',
      '{"seq":1.0,"t":2e0,"v":{"QB":1e400}}',
      '{"seq":"1","t":2,"v":{}}',
      '{"t":2,"v":{}}',
    ];
    for (const text of texts) {
      const x: unknown = JSON.parse(text);
      expect(telemetryFast(x), text).toEqual(telemetryBySchema(x));
    }
  });

  it('keeps -0 out of frames and reports invalid elements through zod', () => {
    const { frames, discards } = decodeMqttPayload('telemetry', '[{"seq":-0,"t":5,"v":{"QB":-0}},{"seq":1,"t":5,"v":{"q-b":1}}]', 'MSC-0001');
    expect(frames).toEqual([{ type: 'T', seq: 0, t: 5, v: { QB: 0 } }]);
    expect(Object.is((frames[0] as { seq: number }).seq, 0)).toBe(true);
    expect(discards).toHaveLength(1);
    expect(discards[0].detail).toMatch(/^\[1\] v: channel key "q-b" is not valid/);
  });
});
