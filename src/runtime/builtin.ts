// Node built-in modules without static `node:` imports, so that no entry's import graph names one and bundlers
// for the browser see nothing to resolve: process.getBuiltinModule (Node >= 20.16, Bun, Deno), else import().

/** The built-in module `id` ("node:fs/promises", ...). Rejects where the runtime has none. */
export async function nodeBuiltin<T>(id: string): Promise<T> {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const module = proc?.getBuiltinModule?.(id);
  if (module) return module as T;
  return (await import(/* webpackIgnore: true */ /* @vite-ignore */ id)) as T;
}
