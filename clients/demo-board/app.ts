// The demo board page: loads the project's state over the board API, then stays live through
// the SDK. Its own edits are only written to the API; they appear on screen when they come back
// through the pipeline, exactly like everybody else's.
import { createClient, isTableChange, type Change, type ChangeEvent, type Notification, type RealtimeClient } from '@taskflow/realtime';

interface Session { userId: string; workspaceId: string; projectId: string; token: string; mqttUrl: string; replayUrl: string; searchUrl?: string; notificationsUrl?: string }
interface SearchHit { type: 'task' | 'comment'; id: string; taskId: string | null; title: string; text: string }
interface Task { id: string; title: string; description: string | null; status: string; position: number; labels?: string[]; due_at?: string | null; updated_at?: string; [k: string]: unknown }
interface Comment { id: string; task_id: string; body: string; created_at?: string; author_id?: string | null }

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

const tasks = new Map<string, Task>();
const comments = new Map<string, Comment>();
let selected: string | undefined;
let session: Session;

// Exposed for the end-to-end test: what the page applied, and how late it was.
const probe = { applied: [] as string[], latenciesMs: [] as number[], status: 'connecting', resyncs: 0 };
(window as unknown as { taskflowBoard: typeof probe }).taskflowBoard = probe;

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const user = session?.userId ?? params.get('user');
  const query = user ? `${path.includes('?') ? '&' : '?'}user=${encodeURIComponent(user)}` : '';
  const res = await fetch(`${path}${query}`, {
    ...init,
    headers: { 'content-type': 'application/json' },
  });
  const body = (await res.json()) as T & { message?: string };
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  return body;
}

function showError(err: unknown): void {
  $('#error').textContent = err instanceof Error ? err.message : String(err);
}

/** The replay API's newest seq for the project: the board state loaded after it includes it. */
async function headSeq(): Promise<number> {
  const url = `${session.replayUrl}/v1/workspaces/${session.workspaceId}/projects/${session.projectId}/changes?after=0&limit=1`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${session.token}` } });
  if (res.status !== 200 && res.status !== 410) throw new Error(`replay API answered ${res.status}`);
  return ((await res.json()) as { latestSeq?: number }).latestSeq ?? 0;
}

async function loadState(): Promise<void> {
  const board = await api<{ project: { name: string }; tasks: Task[]; comments: Comment[] }>(
    `/api/workspaces/${session.workspaceId}/projects/${session.projectId}/board`,
  );
  $('#title').textContent = board.project.name;
  tasks.clear();
  comments.clear();
  for (const t of board.tasks) tasks.set(t.id, t);
  for (const c of board.comments) comments.set(c.id, c);
  render();
}

function applyChange(event: ChangeEvent): void {
  const { op, table, key } = event.data;
  const id = String(key.id);
  // An update's `after` may lack unchanged TOASTed columns: it is merged into what the board has.
  if (isTableChange(event, 'tasks')) {
    if (op === 'd') tasks.delete(id);
    else if (event.data.after) tasks.set(id, { ...(tasks.get(id) ?? {}), ...event.data.after } as Task);
  } else if (isTableChange(event, 'comments')) {
    if (op === 'd') comments.delete(id);
    else if (event.data.after) comments.set(id, { ...(comments.get(id) ?? {}), ...event.data.after } as Comment);
  } else if (isTableChange(event, 'projects') && typeof event.data.after?.name === 'string') {
    $('#title').textContent = event.data.after.name;
  }
  probe.applied.push(event.id);
  const latency = Date.now() - Date.parse(event.time);
  probe.latenciesMs.push(latency);
  unreported.push(latency);
  $('#latency').textContent = `last change: ${latency} ms commit → screen`;
  render(table === 'tasks' ? id : undefined);
}

/** A due date as the board shows it: the UTC day (due_at is a timestamp; v1 tasks' due_date days read as 00:00 UTC). */
function dueDay(t: Task): string | null {
  return typeof t.due_at === 'string' ? new Date(t.due_at).toISOString().slice(0, 10) : null;
}

/** The task's labels as chips and its due date, or nothing for a task with neither. */
function tagsOf(t: Task): HTMLElement {
  const tags = document.createElement('div');
  tags.className = 'tags';
  for (const label of t.labels ?? []) tags.append(Object.assign(document.createElement('span'), { className: 'label', textContent: label }));
  const due = dueDay(t);
  if (due) tags.append(Object.assign(document.createElement('span'), { className: 'due', textContent: `due ${due}`, title: t.due_at }));
  return tags;
}

function render(flashId?: string): void {
  for (const column of document.querySelectorAll<HTMLElement>('.column')) {
    const list = [...tasks.values()].filter((t) => t.status === column.dataset.status).sort((a, b) => a.position - b.position);
    const cards = column.querySelector('.cards') as HTMLElement;
    cards.replaceChildren(
      ...list.map((t) => {
        const card = document.createElement('div');
        card.className = `card${t.id === selected ? ' selected' : ''}${t.id === flashId ? ' flash' : ''}`;
        card.dataset.taskId = t.id;
        const title = document.createElement('div');
        title.className = 'title';
        title.textContent = t.title;
        const meta = document.createElement('div');
        meta.className = 'meta';
        const n = [...comments.values()].filter((c) => c.task_id === t.id).length;
        meta.textContent = n ? `${n} comment${n > 1 ? 's' : ''}` : '';
        card.append(title, tagsOf(t), meta);
        card.onclick = () => {
          selected = t.id;
          render();
        };
        return card;
      }),
    );
  }
  renderDetail();
}

function renderDetail(): void {
  const aside = $('#detail');
  const task = selected ? tasks.get(selected) : undefined;
  if (!task) {
    aside.innerHTML = '<p>Select a task to see its details and comments.</p>';
    return;
  }
  const focused = document.activeElement;
  if (focused && aside.contains(focused) && aside.dataset.taskId === task.id) return; // don't clobber typing
  aside.dataset.taskId = task.id;
  aside.innerHTML = '';
  const title = Object.assign(document.createElement('input'), { value: task.title, id: 'detail-title' });
  title.onchange = () => void edit(task.id, { title: title.value });
  const status = document.createElement('select');
  status.id = 'detail-status';
  for (const s of ['todo', 'in_progress', 'review', 'done']) status.append(new Option(s.replace('_', ' '), s, false, s === task.status));
  status.onchange = () => void edit(task.id, { status: status.value });
  const description = Object.assign(document.createElement('textarea'), { value: task.description ?? '', rows: 4, id: 'detail-description' });
  description.onchange = () => void edit(task.id, { description: description.value });
  const list = document.createElement('div');
  for (const c of [...comments.values()].filter((c) => c.task_id === task.id)) {
    const el = document.createElement('div');
    el.className = 'comment';
    el.textContent = c.body;
    list.append(el);
  }
  const form = document.createElement('form');
  const input = Object.assign(document.createElement('input'), { placeholder: 'Add a comment', required: true, id: 'comment-input' });
  form.append(input);
  form.onsubmit = (e) => {
    e.preventDefault();
    api(`/api/workspaces/${session.workspaceId}/tasks/${task.id}/comments`, { method: 'POST', body: JSON.stringify({ body: input.value }) })
      .then(() => (input.value = ''))
      .catch(showError);
  };
  const h = document.createElement('h3');
  h.textContent = 'Task';
  aside.append(h, title, status, tagsOf(task), description, list, form);
}

async function edit(taskId: string, patch: Record<string, unknown>): Promise<void> {
  try {
    await api(`/api/workspaces/${session.workspaceId}/tasks/${taskId}`, { method: 'PATCH', body: JSON.stringify(patch) });
  } catch (err) {
    showError(err);
  }
}

/** The search box: asks the search API as the session's user, who finds only what their memberships allow. */
function setUpSearch(searchUrl: string): void {
  const form = $<HTMLFormElement>('#search');
  const input = $<HTMLInputElement>('#search-input');
  const results = $('#search-results');
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    if (input.value.trim() === '') return results.replaceChildren();
    const url = `${searchUrl}/v1/workspaces/${session.workspaceId}/search?q=${encodeURIComponent(input.value)}&limit=10`;
    fetch(url, { headers: { authorization: `Bearer ${session.token}` } })
      .then(async (res) => {
        const body = (await res.json()) as { hits?: SearchHit[]; message?: string; error?: string };
        if (!res.ok) throw new Error(`search: ${body.message ?? body.error ?? res.status}`);
        const hits = body.hits ?? [];
        results.replaceChildren(
          ...(hits.length === 0 ? [Object.assign(document.createElement('li'), { textContent: 'No results' })] : hits.map(resultItem)),
        );
      })
      .catch(showError);
  };
  function resultItem(hit: SearchHit): HTMLElement {
    const li = document.createElement('li');
    li.className = 'search-result';
    const kind = Object.assign(document.createElement('span'), { className: 'kind', textContent: hit.type });
    li.append(kind, hit.type === 'task' ? hit.title : hit.text);
    li.onclick = () => {
      selected = hit.type === 'task' ? hit.id : (hit.taskId ?? undefined);
      results.replaceChildren();
      render();
    };
    return li;
  }
}

const KIND_TEXT: Record<string, string> = { assigned: 'assigned you', mentioned: 'mentioned you', commented: 'commented on' };

/**
 * The bell: the unread count of the user's notifications in this workspace, kept by the SDK's
 * subscription (live on the user's topic, caught up from the inbox on every reconnect). Opening
 * it lists the latest and marks every one the page has unread as read.
 */
function setUpBell(client: RealtimeClient): void {
  const bell = $<HTMLButtonElement>('#bell');
  const count = $('#bell-count');
  const list = $('#notifications');
  const known = new Map<string, Notification & { seen: boolean }>();
  const showCount = (n: number) => {
    count.textContent = String(n);
    count.dataset.unread = String(n);
  };
  bell.hidden = false;
  const sub = client.subscribeNotifications(session.workspaceId, {
    onNotification: (n) => {
      known.set(n.id, { ...n, seen: n.read === true });
      if (!list.hidden) renderList();
    },
    onUnreadCount: showCount,
    onError: showError,
  });
  function renderList(): void {
    const latest = [...known.values()].slice(-10).reverse(); // delivered in id (= commit) order
    list.replaceChildren(
      ...(latest.length === 0
        ? [Object.assign(document.createElement('li'), { textContent: 'No notifications' })]
        : latest.map((n) => {
            const li = document.createElement('li');
            li.className = `notification${n.seen ? '' : ' unread'}`;
            li.dataset.id = n.id;
            li.append(`${KIND_TEXT[n.kind] ?? n.kind} `, Object.assign(document.createElement('b'), { textContent: n.text ?? 'a task' }));
            li.onclick = () => {
              if (tasks.has(n.taskId)) selected = n.taskId;
              list.hidden = true;
              render();
            };
            return li;
          })),
    );
  }
  bell.onclick = () => {
    list.hidden = !list.hidden;
    if (list.hidden) return;
    renderList();
    const unread = [...known.values()].filter((n) => !n.seen);
    if (unread.length === 0) return;
    sub
      .markRead(unread.map((n) => n.id))
      .then((n) => {
        for (const u of unread) u.seen = true;
        showCount(n);
      })
      .catch(showError);
  };
}

/** Latencies not yet sent to the board's server, which charts them on the health page (/health). */
let unreported: number[] = [];
function reportLatencies(): void {
  if (!unreported.length) return;
  const latenciesMs = unreported.splice(0, 1000);
  fetch('/api/client-latency', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latenciesMs }) }).catch(() => {
    unreported = [...latenciesMs, ...unreported].slice(-1000); // the next report takes them
  });
}

async function main(): Promise<void> {
  setInterval(reportLatencies, 2000);
  session = await api<Session>('/api/session');
  if (session.searchUrl) setUpSearch(session.searchUrl);
  $('#new-task').onsubmit = (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('#new-task-title');
    api(`/api/workspaces/${session.workspaceId}/projects/${session.projectId}/tasks`, { method: 'POST', body: JSON.stringify({ title: input.value }) })
      .then(() => (input.value = ''))
      .catch(showError);
  };
  const fromSeq = (await headSeq()) + 1;
  await loadState();
  const client = createClient({
    url: session.mqttUrl,
    token: session.token,
    replayUrl: session.replayUrl,
    ...(session.notificationsUrl ? { notificationsUrl: session.notificationsUrl } : {}),
  });
  if (session.notificationsUrl) setUpBell(client);
  client.subscribeProject(session.workspaceId, session.projectId, {
    fromSeq,
    // Thin messages carry no row image: the board then reloads its state.
    onChange: (change: Change) => (change.mode === 'full' ? applyChange(change.event) : void loadState().catch(showError)),
    onResync: () => {
      probe.resyncs += 1;
      loadState().catch(showError);
    },
    onStatus: (status) => {
      probe.status = status;
      const el = $('#status');
      el.dataset.status = status;
      el.textContent = status;
    },
  });
}

main().catch(showError);
