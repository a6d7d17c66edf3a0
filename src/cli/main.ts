#!/usr/bin/env node
// Entry point of the `downpour` command: runs the program on the process's arguments and sets the exit code; the
// process's streams and its Ctrl-C handling come from processIO (src/cli/io.ts).
import { processIO } from "./io.js";
import { runCli } from "./program.js";

process.exitCode = await runCli(process.argv.slice(2), processIO());
