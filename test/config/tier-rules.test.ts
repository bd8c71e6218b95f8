// OrthancCloudStorage.TierRules and TierSchedule (docs/backends.md, "Tier rules"): rules checked against the
// backends the configuration has, every mistake named with the rule's path.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatResolvedConfig } from "../../src/config/parse-config.js";
import { MINIMAL, resolveErrors, resolveOk, type Json } from "./helpers.js";

const BACKENDS = {
  hot: { AwsS3Storage: MINIMAL.AwsS3Storage },
  cool: { AzureBlobStorage: MINIMAL.AzureBlobStorage },
  disk: { LocalObjectStorage: { Path: "/srv/objects" } },
};

function tiered(rules: unknown, extra: Json = {}, backends: Json | null = BACKENDS): Json {
  const section = {
    TierRules: rules,
    ...extra,
    ...(backends === null ? {} : { Backends: backends, WriteTo: "hot" }),
  };
  return {
    OrthancCloudStorage: section,
    ...(backends === null ? { AwsS3Storage: MINIMAL.AwsS3Storage } : {}),
  };
}

describe("OrthancCloudStorage.TierRules", () => {
  it("reads moves and storage-class changes, naming unnamed rules by position; In defaults to WriteTo", () => {
    const config = resolveOk(
      tiered(
        [
          { Name: "old CT to Azure", OlderThanDays: 365, Modalities: ["CT", "MR"], MoveTo: "cool" },
          { OlderThanDays: 30, StorageClass: "STANDARD_IA" },
        ],
        { TierSchedule: "02:30" },
      ),
    );
    assert.deepEqual(config.tiering, {
      rules: [
        {
          name: "old CT to Azure",
          olderThanDays: 365,
          modalities: ["CT", "MR"],
          action: { kind: "move", to: "cool" },
        },
        {
          name: "rule 2",
          olderThanDays: 30,
          modalities: [],
          action: { kind: "storage-class", in: "hot", storageClass: "STANDARD_IA" },
        },
      ],
      schedule: { hour: 2, minute: 30 },
    });
    const lines = formatResolvedConfig(config).split("\n");
    assert.ok(
      lines.includes(
        'OrthancCloudStorage.TierRules[1] = {"Name":"rule 2","OlderThanDays":30,"Modalities":[],"In":"hot","StorageClass":"STANDARD_IA"}',
      ),
    );
    assert.ok(lines.includes('OrthancCloudStorage.TierSchedule = "02:30"'));
  });

  it("a single section: storage-class rules in object-storage; no schedule means only when asked", () => {
    const config = resolveOk(tiered([{ OlderThanDays: 90, StorageClass: "GLACIER_IR" }], {}, null));
    assert.deepEqual(config.tiering?.rules[0]?.action, {
      kind: "storage-class",
      in: "object-storage",
      storageClass: "GLACIER_IR",
    });
    assert.equal(config.tiering?.schedule, undefined);
    assert.ok(
      formatResolvedConfig(config).includes("OrthancCloudStorage.TierSchedule = not set (only when asked)"),
    );
  });

  it("reports each mistake with the rule's path", () => {
    const cases: Array<[Json, RegExp]> = [
      [tiered({}), /^OrthancCloudStorage\.TierRules: expected an array of rules/],
      [
        tiered([{ OlderThanDays: 1, MoveTo: "archive" }]),
        /^OrthancCloudStorage\.TierRules\[0\]\.MoveTo: expected one of "hot", "cool" or "disk", got "archive"$/,
      ],
      [
        tiered([{ OlderThanDays: 1 }]),
        /^OrthancCloudStorage\.TierRules\[0\]: expected either "MoveTo" .* or "StorageClass" .*, got neither$/,
      ],
      [tiered([{ OlderThanDays: 1, MoveTo: "cool", StorageClass: "Cool" }]), /got both$/],
      [
        tiered([{ OlderThanDays: -1, MoveTo: "cool" }]),
        /^OrthancCloudStorage\.TierRules\[0\]\.OlderThanDays: expected a whole number of days/,
      ],
      [
        tiered([{ OlderThanDays: 1, MoveTo: "cool", Modalities: "CT" }]),
        /^OrthancCloudStorage\.TierRules\[0\]\.Modalities: expected an array of DICOM modalities/,
      ],
      [
        tiered([{ OlderThanDays: 1, In: "disk", StorageClass: "Cool" }]),
        /^OrthancCloudStorage\.TierRules\[0\]\.In: expected a backend with storage classes .*got "disk", a folder$/,
      ],
      [
        tiered([{ OlderThanDays: 1, MoveTo: "cool", In: "hot" }]),
        /^OrthancCloudStorage\.TierRules\[0\]\.In: only goes with "StorageClass"/,
      ],
      [
        tiered([{ OlderThanDays: 1, MoveTo: "cool", Age: 3 }]),
        /^OrthancCloudStorage\.TierRules\[0\]\.Age: unknown option of a tier rule/,
      ],
      [
        tiered([{ OlderThanDays: 1, StorageClass: "Cool" }], { TierSchedule: "25:00" }),
        /^OrthancCloudStorage\.TierSchedule: expected a time of day "HH:MM"/,
      ],
      [
        tiered([{ OlderThanDays: 1, MoveTo: "object-storage" }], {}, null),
        /^OrthancCloudStorage\.TierRules\[0\]\.MoveTo: needs several backends/,
      ],
      [
        { OrthancCloudStorage: { TierSchedule: "01:00" }, AwsS3Storage: MINIMAL.AwsS3Storage },
        /^OrthancCloudStorage\.TierSchedule: only means something with OrthancCloudStorage\.TierRules/,
      ],
    ];
    for (const [json, expected] of cases) {
      const { errors } = resolveErrors(json);
      assert.ok(
        errors.some((error) => expected.test(error)),
        `${JSON.stringify(json)}\n  gave ${JSON.stringify(errors)}\n  expected ${expected}`,
      );
    }
  });
});
