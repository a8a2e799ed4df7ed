// Placeholder until the local stack lands: nothing to start.
export default async function globalSetup() {}
