import type { CompiledQuery } from 'kysely'

/**
 * Kysely builds and compiles a query anew on every call; a hot query can instead be
 * compiled once with placeholder values, each call binding its own parameters in their
 * place. This proves the placeholders are the compiled query's only parameters, in this
 * order, so a call can never run with a value of the template. `what` names the query in
 * the error.
 */
export function bindsOnly<R> (compiled: CompiledQuery<R>, placeholders: readonly unknown[], what: string): CompiledQuery<R> {
  if (compiled.parameters.length !== placeholders.length || compiled.parameters.some((value, i) => value !== placeholders[i])) {
    throw new Error(`${what} binds ${JSON.stringify(compiled.parameters)}, not its placeholders`)
  }
  return compiled
}
