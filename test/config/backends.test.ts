// OrthancCloudStorage.Backends, WriteTo and ReadOrder (docs/backends.md): several named backends, each a
// section as it would stand alone, read by the same code as a top-level one; every mistake named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatResolvedConfig } from "../../src/config/parse-config.js";
import { MINIMAL, resolveErrors, resolveOk, type Json } from "./helpers.js";

const HOT = { AwsS3Storage: { ...MINIMAL.AwsS3Storage, RootPath: "hot" } };
const ARCHIVE = { AzureBlobStorage: MINIMAL.AzureBlobStorage };
const DISK = { LocalObjectStorage: { Path: "/var/lib/orthanc/objects" } };

function withBackends(options: Json, top: Json = {}): Json {
  return { ...top, OrthancCloudStorage: options };
}

const THREE = { hot: HOT, archive: ARCHIVE, disk: DISK };

describe("OrthancCloudStorage.Backends", () => {
  it("reads each backend as its section alone; WriteTo's section is the config's backend", () => {
    const config = resolveOk(withBackends({ Backends: THREE, WriteTo: "archive" }));
    assert.deepEqual(
      config.backends?.named.map(({ name, backend }) => [name, backend.section]),
      [
        ["hot", "AwsS3Storage"],
        ["archive", "AzureBlobStorage"],
        ["disk", "LocalObjectStorage"],
      ],
    );
    assert.equal(config.backends?.writeTo, "archive");
    assert.equal(config.backend.section, "AzureBlobStorage");
    assert.equal(config.backends?.named[0]?.common.rootPath, "hot");
    // Default read order: the write target first, then the others by name (Orthanc sorts object keys).
    assert.deepEqual(config.backends?.readOrder, ["archive", "disk", "hot"]);
  });

  it("each backend has its own encryption", () => {
    const encrypted = {
      LocalObjectStorage: { Path: "/srv/enc", StorageEncryption: { MasterKey: [3, "/etc/keys/3.b64"] } },
    };
    const config = resolveOk(withBackends({ Backends: { plain: DISK, enc: encrypted }, WriteTo: "plain" }));
    const [plain, enc] = config.backends?.named ?? [];
    assert.equal(plain?.common.encryption.enabled, false);
    assert.equal(enc?.common.encryption.enabled, true);
    assert.equal(enc?.common.encryption.masterKey?.id, 3);
  });

  it("one backend needs no WriteTo; ReadOrder as written is kept", () => {
    assert.equal(resolveOk(withBackends({ Backends: { only: DISK } })).backends?.writeTo, "only");
    const config = resolveOk(
      withBackends({ Backends: THREE, WriteTo: "hot", ReadOrder: ["disk", "archive", "hot"] }),
    );
    assert.deepEqual(config.backends?.readOrder, ["disk", "archive", "hot"]);
  });

  it("a single top-level section has no backends: nothing changes for the official sections", () => {
    assert.equal(resolveOk({ AwsS3Storage: MINIMAL.AwsS3Storage }).backends, undefined);
  });

  it("reports each mistake with the option's path and what to do", () => {
    const cases: Array<[Json, RegExp]> = [
      [
        withBackends({ Backends: THREE, WriteTo: "cold" }),
        /^OrthancCloudStorage\.WriteTo: expected a name of Backends, "hot", "archive" or "disk", got "cold"$/,
      ],
      [
        withBackends({ Backends: THREE }),
        /^OrthancCloudStorage\.WriteTo: .*required when Backends names more than one/,
      ],
      [
        withBackends({ Backends: { hot: {} }, WriteTo: "hot" }),
        /^OrthancCloudStorage\.Backends\.hot: expected an object holding exactly one of AwsS3Storage, .*got an empty object$/,
      ],
      [
        withBackends({ Backends: { hot: { ...HOT, ...ARCHIVE } }, WriteTo: "hot" }),
        /^OrthancCloudStorage\.Backends\.hot: expected .*exactly one.*got "AwsS3Storage" or "AzureBlobStorage"$/,
      ],
      [
        withBackends({ Backends: { hot: { BucketName: "b" } }, WriteTo: "hot" }),
        /^OrthancCloudStorage\.Backends\.hot: .*got "BucketName" \(options go inside the section\)$/,
      ],
      [
        withBackends({ Backends: { hot: HOT } }, { LocalObjectStorage: { Path: "/x" } }),
        /^OrthancCloudStorage\.Backends: expected no top-level backend section beside it, got LocalObjectStorage: move it into Backends/,
      ],
      [
        withBackends({ Backends: {} }),
        /^OrthancCloudStorage\.Backends: expected an object naming at least one backend/,
      ],
      [
        withBackends({ Backends: [HOT] }),
        /^OrthancCloudStorage\.Backends: expected an object .*got an array$/,
      ],
      [
        withBackends({ Backends: { "hot/1": HOT } }),
        /^OrthancCloudStorage\.Backends\.hot\/1: expected a backend name of letters, digits/,
      ],
      [
        withBackends({ Backends: THREE, WriteTo: "hot", ReadOrder: ["hot", "disk", "disk", "cold"] }),
        /^OrthancCloudStorage\.ReadOrder: expected an array naming every backend once.*: unknown "cold"; "disk" more than once; "archive" missing, whose objects would never be read$/,
      ],
      [
        withBackends({ WriteTo: "hot" }, { LocalObjectStorage: { Path: "/x" } }),
        /^OrthancCloudStorage\.WriteTo: only means something with OrthancCloudStorage\.Backends/,
      ],
      [
        withBackends({
          Backends: { a: { LocalObjectStorage: { Path: "/srv/a", HybridMode: "WriteToObjectStorage" } } },
        }),
        /^OrthancCloudStorage\.Backends\.a\.LocalObjectStorage\.HybridMode: expected "Disabled".*"StorageStructure": "legacy"$/,
      ],
      [
        withBackends({
          Backends: {
            a: { LocalObjectStorage: { Path: "/srv/a" } },
            b: { LocalObjectStorage: { Path: "/srv/a/b" } },
          },
          WriteTo: "a",
        }),
        /^OrthancCloudStorage\.Backends\.b\.LocalObjectStorage\.Path: expected a folder apart from backend "a"'s/,
      ],
      [
        withBackends({ Backends: { hot: HOT }, LocalDisk: { Path: "/srv/tier", WriteBehind: true } }),
        /^OrthancCloudStorage\.Backends: cannot be used with OrthancCloudStorage\.LocalDisk yet/,
      ],
      [
        withBackends({ Backends: { hot: { AwsS3Storage: { Region: "eu-west-1" } } } }),
        /^OrthancCloudStorage\.Backends\.hot\.AwsS3Storage\.BucketName: /,
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

  it("unknown options inside a named backend are warned about under its path", () => {
    const config = resolveOk(
      withBackends({ Backends: { a: { LocalObjectStorage: { Path: "/a", Pth: 1 } } } }),
    );
    assert.ok(
      config.warnings.some((w) => w.startsWith("OrthancCloudStorage.Backends.a.LocalObjectStorage.Pth:")),
    );
  });

  it("config check prints each backend under its name, then WriteTo and ReadOrder", () => {
    const text = formatResolvedConfig(resolveOk(withBackends({ Backends: THREE, WriteTo: "disk" })));
    const lines = text.split("\n");
    assert.ok(lines.includes('OrthancCloudStorage.Backends.hot.AwsS3Storage.BucketName = "orthanc-bucket"'));
    assert.ok(lines.includes('OrthancCloudStorage.Backends.hot.AwsS3Storage.RootPath = "hot"'));
    assert.ok(
      lines.includes(
        'OrthancCloudStorage.Backends.disk.LocalObjectStorage.Path = "/var/lib/orthanc/objects"',
      ),
    );
    assert.ok(lines.includes('OrthancCloudStorage.WriteTo = "disk"'));
    assert.ok(lines.includes('OrthancCloudStorage.ReadOrder = ["disk","archive","hot"]'));
    assert.ok(!text.includes("c2VjcmV0"), "the Azure key must stay hidden");
  });
});
