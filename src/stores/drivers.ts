// Every driver, by the backend section it serves, loaded the same way: on demand, since each cloud SDK is
// large and only the configured one is needed. A new backend is one line here (and its section module).

import type { BackendSection } from "../config/types.js";
import type { OptionsOfSection } from "../config/backend-section.js";
import type { Logger } from "../log.js";
import type { ObjectStore } from "./object-store.js";

export type DriverOpener<S extends BackendSection> = (
  backend: OptionsOfSection<S>,
  logger: Logger,
) => Promise<ObjectStore>;

export const DRIVERS: { readonly [S in BackendSection]: DriverOpener<S> } = {
  AwsS3Storage: async ({ s3 }, logger) => (await import("./s3.js")).createS3Store(s3, logger),
  AzureBlobStorage: async ({ azure }, logger) => (await import("./azure.js")).createAzureStore(azure, logger),
  GoogleCloudStorage: async ({ gcs }, logger) => (await import("./gcs.js")).createGcsStore(gcs, logger),
  LocalObjectStorage: async ({ local }) =>
    (await import("./folder.js")).createFolderStore({ root: local.path, fsync: local.fsync }),
};
