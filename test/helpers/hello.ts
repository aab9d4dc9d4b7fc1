/** A console's HELLO for tests that feed the device hub directly: the hub makes a console of an id only after one. */
import type { HelloFrame } from '../../src/protocol/types.js';

export function helloFrame(deviceId: string, model = 'MSC-ALS 2'): HelloFrame {
  return { type: 'HELLO', deviceId, model, fw: '3.4.1', icd: 1, serialNo: `SN-${deviceId}` };
}
