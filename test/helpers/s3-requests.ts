// Records every HTTP request an S3 client sends, after its retries are split out: SDK middleware at the
// "finalizeRequest" step sees each attempt's method, path, query and headers.

import type { S3Client } from "@aws-sdk/client-s3";

export interface SentRequest {
  method: string;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

export function recordRequests(client: S3Client): SentRequest[] {
  const sent: SentRequest[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as {
        method?: string;
        path?: string;
        query?: Record<string, string | string[] | null>;
        headers?: Record<string, string>;
      };
      sent.push({
        method: request.method ?? "",
        path: request.path ?? "",
        query: request.query ?? {},
        headers: request.headers ?? {},
      });
      return next(args);
    },
    { step: "finalizeRequest", name: "recordRequests", priority: "low" },
  );
  return sent;
}
