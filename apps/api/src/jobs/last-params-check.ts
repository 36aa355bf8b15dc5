// The one-slot parse cache: a submit's parameters are validated once, though two steps of one request ask.
//
// The spec schema's refinement validates the parameters, and resolveSpec, which follows in the same request, needs
// the same result (the parameter values with their defaults). The last result is kept with the objects it was for,
// and a second question about those very objects gets it back. This is safe while three things hold:
// - zod hands a refinement the very object that parse then returns; it does not copy the parsed value after its
//   refinements run. So resolveSpec asks about the object the refinement checked. If zod starts copying, nothing
//   goes wrong, but every submit validates its parameters twice (last-params-check.test.ts fails first).
// - Nobody changes a parsed spec's parameters between the two steps: a spec is only read once it is parsed.
// - validateParams reads nothing but its recipe and its parameters.
// Objects are compared by identity, never by content: any other object, equal or not, is validated afresh.
import { validateParams, type Manifest, type ValidateResult } from '@berth/manifests';

let last: { manifest: Manifest; params: object; result: ValidateResult } | undefined;

/** validateParams, answered from the last call when it is asked about the very same recipe and parameters again. */
export function checkParamsReusingLast(manifest: Manifest, params: Record<string, unknown>): ValidateResult {
  if (last && isLastChecked(manifest, params)) return last.result;
  const result = validateParams(manifest, params);
  last = { manifest, params, result };
  return result;
}

/** Whether checkParamsReusingLast would answer these objects from its last call, without validating again. */
export function isLastChecked(manifest: Manifest, params: object): boolean {
  return last?.params === params && last.manifest === manifest;
}
