/** The device ICD codec (pure, no I/O): serial framing, MQTT payloads and command validation. */
export * from './types.js';
export { crc16, crc16Range, crcHex } from './crc.js';
export {
  MAX_FRAME_BYTES, MAX_LINE_CHARS, decodeLine, decodeCommandLine, encodeCommand, encodeDeviceFrame,
} from './serial.js';
export type { CommandDecode, LineResult } from './serial.js';
export { LineSplitter } from './lineSplitter.js';
export type { SplitterOutput } from './lineSplitter.js';
export {
  decodeMqttCommand, decodeMqttPayload, encodeMqttCommand, encodeMqttPayload, parseTopic,
} from './mqtt.js';
export type { MqttKind } from './mqtt.js';
export {
  CMD_ID_RE, QP_MAX_FRACTION_OF_QB, RATE_LIMITS, SESSION_ID_RE, SETPOINT_LIMITS, acceptedStates, checkCommand,
} from './commands.js';
export type { CommandCheck, CommandContext, SetpointChannel } from './commands.js';
