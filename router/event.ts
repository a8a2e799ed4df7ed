// The edge of the router: decoding and validation are shared by every reader of the stream
// (packages/stream/src/change-event.ts); the router calls a decoded event a RouterEvent.
export { decodeEvent, envelopeJson, envelopeJsonOf, envelopeText, jsonBytes, jsonChars, writeJson, type EnvelopeJson, type DecodeResult, type DlqReason, type Envelope, type EventCheck, type StreamEvent as RouterEvent } from '@taskflow/stream/events';
