// Raw nats.js floors for the BSP benchmark: a request/reply loop between two clients (the round trip a barrier
// cannot beat) and a chunked bulk publish from one client to another (the MB/s a gradient exchange cannot beat).
import { connect, type NatsConnection } from "@nats-io/transport-node";

/** Two clients of `url`, closed by the returned close(). */
async function pair(url: string): Promise<{ a: NatsConnection; b: NatsConnection; close(): Promise<void> }> {
  const [a, b] = await Promise.all([connect({ servers: url, timeout: 5_000 }), connect({ servers: url, timeout: 5_000 })]);
  return { a, b, close: async () => void (await Promise.allSettled([a.close(), b.close()])) };
}

/** Round trips per second of empty requests from one client, answered by another, over `seconds` of wall time. */
export async function rawRoundTrips(url: string, seconds: number): Promise<number> {
  const { a, b, close } = await pair(url);
  try {
    const subject = "bench.raw.echo";
    const sub = b.subscribe(subject, { callback: (_err, msg) => void msg.respond() });
    await b.flush();
    const empty = new Uint8Array(0);
    for (let i = 0; i < 50; i++) await a.request(subject, empty, { timeout: 5_000 }); // warm-up
    let count = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      await a.request(subject, empty, { timeout: 5_000 });
      count++;
    }
    const rate = count / ((performance.now() - t0) / 1000);
    sub.unsubscribe();
    return rate;
  } finally {
    await close();
  }
}

/**
 * MB/s (1e6 bytes) delivered when one client publishes `bytes` bytes, chunked to the server's max_payload, to
 * another, repeatedly (each message fully received before the next one starts), over at least `seconds`.
 */
export async function rawPublishMBps(url: string, bytes: number, seconds: number): Promise<{ mbps: number; chunk: number }> {
  const { a, b, close } = await pair(url);
  try {
    const subject = "bench.raw.bulk";
    const chunk = a.info!.max_payload - 64;
    const payload = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i++) payload[i] = i & 0xff;
    let received = 0;
    let waiter: (() => void) | undefined;
    let target = 0;
    const sub = b.subscribe(subject, {
      callback: (_err, msg) => {
        received += msg.data.byteLength;
        if (waiter && received >= target) waiter();
      },
    });
    await b.flush();
    const once = async () => {
      target += bytes;
      const done = new Promise<void>((resolve) => (waiter = resolve));
      for (let offset = 0; offset < bytes; offset += chunk) a.publish(subject, payload.subarray(offset, Math.min(bytes, offset + chunk)));
      await done;
      waiter = undefined;
    };
    await once(); // warm-up
    let count = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    do {
      await once();
      count++;
    } while (performance.now() < end || count < 3);
    const elapsed = (performance.now() - t0) / 1000;
    sub.unsubscribe();
    return { mbps: (count * bytes) / elapsed / 1e6, chunk };
  } finally {
    await close();
  }
}
