// The daemon's side of the REST routes the bridge forwards (op REST, protocol.ts): a request is matched
// on its path, then on its method, and answered with a status, a content type and a body.

import { describeCause } from "../errors.js";
import type { OrthancCallbacks } from "./bridge-callbacks.js";
import type { Logger } from "../log.js";
import {
  REST_ROUTES,
  TIER_TICK_PATH,
  type HttpMethodName,
  type RestAnswer,
  type RestRequest,
} from "./protocol.js";

/** What a handler answers; the router fills in the rest of the RestAnswer. */
export interface RestReply {
  status: number;
  contentType: string;
  body: string | Buffer;
}

/** `orthanc` calls back into Orthanc through the bridge, on the connection the request came on. */
export type RestHandler = (request: RestRequest, orthanc: OrthancCallbacks) => Promise<RestReply>;

export interface RestRoute {
  /**
   * One of REST_ROUTES, exactly as the bridge registers it: the bridge forwards no other path from Orthanc;
   * or TIER_TICK_PATH, which only the bridge's clock sends.
   */
  pattern: (typeof REST_ROUTES)[number] | typeof TIER_TICK_PATH;
  methods: Partial<Record<HttpMethodName, RestHandler>>;
}

const TEXT = "text/plain; charset=utf-8";

export class RestRouter {
  private readonly routes: Array<{ regex: RegExp; route: RestRoute }>;

  constructor(
    routes: readonly RestRoute[],
    private readonly logger: Logger,
  ) {
    for (const { pattern } of routes) {
      if (!(REST_ROUTES as readonly string[]).includes(pattern) && pattern !== TIER_TICK_PATH) {
        // A programming error, caught by the daemon's tests: no administrator can cause it.
        throw new Error(`REST route ${pattern} is not in REST_ROUTES: the bridge would never forward it`);
      }
    }
    // Orthanc matches a route's regular expression against the whole path; so do we.
    this.routes = routes.map((route) => ({ regex: new RegExp(`^(?:${route.pattern})$`), route }));
  }

  /** The answer to a forwarded request; never throws (a failing handler is a 500 that says why). */
  async handle(request: RestRequest, orthanc: OrthancCallbacks): Promise<RestAnswer> {
    const found = this.routes.find(({ regex }) => regex.test(request.url));
    if (found === undefined) return textAnswer(404, `no route ${request.url} in the cloud-storage daemon`);
    const handler = found.route.methods[request.method];
    if (handler === undefined) {
      const allow = Object.keys(found.route.methods).join(",");
      return { ...textAnswer(405, `${request.url} accepts ${allow} only`), allow };
    }
    try {
      const reply = await handler(request, orthanc);
      const body = typeof reply.body === "string" ? Buffer.from(reply.body, "utf8") : reply.body;
      return { status: reply.status, contentType: reply.contentType, allow: "", body };
    } catch (error) {
      const message = `${request.method} ${request.url}: ${describeCause(error)}`;
      this.logger.error(message);
      return textAnswer(500, message);
    }
  }
}

function textAnswer(status: number, text: string): RestAnswer {
  return { status, contentType: TEXT, allow: "", body: Buffer.from(`${text}\n`, "utf8") };
}
