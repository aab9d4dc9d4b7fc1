import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc16, crc16Range, crcHex } from '../../../src/protocol/crc.js';

/** Bit-by-bit reference (no table), straight from the CRC-16/CCITT-FALSE definition. */
function referenceCrc(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

describe('crc16 (CRC-16/CCITT-FALSE, ICD §1)', () => {
  it('has the ICD check value: 123456789 -> 29B1', () => {
    expect(crc16('123456789')).toBe(0x29b1);
    expect(crcHex('123456789')).toBe('29B1');
  });

  it('is 0xFFFF (the init value) for an empty body', () => {
    expect(crc16('')).toBe(0xffff);
    expect(crcHex('')).toBe('FFFF');
  });

  it('pads to 4 upper-case hex digits', () => {
    // Find a body whose CRC is below 0x1000 to exercise the padding.
    let body = '';
    for (let i = 0; crc16(body) >= 0x1000; i++) body = `T,${i}`;
    expect(crcHex(body)).toMatch(/^0[0-9A-F]{3}$/);
  });

  it('matches the bit-by-bit reference over latin1 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const text = Buffer.from(bytes).toString('latin1');
        expect(crc16(text)).toBe(referenceCrc(bytes));
        expect(crcHex(text)).toBe(referenceCrc(bytes).toString(16).toUpperCase().padStart(4, '0'));
      }),
    );
  });

  it('crc16Range equals crc16 of the slice', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), fc.nat(100), fc.nat(100), (s, a, b) => {
        const from = Math.min(a, b, s.length);
        const to = Math.min(Math.max(a, b), s.length);
        expect(crc16Range(s, from, to)).toBe(crc16(s.slice(from, to)));
      }),
    );
  });
});
