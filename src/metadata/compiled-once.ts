import type { CompiledQuery } from 'kysely'

/**
 * A query built and compiled once, run many times with its own values each time.
 * Kysely builds and compiles a query anew on every call, and for a small hot query
 * (a retrieve, one result row) that is most of its cost. The query is compiled with
 * placeholder values; the check proves they are its only parameters, in this order, so
 * a call can never run with a value of the template. A value every call shares (a
 * state name in a WHERE) is a placeholder that each call passes as it is.
 */
export function compiledOnce<R> (what: string, compiled: CompiledQuery<R>, placeholders: readonly unknown[]): (parameters: readonly unknown[]) => CompiledQuery<R> {
  if (compiled.parameters.length !== placeholders.length || compiled.parameters.some((value, i) => value !== placeholders[i])) {
    throw new Error(`the compiled ${what} query binds ${JSON.stringify(compiled.parameters)}, not its placeholders`)
  }
  return (parameters) => {
    if (parameters.length !== placeholders.length) throw new Error(`the ${what} query takes ${placeholders.length} values, got ${parameters.length}`)
    return { ...compiled, parameters }
  }
}
