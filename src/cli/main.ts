#!/usr/bin/env node
// Entry point of the `downpour` command: runs the program on the process's arguments and sets the exit code; the
// process's streams and its Ctrl-C handling come from processIO (src/cli/io.ts).
import { processIO } from "./io.js";
import { runCli } from "./program.js";

/** How long the process may linger after the command finished (open handles it does not own), in ms. */
const EXIT_GRACE_MS = 1_000;

const code = await runCli(process.argv.slice(2), processIO());
process.exitCode = code;
// A NATS client that failed its first connect may leave a socket open; once the output has drained, do not wait for it.
setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
