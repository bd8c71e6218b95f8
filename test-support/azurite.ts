// The Azure fixture: Azurite's Blob service (npm `azurite`, a devDependency) on 127.0.0.1, a free port,
// its own temporary folder, stopped by its pid; and its containers (bucket-fixture.ts). Azurite checks
// Shared Key signatures, so a wrong account key is really refused (403 AuthorizationFailure).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";

import type { AzureOptions } from "../src/config/types.js";
import { freshBucketName, onceCleanup, type BucketFixture, type TestServer } from "./bucket-fixture.js";
import { freePort } from "./free-port.js";
import { repoRoot } from "./paths.js";
import { startServerProcess, type ServerProcess } from "./server-process.js";

/** Azurite's well-known development account and key (public, documented by Microsoft). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const azuriteBlobMain = join(repoRoot, "node_modules", "azurite", "dist", "src", "blob", "main.js");

export interface AzuriteServer extends TestServer {
  /** The account's blob endpoint: `http://127.0.0.1:PORT/devstoreaccount1`. */
  endpoint: string;
  /** A connection string for the development account, with the right key. */
  connectionString: string;
  pid: number;
  /** Milliseconds from spawn to the first HTTP answer. */
  startMs: number;
  /** Stop Azurite by its pid and remove its folder. Safe to call more than once. */
  stop(): Promise<void>;
  /** Stop the server (SIGTERM, as an administrator would) but keep its folder, for a fault test. */
  stopServer(): Promise<void>;
  /** Start it again on the same port and folder after stopServer(); resolves when it answers. */
  startServer(): Promise<void>;
  /**
   * A container named `prefix-<uuid>`, created now unless `create` is false (then the driver or Orthanc
   * creates it: CreateContainerIfNotExists).
   */
  container(prefix?: string, options?: { create?: boolean }): Promise<AzuriteContainer>;
}

export type AzuriteContainer = BucketFixture<AzureOptions, ContainerClient>;

/** A connection string for the development account at `endpoint` (e.g. a recording proxy), any key. */
export function azuriteConnectionString(endpoint: string, key = AZURITE_KEY): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};BlobEndpoint=${endpoint};`;
}

/** Start Azurite Blob; rejects (never skips) with its output when it cannot start. */
export async function startAzurite(): Promise<AzuriteServer> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-azurite-"));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  let server: ServerProcess;
  try {
    server = await launchAzurite(dir, port, endpoint);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const azurite: AzuriteServer = {
    endpoint,
    connectionString: azuriteConnectionString(endpoint),
    get pid() {
      return server.pid;
    },
    startMs: server.startMs,
    stop: () =>
      (stopping ??= (async () => {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      })()),
    stopServer: () => server.stop(),
    startServer: async () => {
      server = await launchAzurite(dir, port, endpoint);
    },
    container: (prefix = "test", options = {}) =>
      azuriteContainer(azurite, freshBucketName(prefix), options.create ?? true),
    [Symbol.asyncDispose]: () => azurite.stop(),
  };
  return azurite;
}

function launchAzurite(dir: string, port: number, endpoint: string): Promise<ServerProcess> {
  return startServerProcess({
    name: "Azurite",
    args: [
      azuriteBlobMain,
      ...["--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", dir],
      "--silent",
      "--disableTelemetry",
      // @azure/storage-blob 12.32 sends an API version that Azurite 3.35 (the last for Node 20) does not know.
      "--skipApiVersionCheck",
    ],
    cwd: dir,
    // Answers 403 without credentials: any answer means it listens.
    readyUrl: `${endpoint}?comp=list`,
  });
}

/** An SDK client of the development account, independent of the driver under test. */
export function azuriteClient(server: AzuriteServer): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(server.connectionString, { retryOptions: { maxTries: 1 } });
}

/** The driver's options for `container` through `connectionString`, with the tests' settings. */
export function testAzureOptions(
  connectionString: string,
  container: string,
  overrides: Partial<AzureOptions> = {},
): AzureOptions {
  return {
    connectionString,
    containerName: container,
    createContainerIfNotExists: true,
    maxRetries: 1,
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 60_000,
    ...overrides,
  };
}

/** The fixture of the container `name` (created now when `create`). */
export async function azuriteContainer(
  server: AzuriteServer,
  name: string,
  create: boolean,
): Promise<AzuriteContainer> {
  const client = azuriteClient(server).getContainerClient(name);
  if (create) await client.create();
  return {
    sectionName: "AzureBlobStorage",
    name,
    client,
    orthancConfig: (extra = {}) => ({
      AzureBlobStorage: { ConnectionString: server.connectionString, ContainerName: name, ...extra },
    }),
    storeOptions: (overrides = {}) => testAzureOptions(server.connectionString, name, overrides),
    listKeys: async () => {
      const keys: string[] = [];
      for await (const blob of client.listBlobsFlat()) keys.push(blob.name);
      return keys.sort();
    },
    read: (key) => client.getBlobClient(key).downloadToBuffer(),
    write: async (key, data) => {
      await client.getBlockBlobClient(key).uploadData(data);
    },
    ...onceCleanup(() => deleteContainer(server, name)),
  };
}

/** Delete a container with everything in it; a missing container is fine. */
export async function deleteContainer(server: AzuriteServer, name: string): Promise<void> {
  await azuriteClient(server).getContainerClient(name).deleteIfExists();
}
