// One body made of ranged GETs fetched in parallel (UseTransferManager): parts come back in order, with at
// most `parallel` requests in flight, so memory stays around `parallel` parts.

import { Readable } from "node:stream";

export function rangedBody(
  first: Readable,
  size: number,
  partSize: number,
  parallel: number,
  openPart: (start: number, end: number) => Promise<Readable>,
): Readable {
  async function* parts(): AsyncGenerator<Uint8Array> {
    const starts: number[] = [];
    for (let start = partSize; start < size; start += partSize) starts.push(start);
    // Each part is read whole into memory as soon as it opens, so later parts download while earlier
    // ones are being consumed.
    const fetchPart = async (start: number): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      for await (const chunk of await openPart(start, Math.min(start + partSize, size)))
        chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    };
    const inFlight: Array<Promise<Buffer>> = [];
    let next = 0;
    const fill = (): void => {
      while (inFlight.length < parallel && next < starts.length) {
        const part = fetchPart(starts[next++] as number);
        part.catch(() => undefined); // awaited in order below; this only keeps an early failure from being unhandled
        inFlight.push(part);
      }
    };
    fill();
    for await (const chunk of first) yield chunk as Uint8Array;
    while (inFlight.length > 0) {
      const part = await (inFlight.shift() as Promise<Buffer>);
      fill();
      yield part;
    }
  }
  return Readable.from(parts(), { objectMode: false });
}
