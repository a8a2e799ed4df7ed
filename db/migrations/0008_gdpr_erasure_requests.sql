-- GDPR erasure requests (issue 13): `taskflow gdpr request` records each one here so that it
-- travels the stream like any change — capture turns an insert into a
-- taskflow.gdpr.erasure_requested event (schemas/gdpr-erasure/v1.json) for every reader. The
-- processor's state lives in DynamoDB (gdpr/request-store.ts); this row is the announcement.
-- No foreign key to users: erasure deletes the users row, the request stays as its record.
CREATE TABLE gdpr_erasure_requests (
  id            uuid PRIMARY KEY,
  user_id       uuid NOT NULL,
  requested_at  timestamptz NOT NULL,
  deadline      timestamptz NOT NULL,
  reason        text
);

GRANT SELECT ON gdpr_erasure_requests TO taskflow_replication;
ALTER PUBLICATION taskflow_capture ADD TABLE gdpr_erasure_requests;
