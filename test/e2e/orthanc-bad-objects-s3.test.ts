// Bad objects planted in an S3 bucket on Ceph RGW, read through a real Orthanc (bad-objects-suite.ts); the
// bucket is written with a separate S3 client, never through our driver.

import { startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { badObjectSuite } from "./bad-objects-suite.js";

const rgw = serverForFile(startRgw);

badObjectSuite("AwsS3Storage (Ceph RGW)", async () => (await rgw).bucket("bad-objects"));
