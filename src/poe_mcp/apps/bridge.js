// The app side of the MCP Apps host bridge (ext-apps spec 2026-01-26): JSON-RPC 2.0 over
// postMessage with the host window. Everything else an app shows is built with el(), which only
// ever sets textContent and attributes: no data from a tool result is ever parsed as HTML.
const poe = (() => {
  const PROTOCOL_VERSION = "2026-01-26";
  const pending = new Map();
  const handlers = {};
  let nextId = 1;

  function post(message) {
    window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  }

  function request(method, params) {
    const id = nextId++;
    post({ id, method, params });
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  }

  function notify(method, params) {
    post({ method, params });
  }

  function answerHost(message) {
    // The host's requests to us (ui/resource-teardown, ping) need only an empty success.
    post({ id: message.id, result: {} });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const message = event.data;
    if (!message || message.jsonrpc !== "2.0") return;
    if (message.method === undefined) {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (message.error) waiting.reject(new Error(message.error.message || "request failed"));
      else waiting.resolve(message.result);
      return;
    }
    if (message.id !== undefined) answerHost(message);
    const handler = handlers[message.method];
    if (handler) handler(message.params || {});
  });

  function reportSize() {
    const box = document.documentElement.getBoundingClientRect();
    notify("ui/notifications/size-changed", {
      width: Math.ceil(box.width),
      height: Math.ceil(box.height),
    });
  }

  async function connect(name) {
    const host = await request("ui/initialize", {
      appInfo: { name, version: "1" },
      appCapabilities: {},
      protocolVersion: PROTOCOL_VERSION,
    });
    notify("ui/notifications/initialized", {});
    new ResizeObserver(reportSize).observe(document.documentElement);
    return host || {};
  }

  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args });
    if (result && result.isError) throw new Error(textOf(result) || name + " failed");
    return result;
  }

  function textOf(result) {
    const first = ((result && result.content) || []).find((block) => block.type === "text");
    return first ? first.text : "";
  }

  return {
    connect,
    callTool,
    textOf,
    on: (method, handler) => (handlers[method] = handler),
    readResource: (uri) => request("resources/read", { uri }),
    sendMessage: (text) =>
      request("ui/message", { role: "user", content: [{ type: "text", text }] }),
  };
})();

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function show(target, ...children) {
  target.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

function usd(value) {
  if (value === null || value === undefined) return "—";
  return "$" + Number(value).toFixed(value < 0.01 ? 4 : 2);
}
