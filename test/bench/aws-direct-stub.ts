// bench:aws-direct's stub AWS endpoint, in a child process of its own (forked by aws-direct.ts) so
// that the bench's CPU readings count the caller only. It answers PutItem with `{}` and GetRecords
// with the body the bench sends it first, then listens and sends the bench its port.
import { createServer } from 'node:http';

const answers: Record<string, [contentType: string, body: string]> = {
  'DynamoDB_20120810.PutItem': ['application/x-amz-json-1.0', '{}'],
  'Kinesis_20131202.GetRecords': ['application/x-amz-json-1.1', ''],
};
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const [type, body] = answers[String(req.headers['x-amz-target'])]!;
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
process.once('message', (getRecords: string) => {
  answers['Kinesis_20131202.GetRecords']![1] = getRecords;
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
});
