// The errors the SDK reports through `onError`: `code` is stable, `retriable` says whether the
// SDK keeps trying by itself.
export type RealtimeErrorCode =
  | 'forbidden' // no access to the project: the subscription stopped
  | 'unauthorized' // the token was rejected and could not be refreshed (static token)
  | 'token_provider_failed' // getToken() threw
  | 'bad_message' // an undecodable MQTT payload (dropped; the gap is fetched from the replay API)
  | 'handler_failed' // an application callback threw
  | 'inbox_unavailable'; // markRead: the inbox API could not be reached (try again)

export class RealtimeError extends Error {
  override readonly name = 'RealtimeError';

  constructor(
    readonly code: RealtimeErrorCode,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
