// `OrthancCloudStorage.TierRules` and `TierSchedule` (docs/backends.md, "Tier rules"): which studies move to
// another backend, or change storage class in place, and when. Checked against the backends the
// configuration has: a rule naming a backend that does not exist, or asking a folder for a storage class,
// stops Orthanc with the rule named, rather than failing every night.

import { BRIDGE_SECTION } from "./bridge-options.js";
import { type Diagnostics, isJsonObject, listValues, showValue } from "./section-reader.js";
import type { BackendSection, TierAction, TierRule, TieringOptions } from "./types.js";

const RULES_PATH = `${BRIDGE_SECTION}.TierRules`;
const SCHEDULE_PATH = `${BRIDGE_SECTION}.TierSchedule`;

const RULE_OPTIONS = ["Name", "OlderThanDays", "Modalities", "MoveTo", "In", "StorageClass"];
/** A DICOM Modality (CS, up to 16 characters of A-Z, 0-9, space and _). */
const MODALITY = /^[A-Z0-9_ ]{1,16}$/;
const SCHEDULE = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** The backends the rules may name: their names, in read order, and which section each one is. */
export interface TierTargets {
  names: readonly string[];
  sectionOf(name: string): BackendSection | "file-system";
  /** The backend new attachments go to: what `In` means when not given. */
  writeTo: string;
}

/** The raw options (undefined: not set) from the `OrthancCloudStorage` section. */
export function tieringJsonOf(orthancJson: Record<string, unknown>): { rules: unknown; schedule: unknown } {
  const section = orthancJson[BRIDGE_SECTION];
  const get = (name: string): unknown =>
    isJsonObject(section) && Object.hasOwn(section, name) ? section[name] : undefined;
  return { rules: get("TierRules"), schedule: get("TierSchedule") };
}

/** The rules and the schedule; undefined when TierRules is not set or anything is wrong (reported). */
export function readTiering(
  json: { rules: unknown; schedule: unknown },
  targets: TierTargets,
  diagnostics: Diagnostics,
): TieringOptions | undefined {
  if (json.rules === undefined) {
    if (json.schedule !== undefined) {
      diagnostics.error(SCHEDULE_PATH, `only means something with ${RULES_PATH}, which is not set`);
    }
    return undefined;
  }
  const errorsBefore = diagnostics.errors.length;
  if (!Array.isArray(json.rules)) {
    diagnostics.error(RULES_PATH, `expected an array of rules, got ${showValue(json.rules)}`);
    return undefined;
  }
  const rules = json.rules.flatMap((rule: unknown, index) => {
    const read = readRule(rule, `${RULES_PATH}[${index}]`, index, targets, diagnostics);
    return read === undefined ? [] : [read];
  });
  const tiering: TieringOptions = { rules };
  if (json.schedule !== undefined) {
    const match = typeof json.schedule === "string" ? SCHEDULE.exec(json.schedule) : null;
    if (match === null) {
      diagnostics.error(
        SCHEDULE_PATH,
        `expected a time of day "HH:MM" (UTC, 24-hour clock, e.g. "02:30"), got ${showValue(json.schedule)}`,
      );
    } else tiering.schedule = { hour: Number(match[1]), minute: Number(match[2]) };
  }
  return diagnostics.errors.length > errorsBefore ? undefined : tiering;
}

function readRule(
  json: unknown,
  path: string,
  index: number,
  targets: TierTargets,
  diagnostics: Diagnostics,
): TierRule | undefined {
  const example =
    '{"OlderThanDays": 365, "MoveTo": "<backend>"} or {"OlderThanDays": 90, "StorageClass": "<class>"}';
  if (!isJsonObject(json)) {
    diagnostics.error(path, `expected a rule such as ${example}, got ${showValue(json)}`);
    return undefined;
  }
  const errorsBefore = diagnostics.errors.length;
  for (const key of Object.keys(json)) {
    if (!RULE_OPTIONS.includes(key)) {
      diagnostics.error(
        `${path}.${key}`,
        `unknown option of a tier rule: expected one of ${listValues(RULE_OPTIONS)}`,
      );
    }
  }
  const name = json["Name"] ?? `rule ${index + 1}`;
  if (typeof name !== "string" || name === "") {
    diagnostics.error(`${path}.Name`, `expected a non-empty string, got ${showValue(name)}`);
  }
  const days = json["OlderThanDays"];
  if (typeof days !== "number" || !Number.isInteger(days) || days < 0 || days > 100_000) {
    diagnostics.error(
      `${path}.OlderThanDays`,
      `expected a whole number of days from 0 to 100000 (the age of a study by its StudyDate), got ${showValue(days)}`,
    );
  }
  const modalities = json["Modalities"] ?? [];
  if (!Array.isArray(modalities) || !modalities.every((m) => typeof m === "string" && MODALITY.test(m))) {
    diagnostics.error(
      `${path}.Modalities`,
      `expected an array of DICOM modalities such as ["CT", "MR"] (capitals), got ${showValue(modalities)}`,
    );
  }
  const action = readAction(json, path, targets, diagnostics);
  if (diagnostics.errors.length > errorsBefore || action === undefined) return undefined;
  return {
    name: name as string,
    olderThanDays: days as number,
    modalities: modalities as string[],
    action,
  };
}

function readAction(
  json: Record<string, unknown>,
  path: string,
  targets: TierTargets,
  diagnostics: Diagnostics,
): TierAction | undefined {
  const moveTo = json["MoveTo"];
  const storageClass = json["StorageClass"];
  const known = `one of ${listValues(targets.names)}`;
  if ((moveTo === undefined) === (storageClass === undefined)) {
    diagnostics.error(
      path,
      `expected either "MoveTo" (a backend to move the studies to) or "StorageClass" (a class to set in ` +
        `place), got ${moveTo === undefined ? "neither" : "both"}`,
    );
    return undefined;
  }
  if (moveTo !== undefined) {
    if (json["In"] !== undefined) {
      diagnostics.error(
        `${path}.In`,
        'only goes with "StorageClass": a move takes the studies from every other backend',
      );
    }
    if (targets.names.length < 2) {
      diagnostics.error(
        `${path}.MoveTo`,
        `needs several backends (${BRIDGE_SECTION}.Backends) or hybrid mode, got a single backend`,
      );
      return undefined;
    }
    if (typeof moveTo !== "string" || !targets.names.includes(moveTo)) {
      diagnostics.error(`${path}.MoveTo`, `expected ${known}, got ${showValue(moveTo)}`);
      return undefined;
    }
    return { kind: "move", to: moveTo };
  }
  const inBackend = json["In"] ?? targets.writeTo;
  if (typeof inBackend !== "string" || !targets.names.includes(inBackend)) {
    diagnostics.error(`${path}.In`, `expected ${known}, got ${showValue(inBackend)}`);
    return undefined;
  }
  const section = targets.sectionOf(inBackend);
  if (section === "LocalObjectStorage" || section === "file-system") {
    diagnostics.error(
      `${path}.In`,
      `expected a backend with storage classes (S3, Azure or Google), got ${showValue(inBackend)}, a folder`,
    );
    return undefined;
  }
  if (typeof storageClass !== "string" || !/^[A-Za-z0-9_]{1,64}$/.test(storageClass)) {
    diagnostics.error(
      `${path}.StorageClass`,
      `expected a storage class name such as "STANDARD_IA" (S3), "Cool" (Azure) or "NEARLINE" (Google), got ` +
        showValue(storageClass),
    );
    return undefined;
  }
  return { kind: "storage-class", in: inBackend, storageClass };
}
