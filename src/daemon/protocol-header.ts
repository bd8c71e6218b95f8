// protocol.ts as a C header: scripts/build-native.sh writes it to build/protocol.h before compiling the
// bridge, so the wire format has one source of truth and the C side no number of its own. Each constant
// becomes OCS_<GROUP>_<NAME>; test/daemon/protocol-header.test.ts checks that none is left out.

import {
  AdoptStatus,
  BridgeFlag,
  CALLBACK_HEADER_SIZE,
  CALLBACK_MAGIC,
  CallbackKind,
  CreateFlag,
  FILE_ANSWER_SIZE,
  FILE_HOLD_MS,
  FILE_MAGIC,
  FileAnswerOffset,
  Handshake,
  HttpMethod,
  JOB_START_OVER_KEY,
  JobAnswerOffset,
  JobStepStatus,
  LogPrefix,
  MAGIC,
  MAX_CREATE_SIZE,
  MAX_RECORD_SIZE,
  MAX_REST_PAYLOAD,
  Op,
  OrthancCode,
  PROGRESS_SCALE,
  READY_SCANF_FORMAT,
  REQUEST_HEADER_SIZE,
  RESPONSE_HEADER_SIZE,
  REST_ANSWER_FIXED_SIZE,
  REST_REQUEST_FIXED_SIZE,
  REST_ROUTES,
  RequestFlag,
  TICK_INTERVAL_S,
  TIER_TICK_PATH,
  RequestOffset,
  ResponseOffset,
  RestAnswerOffset,
  RestRequestOffset,
  SERIALIZED_JOB_FORMAT,
  SUPERVISE_FLAG,
  SupervisorLine,
  UUID_FIELD_SIZE,
} from "./protocol.js";

/** The groups of named constants, by the prefix their C names take. */
export const HEADER_GROUPS: ReadonlyArray<readonly [string, Readonly<Record<string, number | string>>]> = [
  ["OCS_OP_", Op],
  ["OCS_CALLBACK_", CallbackKind],
  ["OCS_CREATE_", CreateFlag],
  ["OCS_ADOPT_", AdoptStatus],
  ["OCS_CODE_", OrthancCode],
  ["OCS_METHOD_", HttpMethod],
  ["OCS_JOB_", JobStepStatus],
  ["OCS_REQ_", RequestOffset],
  ["OCS_REQ_FLAG_", RequestFlag],
  ["OCS_FILE_AT_", FileAnswerOffset],
  ["OCS_RESP_", ResponseOffset],
  ["OCS_REST_", RestRequestOffset],
  ["OCS_REST_ANSWER_", RestAnswerOffset],
  ["OCS_JOB_ANSWER_", JobAnswerOffset],
  ["OCS_FLAG_", BridgeFlag],
  ["OCS_HANDSHAKE_", Handshake],
  ["OCS_LOG_", LogPrefix],
  ["OCS_SUPERVISOR_LINE_", SupervisorLine],
];

/** The single constants, by their C names. */
export const HEADER_CONSTANTS: Readonly<Record<string, number | string | readonly string[]>> = {
  OCS_MAGIC: MAGIC,
  OCS_CALLBACK_MAGIC: CALLBACK_MAGIC,
  OCS_FILE_MAGIC: FILE_MAGIC,
  OCS_FILE_ANSWER_SIZE: FILE_ANSWER_SIZE,
  OCS_FILE_HOLD_MS: FILE_HOLD_MS,
  OCS_REQUEST_HEADER_SIZE: REQUEST_HEADER_SIZE,
  OCS_RESPONSE_HEADER_SIZE: RESPONSE_HEADER_SIZE,
  OCS_CALLBACK_HEADER_SIZE: CALLBACK_HEADER_SIZE,
  OCS_UUID_FIELD_SIZE: UUID_FIELD_SIZE,
  OCS_MAX_REST_PAYLOAD: MAX_REST_PAYLOAD,
  OCS_MAX_CREATE_SIZE: MAX_CREATE_SIZE,
  OCS_MAX_RECORD_SIZE: MAX_RECORD_SIZE,
  OCS_REST_REQUEST_FIXED_SIZE: REST_REQUEST_FIXED_SIZE,
  OCS_REST_ANSWER_FIXED_SIZE: REST_ANSWER_FIXED_SIZE,
  OCS_PROGRESS_SCALE: PROGRESS_SCALE,
  OCS_READY_SCANF_FORMAT: READY_SCANF_FORMAT,
  OCS_SERIALIZED_JOB_FORMAT: SERIALIZED_JOB_FORMAT,
  OCS_JOB_START_OVER_KEY: JOB_START_OVER_KEY,
  OCS_REST_ROUTES: REST_ROUTES,
  OCS_TIER_TICK_PATH: TIER_TICK_PATH,
  OCS_TICK_INTERVAL_S: TICK_INTERVAL_S,
  OCS_SUPERVISE_FLAG: SUPERVISE_FLAG,
};

/** "InexistentFile" → "INEXISTENT_FILE"; names already in capitals stay. */
export function cName(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** A C literal: magics in hex, log prefixes as chars, lists as initialisers. */
function literal(name: string, value: number | string | readonly string[]): string {
  if (typeof value === "object") return `{${value.map((item) => JSON.stringify(item)).join(", ")}}`;
  if (typeof value === "string") return name.startsWith("OCS_LOG_") ? `'${value}'` : JSON.stringify(value);
  if (/^OCS_(CALLBACK_|FILE_)?MAGIC$/.test(name)) return `0x${value.toString(16)}u`;
  return value < 0 ? `(${value})` : String(value);
}

export function protocolHeader(): string {
  const lines = [
    "/* Generated from src/daemon/protocol.ts (src/daemon/protocol-header.ts) by scripts/build-native.sh:",
    " * do not edit. The layouts of the frames are drawn in protocol.ts. */",
    "#ifndef OCS_PROTOCOL_H",
    "#define OCS_PROTOCOL_H",
    ...Object.entries(HEADER_CONSTANTS).map(([name, value]) => `#define ${name} ${literal(name, value)}`),
  ];
  for (const [prefix, group] of HEADER_GROUPS) {
    for (const [name, value] of Object.entries(group)) {
      lines.push(`#define ${prefix}${cName(name)} ${literal(prefix + cName(name), value)}`);
    }
  }
  return `${[...lines, "#endif"].join("\n")}\n`;
}
