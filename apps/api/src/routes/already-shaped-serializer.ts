// The bypassed response serializer: a route whose every answer is already what its response schemas would write
// sends it as JSON.stringify writes it, without encoding it through those schemas again.
//
// POST /v1/jobs answers with a JobRecord (the one it just built, or the earlier one an Idempotency-Key names) or
// with an error body. Encoding them through zod again (a visible share of the API's CPU under submit load, bench/RESULTS.md) would
// check nothing while these hold:
// - A record is built by newJobRecord from a spec the spec schema parsed, or read back through JobRecord.parse: it
//   has no field the schema would strip (a secret, an internal mark) and no value it would change or refuse.
// - An error body is BerthError.toBody(): a code from the list, a message, issues of a path and a message each, and
//   details, which the schema takes as they are.
// already-shaped-serializer.test.ts sends such answers both ways and fails when they differ. A route whose answers
// are built any other way keeps the schema serializer.
import type { FastifySerializerCompiler } from 'fastify';

/** A serializer compiler for routes whose answers already have their schema's shape: JSON.stringify, no encode. */
export const alreadyShapedSerializer: FastifySerializerCompiler<unknown> = () => (answer) => JSON.stringify(answer);
