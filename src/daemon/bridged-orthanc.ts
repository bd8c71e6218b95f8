// Orthanc's index as the daemon sees it: questions asked through the bridge (a callback on the connection of
// the request being served), to Orthanc's built-in REST API, with the plugin's own privileges.

import { OrthancApiError, OrthancIndex } from "../ops/orthanc-api.js";
import { UNKNOWN_RESOURCE, type OrthancCallbacks } from "./bridge-callbacks.js";

export class BridgedOrthanc extends OrthancIndex {
  readonly url = "Orthanc";

  constructor(private readonly callbacks: OrthancCallbacks) {
    super();
  }

  async get<T>(path: string): Promise<T | null> {
    const answer = await this.callbacks.rest({ method: "GET", uri: path });
    if (answer.code === UNKNOWN_RESOURCE) return null;
    if (answer.code !== 0) {
      throw new OrthancApiError(`GET ${path} inside Orthanc: Orthanc error code ${answer.code}`);
    }
    try {
      return JSON.parse(answer.body.toString("utf8")) as T;
    } catch {
      throw new OrthancApiError(`GET ${path} inside Orthanc: the answer is not JSON`);
    }
  }

  /** POST a JSON body to Orthanc's REST API and read the JSON answer. */
  async post<T>(path: string, body: unknown): Promise<T> {
    const answer = await this.callbacks.rest({
      method: "POST",
      uri: path,
      body: Buffer.from(JSON.stringify(body)),
    });
    if (answer.code !== 0) {
      throw new OrthancApiError(`POST ${path} inside Orthanc: Orthanc error code ${answer.code}`);
    }
    try {
      return JSON.parse(answer.body.toString("utf8")) as T;
    } catch {
      throw new OrthancApiError(`POST ${path} inside Orthanc: the answer is not JSON`);
    }
  }
}
