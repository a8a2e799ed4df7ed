// The MQTT topics of the pipeline, declared once: the router publishes to them, the broker's and
// IoT Core's authorizers grant them, and this SDK subscribes to them (schemas/CONTRACTS.md).
export const TOPIC_ROOT = 'taskflow/v1/ws';

/** A project, as its topic and its changelog know it. */
export interface ProjectRef {
  readonly workspaceId: string;
  readonly projectId: string;
}

/** A project's topic; `+` as the project makes the filter of every project of the workspace. */
export function projectTopicOf(workspaceId: string, projectId: string): string {
  return `${TOPIC_ROOT}/${workspaceId}/projects/${projectId}`;
}

/** A user's own topic in a workspace (notifications). */
export function userTopicOf(workspaceId: string, userId: string): string {
  return `${TOPIC_ROOT}/${workspaceId}/users/${userId}`;
}

/** A project's topic, refusing ids that would make it a filter or another topic. */
export function projectTopic(workspaceId: string, projectId: string): string {
  for (const id of [workspaceId, projectId]) {
    if (id === '' || /[/+#]/.test(id)) throw new TypeError(`invalid id for a topic: ${JSON.stringify(id)}`);
  }
  return projectTopicOf(workspaceId, projectId);
}
