// The import map that lets a browser load @modelcontextprotocol/ext-apps' host side (app-bridge.js)
// straight from node_modules, unbundled, as published: every bare specifier reachable from it,
// resolved by Node's own resolver under the "browser" condition (pkce-challenge's browser build,
// the SDK's browser shims), mapped to `${prefix}/<path inside node_modules>`.
//
//   node --experimental-import-meta-resolve --conditions=browser ext_apps_importmap.mjs NODE_MODULES PREFIX
//
// Prints {"imports": {...}} on stdout. The flag is for import.meta.resolve's second argument (the
// importing file), which resolves each specifier the way that file would see it.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [nodeModules, prefix] = [fs.realpathSync(process.argv[2]), process.argv[3] || "/node_modules"];
const ENTRY = "@modelcontextprotocol/ext-apps/app-bridge";
// import/export ... from "x", import "x", import("x"): enough for these ES module builds.
const SPECIFIER = /(?:\bimport|\bexport)\s*(?:[\w*${}\s,]*?from\s*)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

const imports = {};
const seen = new Set();

function resolve(specifier, from) {
  return fileURLToPath(import.meta.resolve(specifier, pathToFileURL(from).href));
}

function walk(file) {
  if (seen.has(file)) return;
  seen.add(file);
  for (const found of fs.readFileSync(file, "utf8").matchAll(SPECIFIER)) {
    const specifier = found[1] || found[2];
    if (specifier.startsWith("node:")) throw new Error(`${file} needs Node's ${specifier}`);
    const target = specifier.startsWith(".") ? path.resolve(path.dirname(file), specifier) : resolve(specifier, file);
    if (!specifier.startsWith(".")) {
      const url = prefix + "/" + path.relative(nodeModules, target).split(path.sep).join("/");
      if (imports[specifier] && imports[specifier] !== url) {
        throw new Error(`${specifier} resolves to two files (${imports[specifier]}, ${url}): one map cannot hold both`);
      }
      imports[specifier] = url;
    }
    walk(target);
  }
}

const entry = resolve(ENTRY, path.join(nodeModules, "package.json"));
imports[ENTRY] = prefix + "/" + path.relative(nodeModules, entry).split(path.sep).join("/");
walk(entry);
process.stdout.write(JSON.stringify({ imports }, null, 1));
