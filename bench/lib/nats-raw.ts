// Raw nats.js floors for the BSP benchmark, between two clients in two processes (this one, and a child started
// through children.ts): a request/reply loop (the round trip a barrier cannot beat) and a chunked bulk publish of
// a payload, acknowledged by the receiver once it has all of it (the MB/s a gradient exchange cannot beat); and a
// swap, both clients sending a payload to the other at once, as a 2-peer exchange does.
import { connect } from "@nats-io/transport-node";
import { startChild } from "./children.js";

/** Round trips per second of empty requests from this process, answered by a client in a child process, over `seconds`. */
export async function rawRoundTrips(url: string, seconds: number): Promise<number> {
  const subject = "bench.raw.echo";
  const echo = startChild<unknown>({ role: "echo", url, subject });
  const a = await connect({ servers: url, timeout: 5_000 });
  try {
    await echo.ready;
    const empty = new Uint8Array(0);
    for (let i = 0; i < 200; i++) await a.request(subject, empty, { timeout: 5_000 }); // warm-up
    let count = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      await a.request(subject, empty, { timeout: 5_000 });
      count++;
    }
    return count / ((performance.now() - t0) / 1000);
  } finally {
    echo.go();
    await echo.result.catch(() => undefined);
    await a.close();
  }
}

/**
 * MB/s (1e6 bytes) delivered when this process publishes `bytes` bytes, chunked to the server's max_payload, to a
 * client in a child process, which acknowledges each whole payload; one payload at a time, over at least `seconds`.
 */
export async function rawPublishMBps(url: string, bytes: number, seconds: number): Promise<{ mbps: number; chunk: number }> {
  const subject = "bench.raw.bulk";
  const sink = startChild<unknown>({ role: "sink", url, subject, bytes });
  const a = await connect({ servers: url, timeout: 5_000 });
  try {
    const chunk = a.info!.max_payload - 64;
    const payload = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i++) payload[i] = i & 0xff;
    let waiter: (() => void) | undefined;
    a.subscribe(`${subject}.ack`, { callback: () => waiter?.() });
    await a.flush();
    await sink.ready;
    const once = async () => {
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
    return { mbps: (count * bytes) / elapsed / 1e6, chunk };
  } finally {
    sink.go();
    await sink.result.catch(() => undefined);
    await a.close();
  }
}

/**
 * MB/s (1e6 bytes of one payload per round) when this process and a client in a child process each send `bytes`
 * bytes to the other at once (the child starts its send when the first chunk of ours arrives): a round ends when
 * this process has received the child's whole payload. What a 2-peer exchange of `bytes` each way moves.
 */
export async function rawSwapMBps(url: string, bytes: number, seconds: number): Promise<number> {
  const subject = "bench.raw.swap";
  const peer = startChild<unknown>({ role: "swap", url, subject, bytes });
  const a = await connect({ servers: url, timeout: 5_000 });
  try {
    const chunk = a.info!.max_payload - 64;
    const payload = new Uint8Array(bytes).fill(3);
    let received = 0;
    let waiter: (() => void) | undefined;
    a.subscribe(`${subject}.down`, {
      callback: (_err, msg) => {
        received += msg.data.byteLength;
        if (received >= bytes) {
          received -= bytes;
          waiter?.();
        }
      },
    });
    await a.flush();
    await peer.ready;
    const once = async () => {
      const done = new Promise<void>((resolve) => (waiter = resolve));
      for (let offset = 0; offset < bytes; offset += chunk) a.publish(subject, payload.subarray(offset, Math.min(bytes, offset + chunk)));
      await done;
      waiter = undefined;
    };
    await once();
    let count = 0;
    const t0 = performance.now();
    do {
      await once();
      count++;
    } while (performance.now() < t0 + seconds * 1000 || count < 3);
    return (count * bytes) / ((performance.now() - t0) / 1000) / 1e6;
  } finally {
    peer.go();
    await peer.result.catch(() => undefined);
    await a.close();
  }
}
