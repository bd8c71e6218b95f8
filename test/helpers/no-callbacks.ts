// For handlers tested without a bridge: any call back into Orthanc fails the test.

import type { OrthancCallbacks } from "../../src/daemon/bridge-callbacks.js";

export const noCallbacks: OrthancCallbacks = {
  rest: (call) => Promise.reject(new Error(`unexpected callback ${call.method} ${call.uri}`)),
  submitJob: (job) => Promise.reject(new Error(`unexpected job submission ${job.type}`)),
  attachmentRecord: (uuid) => Promise.reject(new Error(`unexpected request for the record of ${uuid}`)),
  setAttachmentRecord: (uuid) => Promise.reject(new Error(`unexpected update of the record of ${uuid}`)),
  adopt: () => Promise.reject(new Error("unexpected adoption")),
};
