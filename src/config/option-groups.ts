// Every backend section and every option group, in one list: the parser finds a section's module here, and
// docs/configuration.md has one table per group (checked by test/config/docs.test.ts). A new backend is
// its module under sections/, one line in BACKEND_SECTION_MODULES and one in stores/drivers.ts.

import type { BackendSectionModule } from "./backend-section.js";
import { BRIDGE_OPTIONS } from "./bridge-options.js";
import { LOCAL_DISK_OPTIONS } from "./local-disk-section.js";
import {
  COMMON,
  ENCRYPTION,
  ORTHANC,
  type OptionGroup,
  type OptionGroupId,
  type OptionSpec,
} from "./options.js";
import { awsS3Section } from "./sections/aws-s3-storage.js";
import { azureBlobSection } from "./sections/azure-blob-storage.js";
import { googleCloudSection } from "./sections/google-cloud-storage.js";
import { localObjectSection } from "./sections/local-object-storage.js";
import type { BackendSection } from "./types.js";

export const BACKEND_SECTION_MODULES: { readonly [S in BackendSection]: BackendSectionModule<S> } = {
  AwsS3Storage: awsS3Section,
  AzureBlobStorage: azureBlobSection,
  GoogleCloudStorage: googleCloudSection,
  LocalObjectStorage: localObjectSection,
};

export const OPTION_GROUPS: readonly OptionGroup[] = [
  { id: "common", title: "Options common to every backend section", options: COMMON },
  { id: "StorageEncryption", title: "StorageEncryption", options: ENCRYPTION },
  { id: "AwsS3Storage", title: "AwsS3Storage", options: awsS3Section.options },
  { id: "AzureBlobStorage", title: "AzureBlobStorage", options: azureBlobSection.options },
  { id: "GoogleCloudStorage", title: "GoogleCloudStorage", options: googleCloudSection.options },
  { id: "LocalObjectStorage", title: "LocalObjectStorage", options: localObjectSection.options },
  { id: "Orthanc", title: "Orthanc's global options", options: ORTHANC },
  { id: "OrthancCloudStorage", title: "OrthancCloudStorage (the bridge)", options: BRIDGE_OPTIONS },
  { id: "LocalDisk", title: "OrthancCloudStorage.LocalDisk (local disk tier)", options: LOCAL_DISK_OPTIONS },
];

export function optionGroup(id: OptionGroupId): OptionGroup {
  const group = OPTION_GROUPS.find((g) => g.id === id);
  if (group === undefined) throw new Error(`no option group ${id}`); // an invariant: ids are typed
  return group;
}

/** Every option a backend section accepts: its own, then the common ones. */
export function backendSectionOptions(section: BackendSection): readonly OptionSpec[] {
  return [...BACKEND_SECTION_MODULES[section].options, ...COMMON];
}
