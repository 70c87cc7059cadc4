import { createApp } from "./routes/app.ts";
import { serviceDeps } from "./routes/deps.ts";
import { ConfigError, parseConfig } from "./services/config.ts";
import { openService } from "./services/service.ts";

let config;
try {
  config = parseConfig(Deno.env.toObject());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  Deno.exit(2);
}

const service = await openService(config);
await service.blobs.sweepTemporaries();
// Aborted on shutdown: event streams end (clients reconnect elsewhere) instead of holding it up.
const closing = new AbortController();
const app = createApp({
  ...serviceDeps(service),
  onJobCreated: (id) => service.worker.notify(id),
  closing: closing.signal,
});
const server = Deno.serve({
  port: config.port,
  hostname: config.hostname,
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, app.fetch);
service.worker.start();

// Stop accepting requests, give downloads a few seconds, exit. Anything left
// is still pending in KV and the next start's sweep resumes it.
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  closing.abort();
  await server.shutdown();
  await service.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
