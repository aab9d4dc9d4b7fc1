/**
 * CRC-16/CCITT-FALSE (ICD §1): poly 0x1021, init 0xFFFF, no reflection, no final XOR.
 * Check value: crc16('123456789') === 0x29B1.
 */

/** The byte table, exported so the serial decoder can fold its BODY check into the CRC loop. */
export const CRC16_TABLE = buildTable();

function buildTable(): Uint16Array {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
}

/**
 * CRC over the latin1 bytes of `data`. A code unit above 0xFF contributes its low byte, exactly as
 * Buffer.from(data, 'latin1') would encode it (such a character can never be part of a valid BODY).
 */
export function crc16(data: string): number {
  return crc16Range(data, 0, data.length);
}

/** CRC over data[start, end) without slicing: the serial decoder runs it on every line. */
export function crc16Range(data: string, start: number, end: number): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) ^ CRC16_TABLE[((crc >>> 8) ^ data.charCodeAt(i)) & 0xff]) & 0xffff;
  }
  return crc;
}

const HEX = '0123456789ABCDEF';

/** A CRC as the ICD writes it: 4 upper-case hex digits. */
export function formatCrc(crc: number): string {
  return HEX[(crc >>> 12) & 0xf] + HEX[(crc >>> 8) & 0xf] + HEX[(crc >>> 4) & 0xf] + HEX[crc & 0xf];
}

/** The CRC of `body` as the ICD writes it. */
export function crcHex(body: string): string {
  return formatCrc(crc16(body));
}

/** Reads 4 upper-case hex digits at text[from]; -1 when they are not exactly that (ICD §1). */
export function parseCrc(text: string, from: number): number {
  let n = 0;
  for (let i = from; i < from + 4; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) n = (n << 4) | (c - 0x30);
    else if (c >= 0x41 && c <= 0x46) n = (n << 4) | (c - 0x37);
    else return -1;
  }
  return n;
}
