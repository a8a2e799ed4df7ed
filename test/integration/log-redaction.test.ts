// Logs are a sink that erasure never reaches: the whole pipeline (capture and router as their own
// processes at debug level, the demo board in-process) handles rows, tokens and a hostile event
// carrying marker strings in every personal or secret field, and no log line of any service may
// contain one, nor the user's id (lib/logger.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PutRecordCommand } from '@aws-sdk/client-kinesis';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { demoSessions, startBoardServer } from '../../clients/demo-board/server.js';
import { createLogger } from '../../lib/logger.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { waitFor } from '../support/wait.js';
import { kinesisClient } from '../support/stack.js';

/** One marker per kind of field, so a hit says which field leaked. */
const MARKERS = {
  email: 'mrk-email-7d1f',
  displayName: 'mrk-display-3a9c',
  taskTitle: 'mrk-title-51be',
  taskDescription: 'mrk-description-c04e',
  commentBody: 'mrk-comment-e812',
  projectDescription: 'mrk-projdesc-9b27',
  forgedToken: 'mrk-forged-token-66d0',
  boardComment: 'mrk-board-comment-2f4a',
};

const lines: Array<{ service: string; line: string }> = [];
let pipeline: TestPipeline;
let board: Awaited<ReturnType<typeof startBoardServer>> | undefined;
let pool: pg.Pool | undefined;
const workspaceId = randomUUID();
const projectId = randomUUID();
const userId = randomUUID();
const taskId = randomUUID();

const boardSink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push({ service: 'board', line });
    done();
  },
});

beforeAll(async () => {
  pipeline = await startTestPipeline({
    prefix: 'log-redaction',
    services: 'processes',
    serviceLog: { level: 'debug', onLine: (service, line) => lines.push({ service, line }) },
  });
  pool = new pg.Pool({ connectionString: pipeline.databaseUrl, max: 2 });
  board = await startBoardServer({
    pool,
    port: 0,
    logger: createLogger('board', 'debug', boardSink),
    session: demoSessions({
      users: { ann: userId },
      workspaceId,
      projectId,
      mqttUrl: pipeline.broker.wsUrl,
      replayUrl: pipeline.router.replayUrl,
      sign: (id) => pipeline.token(id),
      env: { TASKFLOW_ENV: 'development' },
    }),
  });
}, 120_000);

afterAll(async () => {
  await board?.close();
  await pool?.end();
  await pipeline?.stop();
});

describe('logs of every service', () => {
  it('hold none of the tokens, e-mails, display names, comment bodies and descriptions the pipeline carried', async () => {
    const db = pool!;
    await db.query('INSERT INTO workspaces (id, name, slug) VALUES ($1, $2, $3)', [workspaceId, 'Log test', `log-${workspaceId}`]);
    await db.query('INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3)', [userId, `${MARKERS.email}@example.test`, MARKERS.displayName]);
    await db.query('INSERT INTO projects (id, workspace_id, name, description, created_by) VALUES ($1, $2, $3, $4, $5)', [projectId, workspaceId, 'Log project', MARKERS.projectDescription, userId]);
    await db.query("INSERT INTO memberships (id, workspace_id, user_id, project_id, role) VALUES ($1, $2, $3, NULL, 'owner')", [randomUUID(), workspaceId, userId]);
    await db.query('INSERT INTO tasks (id, workspace_id, project_id, title, description, created_by) VALUES ($1, $2, $3, $4, $5, $6)', [taskId, workspaceId, projectId, MARKERS.taskTitle, MARKERS.taskDescription, userId]);
    await db.query('INSERT INTO comments (id, workspace_id, project_id, task_id, author_id, body) VALUES ($1, $2, $3, $4, $5, $6)', [randomUUID(), workspaceId, projectId, taskId, userId, MARKERS.commentBody]);
    await db.query('UPDATE tasks SET description = $1 WHERE id = $2', [`${MARKERS.taskDescription} v2`, taskId]);

    // Through the board, as a browser would.
    const comment = await fetch(`${board!.url}api/workspaces/${workspaceId}/tasks/${taskId}/comments?user=ann`, { method: 'POST', body: JSON.stringify({ body: MARKERS.boardComment }) });
    expect(comment.status).toBe(201);

    // The replay API: a valid token (its answer carries every marker), then forged ones.
    const token = await pipeline.token(userId);
    const replay = `${pipeline.router.replayUrl}/v1/workspaces/${workspaceId}/projects/${projectId}/changes?after=0`;
    let body = '';
    await waitFor(
      async () => {
        const res = await fetch(replay, { headers: { authorization: `Bearer ${token}` } });
        body = await res.text();
        return res.status === 200 && body.includes(MARKERS.boardComment);
      },
      () => `the replay API to serve the task's changes (last answer ${body.slice(0, 200)})`,
    );
    expect(body).toContain(MARKERS.commentBody);
    const forged = `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: MARKERS.forgedToken })).toString('base64url')}.${MARKERS.forgedToken}`;
    for (const authorization of [`Bearer ${forged}`, `Bearer ${MARKERS.forgedToken}`, MARKERS.forgedToken]) {
      expect((await fetch(replay, { headers: { authorization } })).status).toBe(401);
    }

    // A hostile event on the stream: invalid, so the router dead-letters it (and logs that).
    const kinesis = kinesisClient();
    try {
      const hostile = { specversion: '1.0', type: 'taskflow.comment.created', workspaceid: workspaceId, email: `${MARKERS.email}@example.test`, data: { after: { body: MARKERS.commentBody, description: MARKERS.taskDescription } } };
      await kinesis.send(new PutRecordCommand({ StreamName: pipeline.env.CHANGE_STREAM_NAME, PartitionKey: workspaceId, Data: Buffer.from(JSON.stringify(hostile)) }));
    } finally {
      kinesis.destroy();
    }
    await waitFor(() => lines.some((l) => l.service === 'router' && l.line.includes('event dead-lettered')), () => 'the router to dead-letter the hostile event');

    await board!.close();
    board = undefined;
    await pipeline.stop(); // shutdown logs too

    // The user's id too: a line names them by its pseudonym only (gdpr/POLICY.md `logs`: none held).
    const secrets = [...Object.values(MARKERS), userId, token, pipeline.env.ROUTER_MQTT_PASSWORD!, ':taskflow@'];
    const hits = lines.filter(({ line }) => secrets.some((s) => line.includes(s)));
    expect(hits).toEqual([]);
    // The scan read real logs of each service.
    for (const service of ['capture', 'router']) expect(lines.filter((l) => l.service === service).length).toBeGreaterThan(2);
  }, 120_000);
});
