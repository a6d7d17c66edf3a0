// Local HTTP servers on 127.0.0.1 (port 0) for offline download tests: files, fixed answers, silence.
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A running server: its base URL (ending in "/"), the paths requested so far, and close(). */
export interface TestServer {
  readonly baseUrl: string;
  readonly requests: string[];
  close(): Promise<void>;
}

/** Serves with `handler`, recording each request path. */
export async function startServer(handler: RequestListener): Promise<TestServer> {
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    requests.push(request.url ?? "");
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/mnist/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Answers /mnist/<name> with files[name] (as application/octet-stream), anything else with 404. */
export function serveFiles(files: (name: string) => Uint8Array | undefined): RequestListener {
  return (request, response) => {
    const name = (request.url ?? "").replace(/^\/mnist\//, "");
    const body = files(name);
    if (!body) {
      response.writeHead(404, "Not Found").end("not here");
      return;
    }
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body);
  };
}

/** A base URL on which nothing listens: a server is started, then closed. */
export async function refusedBaseUrl(): Promise<string> {
  const server = await startServer(() => {});
  await server.close();
  return server.baseUrl;
}
