import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createDynamoClient, createKinesisClient } from './aws.js';

// A peer that accepts connections and never answers: what a half-open connection looks like.
let blackHole: Server;
let endpoint: string;
const sockets = new Set<Socket>();

beforeAll(async () => {
  blackHole = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => blackHole.close(resolve));
});

const timeouts = { connectMs: 500, responseMs: 300, idleMs: 1_000 };

test('a Kinesis call that gets no answer fails as TimeoutError instead of waiting forever', async () => {
  const kinesis = createKinesisClient({ region: 'us-east-1', kinesisEndpoint: endpoint, timeouts });
  await expect(kinesis.send(new ListStreamsCommand({}))).rejects.toMatchObject({ name: 'TimeoutError' });
  kinesis.destroy();
});

test('DynamoDB retries a silent call and then fails as TimeoutError, well before its 5-minute default', async () => {
  const dynamo = createDynamoClient({ region: 'us-east-1', dynamodbEndpoint: endpoint, timeouts });
  await expect(dynamo.send(new ListTablesCommand({}))).rejects.toMatchObject({ name: 'TimeoutError' });
  dynamo.destroy();
});
